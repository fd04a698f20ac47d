"""The launcher task: stage inputs on shared storage, run the PyTorchJob, hand the model back.

The launcher pod and every PyTorchJob pod mount the same ReadWriteMany PersistentVolumeClaim at the
same path. Under ``<mount>/kfp-cicd-runs/<job name>/`` the launcher stages the schema (and the
training data when it is a local file elsewhere); the pods keep their checkpoints there (so a
restarted pod resumes) and node 0 writes the MLflow pyfunc model and ``metrics.json``; the launcher
then copies the model into its own ``Model`` output artifact.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from kubernetes import client, config

from kfp_cicd.components.train.training import TrainingConfig
from kfp_cicd.components.train_pytorchjob.job_runner import PyTorchJobFailed, PyTorchJobRunner
from kfp_cicd.components.train_pytorchjob.manifest import PyTorchJobRequest, build_pytorchjob

log = logging.getLogger(__name__)
NODE_MODULE = "kfp_cicd.components.train.node_main"
RUNS_DIR = "kfp-cicd-runs"


@dataclass(frozen=True)
class RunLayout:
    """Where one job's files live on the shared volume."""

    root: Path

    @property
    def schema(self) -> Path:
        return self.root / "schema"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"


def default_job_name() -> str:
    return f"kfp-cicd-train-{uuid.uuid4().hex[:8]}"


def kube_api_client() -> client.ApiClient:
    """In-cluster credentials (the pipeline pod's service account), else the local kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def stage_train_data(train_data: str, mount_path: Path, layout: RunLayout) -> str:
    """A path every pod can read: URIs and files on the shared volume as they are, else a copy."""
    if "://" in train_data:
        return train_data
    source = Path(train_data).resolve()
    if source.is_relative_to(mount_path.resolve()):
        return str(source)
    if not source.is_file():
        raise FileNotFoundError(
            f"training data {train_data} does not exist; give a file on the shared "
            "volume, a gs:// or s3:// URI, or a file this task can read"
        )
    target = layout.root / "data" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return str(target)


def node_command(train_data: str, layout: RunLayout, training: TrainingConfig) -> tuple[str, ...]:
    """The command of every Master/Worker pod."""
    return (
        "python",
        "-m",
        NODE_MODULE,
        "--train-data",
        train_data,
        "--schema-dir",
        str(layout.schema),
        "--model-dir",
        str(layout.model),
        "--metrics-file",
        str(layout.metrics),
        "--config",
        training.to_json(),
    )


def train_on_pytorchjob(
    *,
    train_data: str,
    schema_dir: str,
    model_dir: str,
    training: TrainingConfig,
    request: PyTorchJobRequest,
    timeout_s: float,
    api_client: client.ApiClient | None = None,
    poll_seconds: float = 5.0,
    echo: Callable[[str], None] = print,
) -> dict[str, float]:
    """Run training as ``request`` (command filled in here); copy the model to ``model_dir``."""
    mount = Path(request.shared_mount_path)
    if not mount.is_dir():
        raise PyTorchJobFailed(
            f"shared volume is not mounted at {mount} in this task; mount PVC "
            f"{request.shared_pvc!r} there (kubernetes.mount_pvc on the launcher task)"
        )
    layout = RunLayout(mount / RUNS_DIR / request.name)
    if layout.root.exists():
        raise PyTorchJobFailed(
            f"{layout.root} exists already: job name {request.name!r} was used before; "
            "choose another job_name (or leave it empty for a generated one)"
        )
    layout.root.mkdir(parents=True)
    shutil.copytree(schema_dir, layout.schema)
    data = stage_train_data(train_data, mount, layout)
    if not training.checkpoint_dir:
        training = replace(training, checkpoint_dir=str(layout.checkpoints))
    manifest = build_pytorchjob(replace(request, command=node_command(data, layout, training)))
    runner = PyTorchJobRunner(api_client or kube_api_client(), request.namespace, poll_seconds, echo)
    runner.run(manifest, timeout_s)
    if not (layout.model / "MLmodel").is_file():
        raise PyTorchJobFailed(f"PyTorchJob {request.name} succeeded but left no model at {layout.model}")
    shutil.copytree(layout.model, model_dir, dirs_exist_ok=True)
    echo(f"model copied from {layout.model} to {model_dir}")
    return json.loads(layout.metrics.read_text())
