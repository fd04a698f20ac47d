"""Deploy a registered model version to a predictor on loopback, smoke-test it, then promote it.

The local target proves that exactly the files in the registry serve correctly with the same server
the cluster runs (``python -m kfp_cicd.serving``), without a cluster: download the version, verify
its files against the digest the registry recorded, check it loads, start the predictor in a
subprocess on a free port, wait until it is ready, run the V1/V2 smoke test, stop the server
(always), and only then move ``champion`` to the version (the old champion becomes ``previous``).
Any failure raises :class:`DeploymentError` and leaves the registry exactly as it was.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_cicd.components.deploy.inference_service import service_name_for
from kfp_cicd.components.deploy.smoke import SmokeResult, is_ready, smoke_test, wait_until_ready
from kfp_cicd.errors import DeploymentError
from kfp_cicd.model.integrity import ModelIntegrityError, verify_model
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.registry.aliases import CHAMPION, check_alias, promote, set_alias
from kfp_cicd.registry.client import download_version
from kfp_cicd.registry.digest import registered_digest

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class LocalDeployment:
    """A version that served and passed its smoke test locally, and the alias now pointing at it.

    ``endpoint`` is where the predictor answered during the check; the server is stopped afterwards
    (run ``python -m kfp_cicd.serving`` to serve the model for real).
    """

    model_name: str
    version: str
    served_name: str
    model_dir: Path
    endpoint: str
    smoke: SmokeResult
    promoted_alias: str
    log_path: Path

    def summary(self) -> str:
        """A few lines for logs and the pipeline UI."""
        return (
            f"local deployment of {self.model_name} version {self.version} passed its smoke test at "
            f"{self.endpoint} (server stopped afterwards): {self.smoke.summary()}; "
            f"alias {self.promoted_alias!r} now points at version {self.version}"
        )


def free_port() -> int:
    """A TCP port no one listens on now (the predictor binds it on all interfaces, so probe those)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the server's log, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(server log is empty)"


def check_model_loads(model_dir: Path) -> dict[str, Any]:
    """Load the pyfunc model in-process (fast, clear errors) and return its config."""
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(str(model_dir))
        return dict(model.unwrap_python_model().config)
    except Exception as exc:  # the model's own loading code may fail in any way
        raise DeploymentError(
            f"the model in {model_dir} does not load ({type(exc).__name__}: {exc}); "
            "it was not deployed and the registry is unchanged"
        ) from exc


def verify_download(model_dir: Path, expected_digest: str, model_name: str, version: str) -> None:
    """The downloaded files must match their checksums and the digest the registry recorded."""
    try:
        verify_model(model_dir, expected_digest)
    except ModelIntegrityError as exc:
        raise DeploymentError(
            f"{model_name} version {version} failed its integrity check ({exc}); it was "
            "not deployed and the registry is unchanged"
        ) from exc


def feature_rows(rows: list[dict[str, Any]], label: str | None) -> list[dict[str, Any]]:
    """The rows without the label column (holdout rows carry it; the model must not receive it)."""
    return [{key: value for key, value in row.items() if key != label} for row in rows]


def start_server(
    model_dir: Path,
    served_name: str,
    port: int,
    log_path: Path,
    expected_digest: str | None = None,
    model_version: str = "",
) -> subprocess.Popen:
    """Start ``python -m kfp_cicd.serving`` on ``port`` (REST only), logging to ``log_path``."""
    command = [
        sys.executable,
        "-m",
        "kfp_cicd.serving",
        "--model-dir",
        str(model_dir),
        "--model-name",
        served_name,
        "--http-port",
        str(port),
        "--no-grpc",
    ]
    if expected_digest:
        command += ["--expected-digest", expected_digest]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MODEL_VERSION": model_version}
    log.info("starting the predictor: %s", " ".join(command))
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(log_path.parent),
        )


def stop_server(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL if the server has not exited after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("the predictor (pid %d) ignored SIGTERM for %.0f s; killing it", process.pid, grace)
            process.kill()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)


def _wait_for_server(
    process: subprocess.Popen, base_url: str, served_name: str, timeout: float, log_path: Path
) -> None:
    """Wait for readiness; DeploymentError with the log tail if the server exits or times out."""
    try:
        wait_until_ready(base_url, served_name, timeout, still_running=lambda: process.poll() is None)
    except DeploymentError as exc:
        status = process.poll()
        exited = f" (the server exited with status {status})" if status is not None else ""
        raise DeploymentError(f"{exc}{exited}; last lines of {log_path}:\n{log_tail(log_path)}") from exc


def _serve_and_smoke_test(
    model_dir: Path,
    served_name: str,
    rows: list[dict[str, Any]],
    work_dir: Path,
    startup_timeout: float,
    expected_digest: str | None = None,
) -> tuple[str, SmokeResult, Path]:
    """Run the predictor only for the smoke test; it is stopped whatever happens."""
    port = free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    log_path = work_dir / "predictor.log"
    process = start_server(model_dir, served_name, port, log_path, expected_digest)
    try:
        _wait_for_server(process, base_url, served_name, startup_timeout, log_path)
        try:
            result = smoke_test(base_url, served_name, rows, timeout=REQUEST_TIMEOUT_SECONDS)
        except DeploymentError as exc:
            raise DeploymentError(
                f"smoke test failed: {exc}\nlast lines of {log_path}:\n{log_tail(log_path)}"
            ) from exc
    finally:
        stop_server(process)
    if is_ready(base_url, served_name, timeout=0.5):
        raise DeploymentError(
            f"something still answers at {base_url} after the predictor stopped; "
            "another process may have taken the port, so the smoke test proves nothing"
        )
    return base_url, result, log_path


def deploy_locally(
    *,
    tracking_uri: str,
    model_name: str,
    version: str,
    smoke_rows: list[dict],
    work_dir: str | Path,
    promote_alias: str = CHAMPION,
    startup_timeout: float = 120,
) -> LocalDeployment:
    """Serve ``model_name`` version ``version`` from the registry locally, smoke-test, promote.

    ``smoke_rows`` are rows of feature values (a label column, as in holdout data, is dropped using
    the model's config). ``work_dir`` receives the downloaded model and the server log. The alias
    ``promote_alias`` moves to ``version`` only after the smoke test passed.
    """
    check_model_name(model_name)
    check_alias(promote_alias)
    if not smoke_rows:
        raise DeploymentError("no smoke rows given: pass a few rows of feature values (e.g. holdout rows)")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    expected_digest = registered_digest(tracking_uri, model_name, version)
    model_dir = download_version(tracking_uri, model_name, version, work_dir / "model")
    verify_download(model_dir, expected_digest, model_name, version)
    config = check_model_loads(model_dir)
    served_name = service_name_for(model_name)
    rows = feature_rows(smoke_rows, config.get("label"))
    base_url, result, log_path = _serve_and_smoke_test(
        model_dir, served_name, rows, work_dir, startup_timeout, expected_digest
    )
    if promote_alias == CHAMPION:
        promote(tracking_uri, model_name, version)  # the old champion becomes "previous"
    else:
        set_alias(tracking_uri, model_name, promote_alias, version)
    log.info(
        "%s version %s passed the local smoke test; alias %s moved to it", model_name, version, promote_alias
    )
    return LocalDeployment(
        model_name=model_name,
        version=str(version),
        served_name=served_name,
        model_dir=model_dir,
        endpoint=base_url,
        smoke=result,
        promoted_alias=promote_alias,
        log_path=log_path,
    )
