"""Start KServe's ModelServer with the pyfunc predictor: the serving image's entrypoint.

``python -m kfp_cicd.serving`` (the ClusterServingRuntime's command), the local deployment target
and ``kfp-cicd serve`` all end up in :func:`serve`, so a model behaves the same on a laptop, in a
pipeline's smoke test and on the cluster.
"""

from __future__ import annotations

import gc
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kfp_cicd.errors import DeploymentError
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.serving.limits import RequestLimits

log = logging.getLogger(__name__)
DEFAULT_MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts the model
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081


@contextmanager
def _argv_hidden_from_kserve() -> Iterator[None]:
    """Import kserve without it seeing our command line.

    ``kserve.model_server`` runs ``argparse.parse_known_args()`` over ``sys.argv`` at import time and
    would take abbreviations of its own flags (``--model``, ``--http``) from our arguments.
    """
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def quiet_request_logging() -> None:
    """No log line or warning per request: kserve 0.21 + FastAPI emit a deprecation warning and
    access/latency lines for every request (tens of MB per minute under load, and CPU)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)


def check_serve_args(
    model_dir: str | Path, model_name: str, http_port: int, grpc_port: int, enable_grpc: bool
) -> Path:
    """Refuse arguments the server would only fail on later, with a message saying what to change."""
    check_model_name(model_name, "model name")  # it is part of the URL: /v2/models/<name>/infer
    for label, port in (("HTTP", http_port), ("gRPC", grpc_port)):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise DeploymentError(f"{label} port {port!r} is not a port number (1-65535)")
    if enable_grpc and http_port == grpc_port:
        raise DeploymentError(
            f"HTTP and gRPC ports are both {http_port}; give them different ports or disable gRPC"
        )
    path = Path(model_dir)
    if not (path / "MLmodel").is_file():
        raise DeploymentError(
            f"{path} is not an MLflow model directory (no MLmodel file); pass the "
            "directory save_classifier wrote (KServe mounts it at /mnt/models)"
        )
    return path


def serve(
    model_dir: str,
    *,
    model_name: str,
    http_port: int = DEFAULT_HTTP_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
    enable_grpc: bool = True,
    expected_digest: str | None = None,
    model_version: str = "",
    limits: RequestLimits | None = None,
) -> None:
    """Load the model at ``model_dir`` and serve it as ``model_name`` until SIGTERM/SIGINT.

    REST (V1 and V2) listens on ``http_port`` on all interfaces (kserve hard-codes 0.0.0.0), the V2
    gRPC service on ``grpc_port`` unless ``enable_grpc`` is false. The model's files are verified
    against their checksums (and ``expected_digest``, the registry's, when given) before loading.
    ``model_version`` labels the Prometheus metrics on ``/metrics``. ``limits`` (default: from
    ``$KFP_CICD_MAX_REQUEST_BYTES`` / ``$KFP_CICD_MAX_ROWS``) bound each request's body and rows;
    see :mod:`kfp_cicd.serving.hardening` for what else the server refuses.
    Raises DeploymentError when the arguments are wrong, the files do not verify or the model does
    not load; blocks otherwise.
    """
    path = check_serve_args(model_dir, model_name, http_port, grpc_port, enable_grpc)
    limits = limits or RequestLimits.from_env()
    with _argv_hidden_from_kserve():
        from kserve import ModelServer

        from kfp_cicd.serving.hardening import harden
        from kfp_cicd.serving.predictor import PyfuncPredictor
    predictor = PyfuncPredictor(
        model_name, path, expected_digest=expected_digest, model_version=model_version
    )
    predictor.load()
    # Everything loaded so far (torch, mlflow, the model) lives as long as the process: keep the
    # cyclic GC from rescanning it in every full collection, and at exit (seconds otherwise).
    gc.freeze()
    log.info(
        "serving %s on HTTP port %d%s; at most %d bytes and %d rows per request",
        model_name,
        http_port,
        f" and gRPC port {grpc_port}" if enable_grpc else " (gRPC disabled)",
        limits.max_request_bytes,
        limits.max_rows,
    )
    quiet_request_logging()
    server = ModelServer(
        http_port=http_port,
        grpc_port=grpc_port,
        enable_grpc=enable_grpc,
        workers=1,
        enable_latency_logging=False,
    )
    harden(server, limits)
    server.start([predictor])
