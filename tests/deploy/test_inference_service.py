"""Rendering the InferenceService, and both manifests against the upstream KServe CRD schemas.

The CRDs live in ``../shared/crds`` beside the repository; a fresh clone has none, and the schema
tests skip there. The schemas never forbid unknown fields, so the render tests also check our keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_kubernetes_resource import merge_patch

from kfp_cicd.components.deploy.inference_service import (
    DEPLOYMENT_MODE_ANNOTATION,
    MODEL_FORMAT,
    RUNTIME_NAME,
    render_inference_service,
    service_name_for,
    to_yaml,
)
from kfp_cicd.errors import DeploymentError
from kfp_cicd.images import ImageRefs

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO.parent / "shared" / "crds"
RUNTIME_MANIFEST = REPO / "manifests" / "runtime" / "cluster_serving_runtime.yaml"
STORAGE = "s3://models/fraud-detector/3"


def render(**overrides: Any) -> dict[str, Any]:
    arguments = {"name": "fraud-detector", "namespace": "kfp-cicd", "storage_uri": STORAGE, **overrides}
    return render_inference_service(**arguments)


def test_render_points_kserve_at_our_runtime_and_the_real_storage() -> None:
    manifest = render()
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    assert manifest["metadata"] == {
        "name": "fraud-detector",
        "namespace": "kfp-cicd",
        "annotations": {DEPLOYMENT_MODE_ANNOTATION: "Serverless"},
    }
    predictor = manifest["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 1)
    model = predictor["model"]
    assert {k: model[k] for k in ("modelFormat", "runtime", "storageUri")} == {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtime": RUNTIME_NAME,
        "storageUri": STORAGE,
    }
    assert set(predictor) == {"minReplicas", "maxReplicas", "securityContext", "volumes", "model"}
    assert set(model) == {"modelFormat", "runtime", "storageUri", "env", "securityContext", "volumeMounts"}


def test_the_predictor_pod_is_locked_down_to_the_restricted_profile() -> None:
    predictor = render()["spec"]["predictor"]
    pod, container = predictor["securityContext"], predictor["model"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 1000
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["allowPrivilegeEscalation"] is False and container["privileged"] is False
    assert container["readOnlyRootFilesystem"] is True and container["runAsNonRoot"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}
    # The only writable place: /tmp on an emptyDir, and HOME points there (MLflow and torch caches).
    assert predictor["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    assert predictor["model"]["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert {"name": "HOME", "value": "/tmp"} in predictor["model"]["env"]


@pytest.mark.parametrize(
    "variable", ["AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "api_key"]
)
def test_credentials_are_never_rendered_as_plain_values(variable: str) -> None:
    with pytest.raises(DeploymentError, match=r"look like credentials .* never as a value"):
        render(env={variable: "s3cr3t-value"})


def test_render_with_every_option() -> None:
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    manifest = render(
        runtime_image="registry.example/kfp-cicd-runtime:1.2.3",
        service_account="mlflow-s3",
        min_replicas=2,
        max_replicas=4,
        deployment_mode="RawDeployment",
        resources=resources,
        labels={"team": "risk"},
        annotations={"owner": "risk@example.com"},
    )
    predictor = manifest["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "mlflow-s3"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 4)
    assert predictor["model"]["image"] == "registry.example/kfp-cicd-runtime:1.2.3"
    assert predictor["model"]["resources"] == resources
    assert manifest["metadata"]["labels"] == {"team": "risk"}
    assert manifest["metadata"]["annotations"] == {
        "owner": "risk@example.com",
        DEPLOYMENT_MODE_ANNOTATION: "RawDeployment",
    }


def test_yaml_round_trips() -> None:
    manifest = render(labels={"team": "risk"})
    text = to_yaml(manifest)
    assert yaml.safe_load(text) == manifest
    assert text.startswith("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n")


@pytest.mark.parametrize(
    "name", ["Fraud", "1fraud", "fraud_detector", "fraud.detector", "-fraud", "fraud-", "", "f" * 64]
)
def test_names_must_be_dns_1035_labels(name: str) -> None:
    with pytest.raises(DeploymentError, match="invalid InferenceService name"):
        render(name=name)


def test_namespace_must_be_a_dns_label() -> None:
    with pytest.raises(DeploymentError, match="invalid namespace"):
        render(namespace="Team_A")


@pytest.mark.parametrize(
    "uri",
    [
        "models:/fraud-detector/3",
        "models:/fraud-detector@champion",
        "mlflow-artifacts:/1/abc/artifacts/model",
        "runs:/abc/model",
    ],
)
def test_mlflow_uris_are_refused_with_the_reason(uri: str) -> None:
    with pytest.raises(DeploymentError, match="storage initializer cannot read"):
        render(storage_uri=uri)


@pytest.mark.parametrize("uri", ["ftp://host/model", "/mnt/models", "", "dbfs:/model"])
def test_other_unreadable_uris_are_refused(uri: str) -> None:
    with pytest.raises(DeploymentError, match=r"storage URI|no storage URI"):
        render(storage_uri=uri)


@pytest.mark.parametrize(
    "uri", ["s3://b/m", "gs://b/m", "pvc://claim/m", "https://h/m.tar.gz", "file:///srv/m"]
)
def test_readable_uris_are_accepted(uri: str) -> None:
    assert render(storage_uri=uri)["spec"]["predictor"]["model"]["storageUri"] == uri


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"deployment_mode": "Fargate"}, "unknown deployment_mode"),
        ({"min_replicas": 0, "deployment_mode": "RawDeployment"}, "scale to zero"),
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),
        ({"min_replicas": -1}, "non-negative"),
        ({"labels": {"model": "a" * 64}}, "invalid label value"),
        ({"annotations": {DEPLOYMENT_MODE_ANNOTATION: "RawDeployment"}}, "contradicts"),
        ({"annotations": {"n": 1}}, "strings to strings"),
    ],
)
def test_bad_options_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DeploymentError, match=message):
        render(**overrides)


def test_scale_to_zero_is_allowed_in_serverless_mode() -> None:
    assert render(min_replicas=0)["spec"]["predictor"]["minReplicas"] == 0


@pytest.mark.parametrize(
    ("model_name", "service"),
    [
        ("fraud-detector", "fraud-detector"),
        ("Fraud_Model.v2", "fraud-model-v2"),
        ("123", "model-123"),
        ("x" * 80, "x" * 63),
    ],
)
def test_service_names_derive_from_registered_model_names(model_name: str, service: str) -> None:
    assert service_name_for(model_name) == service


# --- the upstream CRD schemas ----------------------------------------------------------------------


def _spec_schema(crd_file: str, version: str) -> dict[str, Any]:
    path = CRDS / crd_file
    if not path.is_file():
        pytest.skip(f"{path} not present (a fresh clone has no ../shared/crds)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        crd = yaml.load(handle, Loader=loader)  # a safe loader (the C one is ~10x faster)
    versions = {entry["name"]: entry for entry in crd["spec"]["versions"]}
    return versions[version]["schema"]["openAPIV3Schema"]["properties"]["spec"]


@pytest.fixture(scope="module")
def isvc_spec_validator() -> Any:
    """Draft 7 validator of an InferenceService ``spec`` (the ~2 MB CRD is parsed once)."""
    from jsonschema import Draft7Validator

    return Draft7Validator(_spec_schema("serving.kserve.io_inferenceservices.yaml", "v1beta1"))


def _errors(validator: Any, instance: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(instance)]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "runtime_image": "registry.example/kfp-cicd-runtime:1.2.3",
            "service_account": "mlflow-s3",
            "min_replicas": 0,
            "max_replicas": 3,
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": 2, "memory": "2Gi"},
            },
        },
        {"deployment_mode": "RawDeployment", "min_replicas": 2, "max_replicas": 2},
    ],
)
def test_rendered_spec_satisfies_the_inference_service_crd(
    isvc_spec_validator: Any, overrides: dict[str, Any]
) -> None:
    assert _errors(isvc_spec_validator, render(**overrides)["spec"]) == []


def test_the_crd_check_is_live(isvc_spec_validator: Any) -> None:
    spec = render()["spec"]
    spec["predictor"]["minReplicas"] = "one"
    del spec["predictor"]["model"]["modelFormat"]["name"]
    assert len(_errors(isvc_spec_validator, spec)) == 2


@pytest.fixture(scope="module")
def runtime_manifest() -> dict[str, Any]:
    return yaml.safe_load(RUNTIME_MANIFEST.read_text(encoding="utf-8"))


def test_cluster_serving_runtime_satisfies_its_crd(runtime_manifest: dict[str, Any]) -> None:
    from jsonschema import Draft7Validator

    validator = Draft7Validator(_spec_schema("serving.kserve.io_clusterservingruntimes.yaml", "v1alpha1"))
    assert _errors(validator, runtime_manifest["spec"]) == []


def test_cluster_serving_runtime_matches_what_inference_services_ask_for(
    runtime_manifest: dict[str, Any],
) -> None:
    assert runtime_manifest["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert runtime_manifest["kind"] == "ClusterServingRuntime"
    assert runtime_manifest["metadata"]["name"] == RUNTIME_NAME
    spec = runtime_manifest["spec"]
    formats = {entry["name"]: entry for entry in spec["supportedModelFormats"]}
    assert formats[MODEL_FORMAT]["autoSelect"] is True
    assert spec["protocolVersions"] == ["v1", "v2"]
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == ImageRefs().predictor
    command = container["command"] + container["args"]
    assert command == [
        "python",
        "-m",
        "kfp_cicd.serving",
        "--model-dir",
        "/mnt/models",
        "--model-name",
        "{{.Name}}",
        "--http-port",
        "8080",
        "--grpc-port",
        "8081",
    ]


# --- the rollout's patches produce specs the CRD accepts -------------------------------------------


@pytest.mark.parametrize("mode", ["Serverless", "RawDeployment"])
def test_canary_promote_and_rollback_specs_satisfy_the_crd(isvc_spec_validator: Any, mode: str) -> None:
    from kfp_cicd.components.deploy import traffic

    stable = render(deployment_mode=mode, annotations={traffic.VERSION_ANNOTATION: "1"})
    new = render(
        deployment_mode=mode,
        storage_uri="s3://models/fraud-detector/4",
        annotations={traffic.VERSION_ANNOTATION: "2"},
    )
    canary = merge_patch(stable, traffic.canary_patch(stable, new, mode, 10, "2"))
    rolled_back = merge_patch(canary, traffic.rollback_patch(canary, mode, "smoke test failed"))
    promoted = merge_patch(canary, traffic.promote_patch(canary, mode, "2"))
    for manifest in (canary, rolled_back, promoted):
        assert _errors(isvc_spec_validator, manifest["spec"]) == []
    assert canary["metadata"]["annotations"][traffic.VERSION_ANNOTATION] == "1"
    assert promoted["metadata"]["annotations"][traffic.VERSION_ANNOTATION] == "2"
    new_uri = "s3://models/fraud-detector/4"
    if mode == "RawDeployment":
        assert canary["spec"]["predictor"] == stable["spec"]["predictor"]
        assert canary["spec"]["canary"][0]["trafficPercent"] == 10
        assert rolled_back["spec"]["canary"][0]["trafficPercent"] == 0
        assert rolled_back["spec"]["predictor"] == stable["spec"]["predictor"]
        assert "canary" not in promoted["spec"]
    else:
        assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
        assert rolled_back["spec"]["predictor"]["canaryTrafficPercent"] == 0
        assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    assert promoted["spec"]["predictor"]["model"]["storageUri"] == new_uri


def test_merge_patch_to_reaches_the_desired_object() -> None:
    from kfp_cicd.components.deploy.traffic import merge_patch_to

    current = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    desired = {"a": 1, "b": {"c": 5}, "f": "new"}
    patch = merge_patch_to(current, desired)
    assert patch == {"e": None, "b": {"c": 5, "d": None}, "f": "new"}
    assert merge_patch(current, patch) == desired
