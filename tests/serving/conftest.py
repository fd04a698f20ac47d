"""The real predictor (``python -m kfp_cicd.serving``) as a subprocess, for the hardening tests.

One server with small request limits is shared by the payload-limit and fuzzing modules (starting
one costs seconds); ``launch_predictor`` starts others where a test needs its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from kfp_cicd.components.deploy.local_target import free_port, log_tail, stop_server
from kfp_cicd.components.deploy.smoke import wait_until_ready

STARTUP_TIMEOUT = 180.0
LIMITED_MODEL = "limited"
LIMITED_MAX_BYTES = 200_000
LIMITED_MAX_ROWS = 100


@dataclass(frozen=True)
class RunningPredictor:
    """A started server: where it answers, its process and its log."""

    name: str
    base_url: str
    process: subprocess.Popen
    log_path: Path
    grpc_target: str | None = None

    @property
    def v1_url(self) -> str:
        return f"{self.base_url}/v1/models/{self.name}:predict"

    @property
    def v2_url(self) -> str:
        return f"{self.base_url}/v2/models/{self.name}/infer"

    def rss(self) -> int:
        """The server's resident memory in bytes."""
        return psutil.Process(self.process.pid).memory_info().rss

    def is_serving(self, row: dict[str, Any]) -> bool:
        """Alive, ready, and a valid V1 row still scores."""
        if self.process.poll() is not None:
            return False
        ready = requests.get(f"{self.base_url}/v2/models/{self.name}/ready", timeout=30)
        scored = requests.post(self.v1_url, json={"instances": [row]}, timeout=30)
        return ready.status_code == 200 and scored.status_code == 200


def start_predictor(
    model_dir: Path, name: str, log_path: Path, *extra: str, grpc_port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start the server on a free port (gRPC only on ``grpc_port``); returns the process and base URL."""
    port = free_port()
    grpc = ["--grpc-port", str(grpc_port)] if grpc_port else ["--no-grpc"]
    command = [
        sys.executable,
        "-m",
        "kfp_cicd.serving",
        "--model-dir",
        str(model_dir),
        "--model-name",
        name,
        "--http-port",
        str(port),
        *grpc,
        *extra,
    ]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return process, f"http://127.0.0.1:{port}"


@contextmanager
def launch_predictor(
    model_dir: Path, name: str, log_path: Path, *extra: str, grpc: bool = False
) -> Iterator[RunningPredictor]:
    """A ready server for the ``with`` block; always stopped afterwards."""
    grpc_port = free_port() if grpc else None
    process, base_url = start_predictor(model_dir, name, log_path, *extra, grpc_port=grpc_port)
    try:
        try:
            wait_until_ready(base_url, name, STARTUP_TIMEOUT, still_running=lambda: process.poll() is None)
        except Exception as exc:
            pytest.fail(f"{exc}\n{log_tail(log_path)}")
        yield RunningPredictor(
            name, base_url, process, log_path, f"127.0.0.1:{grpc_port}" if grpc_port else None
        )
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def limited_predictor(
    untrained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPredictor]:
    """The real server (REST and gRPC) with small limits: 200,000 bytes and 100 rows per request."""
    log_path = tmp_path_factory.mktemp("limited-predictor") / "server.log"
    with launch_predictor(
        untrained_model_dir,
        LIMITED_MODEL,
        log_path,
        "--max-request-bytes",
        str(LIMITED_MAX_BYTES),
        "--max-rows",
        str(LIMITED_MAX_ROWS),
        grpc=True,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def feature_rows() -> list[dict[str, Any]]:
    """Valid feature rows (no label), as JSON-ready dicts."""
    from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

    return generate_transactions(200, seed=5).drop(columns=[LABEL_COLUMN]).to_dict(orient="records")


@pytest.fixture(scope="session")
def model_metadata(limited_predictor: RunningPredictor) -> dict[str, Any]:
    """The served model's V2 metadata (its input tensors' names and datatypes)."""
    response = requests.get(f"{limited_predictor.base_url}/v2/models/{limited_predictor.name}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def predictor_launcher() -> Any:
    """:func:`launch_predictor`, for tests that need a server of their own (conftest is not importable)."""
    return launch_predictor
