"""The FAKE Kubernetes API server is as strict about InferenceServices as the real one.

The deploy tests trust ``FakeKubernetesApiServer`` (tests/support/fake_kserve.py) to refuse what a
real API server with KServe's CRD refuses. These tests drive the REAL kubernetes client against it
and show each rejection path is live: a schema violation is a 422 ``Invalid`` Status with the
server's ``details.causes``, an unknown field is pruned and warned about (``fieldValidation=Warn``),
and without ``../shared/crds`` nothing is accepted unchecked.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import fake_kserve
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kfp_cicd.components.deploy.inference_service import render_inference_service
from kfp_cicd.components.deploy.kube_api import InferenceServiceApi
from kfp_cicd.errors import DeploymentError

NAMESPACE = "risk"


@pytest.fixture
def fake(fake_kubernetes: Any) -> Any:
    fake_kubernetes.reset()
    return fake_kubernetes


def _manifest(name: str = "fraud-detector") -> dict[str, Any]:
    return render_inference_service(
        name=name,
        namespace=NAMESPACE,
        storage_uri="gs://models-bucket/mlflow/1/abc/artifacts/model",
        runtime_image=None,
        deployment_mode="Serverless",
        service_account=None,
        min_replicas=1,
        max_replicas=2,
        resources=None,
        labels={},
        annotations={},
        env={},
    )


def _objects(fake: Any) -> Any:
    return client.CustomObjectsApi(fake.api_client())


def test_a_schema_violation_is_a_422_with_the_api_servers_causes(fake: Any) -> None:
    manifest = _manifest()
    manifest["spec"]["predictor"]["minReplicas"] = "one"
    manifest["spec"]["predictor"]["model"]["modelFormat"] = {}  # its required "name" is missing

    with pytest.raises(ApiException) as failure:
        _objects(fake).create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", manifest
        )

    import json

    status = json.loads(failure.value.body)
    assert failure.value.status == 422 and status["reason"] == "Invalid" and status["kind"] == "Status"
    assert status["details"]["kind"] == "InferenceService" and status["details"]["name"] == "fraud-detector"
    causes = {c["field"]: c for c in status["details"]["causes"]}
    assert causes["spec.predictor.minReplicas"] == {
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "string": spec.predictor.minReplicas in body must be of type '
        'integer: "string"',
        "field": "spec.predictor.minReplicas",
    }
    assert causes["spec.predictor.model.modelFormat.name"]["reason"] == "FieldValueRequired"
    assert status["message"].startswith('InferenceService.serving.kserve.io "fraud-detector" is invalid: [')
    assert fake.get(NAMESPACE, "fraud-detector") is None


def test_the_deploy_steps_api_wrapper_reports_the_servers_refusal(fake: Any) -> None:
    manifest = _manifest()
    manifest["spec"]["predictor"]["maxReplicas"] = "two"
    api = InferenceServiceApi(fake.api_client(), NAMESPACE)
    with pytest.raises(DeploymentError, match=r"refused .* as invalid: .*spec\.predictor\.maxReplicas"):
        api.create(manifest)


def test_an_invalid_patch_is_refused_and_the_stored_object_is_unchanged(fake: Any) -> None:
    api = InferenceServiceApi(fake.api_client(), NAMESPACE)
    stored = api.create(_manifest())
    with pytest.raises(DeploymentError, match="canaryTrafficPercent"):
        api.patch("fraud-detector", {"spec": {"predictor": {"canaryTrafficPercent": "ten"}}})
    assert fake.get(NAMESPACE, "fraud-detector")["spec"] == stored["spec"]


def test_an_unknown_field_is_pruned_and_named_in_a_warning_header(fake: Any) -> None:
    manifest = _manifest()
    manifest["spec"]["predictor"]["model"]["storageUrl"] = manifest["spec"]["predictor"]["model"][
        "storageUri"
    ]

    _, status, headers = _objects(fake).create_namespaced_custom_object_with_http_info(
        "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", copy.deepcopy(manifest)
    )

    assert status == 201
    assert 'unknown field \\"spec.predictor.model.storageUrl\\"' in headers["Warning"]
    assert "storageUrl" not in fake.get(NAMESPACE, "fraud-detector")["spec"]["predictor"]["model"]
    assert fake.inference_services.warnings == ["spec.predictor.model.storageUrl"]


def test_without_the_crd_the_fake_refuses_instead_of_accepting(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_kserve, "CRD_PATH", tmp_path / "absent.yaml")
    with pytest.raises(ApiException) as failure:
        _objects(fake).create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", _manifest()
        )
    assert failure.value.status == 500 and "cannot check" in failure.value.body
    assert fake.get(NAMESPACE, "fraud-detector") is None
    with pytest.raises(pytest.skip.Exception, match="cannot check InferenceService bodies"):
        fake_kserve.require_inference_service_crd()
