"""Least-privilege RBAC and restricted pods in everything manifests/ renders and the launcher creates.

Every kustomize tree under ``manifests/`` is rendered with the real ``kubectl kustomize``. Roles must
grant exactly the (apiGroup, resource, verbs) listed here, and those must be exactly what the code's
kubernetes client calls need (read from the source with ``ast``), so code and Role cannot drift apart
silently. Every pod template (the ClusterServingRuntime's containers, the PyTorchJob the launcher
renders) must meet the Pod Security Standard "restricted" plus a read-only root filesystem.
"""

from __future__ import annotations

import ast
import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
TREES = sorted(str(p.parent.relative_to(MANIFESTS)) for p in MANIFESTS.rglob("kustomization.yaml"))
IMAGE_USER = 1000  # images/runtime/Dockerfile: useradd --uid 1000, USER 1000

Rules = dict[tuple[str, str], set[str]]
EXPECTED_ROLES: dict[str, Rules] = {
    "kfp-cicd-deployer": {("serving.kserve.io", "inferenceservices"): {"get", "create", "patch"}},
    "kfp-cicd-pytorchjob-launcher": {
        ("kubeflow.org", "pytorchjobs"): {"get", "create", "delete"},
        ("", "pods/log"): {"get"},
    },
}
# The modules whose kubernetes client calls each Role serves.
ROLE_SOURCES = {
    "kfp-cicd-deployer": REPO / "components" / "deploy" / "kube_api.py",
    "kfp-cicd-pytorchjob-launcher": REPO / "components" / "train_pytorchjob" / "job_runner.py",
}
CLIENT_CALL = re.compile(
    r"^(get|create|patch|delete|list|replace|read|watch)_namespaced_(custom_object|pod_log)$"
)
CALL_VERB = {
    "get": "get",
    "read": "get",
    "create": "create",
    "patch": "patch",
    "delete": "delete",
    "list": "list",
    "replace": "update",
    "watch": "watch",
}
BROAD_ROLES = {"cluster-admin", "admin", "edit"}


def render(tree: str) -> list[dict[str, Any]]:
    """``kubectl kustomize manifests/<tree>``: what a cluster would receive."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed; the manifests are rendered with the real kustomize")
    result = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS / tree)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{tree}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {tree: render(tree) for tree in TREES}


def role_rules(role: dict[str, Any]) -> Rules:
    """A Role's rules flattened to {(apiGroup, resource): verbs}."""
    rules: Rules = {}
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                rules.setdefault((group, resource), set()).update(rule.get("verbs", []))
    return rules


def rbac_problems(documents: list[dict[str, Any]]) -> list[str]:
    """What in ``documents`` is broader than least privilege (empty: nothing)."""
    problems = []
    for doc in documents:
        name = f"{doc['kind']} {doc['metadata']['name']}"
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            problems.append(f"{name}: cluster-wide RBAC; grant per namespace with a Role")
        if doc["kind"] in ("RoleBinding", "ClusterRoleBinding") and doc["roleRef"]["name"] in BROAD_ROLES:
            problems.append(f"{name}: binds the broad role {doc['roleRef']['name']!r}")
        for rule in doc.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if any("*" in value for value in rule.get(field, [])):
                    problems.append(f"{name}: wildcard in {field}: {rule[field]}")
            if {"secrets", "*"} & set(rule.get("resources", [])):
                problems.append(f"{name}: access to secrets ({rule.get('verbs')})")
            if {"escalate", "bind", "impersonate"} & set(rule.get("verbs", [])):
                problems.append(f"{name}: privilege-escalating verbs {rule['verbs']}")
    return problems


def verbs_called(source: str, group: str, plural: str) -> Rules:
    """{(apiGroup, resource): verbs} the kubernetes client calls in the Python ``source`` need."""
    needed: Rules = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (match := CLIENT_CALL.match(node.attr)):
            verb, kind = CALL_VERB[match.group(1)], match.group(2)
            key = (group, plural) if kind == "custom_object" else ("", "pods/log")
            needed.setdefault(key, set()).add(verb)
        if isinstance(node, ast.Attribute) and node.attr == "Watch":  # watch.Watch().stream(list_…)
            needed.setdefault((group, plural), set()).update({"list", "watch"})
    return needed


