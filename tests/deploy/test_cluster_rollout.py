"""The kubernetes target end to end: the real kubernetes client, a fake API server, real predictors.

``FakeKubernetesApiServer`` (tests/support/fake_kubernetes_api.py) stores InferenceServices and moves
their status like KServe; its ingress forwards to a REAL ``python -m kfp_cicd.serving`` process
serving the model, so every smoke request is a real inference. The MLflow registry is real (SQLite per test).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from kfp_cicd.components.deploy.cluster_target import PROMOTED, ROLLED_BACK, RolloutFailed, RolloutSettings
from kfp_cicd.components.deploy.deployment import ClusterOptions, DeployOutcome, run_deploy_task
from kfp_cicd.components.deploy.kube_api import (
    ClusterConnection,
    ClusterUnreachable,
    ForbiddenByRbac,
    InferenceServiceCrdMissing,
)
from kfp_cicd.components.deploy.local_target import free_port
from kfp_cicd.components.deploy.service_check import CheckPolicy
from kfp_cicd.errors import DeploymentError
from kfp_cicd.registry.aliases import CHAMPION, PREVIOUS
from kfp_cicd.registry.client import client_for, require_version, storage_location, version_for_alias
from kfp_cicd.registry.registration import register_model_version

MODEL = "fraud-detector"
NAMESPACE = "risk"


@pytest.fixture
def fake(fake_kubernetes: Any) -> Any:
    fake_kubernetes.reset()
    return fake_kubernetes


def _register(tracking_uri: str, model_dir: Path) -> str:
    return register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version


def _deploy(
    fake: Any,
    tracking_uri: str,
    version: str,
    eval_data: str,
    tmp_path: Path,
    *,
    mode: str = "Serverless",
    ready_timeout: float = 20.0,
    host: str | None = None,
) -> DeployOutcome:
    options = ClusterOptions(
        connection=ClusterConnection(host=host or fake.host),
        service_account="models-s3",
        min_replicas=1,
        max_replicas=3,
        rollout=RolloutSettings(
            canary_percent=10,
            ready_timeout=ready_timeout,
            poll_seconds=0.1,
            checks=CheckPolicy(requests=10, request_timeout=5.0),
        ),
    )
    return run_deploy_task(
        tracking_uri=tracking_uri,
        model_name=MODEL,
        version=version,
        target="kubernetes",
        namespace=NAMESPACE,
        runtime_image="ghcr.io/kfp-cicd/kfp-cicd-runtime:1.0.0",
        eval_data=eval_data,
        inference_service_path=str(tmp_path / f"isvc-{version}.yaml"),
        deployment_mode=mode,
        cluster=options,
    )


def _serve(fake: Any, tracking_uri: str, version: str, url: str) -> None:
    """Tell the fake controller that this version's pods serve at ``url`` (a real predictor)."""
    fake.backends[storage_location(tracking_uri, MODEL, version)] = url


def _dead_url() -> str:
    """A loopback URL where nothing listens: pods that report Ready and then fail every request."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _splits(fake: Any) -> dict[str, int]:
    return {
        fake.revision_for(NAMESPACE, MODEL, name).storage_uri: share
        for name, share in fake.store[(NAMESPACE, MODEL)].split.items()
    }


def _through_service(fake: Any, rows: int = 10) -> list[dict[str, Any]]:
    """Send V1 requests through the service URL; return the fake ingress's records of them."""
    url = fake.get(NAMESPACE, MODEL)["status"]["url"]
    before = len(fake.proxied)
    from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

    instances = generate_transactions(1, seed=3).drop(columns=[LABEL_COLUMN]).to_dict(orient="records")
    for _ in range(rows):
        assert (
            requests.post(
                f"{url}/v1/models/{MODEL}:predict", json={"instances": instances}, timeout=10
            ).status_code
            == 200
        )
    return fake.proxied[before:]


