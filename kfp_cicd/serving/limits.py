"""How much one request may ask of the predictor: body size and rows (no kserve import here).

``python -m kfp_cicd.serving --max-request-bytes N --max-rows N`` (or the environment variables
below, e.g. set on the InferenceService's container) configures them; :mod:`kfp_cicd.serving.hardening`
enforces them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from kfp_cicd.errors import DeploymentError

MAX_REQUEST_BYTES_ENV = "KFP_CICD_MAX_REQUEST_BYTES"
MAX_ROWS_ENV = "KFP_CICD_MAX_ROWS"
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024  # KServe's own default gRPC message limit
DEFAULT_MAX_ROWS = 10_000


@dataclass(frozen=True)
class RequestLimits:
    """The largest request body (bytes) and the most rows one request may carry."""

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_rows: int = DEFAULT_MAX_ROWS

    def __post_init__(self) -> None:
        for label, value in (("max request bytes", self.max_request_bytes), ("max rows", self.max_rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DeploymentError(f"{label} must be a positive integer, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RequestLimits:
        """Limits from ``$KFP_CICD_MAX_REQUEST_BYTES`` / ``$KFP_CICD_MAX_ROWS`` (defaults where unset)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field, name, default in (
            ("max_request_bytes", MAX_REQUEST_BYTES_ENV, DEFAULT_MAX_REQUEST_BYTES),
            ("max_rows", MAX_ROWS_ENV, DEFAULT_MAX_ROWS),
        ):
            text = environ.get(name, "").strip()
            try:
                values[field] = int(text) if text else default
            except ValueError:
                raise DeploymentError(f"${name} is {text!r}, not a whole number") from None
        return cls(**values)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-request-bytes`` / ``--max-rows``: the image's entrypoint and ``kfp-cicd serve`` share them."""
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=None,
        help="refuse request bodies larger than this with HTTP 413 (and gRPC messages "
        f"larger than this); default: ${MAX_REQUEST_BYTES_ENV} or "
        f"{DEFAULT_MAX_REQUEST_BYTES}",
    )
    parser.add_argument(
        "--max-rows",
        type=int,
        default=None,
        help="refuse requests with more rows than this with HTTP 400; default: "
        f"${MAX_ROWS_ENV} or {DEFAULT_MAX_ROWS}",
    )


def request_limits(args: argparse.Namespace) -> RequestLimits:
    """The limits the flags give, the environment's where a flag is absent."""
    flags = {"max_request_bytes": args.max_request_bytes, "max_rows": args.max_rows}
    return dataclasses.replace(
        RequestLimits.from_env(), **{name: value for name, value in flags.items() if value is not None}
    )
