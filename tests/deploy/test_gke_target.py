"""deploy_target=gke end to end: the REAL google-auth and kubernetes clients against recording FAKES.

``FakeGoogleCloud`` (tests/support/fake_google_cloud.py) plays Google's OAuth token endpoint and the
GKE API; ``FakeGkeControlPlane`` is the cluster's HTTPS endpoint (certificate signed by the CA the
GKE fake hands out, Bearer tokens checked), in front of ``FakeKubernetesApiServer`` with KServe's
behaviour. The task's credentials are a service-account key file whose token_uri is the fake
(``GOOGLE_APPLICATION_CREDENTIALS``), so ``google.auth.default()`` runs as on Vertex. The predictor
behind the fake ingress and the MLflow registry are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_google_cloud import FakeCluster, FakeGkeControlPlane, FakeGoogleCloud

from kfp_cicd.components.deploy.cluster_target import PROMOTED, RolloutSettings
from kfp_cicd.components.deploy.deployment import ClusterOptions, DeployOutcome, run_deploy_task
from kfp_cicd.components.deploy.kube_api import ClusterConnection, ForbiddenByRbac
from kfp_cicd.components.deploy.service_check import CheckPolicy
from kfp_cicd.errors import DataError, DeploymentError
from kfp_cicd.gcp.gke import GKE_API, GkeClusterNotFound, GkePermissionDenied
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import storage_location, version_for_alias
from kfp_cicd.registry.registration import register_model_version

MODEL = "fraud-detector"
NAMESPACE = "risk"
CLUSTER = "projects/my-project/locations/europe-west4/clusters/serving"


@pytest.fixture(scope="module")
def google_cloud(fake_kubernetes: Any) -> Iterator[tuple[FakeGoogleCloud, FakeGkeControlPlane]]:
    with FakeGoogleCloud() as google, FakeGkeControlPlane(google, fake_kubernetes.url) as plane:
        yield google, plane


@pytest.fixture
def gke(
    google_cloud: tuple[FakeGoogleCloud, FakeGkeControlPlane],
    fake_kubernetes: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[FakeGoogleCloud, FakeGkeControlPlane, Any]:
    """The fakes reset, the cluster known to the GKE fake, the task's credentials pointing at them."""
    google, plane = google_cloud
    fake_kubernetes.reset()
    fake_kubernetes.reconcile_delay = 0.2
    google.requests.clear()
    google.tokens.clear()
    google.denied = set()
    google.token_lifetime = 3600.0
    plane.calls.clear()
    google.clusters = {CLUSTER: FakeCluster(plane.endpoint, plane.certificates.ca_pem)}
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.service_account_file(tmp_path)))
    monkeypatch.setenv(GKE_API.env_var, google.url)
    return google, plane, fake_kubernetes


def _register(tracking_uri: str, model_dir: Path) -> str:
    return register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version


def _deploy(
    tracking_uri: str, version: str, eval_data: str, tmp_path: Path, cluster: str = CLUSTER
) -> DeployOutcome:
    options = ClusterOptions(
        connection=ClusterConnection(gke_cluster=cluster),
        max_replicas=2,
        rollout=RolloutSettings(
            canary_percent=10,
            ready_timeout=20.0,
            poll_seconds=0.1,
            checks=CheckPolicy(requests=10, request_timeout=5.0),
        ),
    )
    return run_deploy_task(
        tracking_uri=tracking_uri,
        model_name=MODEL,
        version=version,
        target="gke",
        namespace=NAMESPACE,
        runtime_image="europe-docker.pkg.dev/my-project/kfp-cicd/kfp-cicd-predictor:1.0.0",
        eval_data=eval_data,
        inference_service_path=str(tmp_path / f"isvc-{version}.yaml"),
        deployment_mode="Serverless",
        cluster=options,
    )


def test_canary_and_promotion_on_gke_with_tokens_renewed_during_the_rollout(
    gke: tuple[FakeGoogleCloud, FakeGkeControlPlane, Any],
    tracking_uri: str,
    untrained_model_dir: Path,
    predictor_url: str,
    eval_data: str,
    tmp_path: Path,
) -> None:
    google, plane, kube = gke
    old = _register(tracking_uri, untrained_model_dir)
    new = _register(tracking_uri, untrained_model_dir)
    for version in (old, new):
        kube.backends[storage_location(tracking_uri, MODEL, version)] = predictor_url
    _deploy(tracking_uri, old, eval_data, tmp_path)
    google.token_lifetime = 1.0  # every token goes stale after 1 s: the rollout outlives several
    kube.reconcile_delay = 1.2  # KServe takes 1.2 s to reconcile each step

    outcome = _deploy(tracking_uri, new, eval_data, tmp_path)

    report = json.loads(outcome.rollout)
    assert report["outcome"] == PROMOTED and report["previous_version"] == old
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == new
    # The cluster was found through the GKE API, with a Bearer token, at its resource name.
    gets = [r for r in google.api_requests() if "/clusters/" in r["path"]]
    assert [r["path"] for r in gets] == [f"/v1/{CLUSTER}"] * 2
    assert all(r["token"].startswith("ya29.fake-") for r in gets)
    # Every Kubernetes API call went over TLS to the cluster endpoint with a live token, and the
    # tokens were renewed during the rollout instead of expiring.
    assert plane.calls and all(call["accepted"] for call in plane.calls), [
        c for c in plane.calls if not c["accepted"]
    ]
    second_deploy = plane.tokens_used()[1:]
    assert len(second_deploy) >= 2, plane.tokens_used()
    patches = [r["body"] for r in kube.requests if r["method"] == "PATCH"]
    assert patches[0]["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_the_control_plane_refuses_a_token_that_was_not_renewed(
    gke: tuple[FakeGoogleCloud, FakeGkeControlPlane, Any],
) -> None:
    """What the renewal protects against: the fake answers 401, as the API server does."""
    google, plane, _ = gke
    google.token_lifetime, google.grace = 0.0, 0.2
    from google.auth import default
    from google.auth.transport.requests import Request

    credentials, _ = default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(Request())
    import time

    time.sleep(0.3)
    ca = Path(plane._dir.name) / "ca.pem"
    ca.write_bytes(plane.certificates.ca_pem)
    answer = requests.get(
        f"https://{plane.endpoint}/apis/serving.kserve.io/v1beta1",
        headers={"Authorization": f"Bearer {credentials.token}"},
        verify=str(ca),
        timeout=10,
    )
    google.grace = 1.0
    assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"


