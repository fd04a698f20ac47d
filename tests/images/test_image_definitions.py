"""Fast checks of the image definitions (no container tool needed): references, Dockerfile hygiene,
lock files, and the build script's errors."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

from kfp_cicd.images import DOCKERFILES, ImageRefs

REPO_ROOT = Path(__file__).resolve().parents[2]
OCI_LABELS = (
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.version",
)


def stages(dockerfile: str) -> list[str]:
    """The Dockerfile's text split at each FROM (index 0: what precedes the first FROM)."""
    return re.split(r"(?m)^FROM ", (REPO_ROOT / dockerfile).read_text())


def pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return {
        name.lower().replace("_", "-"): version
        for name, _, version in (
            line.partition("==") for line in lines if "==" in line and not line.startswith("#")
        )
    }


def compiled_refs(tmp_path: Path, *options: str) -> set[str]:
    """Every image reference in what ``kfp-cicd compile --image-registry registry.example/ml
    --image-tag 9.9.9 OPTIONS`` writes (executor images, worker pools, constants such as the predictor)."""
    from kfp_cicd.cli import main

    command = ["compile", "--image-registry", "registry.example/ml", "--image-tag", "9.9.9"]
    assert main([*command, "--output-dir", str(tmp_path), *options]) == 0
    pattern = re.compile(r"registry\.example/ml/kfp-cicd-[a-z]+:[\w.-]+")
    return {ref for path in tmp_path.rglob("*.yaml") for ref in pattern.findall(path.read_text())}


@pytest.mark.parametrize(("options", "cpu_only"), [((), False), (("--gpus", "0"), True)])
def test_make_images_builds_exactly_what_compile_references(
    options: tuple, cpu_only: bool, tmp_path: Path, build_module
) -> None:
    """`kfp-cicd compile --image-registry R --image-tag T` names exactly the images `make images` builds
    as R/…:T (the CUDA runtime included; without it for `--gpus 0` and `--cpu-only`)."""
    refs = ImageRefs("registry.example/ml", "9.9.9")
    builder = build_module.Builder("/usr/bin/buildah")
    built = set()
    for image in build_module.select_builds(refs, cpu_only=cpu_only):
        command = builder.build_command(image.dockerfile, image.ref, image.build_args, {}, [])
        built.add(command[command.index("-t") + 1])
    assert compiled_refs(tmp_path, *options) == built
    assert (refs.runtime_cuda in built) is not cpu_only


def test_the_cuda_variant_is_one_rule_for_compile_and_build(build_module) -> None:
    refs = ImageRefs("registry.example/ml", "9.9.9")
    assert refs.runtime_cuda == "registry.example/ml/kfp-cicd-runtime:9.9.9-cuda" == refs.training(1)
    assert refs.training(0) == refs.runtime
    assert [b.key for b in build_module.select_builds(refs, gpu=True)] == ["runtime-cuda"]
    assert [b.ref for b in build_module.select_builds(refs, "runtime-cuda")] == [refs.runtime_cuda]
    cuda = build_module.select_builds(refs, gpu=True)[0]
    assert cuda.dockerfile == DOCKERFILES["runtime"] and cuda.build_args["TORCH_VARIANT"] == "cuda"
    with pytest.raises(ValueError, match="no 'cuda' variant; the variants are runtime-cuda"):
        refs.ref("predictor", "cuda")
    with pytest.raises(build_module.BuildError, match=r"unknown image.*predictor-cuda"):
        build_module.select_builds(refs, "predictor-cuda")


def test_unknown_image_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown image 'gpu'.*runtime, validation, predictor"):
        ImageRefs().ref("gpu")


def test_missing_image_tool_says_how_to_install(build_module, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("IMAGE_TOOL", raising=False)
    with pytest.raises(build_module.BuildError, match="apt-get install -y buildah"):
        build_module.find_builder()
    assert build_module.main(["--only", "runtime"]) == 1


def test_unknown_image_on_the_command_line_is_refused(build_module, capsys) -> None:
    assert build_module.main(["--only", "runtime,tfx"]) == 1
    assert "unknown image(s) tfx" in capsys.readouterr().err


def test_inputs_hash_follows_build_arguments(build_module) -> None:
    cpu = build_module.inputs_hash("runtime", {"TORCH_VARIANT": "cpu"})
    assert cpu == build_module.inputs_hash("runtime", {"TORCH_VARIANT": "cpu"})
    assert cpu != build_module.inputs_hash("runtime", {"TORCH_VARIANT": "cuda"})
    assert cpu != build_module.inputs_hash("predictor", {"TORCH_VARIANT": "cpu"})


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_pins_base_builds_in_a_stage_and_runs_non_root(name: str) -> None:
    preamble, build, runtime = stages(DOCKERFILES[name])
    base = re.search(r"(?m)^ARG BASE_IMAGE=(\S+)$", preamble)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1)), "an exact tag"
    assert build.startswith("${BASE_IMAGE} AS build") and runtime.startswith("${BASE_IMAGE}\n")
    assert "pip install" in build
    for leftover in ("pip install", "apt-get", "uv ", "gcc"):
        assert leftover not in runtime, f"{leftover!r} in the shipped stage of {name}"
    assert re.findall(r"(?m)^USER (\S+)", runtime) == ["1000:1000"]
    for label in OCI_LABELS:
        assert f"{label}=" in runtime


