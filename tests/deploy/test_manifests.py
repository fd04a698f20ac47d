"""The kustomize tree under manifests/: it builds, and what it builds is what KServe and RBAC need.

The tree is built with ``kubectl kustomize`` where kubectl is installed, else with the small
Python equivalent below (resources, namespace, JSON6902 patches: the only features the tree uses),
and where both exist the test checks they agree. Custom resources are validated against the real
CRD schemas in ``../shared/crds`` (skipped where absent).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CRDS = REPO.parent / "shared" / "crds"
TREES = ["runtime", "base", "storage/s3", "storage/gcs", "overlays/example"]
CLUSTER_SCOPED = {"ClusterServingRuntime", "ClusterRole", "ClusterRoleBinding", "Namespace"}


def _json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON6902 ``replace``/``add`` operations the overlays use."""
    document = copy.deepcopy(document)
    for operation in operations:
        if operation["op"] not in ("replace", "add"):
            raise ValueError(f"the Python kustomize equivalent supports replace/add, not {operation['op']}")
        *parents, last = [part for part in operation["path"].split("/") if part]
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = operation["value"]
        else:
            node[last] = operation["value"]
    return document


def build_in_python(directory: Path) -> list[dict[str, Any]]:
    """An equivalent of ``kubectl kustomize`` for this tree's features; refuses anything else."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "namespace", "patches"}
    if unsupported:
        raise ValueError(f"{directory}: the Python equivalent does not support {sorted(unsupported)}")
    documents: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            documents += build_in_python(path)
        else:
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in kustomization.get("patches", []):
        operations = yaml.safe_load((directory / patch["path"]).read_text())
        target = patch["target"]
        documents = [
            _json_patch(doc, operations)
            if doc["kind"] == target["kind"] and doc["metadata"]["name"] == target["name"]
            else doc
            for doc in documents
        ]
    if "namespace" in kustomization:
        for doc in documents:
            doc["metadata"]["namespace"] = kustomization["namespace"]
    return documents


def build_with_kubectl(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.fixture(scope="module", params=TREES)
def built(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(tree, documents), built by kubectl when installed (checked against the Python equivalent)."""
    directory = MANIFESTS / request.param
    python_docs = build_in_python(directory)
    if shutil.which("kubectl") is None:
        return request.param, python_docs
    kubectl_docs = build_with_kubectl(directory)
    assert sorted(kubectl_docs, key=_key) == sorted(python_docs, key=_key)
    return request.param, kubectl_docs


def test_every_tree_builds_and_namespaced_trees_stay_namespaced(
    built: tuple[str, list[dict[str, Any]]],
) -> None:
    tree, documents = built
    assert documents
    for doc in documents:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kfp-cicd"
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"], f"{tree}: {_key(doc)} is cluster-scoped"
    if tree == "overlays/example":
        assert {doc["metadata"]["namespace"] for doc in documents} == {"risk"}


def _by_kind(tree: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in build_in_python(MANIFESTS / tree)}


def test_rbac_grants_exactly_the_deploy_steps_verbs_in_one_namespace() -> None:
    docs = _by_kind("overlays/example")
    role, binding = docs["Role"], docs["RoleBinding"]
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "create", "patch"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default-editor", "namespace": "risk"}]
    assert "ClusterRole" not in docs and "ClusterRoleBinding" not in docs


def test_the_rbac_hint_in_errors_points_at_this_role() -> None:
    from kfp_cicd.components.deploy.kube_api import RBAC_HINT

    assert "manifests/base/rbac.yaml" in RBAC_HINT and (MANIFESTS / "base" / "rbac.yaml").is_file()
    assert "manifests/overlays/example" in RBAC_HINT and (MANIFESTS / "overlays" / "example").is_dir()


@pytest.mark.parametrize(
    ("tree", "secret_key"),
    [("storage/s3", "AWS_SECRET_ACCESS_KEY"), ("storage/gcs", "gcloud-application-credentials.json")],
)
def test_storage_templates_give_kserve_a_service_account_with_credentials(tree: str, secret_key: str) -> None:
    docs = _by_kind(tree)
    secret, account = docs["Secret"], docs["ServiceAccount"]
    assert secret_key in secret["stringData"]
    assert set(secret["stringData"].values()) == {"REPLACE_ME"}  # templates never carry real credentials
    assert account["metadata"]["name"] == "kfp-cicd-models"
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]


def test_custom_resources_satisfy_the_upstream_crds() -> None:
    from jsonschema import Draft7Validator

    checked = 0
    for tree in TREES:
        for doc in build_in_python(MANIFESTS / tree):
            group = doc["apiVersion"].split("/")[0]
            if "." not in group or group.endswith("k8s.io"):
                continue  # built-in kinds
            path = CRDS / f"{group}_{doc['kind'].lower()}s.yaml"
            if not path.is_file():
                pytest.skip(f"{path} not present (a fresh clone has no ../shared/crds)")
            crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            version = doc["apiVersion"].split("/")[1]
            entry = next(v for v in crd["spec"]["versions"] if v["name"] == version)
            schema = entry["schema"]["openAPIV3Schema"]
            errors = [error.message for error in Draft7Validator(schema).iter_errors(doc)]
            assert errors == [], f"{tree}: {_key(doc)}: {errors}"
            checked += 1
    assert checked == 1  # the ClusterServingRuntime
