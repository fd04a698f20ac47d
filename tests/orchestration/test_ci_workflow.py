"""The users' GitHub Actions workflow is valid workflow YAML and does what the docs promise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted((Path(__file__).resolve().parents[2] / ".github" / "workflows").glob("*.yml"))


def _schema() -> dict:
    """The GitHub workflow JSON schema that check-jsonschema vendors (from SchemaStore)."""
    vendor = pytest.importorskip(
        "check_jsonschema.builtin_schemas.vendor",
        reason="check-jsonschema (vendors the workflow schema) is not installed",
    )
    import json
    from importlib.resources import files

    return json.loads(files(vendor).joinpath("github-workflows.json").read_text())


def _load(path: Path) -> dict:
    """The workflow as JSON data; YAML 1.1 reads the key ``on`` as True, GitHub (and the schema) as "on"."""
    document = yaml.safe_load(path.read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(workflow: Path) -> None:
    import jsonschema

    schema = _schema()
    document = _load(workflow)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_schema_check_can_fail() -> None:
    import jsonschema

    broken = {"on": "push", "jobs": {"test": {"steps": [{"run": "true"}]}}}  # no runs-on
    assert list(jsonschema.Draft7Validator(_schema()).iter_errors(broken))


def test_pull_requests_test_and_main_ships() -> None:
    workflow = _load(WORKFLOWS[0])
    assert {"pull_request", "push"} <= set(workflow["on"])
    steps = " ".join(step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    assert "ruff check" in steps and "compile --check" in steps and "pytest" in steps
    for job in ("kubeflow", "vertex"):
        assert "refs/heads/main" in workflow["jobs"][job]["if"]
    ship = yaml.safe_dump(workflow["jobs"])
    assert "kfp-cicd upload" in ship and "kfp-cicd vertex schedule --replace" in ship
    assert "secrets.KFP_TOKEN" in ship and "KFP_CICD_KFP_TOKEN" in ship
