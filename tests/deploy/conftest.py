"""Fixtures of the deploy tests: the FAKE Kubernetes API server with KServe installed, a real
predictor, a real (SQLite) MLflow registry and a holdout file.

No cluster exists here; ``FakeKubernetesApiServer`` (``tests/support/fake_kubernetes_api.py``,
shared with the training tests) stands in for it. See that module for what the fake does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_kserve import require_inference_service_crd
from fake_kubernetes_api import FakeKubernetesApiServer

from kfp_cicd.components.deploy.local_target import free_port, start_server, stop_server, wait_until_ready
from kfp_cicd.data.tables import write_table
from kfp_cicd.registry.client import client_for

MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def fake_kubernetes() -> Iterator[FakeKubernetesApiServer]:
    """One fake API server per test module (reset before each test by the tests' own fixture).

    Skipped when ../shared/crds is absent: the fake checks every InferenceService body against the
    CRD and must not accept what it cannot check.
    """
    require_inference_service_crd()
    with FakeKubernetesApiServer(reconcile_delay=0.2) as fake:
        yield fake


@pytest.fixture(scope="module")
def predictor_url(untrained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real predictor serving the model as the InferenceService name (what KServe's pod does)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("predictor") / "predictor.log"
    process = start_server(untrained_model_dir, MODEL, port, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, MODEL, 180, still_running=lambda: process.poll() is None)
        yield url
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite registry per module (creating its tables costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('registry')}/mlflow.db"


@pytest.fixture
def tracking_uri(shared_registry: str) -> str:
    """The registry with no versions and no aliases of MODEL (each test starts from nothing)."""
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        client_for(shared_registry).delete_registered_model(MODEL)
    return shared_registry


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    from kfp_cicd.data.synthetic import generate_transactions

    path = tmp_path_factory.mktemp("holdout") / "holdout.csv"
    write_table(generate_transactions(20, seed=5), path)
    return str(path)
