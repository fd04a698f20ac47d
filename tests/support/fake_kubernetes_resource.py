"""What every resource of the FAKE Kubernetes API server (``fake_kubernetes_api``) does alike.

No Kubernetes API exists here, so the tests run the real ``kubernetes`` client against a loopback
FAKE. This module holds the API semantics that do not depend on the kind of object: the Status
bodies of failures (404, 403, 405, 409, 415, 422), JSON merge patch, ``resourceVersion`` and
``metadata.generation``, and a ``Resource`` base class with the verbs create / get / list / patch /
delete over an in-memory store. Each kind (``fake_kserve``, ``fake_training_operator``) subclasses
``Resource`` and adds its controller's behaviour through the hooks.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One HTTP answer: a JSON-able object, or text/bytes with their content type (and headers)."""

    code: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


PAGE_NOT_FOUND = Reply(404, b"404 page not found\n", "text/plain")  # what the API server says off its routes


@dataclass
class Route:
    """A path the fake serves beside the object API (an ingress, pod logs).

    ``answer(method, match, body, headers)`` takes the fake's lock itself where it needs it;
    ``recorded`` requests are added to the server's ``requests`` like API calls are.
    """

    pattern: re.Pattern[str]
    answer: Callable[[str, re.Match[str], bytes, Mapping[str, str]], Reply]
    recorded: bool = True


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``v1 Status`` failure body, which the kubernetes client turns into ``ApiException``."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def timestamp() -> str:
    """Now, as Kubernetes writes times (``creationTimestamp``, ``lastTransitionTime``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class StoredObject:
    """One stored object; subclasses add their controller's bookkeeping."""

    obj: dict[str, Any]


class Resource:
    """One namespaced custom resource: its store, its verbs, and hooks for its controller.

    The server holds its lock around every verb and ``reconcile``. Verbs not in ``verbs`` are
    answered 405 (with the reason in ``refusals`` where one is given).
    """

    group = version = plural = kind = ""
    verbs: tuple[str, ...] = ("create", "get", "list", "patch", "delete")
    refusals: dict[str, str] = {}

    def __init__(self) -> None:
        self.installed = True
        self.store: dict[tuple[str, str], Any] = {}

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def failure(self, code: int, reason: str, message: str, name: str | None = None) -> Reply:
        return Reply(
            code, status_body(code, reason, message, {"name": name, "group": self.group, "kind": self.plural})
        )

    def not_found(self, name: str) -> Reply:
        return self.failure(404, "NotFound", f'{self.plural}.{self.group} "{name}" not found', name)

    # --- hooks for the resource's controller (the lock is held) -------------------------------------

    def new_entry(self, obj: dict[str, Any]) -> StoredObject:
        return StoredObject(obj)

    def spec_errors(self, spec: dict[str, Any]) -> list[str]:
        """What is wrong with a spec (answered 422 Invalid); nothing by default."""
        return []

    def created(self, entry: Any) -> None:
        """Called after ``entry`` is stored by a create."""

    def observed(self, entry: Any) -> None:
        """Called before ``entry`` is answered to a GET."""

    def spec_changed(self, entry: Any) -> None:
        """Called after a patch changed ``entry``'s spec (and bumped its generation)."""

    def deleted(self, entry: Any) -> None:
        """Called after ``entry`` was removed from the store."""

    def reconcile(self) -> None:
        """Called every 50 ms by the server's controller thread."""

    def routes(self) -> list[Route]:
        return []

    def reset(self) -> None:
        """Forget every object and scenario setting (each test starts from nothing)."""
        for entry in list(self.store.values()):
            self.deleted(entry)
        self.store.clear()
        self.installed = True

    def close(self) -> None:
        """Release what the resource's controller started (processes, files)."""
        self.reset()

    # --- the verbs ---------------------------------------------------------------------------------

    def answer(self, verb: str, namespace: str, name: str | None, body: Any, content_type: str) -> Reply:
        if verb not in self.verbs:
            reason = self.refusals.get(verb, f"this fake does not {verb} {self.plural}")
            return self.failure(405, "MethodNotAllowed", reason, name)
        if verb == "create":
            return self._create(namespace, body)
        if verb == "list":
            return Reply(
                200,
                {
                    "kind": f"{self.kind}List",
                    "apiVersion": self.api_version,
                    "items": [e.obj for (ns, _), e in self.store.items() if ns == namespace],
                },
            )
        entry = self.store.get((namespace, name))
        if entry is None:
            return self.not_found(str(name))
        if verb == "get":
            self.observed(entry)
            return Reply(200, entry.obj)
        if verb == "patch":
            return self._patch(entry, str(name), body, content_type)
        if verb == "delete":
            del self.store[(namespace, name)]
            self.deleted(entry)
            return Reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        return self.failure(405, "MethodNotAllowed", f"this fake does not {verb} {self.plural}", name)

    def _invalid(self, name: str, spec: dict[str, Any]) -> Reply | None:
        errors = self.spec_errors(spec)
        if errors:
            return self.failure(422, "Invalid", f"{self.kind} {name!r} is invalid: {errors[:3]}", name)
        return None

    def _create(self, namespace: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not (body.get("metadata") or {}).get("name"):
            return self.failure(400, "BadRequest", f"a {self.kind} needs metadata.name")
        name = body["metadata"]["name"]
        if (namespace, name) in self.store:
            return self.failure(
                409, "AlreadyExists", f'{self.plural}.{self.group} "{name}" already exists', name
            )
        invalid = self._invalid(name, body.get("spec") or {})
        if invalid:
            return invalid
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            {
                "namespace": namespace,
                "generation": 1,
                "resourceVersion": "1",
                "uid": f"uid-{name}",
                "creationTimestamp": timestamp(),
            }
        )
        obj["status"] = {}
        entry = self.new_entry(obj)
        self.store[(namespace, name)] = entry
        self.created(entry)
        return Reply(201, entry.obj)

    def _patch(self, entry: StoredObject, name: str, body: Any, content_type: str) -> Reply:
        """A JSON merge patch, refused (409) when its ``resourceVersion`` is not the stored one."""
        if content_type.split(";")[0] != "application/merge-patch+json":
            return self.failure(
                415, "UnsupportedMediaType", f"this fake takes merge patches, not {content_type}"
            )
        wanted = ((body or {}).get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != entry.obj["metadata"]["resourceVersion"]:
            return self.failure(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version and try again",
                name,
            )
        patched = merge_patch(entry.obj, body)
        invalid = self._invalid(name, patched.get("spec") or {})
        if invalid:
            return invalid
        patched["status"] = entry.obj.get("status") or {}
        metadata = patched["metadata"]
        metadata["resourceVersion"] = str(int(entry.obj["metadata"]["resourceVersion"]) + 1)
        metadata["generation"] = entry.obj["metadata"]["generation"]
        spec_changed = patched.get("spec") != entry.obj.get("spec")
        if spec_changed:
            metadata["generation"] += 1
        entry.obj = patched
        if spec_changed:
            self.spec_changed(entry)
        return Reply(200, patched)
