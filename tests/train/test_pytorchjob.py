"""The PyTorchJob launcher through the real kubernetes client against ``FakeKubernetesApiServer``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import mlflow
import pandas as pd
import pytest
import yaml

from kfp_cicd.components.train.training import TrainingConfig
from kfp_cicd.components.train_pytorchjob.job_runner import PyTorchJobFailed
from kfp_cicd.components.train_pytorchjob.launcher import train_on_pytorchjob
from kfp_cicd.components.train_pytorchjob.manifest import (
    InvalidPyTorchJob,
    PyTorchJobRequest,
    build_pytorchjob,
    check_pytorchjob,
)


def make_request(mount: Path, name: str = "train-test", **overrides) -> PyTorchJobRequest:
    values = {
        "name": name,
        "namespace": "ml",
        "image": "ghcr.io/kfp-cicd/kfp-cicd-runtime:gpu",
        "command": ("python", "-m", "x"),
        "shared_pvc": "shared-data",
        "shared_mount_path": str(mount),
        "workers": 1,
        "gpus_per_worker": 0,
        "cpu": "1",
        "memory": "2Gi",
        **overrides,
    }
    return PyTorchJobRequest(**values)


@pytest.fixture
def schema_dir(tmp_path: Path, feature_spec) -> Path:
    directory = tmp_path / "schema"
    directory.mkdir()
    (directory / "features.json").write_text(json.dumps(feature_spec.to_dict()))
    return directory


@pytest.fixture(scope="module")
def pytorchjob_schema(shared_dir: Path) -> dict:
    path = shared_dir / "crds" / "kubeflow.org_pytorchjobs.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def test_manifest_validates_against_the_real_crd(pytorchjob_schema: dict, tmp_path: Path) -> None:
    manifest = build_pytorchjob(
        make_request(tmp_path, workers=3, gpus_per_worker=4, node_selector=(("gpu", "h100"),))
    )
    jsonschema.Draft7Validator(pytorchjob_schema).validate(manifest)
    spec = manifest["spec"]
    assert spec["nprocPerNode"] == "4"
    assert spec["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert spec["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3
    pod = spec["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["containers"][0]["name"] == "pytorch"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shared-data"
    assert pod["nodeSelector"] == {"gpu": "h100"}


def test_own_checks_catch_what_the_crd_schema_lets_through(pytorchjob_schema: dict, tmp_path: Path) -> None:
    manifest = build_pytorchjob(make_request(tmp_path))
    replicas = manifest["spec"]["pytorchReplicaSpecs"]
    replicas["Workers"] = replicas.pop("Worker")  # misspelled replica type
    replicas["Master"]["restartPolicy"] = "Sometimes"
    manifest["spec"]["runPolicy"]["cleanPodPolicy"] = "Everything"
    manifest["spec"]["ttlSecondsAfterFinished"] = 60  # belongs in runPolicy
    jsonschema.Draft7Validator(pytorchjob_schema).validate(manifest)  # the schema accepts all of it
    with pytest.raises(InvalidPyTorchJob) as error:
        check_pytorchjob(manifest)
    for expected in ("'Workers'", "'Sometimes'", "'Everything'", "'ttlSecondsAfterFinished'"):
        assert expected in str(error.value)


def test_bad_requests_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidPyTorchJob, match="shared_pvc is empty") as error:
        make_request(tmp_path, name="Bad_Name", shared_pvc="", restart_policy="Sometimes")
    assert "name 'Bad_Name'" in str(error.value) and "restart_policy 'Sometimes'" in str(error.value)


def test_a_two_node_job_trains_and_hands_the_model_back(
    fake_kubernetes, tmp_path: Path, schema_dir: Path, small_dataset
) -> None:
    mount, lines = tmp_path / "shared", []
    mount.mkdir()
    metrics = train_on_pytorchjob(
        train_data=str(small_dataset.train),
        schema_dir=str(schema_dir),
        model_dir=str(tmp_path / "model"),
        training=TrainingConfig(epochs=2, num_processes=1, batch_size=256, validation_folds=1),
        request=make_request(mount, name="two-nodes"),
        timeout_s=300,
        api_client=fake_kubernetes.api_client(),
        poll_seconds=0.5,
        echo=lines.append,
    )
    assert metrics["world_size"] == 2, "Master + 1 Worker, one process each"
    assert any("Running" in line for line in lines) and any("Succeeded" in line for line in lines)
    assert any("[two-nodes-master-0]" in line and "epoch 2/2" in line for line in lines), (
        "the master's progress lines must reach the task log"
    )
    created = fake_kubernetes.created_bodies()[0]
    command = created["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["python", "-m", "kfp_cicd.components.train.node_main"]
    holdout = pd.read_csv(small_dataset.holdout)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    predictions = loaded.predict(holdout.drop(columns=["is_fraud"]))
    assert predictions["probability"].between(0, 1).all()
    history = json.loads((tmp_path / "model" / "training_history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["val_loss"] > 0 for h in history), "one validation split, early stopping watching it"
    assert fake_kubernetes.deleted() == [], "a succeeded job is left for inspection"


def test_a_failed_job_fails_the_task_with_its_reason(
    fake_kubernetes, tmp_path: Path, schema_dir: Path, small_dataset
) -> None:
    fake_kubernetes.mode = "script"
    fake_kubernetes.script = [
        ("Running", "PyTorchJobRunning", "running"),
        (
            "Restarting",
            "PyTorchJobRestarting",
            "PyTorchJob ml/flaky is restarting because 1 Worker replica(s) failed.",
        ),
        ("Failed", "PyTorchJobFailed", "PyTorchJob ml/flaky is failed because 1 Worker replica(s) failed."),
    ]
    lines: list[str] = []
    (tmp_path / "shared").mkdir()
    with pytest.raises(
        PyTorchJobFailed, match="PyTorchJobFailed: PyTorchJob ml/flaky is failed because 1 Worker"
    ):
        train_on_pytorchjob(
            train_data=str(small_dataset.train),
            schema_dir=str(schema_dir),
            model_dir=str(tmp_path / "model"),
            training=TrainingConfig(),
            request=make_request(tmp_path / "shared", name="flaky"),
            timeout_s=60,
            api_client=fake_kubernetes.api_client(),
            poll_seconds=0.05,
            echo=lines.append,
        )
    assert any("Restarting (PyTorchJobRestarting)" in line for line in lines)
    assert not (tmp_path / "model").exists()


def test_a_job_past_its_timeout_is_deleted(
    fake_kubernetes, tmp_path: Path, schema_dir: Path, small_dataset
) -> None:
    fake_kubernetes.mode = "hang"
    (tmp_path / "shared").mkdir()
    with pytest.raises(PyTorchJobFailed, match="did not finish within 1s; it was deleted"):
        train_on_pytorchjob(
            train_data=str(small_dataset.train),
            schema_dir=str(schema_dir),
            model_dir=str(tmp_path / "model"),
            training=TrainingConfig(),
            request=make_request(tmp_path / "shared", name="slow"),
            timeout_s=1,
            api_client=fake_kubernetes.api_client(),
            poll_seconds=0.1,
            echo=print,
        )
    assert fake_kubernetes.deleted() == ["slow"]


LAUNCHER_SCRIPT = """
import sys
from kubernetes import client
from kfp_cicd.components.train.training import TrainingConfig
from kfp_cicd.components.train_pytorchjob.launcher import train_on_pytorchjob
from kfp_cicd.components.train_pytorchjob.manifest import PyTorchJobRequest
url, mount, schema, data, model = sys.argv[1:]
configuration = client.Configuration()
configuration.host = url
request = PyTorchJobRequest(name="cancel-me", namespace="ml", image="img", command=(),
                            shared_pvc="shared-data", shared_mount_path=mount, gpus_per_worker=0)
train_on_pytorchjob(train_data=data, schema_dir=schema, model_dir=model, training=TrainingConfig(),
                    request=request, timeout_s=600, api_client=client.ApiClient(configuration),
                    poll_seconds=0.1)
"""


def test_cancelling_the_task_deletes_the_job(
    fake_kubernetes, tmp_path: Path, schema_dir: Path, small_dataset
) -> None:
    fake_kubernetes.mode = "hang"
    (tmp_path / "shared").mkdir()
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LAUNCHER_SCRIPT,
            fake_kubernetes.url,
            str(tmp_path / "shared"),
            str(schema_dir),
            str(small_dataset.train),
            str(tmp_path / "model"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not fake_kubernetes.jobs and time.monotonic() < deadline and launcher.poll() is None:
            time.sleep(0.2)
        assert fake_kubernetes.jobs, "the launcher never created its job"
        launcher.send_signal(signal.SIGTERM)  # what Kubeflow does when a run is cancelled
        output, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode != 0
    assert "was cancelled; PyTorchJob ml/cancel-me was deleted" in output
    assert fake_kubernetes.deleted() == ["cancel-me"]
