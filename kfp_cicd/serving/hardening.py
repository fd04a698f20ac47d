"""What the stock KServe 0.21 model server lets any client do, and this predictor refuses.

- **Oversized bodies.** Uvicorn reads a request body of any size into memory and KServe parses it
  whole. :class:`BodySizeLimit` (ASGI middleware on KServe's REST app) answers 413 naming the limit
  as soon as ``Content-Length`` says the body is too big, without reading it; a chunked body is read
  only up to the limit. gRPC gets the same limit as its maximum message size.
- **Too many rows.** A body under the byte limit can still ask for a very long scoring run;
  :class:`GuardedDataPlane` refuses more than ``max_rows`` rows (V1, V2 REST and gRPC alike) with a
  400 naming the limit, before the model sees the request.
- **Undecodable bodies.** KServe turns some malformed V2 binary bodies (a tensor whose bytes do not
  match its shape, an ``inference-header-content-length`` that is not a number) into 500s; a
  body that cannot be decoded is the client's mistake, so :class:`GuardedDataPlane` answers 400.
- **Versioned URLs.** KServe answers ``/v2/models/<name>/versions/<v>/...`` with 501; this server has
  one unversioned model, so :class:`NoModelVersions` answers 404 pointing at ``/v2/models/<name>``
  (a 5xx would page whoever watches the error rate for a client's typo).
- **Unloading the model.** KServe's model repository extension lets any client ``POST
  /v2/repository/models/<name>/unload`` (and the gRPC twin): the served model disappears until the
  pod restarts. :class:`PinnedModelRepository` refuses load/unload with a 400; a new model version
  rolls out as a new revision (``deploy_model``), never by loading into a running server.

:func:`harden` applies all of it to a ``ModelServer`` before it starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from kfp_cicd.serving.limits import DEFAULT_MAX_ROWS, MAX_REQUEST_BYTES_ENV, MAX_ROWS_ENV, RequestLimits

# What decoding a malformed body raises inside KServe (InvalidInput is a ValueError, re-raised as is).
_MALFORMED_BODY = (ValueError, TypeError, LookupError, AttributeError, OverflowError)

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _json_response(status: int, error: str) -> tuple[Message, Message]:
    body = json.dumps({"error": error}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class BodySizeLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes``, reading at most that much.

    With a ``Content-Length`` header the request is refused before its body is read (uvicorn then
    discards the rest). A chunked body is buffered up to the limit and handed on whole, or refused
    the moment it exceeds it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self, size: str) -> tuple[Message, Message]:
        return _json_response(
            413,
            f"the request body is {size}; this server accepts at most "
            f"{self.max_bytes} bytes (--max-request-bytes or "
            f"${MAX_REQUEST_BYTES_ENV}): send fewer rows per request",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.strip().isdigit():
            # uvicorn never delivers more bytes than Content-Length says (and refuses a malformed one)
            if int(declared) > self.max_bytes:
                for message in self._refusal(f"{int(declared)} bytes"):
                    await send(message)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        await self._chunked(scope, receive, send)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                for reply in self._refusal(f"over {self.max_bytes} bytes (chunked)"):
                    await send(reply)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class NoModelVersions:
    """ASGI middleware: 404 (not KServe's 501) for ``/v2/models/<name>/versions/...`` URLs."""

    PATH = re.compile(r"^/v2/models/[^/]+/versions(/|$)")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.PATH.match(scope.get("path", "")):
            for message in _json_response(
                404,
                "this server serves one unversioned model: use "
                "/v2/models/<name> (its registry version is a label "
                "of the /metrics series)",
            ):
                await send(message)
            return
        await self.app(scope, receive, send)


def request_rows(request: Any) -> int:
    """How many rows a decoded request asks to score (V1 dict or V2 InferRequest; 0 if unknown)."""
    if isinstance(request, InferRequest):
        counts = [0]
        for tensor in request.inputs:
            shape = tensor.shape
            if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], int):
                counts.append(shape[0])
            if isinstance(tensor.data, list):
                counts.append(len(tensor.data))
        return max(counts)
    if isinstance(request, dict):
        rows = request.get("instances", request.get("inputs"))
        return len(rows) if isinstance(rows, list) else 0
    return 0


class GuardedDataPlane(DataPlane):
    """KServe's data plane with a row limit, and 400 (not 500) for bodies KServe cannot decode."""

    def __init__(self, model_registry: Any, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        super().__init__(model_registry=model_registry)
        self.max_rows = max_rows

    def decode(self, body: Any, headers: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
        try:
            return super().decode(body, headers, *args, **kwargs)
        except InvalidInput:
            raise
        except _MALFORMED_BODY as exc:
            raise InvalidInput(
                f"the request body could not be decoded ({type(exc).__name__}: {exc}); "
                "check the tensors' shapes, datatypes and binary sizes against "
                "GET /v2/models/<name>"
            ) from exc

    async def infer(self, model_name: str, request: Any, headers: Any = None) -> tuple[Any, dict]:
        rows = request_rows(request)
        if rows > self.max_rows:
            raise InvalidInput(
                f"the request holds {rows} rows; this server scores at most {self.max_rows} "
                f"rows per request (--max-rows or ${MAX_ROWS_ENV}): split it into smaller "
                "requests"
            )
        return await super().infer(model_name, request, headers)


class PinnedModelRepository(ModelRepositoryExtension):
    """The repository extension with load and unload refused: the served model is fixed at startup."""

    REFUSAL = (
        "this predictor serves the one model it verified and loaded at startup; loading or "
        "unloading models through the repository API is disabled. Roll a new version out as a "
        "new revision (deploy_model) instead"
    )

    async def load(self, model_name: str) -> None:
        raise InvalidInput(f"cannot load {model_name!r}: {self.REFUSAL}")

    async def unload(self, model_name: str) -> None:
        raise InvalidInput(f"cannot unload {model_name!r}: {self.REFUSAL}")


def harden(server: Any, limits: RequestLimits) -> None:
    """Apply the limits and guards to a ``kserve.ModelServer`` that has not started yet."""
    import kserve.model_server

    kserve.model_server.app.add_middleware(NoModelVersions)
    kserve.model_server.app.add_middleware(BodySizeLimit, max_bytes=limits.max_request_bytes)
    # GRPCServer reads its message limits from kserve's module-level parsed arguments.
    kserve.model_server.args.grpc_max_receive_message_length = limits.max_request_bytes
    server.dataplane = GuardedDataPlane(server.registered_models, limits.max_rows)
    server.model_repository_extension = PinnedModelRepository(server.registered_models)