def test_a_wrong_cluster_name_is_named_and_nothing_is_deployed(
    gke: tuple[FakeGoogleCloud, FakeGkeControlPlane, Any],
    tracking_uri: str,
    untrained_model_dir: Path,
    eval_data: str,
    tmp_path: Path,
) -> None:
    _, plane, kube = gke
    version = _register(tracking_uri, untrained_model_dir)
    wrong = "projects/my-project/locations/europe-west4/clusters/servng"

    with pytest.raises(GkeClusterNotFound) as failure:
        _deploy(tracking_uri, version, eval_data, tmp_path, cluster=wrong)

    message = str(failure.value)
    assert f"GKE cluster {wrong} was not found" in message
    assert "HTTP 404 NOT_FOUND: Not found:" in message and "gcloud container clusters list" in message
    assert plane.calls == [] and kube.requests == []
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) is None


def test_permission_denied_on_the_cluster_names_the_role_to_grant(
    gke: tuple[FakeGoogleCloud, FakeGkeControlPlane, Any],
    tracking_uri: str,
    untrained_model_dir: Path,
    eval_data: str,
    tmp_path: Path,
) -> None:
    google, plane, kube = gke
    google.denied = {"container.clusters.get"}
    version = _register(tracking_uri, untrained_model_dir)

    with pytest.raises(GkePermissionDenied) as failure:
        _deploy(tracking_uri, version, eval_data, tmp_path)

    message = str(failure.value)
    assert "HTTP 403 PERMISSION_DENIED" in message and '"container.clusters.get"' in message
    assert "roles/container.clusterViewer" in message and "docs/platforms/vertex-gke.md" in message
    assert plane.calls == [] and kube.requests == []


def test_kubernetes_rbac_denial_on_gke_names_the_google_service_account_binding(
    gke: tuple[FakeGoogleCloud, FakeGkeControlPlane, Any],
    tracking_uri: str,
    untrained_model_dir: Path,
    eval_data: str,
    tmp_path: Path,
) -> None:
    _, _, kube = gke
    kube.forbidden = {"create"}
    version = _register(tracking_uri, untrained_model_dir)

    with pytest.raises(ForbiddenByRbac) as failure:
        _deploy(tracking_uri, version, eval_data, tmp_path)

    message = str(failure.value)
    assert "may not 'create' resource 'inferenceservices'" in message
    assert "Google service account" in message and "kind User" in message


@pytest.mark.parametrize(
    "cluster",
    [
        "serving",
        "projects/my-project/zones/europe-west4-a/clusters/serving",
        "projects/my-project/locations/europe-west4/clusters/Serving",
        "https://container.googleapis.com/v1/projects/my-project/locations/europe-west4/clusters/serving",
    ],
)
def test_a_malformed_cluster_name_is_refused_before_any_call(
    gke: tuple[FakeGoogleCloud, FakeGkeControlPlane, Any], cluster: str, tmp_path: Path
) -> None:
    google, plane, _ = gke
    with pytest.raises(DataError, match="projects/PROJECT/locations/LOCATION/clusters/NAME"):
        run_deploy_task(
            tracking_uri="sqlite:///unused.db",
            model_name=MODEL,
            version="1",
            target="gke",
            namespace=NAMESPACE,
            runtime_image="",
            eval_data="unused.csv",
            inference_service_path=str(tmp_path / "isvc.yaml"),
            deployment_mode="Serverless",
            cluster=ClusterOptions(connection=ClusterConnection(gke_cluster=cluster)),
        )
    assert google.requests == [] and plane.calls == []


def test_gke_target_without_a_cluster_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="deploy_target=gke needs gke_cluster"):
        run_deploy_task(
            tracking_uri="sqlite:///unused.db",
            model_name=MODEL,
            version="1",
            target="gke",
            namespace=NAMESPACE,
            runtime_image="",
            eval_data="unused.csv",
            inference_service_path=str(tmp_path / "isvc.yaml"),
            deployment_mode="Serverless",
        )
