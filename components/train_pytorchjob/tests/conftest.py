"""Fixtures of train_pytorchjob's component tests.

No cluster exists here: ``FakeKubernetesApiServer`` (``tests/support/fake_kubernetes_api.py``, the one
the training tests use) plays the Kubernetes API with the Training Operator; in its ``run`` mode every
PyTorchJob replica runs its container command as a local process, so the training is real. The
component finds the server the way it finds a real one outside a cluster: through a kubeconfig
(``KUBECONFIG``), which kfp.local's task subprocess inherits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from component_testing import write_schema_dir
from fake_kubernetes_api import FakeKubernetesApiServer

from kfp_cicd.data.synthetic import DatasetFiles, generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("pytorchjob"), rows=2000, seed=1)


@pytest.fixture(scope="session")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_schema_dir(tmp_path_factory.mktemp("pytorchjob-schema") / "schema")


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetesApiServer]:
    """The fake API server, reachable through a kubeconfig named by KUBECONFIG."""
    (tmp_path / "pod-logs").mkdir()
    with FakeKubernetesApiServer(log_dir=tmp_path / "pod-logs") as server:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
                    "users": [{"name": "fake", "user": {"token": "test-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        # kubernetes reads KUBECONFIG once, at import; this process imported it already.
        monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield server


@pytest.fixture
def job_settings(tmp_path: Path) -> dict[str, object]:
    """A one-node CPU job (Master only) training for two epochs; the shared volume is a local folder."""
    (tmp_path / "shared").mkdir()
    return {
        "worker_image": "ghcr.io/kfp-cicd/kfp-cicd-runtime:test",
        "shared_pvc": "shared-data",
        "shared_mount_path": str(tmp_path / "shared"),
        "namespace": "ml",
        "workers": 0,
        "gpus_per_worker": 0,
        "cpu": "1",
        "memory": "2Gi",
        "timeout_seconds": 300,
        "epochs": 2,
        "batch_size": 256,
        "num_processes": 1,
        "validation_folds": 1,
        "seed": 1,
    }