def test_first_deploy_creates_the_service_checks_it_and_moves_champion(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, version, predictor_url)

    outcome = _deploy(fake, tracking_uri, version, eval_data, tmp_path)

    report = json.loads(outcome.rollout)
    assert report["outcome"] == "created" and report["champion"] == version
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == version
    creates = [r for r in fake.requests if r["method"] == "POST"]
    assert len(creates) == 1
    created = creates[0]["body"]
    predictor = created["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "models-s3"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    assert predictor["model"]["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert predictor["model"]["storageUri"] == storage_location(tracking_uri, MODEL, version)
    digest = client_for(tracking_uri).get_model_version(MODEL, version).tags["model_digest"]
    assert {"name": "MODEL_DIGEST", "value": digest} in predictor["model"]["env"]
    assert created["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    # The checks really reached the predictor through the service URL: smoke (V1 + V2) + 10 requests.
    answered = [r for r in fake.proxied if r["path"].endswith(":predict") or r["path"].endswith("/infer")]
    assert len(answered) == 12 and {r["status"] for r in answered} == {200}
    assert outcome.endpoint == fake.get(NAMESPACE, MODEL)["status"]["url"]
    assert "V1 and V2 agree" in outcome.smoke_summary
    assert yaml.safe_load((tmp_path / f"isvc-{version}.yaml").read_text())["spec"] == created["spec"]


def test_redeploying_the_stable_version_changes_nothing(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, version, predictor_url)
    _deploy(fake, tracking_uri, version, eval_data, tmp_path)
    generation = fake.get(NAMESPACE, MODEL)["metadata"]["generation"]

    outcome = _deploy(fake, tracking_uri, version, eval_data, tmp_path)

    assert json.loads(outcome.rollout)["outcome"] == "updated-in-place"
    assert fake.get(NAMESPACE, MODEL)["metadata"]["generation"] == generation
    assert [r["method"] for r in fake.requests].count("POST") == 1


def test_canary_then_promote(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    new = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, old, predictor_url)
    _serve(fake, tracking_uri, new, predictor_url)
    _deploy(fake, tracking_uri, old, eval_data, tmp_path)

    outcome = _deploy(fake, tracking_uri, new, eval_data, tmp_path)

    report = json.loads(outcome.rollout)
    assert report["outcome"] == PROMOTED and report["previous_version"] == old
    patches = [r["body"] for r in fake.requests if r["method"] == "PATCH"]
    assert patches[0]["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patches[0]["metadata"]["resourceVersion"]  # optimistic: never overwrites a concurrent change
    assert patches[1]["spec"]["predictor"] == {"canaryTrafficPercent": None}
    assert all(
        r["content_type"] == "application/merge-patch+json" for r in fake.requests if r["method"] == "PATCH"
    )
    # The canary was checked on its own revision (tag URL), before promotion.
    assert report["checks"][0]["what"] == "canary revision" and "/_tag/latest" in report["checks"][0]["url"]
    assert _splits(fake) == {storage_location(tracking_uri, MODEL, new): 100}
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == new
    assert version_for_alias(tracking_uri, MODEL, PREVIOUS) == old
    assert fake.get(NAMESPACE, MODEL)["metadata"]["annotations"]["kfp-cicd.io/model-version"] == new


def test_failing_canary_is_rolled_back_and_the_stable_version_keeps_serving(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    bad = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, old, predictor_url)
    _serve(fake, tracking_uri, bad, _dead_url())  # Ready is reported, but every request fails
    _deploy(fake, tracking_uri, old, eval_data, tmp_path)
    stable_spec = fake.get(NAMESPACE, MODEL)["spec"]["predictor"]

    with pytest.raises(RolloutFailed, match="ROLLED BACK") as failure:
        _deploy(fake, tracking_uri, bad, eval_data, tmp_path, ready_timeout=3.0)

    report = failure.value.report
    assert report.outcome == ROLLED_BACK and "smoke test failed" in report.reason
    assert "champion alias unchanged" in str(failure.value)
    assert fake.get(NAMESPACE, MODEL)["spec"]["predictor"]["canaryTrafficPercent"] == 0
    old_uri = storage_location(tracking_uri, MODEL, old)
    assert _splits(fake)[old_uri] == 100
    assert fake.revision_for(NAMESPACE, MODEL, "fraud-detector-predictor-00001").predictor == stable_spec
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == old
    served = _through_service(fake)
    assert {fake.revision_for(NAMESPACE, MODEL, r["revision"]).storage_uri for r in served} == {old_uri}


def test_ready_never_comes_rolls_back_on_timeout(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    stuck = _register(tracking_uri, untrained_model_dir)  # no backend: its pods never become ready
    _serve(fake, tracking_uri, old, predictor_url)
    _deploy(fake, tracking_uri, old, eval_data, tmp_path)

    with pytest.raises(RolloutFailed, match="canary never became Ready: not Ready within 2 s") as failure:
        _deploy(fake, tracking_uri, stuck, eval_data, tmp_path, ready_timeout=2.0)

    assert failure.value.report.outcome == ROLLED_BACK
    assert any("rollback observed" in step for step in failure.value.report.steps)
    assert _splits(fake)[storage_location(tracking_uri, MODEL, old)] == 100
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == old


def test_standard_mode_canary_uses_spec_canary_and_keeps_the_stable_predictor(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    new = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, old, predictor_url)
    _serve(fake, tracking_uri, new, predictor_url)
    _deploy(fake, tracking_uri, old, eval_data, tmp_path, mode="RawDeployment")

    outcome = _deploy(fake, tracking_uri, new, eval_data, tmp_path, mode="RawDeployment")

    assert json.loads(outcome.rollout)["outcome"] == PROMOTED
    canary_patch, promote_patch = [r["body"] for r in fake.requests if r["method"] == "PATCH"]
    assert "predictor" not in canary_patch["spec"]  # the stable predictor is untouched during the canary
    assert canary_patch["spec"]["canary"][0]["trafficPercent"] == 10
    assert canary_patch["spec"]["canary"][0]["predictor"]["model"]["storageUri"] == storage_location(
        tracking_uri, MODEL, new
    )
    assert promote_patch["spec"]["canary"] is None
    final = fake.get(NAMESPACE, MODEL)
    assert "canary" not in final["spec"]
    new_uri = storage_location(tracking_uri, MODEL, new)
    assert final["spec"]["predictor"]["model"]["storageUri"] == new_uri
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == new


def test_switching_deployment_mode_in_place_is_refused(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, version, predictor_url)
    _deploy(fake, tracking_uri, version, eval_data, tmp_path)
    with pytest.raises(DeploymentError, match="cannot switch it to 'RawDeployment' in place"):
        _deploy(fake, tracking_uri, version, eval_data, tmp_path, mode="RawDeployment")


def test_403_names_the_missing_rbac_verb_and_resource(
    fake: Any, tracking_uri: str, untrained_model_dir: Path, eval_data: str, tmp_path: Path
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    fake.forbidden = {"create"}
    with pytest.raises(ForbiddenByRbac) as failure:
        _deploy(fake, tracking_uri, version, eval_data, tmp_path)
    message = str(failure.value)
    assert "may not 'create' resource 'inferenceservices' in API group 'serving.kserve.io'" in message
    assert "namespace 'risk'" in message and "manifests/base/rbac.yaml" in message
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) is None


def test_missing_crd_is_named(
    fake: Any, tracking_uri: str, untrained_model_dir: Path, eval_data: str, tmp_path: Path
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    fake.crd_installed = False
    with pytest.raises(InferenceServiceCrdMissing, match="InferenceService CRD is not installed"):
        _deploy(fake, tracking_uri, version, eval_data, tmp_path)


def test_unreachable_cluster_is_named(
    fake: Any, tracking_uri: str, untrained_model_dir: Path, eval_data: str, tmp_path: Path
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    host = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ClusterUnreachable, match=f"API server at {host} is unreachable"):
        _deploy(fake, tracking_uri, version, eval_data, tmp_path, host=host)
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) is None


# --- a deploy killed mid-rollout, then run again ---------------------------------------------------

_KILLED_DEPLOY = """
import json, sys
from kfp_cicd.components.deploy.cluster_target import RolloutSettings
from kfp_cicd.components.deploy.deployment import ClusterOptions, run_deploy_task
from kfp_cicd.components.deploy.kube_api import ClusterConnection
from kfp_cicd.components.deploy.service_check import CheckPolicy

a = json.loads(sys.argv[1])
options = ClusterOptions(connection=ClusterConnection(host=a["host"]), service_account="models-s3",
                         min_replicas=1, max_replicas=3,
                         rollout=RolloutSettings(canary_percent=10, ready_timeout=20.0, poll_seconds=0.1,
                                                 checks=CheckPolicy(requests=10, request_timeout=5.0)))
run_deploy_task(tracking_uri=a["tracking_uri"], model_name=a["model"], version=a["version"],
                target="kubernetes", namespace=a["namespace"],
                runtime_image="ghcr.io/kfp-cicd/kfp-cicd-runtime:1.0.0", eval_data=a["eval_data"],
                inference_service_path=a["path"], deployment_mode=a["mode"], cluster=options)
print("THE DEPLOY WAS NOT KILLED")
"""


def _rollout_step(body: dict) -> str:
    """The step a patch takes (the deploy step names it in the kfp-cicd.io/rollout annotation)."""
    return ((body.get("metadata") or {}).get("annotations") or {}).get("kfp-cicd.io/rollout") or ""


def _is_canary_patch(body: dict) -> bool:
    return _rollout_step(body).startswith("canary")


def _is_promote_patch(body: dict) -> bool:
    return _rollout_step(body) == "promoted"


def _deploy_killed_at(
    fake: Any, when: Any, tracking_uri: str, version: str, eval_data: str, tmp_path: Path, mode: str
) -> None:
    """Deploy ``version`` in a separate process, SIGKILLed as soon as the patch ``when`` matches was
    applied (the API server stored it; the process never sees the answer), like a lost node."""
    import os
    import signal
    import subprocess
    import sys

    arguments = {
        "host": fake.host,
        "tracking_uri": tracking_uri,
        "model": MODEL,
        "version": version,
        "namespace": NAMESPACE,
        "eval_data": eval_data,
        "path": str(tmp_path / "killed.yaml"),
        "mode": mode,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_DEPLOY, json.dumps(arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def kill(body: dict) -> None:
        if when(body):
            os.kill(process.pid, signal.SIGKILL)

    fake.after_patch = kill
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        fake.after_patch = None
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, f"the deploy was not killed:\n{output[-3000:]}"


def _stage(fake: Any, tracking_uri: str) -> dict[str, Any]:
    """What the InferenceService and the registry look like now (traffic by version, aliases)."""
    versions = {
        storage_location(tracking_uri, MODEL, v): v
        for v in (str(n) for n in range(1, 4))
        if _exists(tracking_uri, v)
    }
    obj = fake.get(NAMESPACE, MODEL)
    return {
        "traffic": {versions[uri]: share for uri, share in _splits(fake).items()},
        "rollout": obj["metadata"]["annotations"].get("kfp-cicd.io/rollout"),
        "pending_canary": "canaryTrafficPercent" in obj["spec"]["predictor"] or "canary" in obj["spec"],
        "champion": version_for_alias(tracking_uri, MODEL, CHAMPION),
    }


def _exists(tracking_uri: str, version: str) -> bool:
    try:
        require_version(tracking_uri, MODEL, version)
    except Exception:
        return False
    return True


def _wait_reconciled(fake: Any) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        obj = fake.get(NAMESPACE, MODEL)
        if (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]:
            return
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("healthy", [True, False], ids=["new-version-healthy", "new-version-failing"])
def test_deploy_killed_between_canary_and_promotion_converges_when_run_again(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
    healthy: bool,
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    new = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, old, predictor_url)
    _serve(fake, tracking_uri, new, predictor_url if healthy else _dead_url())
    _deploy(fake, tracking_uri, old, eval_data, tmp_path)

    _deploy_killed_at(fake, _is_canary_patch, tracking_uri, new, eval_data, tmp_path, "Serverless")
    _wait_reconciled(fake)
    killed = _stage(fake, tracking_uri)
    assert killed == {
        "traffic": {old: 90, new: 10},
        "rollout": "canary 10%",
        "pending_canary": True,
        "champion": old,
    }, "killed right after the canary split was applied"

    if healthy:
        outcome = _deploy(fake, tracking_uri, new, eval_data, tmp_path)
        assert json.loads(outcome.rollout)["outcome"] == PROMOTED
        assert _stage(fake, tracking_uri) == {
            "traffic": {new: 100},
            "rollout": "promoted",
            "pending_canary": False,
            "champion": new,
        }
        assert version_for_alias(tracking_uri, MODEL, PREVIOUS) == old
    else:
        with pytest.raises(RolloutFailed, match="ROLLED BACK"):
            _deploy(fake, tracking_uri, new, eval_data, tmp_path, ready_timeout=3.0)
        final = _stage(fake, tracking_uri)
        assert {v: share for v, share in final["traffic"].items() if share} == {old: 100}
        assert final["champion"] == old
        assert final["rollout"].startswith("rolled back")
        assert fake.get(NAMESPACE, MODEL)["spec"]["predictor"]["canaryTrafficPercent"] == 0, (
            "the canary is pinned at 0 %: no traffic split is left behind"
        )


@pytest.mark.slow
def test_deploy_killed_after_promotion_before_the_champion_alias_moved_converges(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    new = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, old, predictor_url)
    _serve(fake, tracking_uri, new, predictor_url)
    _deploy(fake, tracking_uri, old, eval_data, tmp_path, mode="RawDeployment")

    _deploy_killed_at(fake, _is_promote_patch, tracking_uri, new, eval_data, tmp_path, "RawDeployment")
    _wait_reconciled(fake)
    assert _stage(fake, tracking_uri) == {
        "traffic": {new: 100},
        "rollout": "promoted",
        "pending_canary": False,
        "champion": old,
    }, "all traffic on the new version, but the registry's champion is still the old one"

    outcome = _deploy(fake, tracking_uri, new, eval_data, tmp_path, mode="RawDeployment")

    assert json.loads(outcome.rollout)["outcome"] == "updated-in-place"
    assert _stage(fake, tracking_uri) == {
        "traffic": {new: 100},
        "rollout": "stable",
        "pending_canary": False,
        "champion": new,
    }
    assert version_for_alias(tracking_uri, MODEL, PREVIOUS) == old


def test_credentials_in_the_task_environment_never_reach_the_manifest(
    fake: Any,
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the deploy task gets from the optional Secret mlflow-credentials (pipelines/*.py).
    secrets = {
        "MLFLOW_TRACKING_PASSWORD": "canary-pw-7f3a",
        "MLFLOW_TRACKING_TOKEN": "canary-tok-91c2",
        "AWS_SECRET_ACCESS_KEY": "canary-aws-55e0",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    version = _register(tracking_uri, untrained_model_dir)
    _serve(fake, tracking_uri, version, predictor_url)

    outcome = _deploy(fake, tracking_uri, version, eval_data, tmp_path)

    written = (tmp_path / f"isvc-{version}.yaml").read_text()
    sent = json.dumps([r["body"] for r in fake.requests]) + json.dumps(fake.get(NAMESPACE, MODEL))
    for value in secrets.values():
        assert value not in written and value not in sent and value not in outcome.rollout
    predictor = yaml.safe_load(written)["spec"]["predictor"]
    assert {e["name"] for e in predictor["model"]["env"]} == {"HOME", "MODEL_DIGEST", "MODEL_VERSION"}
