"""The users' GitHub Actions workflow is valid workflow YAML and ships what the pipelines reference.

Beyond the schema, the workflow's own step scripts are run here: the registry/tag step, the image
build step (``make images`` with a recording stand-in for ``docker``), the compile step, and the
KFP and Vertex deploy steps against the fake API servers of ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PIPELINES_YML = REPO / ".github" / "workflows" / "pipelines.yml"
SHA = "0123456789abcdef0123456789abcdef01234567"

# A stand-in for the docker CLI: records every call; `info` and builds succeed, `image inspect`
# answers like the engine does for a local image, `push` prints the reference.
FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  image) echo '[{"Config": {"Labels": {}}, "Size": 1000000}]' ;;
esac
exit 0
"""


def _schema() -> dict:
    """The GitHub workflow JSON schema that check-jsonschema vendors (from SchemaStore)."""
    vendor = pytest.importorskip(
        "check_jsonschema.builtin_schemas.vendor",
        reason="check-jsonschema (vendors the workflow schema) is not installed",
    )
    from importlib.resources import files

    return json.loads(files(vendor).joinpath("github-workflows.json").read_text())


def _load(path: Path) -> dict:
    """The workflow as JSON data; YAML 1.1 reads the key ``on`` as True, GitHub (and the schema) as "on"."""
    document = yaml.safe_load(path.read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


def _step(job: str, name: str) -> dict:
    steps = [s for s in _load(PIPELINES_YML)["jobs"][job]["steps"] if s.get("name") == name]
    assert len(steps) == 1, f"job {job!r} has no single step named {name!r}"
    return steps[0]


def _run_step(job: str, name: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    """A step's ``run`` script under ``bash -eo pipefail`` (the workflow's shell), in ``cwd``."""
    script = _step(job, name)["run"]
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{job}/{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _image_ref(tmp_path: Path, registry_variable: str = "") -> dict[str, str]:
    """Run the image-ref job's step as GitHub would and read its outputs."""
    output = tmp_path / "github-output"
    output.write_text("")
    env = {
        "GITHUB_OUTPUT": str(output),
        "GITHUB_SHA": SHA,
        "IMAGE_REGISTRY": registry_variable,
        "OWNER": "Some-Org",
    }
    _run_step("image-ref", "Registry and tag", env)
    return dict(line.split("=", 1) for line in output.read_text().splitlines() if line)


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
    workflow = _load(PIPELINES_YML)
    assert {"pull_request", "push"} <= set(workflow["on"])
    assert workflow["defaults"]["run"]["shell"] == "bash"  # -eo pipefail: `… | tee` fails with kfp-cicd
    steps = " ".join(step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    assert "ruff check" in steps and "compile --check" in steps and "pytest" in steps
    jobs = workflow["jobs"]
    assert "refs/heads/main" in jobs["image-ref"]["if"]
    assert jobs["images"]["needs"] == ["image-ref"]
    for job in ("kubeflow", "vertex"):
        assert {"test", "audit", "image-ref", "images"} <= set(jobs[job]["needs"])  # never unbuilt images
    ship = yaml.safe_dump(jobs)
    assert "secrets.KFP_TOKEN" in ship and "KFP_CICD_KFP_TOKEN" in ship
    for variable in ("TRAIN_DATA", "EVAL_DATA", "LABEL_COLUMN", "MLFLOW_TRACKING_URI", "PRODUCTION_DATA"):
        for job in ("kubeflow", "vertex"):
            assert jobs[job]["env"][variable] == f"${{{{ vars.{variable} }}}}"


def test_image_ref_is_lower_case_and_names_the_revision(tmp_path: Path) -> None:
    outputs = _image_ref(tmp_path)
    assert outputs == {"registry": "ghcr.io/some-org", "host": "ghcr.io", "tag": f"sha-{SHA[:12]}"}
    outputs = _image_ref(tmp_path, "europe-west4-docker.pkg.dev/My-Proj/kfp-cicd/")
    assert outputs["registry"] == "europe-west4-docker.pkg.dev/my-proj/kfp-cicd"
    assert outputs["host"] == "europe-west4-docker.pkg.dev"


def _pushed_and_built(tmp_path: Path, registry: str, tag: str) -> tuple[list[str], list[str]]:
    """Run the images job's build step with the recording docker; the refs it pushed and built."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "docker.log"
    log.write_text("")
    job_env = _load(PIPELINES_YML)["jobs"]["images"]["env"]
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DOCKER_LOG": str(log),
        "REGISTRY": registry,
        "TAG": tag,
        "IMAGE_TOOL": job_env["IMAGE_TOOL"],
    }
    _run_step("images", "Build and push", env)
    calls = [line.split() for line in log.read_text().splitlines()]
    pushed = [call[1] for call in calls if call[:1] == ["push"]]
    built = [call[call.index("-t") + 1] for call in calls if "-t" in call and call[0] in ("build", "buildx")]
    return pushed, built


def _compiled_refs(compiled: Path, registry: str) -> set[str]:
    """Every image reference under the registry in the compiled specs (executors, constants, platform)."""
    pattern = re.compile(re.escape(registry) + r"/kfp-cicd-[a-z0-9-]+:[A-Za-z0-9_][A-Za-z0-9_.-]*")
    refs: set[str] = set()
    for spec in sorted(compiled.rglob("*.yaml")):
        refs.update(pattern.findall(spec.read_text()))
    return refs


@pytest.mark.parametrize("job", ["kubeflow", "vertex"])
def test_compiled_image_references_equal_the_pushed_tags(tmp_path: Path, job: str) -> None:
    outputs = _image_ref(tmp_path)
    registry, tag = outputs["registry"], outputs["tag"]
    pushed, built = _pushed_and_built(tmp_path, registry, tag)
    assert pushed and sorted(pushed) == sorted(built), "every image built is pushed, and only those"
    assert any(ref.endswith("-cuda") for ref in pushed), "the CUDA runtime is built and pushed too"

    compiled = tmp_path / "compiled"
    _run_step(job, "Compile", {"REGISTRY": registry, "TAG": tag, "COMPILED": str(compiled)})
    referenced = _compiled_refs(compiled / "kubeflow", registry) | _compiled_refs(
        compiled / "vertex", registry
    )
    assert referenced, f"the compile step wrote no reference under {registry}"
    assert referenced == set(pushed), (
        f"compiled but not pushed: {sorted(referenced - set(pushed))}; "
        f"pushed but never referenced: {sorted(set(pushed) - referenced)}"
    )


def test_pushed_tag_comparison_can_fail(tmp_path: Path) -> None:
    """The comparison sees a reference the build does not push (a compile against another tag)."""
    pushed, _ = _pushed_and_built(tmp_path, "ghcr.io/some-org", "sha-aaaaaaaaaaaa")
    compiled = tmp_path / "compiled"
    _run_step(
        "kubeflow",
        "Compile",
        {"REGISTRY": "ghcr.io/some-org", "TAG": "sha-bbbbbbbbbbbb", "COMPILED": str(compiled)},
    )
    assert _compiled_refs(compiled, "ghcr.io/some-org").isdisjoint(pushed)


def _data_env(job: str) -> dict[str, str]:
    values = {
        "TRAIN_DATA": "s3://data/train.csv",
        "EVAL_DATA": "s3://data/eval.csv",
        "LABEL_COLUMN": "default",
        "MODEL_NAME": "credit-default",
        "MLFLOW_TRACKING_URI": "http://mlflow.mlflow:5000",
        "PRODUCTION_DATA": "s3://data/production.csv",
    }
    if job == "vertex":
        values = {k: v.replace("s3://", "gs://") for k, v in values.items()}
        values["MLFLOW_TRACKING_URI"] = "https://mlflow.example.com"
        values["VERTEX_ENDPOINT"] = "projects/my-project/locations/europe-west4/endpoints/credit-default"
        values["DEPLOY_TARGET"] = "vertex-endpoint"
    return values


def test_unconfigured_deploy_job_skips_and_half_configured_one_fails(tmp_path: Path) -> None:
    output = tmp_path / "out"
    for job, target in (("kubeflow", "KFP_CICD_KFP_HOST"), ("vertex", "GOOGLE_CLOUD_PROJECT")):
        output.write_text("")
        result = _run_step(job, "Configuration", {"GITHUB_OUTPUT": str(output), target: ""})
        assert "::notice::" in result.stdout and output.read_text() == "configured=false\n"
        script = _step(job, "Configuration")["run"]
        env = {**os.environ, "GITHUB_OUTPUT": str(output), target: "x", **_data_env(job)}
        env.update({"LABEL_COLUMN": "", "GOOGLE_CLOUD_REGION": "r", "PIPELINE_ROOT": "gs://b/r"})
        refused = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True, text=True
        )
        assert refused.returncode == 1 and "LABEL_COLUMN" in refused.stdout


@pytest.fixture
def compiled_for_ci(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ci") / "compiled"
    _run_step(
        "kubeflow",
        "Compile",
        {"REGISTRY": "ghcr.io/some-org", "TAG": f"sha-{SHA[:12]}", "COMPILED": str(out)},
    )
    return out


def test_kubeflow_job_uploads_and_replaces_both_recurring_runs(kfp_api, compiled_for_ci, tmp_path) -> None:
    env = {
        "KFP_CICD_KFP_HOST": kfp_api.url,
        "KFP_NAMESPACE": "",
        "COMPILED": str(compiled_for_ci),
        "KFP_TRAINING_CRON": "0 3 * * *",
        "KFP_MONITORING_CRON": "0 6 * * *",
        **_data_env("kubeflow"),
    }
    venv = str(REPO / ".venv")
    (tmp_path / ".venv").symlink_to(venv)
    for _ in range(2):  # a second push of the same revision replaces, never duplicates
        _run_step("kubeflow", "Upload", env, cwd=tmp_path)
        _run_step("kubeflow", "Recurring runs of both pipelines", env, cwd=tmp_path)
    uploaded = {u["pipeline"]: u for u in json.loads((tmp_path / "upload.json").read_text())}
    assert set(uploaded) == {"kfp-cicd-training", "kfp-cicd-monitoring"}
    recurring = {r["display_name"]: r for r in kfp_api.recurring_runs.values()}
    assert set(recurring) == {"kfp-cicd-training nightly", "kfp-cicd-monitoring nightly"}
    for pipeline, cron in (("kfp-cicd-training", "0 0 3 * * *"), ("kfp-cicd-monitoring", "0 0 6 * * *")):
        run = recurring[f"{pipeline} nightly"]
        assert run["pipeline_version_reference"]["pipeline_version_id"] == uploaded[pipeline]["version_id"]
        assert run["trigger"]["cron_schedule"]["cron"] == cron
        params = run["runtime_config"]["parameters"]
        assert params["label_column"] == "default" and params["train_data"] == "s3://data/train.csv"
        assert ("production_data" in params) == (pipeline == "kfp-cicd-monitoring")
    images = {
        executor["container"]["image"]
        for spec in (compiled_for_ci / "kubeflow").glob("*.yaml")
        for executor in next(yaml.safe_load_all(spec.read_text()))["deploymentSpec"]["executors"].values()
    }
    assert images and all(i.startswith("ghcr.io/some-org/") and f"sha-{SHA[:12]}" in i for i in images)


def test_vertex_job_replaces_both_schedules(vertex_api, compiled_for_ci, tmp_path) -> None:
    vertex_api.buckets.add("pipelines-bucket")
    env = {
        "GOOGLE_CLOUD_PROJECT": vertex_api.project,
        "GOOGLE_CLOUD_REGION": vertex_api.region,
        "PIPELINE_ROOT": "gs://pipelines-bucket/runs",
        "RUN_SERVICE_ACCOUNT": "runner@my-proj.iam.gserviceaccount.com",
        "COMPILED": str(compiled_for_ci),
        "VERTEX_TRAINING_CRON": "TZ=Europe/Berlin 0 3 * * *",
        "VERTEX_MONITORING_CRON": "TZ=Europe/Berlin 0 6 * * *",
        "KFP_CICD_CODE_REVISION": SHA,
        **_data_env("vertex"),
    }
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    # The step as written, pointed at the fake (the workflow relies on ADC and the public endpoint).
    script = _step("vertex", "Schedules of both pipelines")["run"].replace(
        "vertex schedule --replace", f"vertex schedule --api-endpoint {vertex_api.url} --anonymous --replace"
    )
    for _ in range(2):
        result = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    schedules = {s["displayName"]: s for s in vertex_api.schedules.values()}
    assert set(schedules) == {"kfp-cicd-training nightly", "kfp-cicd-monitoring nightly"}
    for pipeline, cron in (
        ("training", "TZ=Europe/Berlin 0 3 * * *"),
        ("monitoring", "TZ=Europe/Berlin 0 6 * * *"),
    ):
        schedule = schedules[f"kfp-cicd-{pipeline} nightly"]
        assert schedule["cron"] == cron and schedule["maxConcurrentRunCount"] in (1, "1")
        job = schedule["createPipelineJobRequest"]["pipelineJob"]
        values = job["runtimeConfig"]["parameterValues"]
        assert values["label_column"] == "default" and values["eval_data"] == "gs://data/eval.csv"
        assert ("production_data" in values) == (pipeline == "monitoring")
        assert job["serviceAccount"] == "runner@my-proj.iam.gserviceaccount.com"
