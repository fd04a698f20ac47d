"""docs/platforms/kubeflow.md lists every KFP API call the orchestration code makes, with its RBAC."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "platforms" / "kubeflow.md"
SOURCES = [REPO / "kfp_cicd" / "orchestration" / name for name in ("kfp_pipelines.py", "kfp_connection.py")]


def _client_calls() -> set[str]:
    calls: set[str] = set()
    for source in SOURCES:
        calls.update(re.findall(r"client\.([a-z][a-z_]+)\b", source.read_text()))
        calls.update(re.findall(r"self\.client\.([a-z][a-z_]+)", source.read_text()))
    return {c for c in calls if not c.startswith("_")} | {"get_kfp_healthz"}


def test_every_kfp_client_call_has_a_row() -> None:
    table = [line for line in DOC.read_text().splitlines() if line.startswith("| ")]
    documented = {name for line in table for name in re.findall(r"`([a-z_]+)`", line.split("|")[2])}
    missing = _client_calls() - documented
    assert not missing, f"kfp.Client calls without a permission row in {DOC.name}: {sorted(missing)}"


def test_the_example_role_covers_what_the_workflow_runs() -> None:
    text = DOC.read_text()
    role = text[text.index("kind: Role\n") : text.index("kind: RoleBinding")]
    assert "resources: [pipelines]\n    verbs: [get, list, create]" in role
    assert "resources: [experiments]\n    verbs: [list, create]" in role
    assert "resources: [jobs]\n    verbs: [list, create, delete]" in role  # schedule --replace
    workflow = (REPO / ".github" / "workflows" / "pipelines.yml").read_text()
    assert "kfp-cicd upload" in workflow and "kfp-cicd schedule" in workflow and "--replace" in workflow
    assert "kfp-cicd submit" not in workflow  # runs: create/get stay out of the CI role