def test_dockerignore_admits_exactly_what_the_builds_copy() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def admitted(path: str) -> bool:
        verdict = True
        for pattern in patterns:
            if fnmatch.fnmatch(path, pattern.lstrip("!")):
                verdict = pattern.startswith("!")
        return verdict

    copied = set()
    for dockerfile in DOCKERFILES.values():
        for source in re.findall(r"(?m)^COPY (?!--from)(\S+) ", (REPO_ROOT / dockerfile).read_text()):
            path = REPO_ROOT / source
            assert path.exists(), f"{dockerfile} copies {source}, which does not exist"
            files = (
                [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
            )
            copied |= {str(p.relative_to(REPO_ROOT)) for p in files}
    assert copied and all(admitted(p) for p in copied), sorted(p for p in copied if not admitted(p))
    assert not admitted(".venv/bin/python") and not admitted("tests/conftest.py")


def test_the_predictor_image_carries_the_library_only(build_module) -> None:
    """The predictor copies kfp_cicd/ alone (no components/, no pipelines/) and removes the application
    modules before installing it; nothing it keeps imports kfp, which serving.lock does not install."""
    assert build_module.copied_inputs("predictor") == [
        "requirements/serving.lock",
        "setup.py",
        "README.md",
        "kfp_cicd",
    ]
    dockerfile = (REPO_ROOT / DOCKERFILES["predictor"]).read_text()
    removed = re.search(r"(?ms)^RUN rm -r (.*?)&&", dockerfile)
    assert removed, "the predictor's Dockerfile removes the application modules before installing"
    removed_paths = [REPO_ROOT / word for word in removed.group(1).split() if word.startswith("kfp_cicd/")]
    assert all(path.exists() for path in removed_paths), removed.group(1)
    kept = [
        path
        for path in (REPO_ROOT / "kfp_cicd").rglob("*.py")
        if not any(path == gone or gone in path.parents for gone in removed_paths)
    ]
    needs_kfp = set()
    for path in kept:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(name.split(".")[0] in ("kfp", "google_cloud_pipeline_components") for name in names):
                needs_kfp.add(str(path.relative_to(REPO_ROOT)))
    assert kept and not needs_kfp, sorted(needs_kfp)


@pytest.mark.parametrize("lock", ["requirements/serving.lock", "images/validation/kfp-env.lock"])
def test_image_locks_pin_main_lock_versions(lock: str) -> None:
    """The image-only locks hold the very versions the tests run (torch: its CPU build of them)."""
    main, image = pins(REPO_ROOT / "requirements" / "main.lock"), pins(REPO_ROOT / lock)
    assert image
    different = {
        name: version
        for name, version in image.items()
        if main.get(name) != version.removesuffix("+cpu") and name != "setuptools"
    }
    assert different == {}


def test_serving_lock_holds_no_pipeline_packages() -> None:
    serving = pins(REPO_ROOT / "requirements" / "serving.lock")
    assert {"kserve", "mlflow-skinny", "torch", "scikit-learn", "skops"} <= set(serving)
    assert set(serving).isdisjoint(
        {"kfp", "google-cloud-pipeline-components", "google-cloud-aiplatform", "mlflow"}
    )
    assert serving["torch"].endswith("+cpu"), "the predictor never installs the CUDA torch"


def test_ci_runs_the_image_test_after_the_suite_and_never_the_cuda_build() -> None:
    """.ci/run: `make test`, then the tools the image test needs, then the image test with its opt-in;
    the CUDA image's own opt-in never (docs/reliability.md, "Images": timing and budget)."""
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    suite = lines.index("make test")
    install = next(i for i, line in enumerate(lines) if "apt-get install -y buildah debootstrap" in line)
    image_test = next(i for i, line in enumerate(lines) if "-m images tests/images/" in line)
    assert suite < install < image_test
    assert lines[image_test].startswith("KFP_CICD_IMAGE_TESTS=1 ")
    assert "KFP_CICD_CUDA_IMAGE_TESTS" not in (REPO_ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in lines, "a failing suite or image test fails CI"