def test_roles_grant_exactly_the_expected_rules(rendered: dict[str, list[dict[str, Any]]]) -> None:
    roles = {
        doc["metadata"]["name"]: doc for docs in rendered.values() for doc in docs if doc["kind"] == "Role"
    }
    assert set(roles) == set(EXPECTED_ROLES)
    for name, expected in EXPECTED_ROLES.items():
        assert role_rules(roles[name]) == expected, name


def test_nothing_broader_than_least_privilege(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, documents in rendered.items():
        assert rbac_problems(documents) == [], tree
    bindings = [doc for docs in rendered.values() for doc in docs if doc["kind"] == "RoleBinding"]
    assert {b["roleRef"]["name"] for b in bindings} == set(EXPECTED_ROLES)
    assert all(b["roleRef"]["kind"] == "Role" for b in bindings)
    assert all(s["kind"] == "ServiceAccount" for b in bindings for s in b["subjects"])


def test_role_verbs_are_exactly_what_the_client_calls_need() -> None:
    from kfp_cicd.components.deploy import kube_api
    from kfp_cicd.components.train_pytorchjob import manifest

    constants = {
        "kfp-cicd-deployer": (kube_api.GROUP, kube_api.PLURAL),
        "kfp-cicd-pytorchjob-launcher": (manifest.GROUP, manifest.PLURAL),
    }
    for role, source in ROLE_SOURCES.items():
        assert verbs_called(source.read_text(), *constants[role]) == EXPECTED_ROLES[role], (
            f"{source.relative_to(REPO)} calls the API with other verbs than Role {role} grants: "
            "update manifests/ and EXPECTED_ROLES together"
        )


def test_the_rbac_checks_can_fail() -> None:
    role = {
        "kind": "Role",
        "metadata": {"name": "too-much"},
        "rules": [
            {"apiGroups": ["serving.kserve.io"], "resources": ["*"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
        ],
    }
    binding = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "admin"},
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
    }
    problems = " ".join(rbac_problems([role, binding]))
    assert "wildcard in resources" in problems and "access to secrets" in problems
    assert "cluster-wide RBAC" in problems and "'cluster-admin'" in problems
    calls = (
        "api.list_namespaced_custom_object(g, v, n, p)\napi.delete_namespaced_custom_object(g, v, n, p, x)"
    )
    assert verbs_called(calls, "g", "p") == {("g", "p"): {"list", "delete"}}


# --- pod security --------------------------------------------------------------------------------


def pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod spec) for every pod template a document carries (ServingRuntimes: their spec)."""
    kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec", {})
    if kind == "Pod":
        yield f"Pod {name}", spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield f"{kind} {name}", spec["template"]["spec"]
    elif kind == "CronJob":
        yield f"CronJob {name}", spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind in ("ServingRuntime", "ClusterServingRuntime"):
        yield f"{kind} {name}", spec  # no pod-level securityContext in this CRD: containers carry it
    elif kind == "PyTorchJob":
        for replica, replica_spec in spec["pytorchReplicaSpecs"].items():
            yield f"PyTorchJob {name} {replica}", replica_spec["template"]["spec"]


def pod_security_problems(where: str, pod: dict[str, Any]) -> list[str]:
    """What keeps a pod from the "restricted" Pod Security Standard with a read-only root filesystem."""
    problems = []
    pod_context = pod.get("securityContext", {})
    emptydirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in pod.get("initContainers", []) + pod.get("containers", []):
        at = f"{where} container {container['name']}"
        context = {**pod_context, **container.get("securityContext", {})}
        if context.get("runAsNonRoot") is not True:
            problems.append(f"{at}: runAsNonRoot must be true")
        if context.get("runAsUser") != IMAGE_USER:
            problems.append(f"{at}: runAsUser must be {IMAGE_USER} (the image's user)")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation must be false")
        if context.get("privileged"):
            problems.append(f"{at}: privileged")
        capabilities = context.get("capabilities", {})
        if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
            problems.append(f"{at}: capabilities must drop ALL and add none")
        if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{at}: seccompProfile must be RuntimeDefault")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem must be true")
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        if not tmp or tmp[0]["name"] not in emptydirs:
            problems.append(f"{at}: /tmp must be a writable emptyDir (the root filesystem is read-only)")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{where}: {field}")
    if any("hostPath" in volume for volume in pod.get("volumes", [])):
        problems.append(f"{where}: hostPath volume")
    return problems


def test_every_pod_template_in_manifests_is_restricted(rendered: dict[str, list[dict[str, Any]]]) -> None:
    checked = []
    for tree, documents in rendered.items():
        for doc in documents:
            for where, pod in pod_specs(doc):
                assert pod_security_problems(where, pod) == [], tree
                checked.append(where)
    assert "ClusterServingRuntime kfp-cicd-mlflow-pyfunc" in checked


def _pytorchjob(tmp_path: Path) -> dict[str, Any]:
    from kfp_cicd.components.train_pytorchjob.manifest import PyTorchJobRequest, build_pytorchjob

    return build_pytorchjob(
        PyTorchJobRequest(
            name="secure-job",
            namespace="kfp-cicd",
            image="ghcr.io/kfp-cicd/kfp-cicd-runtime:0.1.0",
            command=("python", "-c", "pass"),
            shared_pvc="shared-data",
            shared_mount_path=str(tmp_path),
            workers=2,
            gpus_per_worker=1,
        )
    )


def test_the_launchers_pytorchjob_pods_are_restricted(tmp_path: Path) -> None:
    job = _pytorchjob(tmp_path)
    pods = list(pod_specs(job))
    assert [where for where, _ in pods] == ["PyTorchJob secure-job Master", "PyTorchJob secure-job Worker"]
    for where, pod in pods:
        assert pod_security_problems(where, pod) == []
        assert pod["automountServiceAccountToken"] is False, "training pods never call the API"
        assert pod["securityContext"]["fsGroup"] == IMAGE_USER, "the shared volume must stay writable"
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["HOME"] == "/tmp"


def test_the_pytorchjob_with_its_security_context_satisfies_the_crd(tmp_path: Path, shared_dir: Path) -> None:
    from jsonschema import Draft7Validator

    crd = yaml.load(
        (shared_dir / "crds" / "kubeflow.org_pytorchjobs.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
    )
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    assert [e.message for e in Draft7Validator(schema).iter_errors(_pytorchjob(tmp_path))] == []


def test_the_pod_security_check_can_fail(rendered: dict[str, list[dict[str, Any]]]) -> None:
    runtime = copy.deepcopy(
        next(doc for doc in rendered["runtime"] if doc["kind"] == "ClusterServingRuntime")
    )
    container = runtime["spec"]["containers"][0]
    container["securityContext"].update(
        runAsUser=0,
        allowPrivilegeEscalation=True,
        readOnlyRootFilesystem=False,
        capabilities={"add": ["NET_ADMIN"]},
    )
    del container["securityContext"]["seccompProfile"]
    container["volumeMounts"] = []
    problems = " ".join(
        problem for where, pod in pod_specs(runtime) for problem in pod_security_problems(where, pod)
    )
    for expected in (
        "runAsUser must be 1000",
        "allowPrivilegeEscalation",
        "drop ALL",
        "seccompProfile",
        "readOnlyRootFilesystem",
        "/tmp must be a writable emptyDir",
    ):
        assert expected in problems


def test_the_namespace_enforces_the_restricted_pod_security_standard(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """KFP task pods get no read-only root filesystem from kfp-kubernetes: admission enforces the rest."""
    namespaces = [doc for docs in rendered.values() for doc in docs if doc["kind"] == "Namespace"]
    assert namespaces, "manifests/ must carry the namespace with its Pod Security labels"
    for namespace in namespaces:
        labels = namespace["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
