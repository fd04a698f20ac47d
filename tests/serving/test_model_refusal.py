"""A damaged or tampered model is refused at load with an error naming the file, and a new
revision that refuses its model never becomes ready while the running one keeps serving.

KServe rolls a new model version out as a new revision (a new predictor process, see
``components/deploy``); there is no reload into a running server, and the repository API's
load/unload is disabled (``test_payload_limits.py``). So "serving keeps the previous version" means:
the new process exits non-zero with the reason and never answers ready, the old one serves on.
"""

from __future__ import annotations

import importlib.util
import json
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from kfp_cicd.errors import DeploymentError, KfpCicdError
from kfp_cicd.model.integrity import ModelIntegrityError, verify_model
from kfp_cicd.serving.model_source import resolve_model_source
from kfp_cicd.serving.predictor import PyfuncPredictor


@pytest.fixture
def model_copy(untrained_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(untrained_model_dir, tmp_path / "model"))


def _refused(model_dir: Path, match: str) -> None:
    with pytest.raises(DeploymentError, match=match):
        PyfuncPredictor("m", model_dir).load()


def test_a_corrupted_skops_preprocessor_is_refused(model_copy: Path) -> None:
    skops = model_copy / "artifacts" / "preprocessor.skops"
    data = bytearray(skops.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the middle of the zip
    skops.write_bytes(bytes(data))
    _refused(model_copy, r"changed \['artifacts/preprocessor.skops'\]")


def test_a_truncated_network_file_is_refused_naming_it(model_copy: Path) -> None:
    network = model_copy / "artifacts" / "network.pt2"
    network.write_bytes(network.read_bytes()[: network.stat().st_size // 2])
    _refused(model_copy, r"changed \['artifacts/network.pt2'\]")


@pytest.mark.parametrize("edit", ["hash changed", "not json", "deleted", "files not a mapping"])
def test_an_edited_checksum_file_is_refused(model_copy: Path, edit: str) -> None:
    manifest = model_copy / "checksums.json"
    payload = json.loads(manifest.read_text())
    if edit == "hash changed":
        payload["files"]["MLmodel"] = "0" * 64
        manifest.write_text(json.dumps(payload))
        match = r"changed \['MLmodel'\]"
    elif edit == "not json":
        manifest.write_text(manifest.read_text()[:40])
        match = "checksums.json is unreadable"
    elif edit == "deleted":
        manifest.unlink()
        match = "has no checksums.json"
    else:
        payload["files"] = ["MLmodel"]
        manifest.write_text(json.dumps(payload))
        match = "is not a mapping"
    _refused(model_copy, match)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname", "artifacts/../../outside.json"])
def test_recorded_paths_leaving_the_model_directory_are_refused(model_copy: Path, name: str) -> None:
    (model_copy.parent / "outside.json").write_text("{}")
    manifest = model_copy / "checksums.json"
    payload = json.loads(manifest.read_text())
    payload["files"][name] = "0" * 64
    manifest.write_text(json.dumps(payload))
    with pytest.raises(ModelIntegrityError, match="records files outside its directory"):
        verify_model(model_copy)


def test_a_symlink_to_an_identical_file_outside_the_directory_is_refused(model_copy: Path) -> None:
    """Same bytes, so the checksum matches, but what loads could change after the check."""
    config = model_copy / "artifacts" / "config.json"
    outside = model_copy.parent / "config.json"
    shutil.copyfile(config, outside)
    config.unlink()
    config.symlink_to(outside)
    _refused(model_copy, r"outside its directory \['artifacts/config.json'\]")


def _plant_bytecode(source: Path, extra_code: str) -> Path:
    """A __pycache__ entry for ``source`` that Python would trust (its header matches the source)."""
    from importlib._bootstrap_external import _code_to_timestamp_pyc

    stat = source.stat()
    code = compile(source.read_text() + extra_code, str(source), "exec")
    cache = Path(importlib.util.cache_from_source(str(source)))
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(_code_to_timestamp_pyc(code, stat.st_mtime, stat.st_size))
    return cache


def test_planted_bytecode_beside_the_model_code_is_refused(model_copy: Path, tmp_path: Path) -> None:
    """``__pycache__`` is not in the checksums; a forged cache would run instead of the verified source."""
    marker = tmp_path / "ran"
    cache = _plant_bytecode(model_copy / "pyfunc_model.py", f"\nopen({str(marker)!r}, 'w').close()\n")
    _refused(model_copy, r"compiled bytecode \['__pycache__/" + cache.name.replace(".", r"\.") + r"'\]")
    assert not marker.exists(), "the planted code ran"
    # The cache Python itself writes (the source compiled as it is) is accepted.
    cache.unlink()
    py_compile.compile(str(model_copy / "pyfunc_model.py"), cfile=str(cache), doraise=True)
    assert verify_model(model_copy).startswith("sha256:")


def test_serve_loads_only_from_the_registry_or_a_local_directory(tmp_path: Path) -> None:
    for uri in ("s3://bucket/models/fraud", "https://evil.example/model", "gs://b/m", "file:///mnt/models"):
        with pytest.raises(KfpCicdError, match="loads models only from"):
            resolve_model_source(uri, tracking_uri="sqlite:///unused.db")
    with pytest.raises(KfpCicdError, match="give --tracking-uri"):
        resolve_model_source("models:/fraud@champion", tracking_uri=None)


@pytest.mark.slow
def test_a_new_revision_with_a_corrupt_model_never_becomes_ready_while_the_old_one_serves(
    untrained_model_dir: Path,
    model_copy: Path,
    tmp_path: Path,
    predictor_launcher: Any,
    feature_rows: list[dict[str, Any]],
) -> None:
    network = model_copy / "artifacts" / "network.pt2"
    network.write_bytes(network.read_bytes()[:-100])  # v2 arrived truncated
    with predictor_launcher(untrained_model_dir, "fraud", tmp_path / "v1.log") as v1:
        assert v1.is_serving(feature_rows[0])
        from kfp_cicd.components.deploy.local_target import free_port

        port = free_port()
        v2 = subprocess.run(
            [
                sys.executable,
                "-m",
                "kfp_cicd.serving",
                "--model-dir",
                str(model_copy),
                "--model-name",
                "fraud",
                "--http-port",
                str(port),
                "--no-grpc",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert v2.returncode == 2
        assert "refusing to serve" in v2.stderr and "artifacts/network.pt2" in v2.stderr
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/v2/models/fraud/ready", timeout=5)
        assert v1.is_serving(feature_rows[0]), "the old revision must keep serving"


def test_a_registry_digest_that_does_not_match_the_files_is_refused(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    """``kfp-cicd serve models:/…`` takes the digest from the registry: a version without one is
    refused, and one whose digest differs from the downloaded files never loads."""
    from kfp_cicd.registry.aliases import CANDIDATE
    from kfp_cicd.registry.client import client_for
    from kfp_cicd.registry.registration import register_model_version
    from kfp_cicd.registry.tags import MODEL_DIGEST_TAG

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registered = register_model_version(untrained_model_dir, tracking_uri=tracking_uri, model_name="fraud")
    source = resolve_model_source(f"models:/fraud/{registered.version}", tracking_uri=tracking_uri)
    assert source.expected_digest == verify_model(untrained_model_dir)
    assert PyfuncPredictor("fraud", source.model_dir, expected_digest=source.expected_digest).load()

    client = client_for(tracking_uri)
    client.set_model_version_tag("fraud", registered.version, MODEL_DIGEST_TAG, "sha256:" + "1" * 64)
    swapped = resolve_model_source(f"models:/fraud@{CANDIDATE}", tracking_uri=tracking_uri)
    with pytest.raises(DeploymentError, match="was swapped"):
        PyfuncPredictor("fraud", swapped.model_dir, expected_digest=swapped.expected_digest).load()

    client.delete_model_version_tag("fraud", registered.version, MODEL_DIGEST_TAG)
    with pytest.raises(DeploymentError, match="has no 'model_digest' tag"):
        resolve_model_source(f"models:/fraud/{registered.version}", tracking_uri=tracking_uri)
