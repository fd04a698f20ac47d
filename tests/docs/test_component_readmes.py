"""Every component folder has a valid metadata.yaml, tests beside it, and a README whose generated
reference is up to date (``python -m kfp_cicd.cli.component_readmes --check``) and whose usage
snippets compile."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from kfp import compiler

from kfp_cicd.cli import component_readmes as readmes

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"
EXPECTED = {"deploy", "evaluate", "monitor", "register", "train", "train_pytorchjob", "validate_data"}
FOLDERS = readmes.component_folders(COMPONENTS)


def _generated_part(name: str) -> str:
    text = (COMPONENTS / name / "README.md").read_text(encoding="utf-8")
    return text[text.index(readmes.START) : text.index(readmes.END)]


def _locked(lock: Path) -> set[str]:
    """Normalised distribution names pinned in a lock file."""
    names = re.findall(r"(?m)^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(encoding="utf-8"))
    return {re.sub(r"[-_.]+", "-", name).lower() for name in names}


def test_every_component_folder_is_found() -> None:
    assert set(FOLDERS) == EXPECTED


@pytest.mark.parametrize("name", FOLDERS)
def test_metadata_is_valid(name: str) -> None:
    assert readmes.metadata_problems(name, COMPONENTS) == []


@pytest.mark.parametrize("name", FOLDERS)
def test_metadata_dependencies_are_pinned_in_the_lock_files(name: str) -> None:
    dependencies = readmes.load_metadata(name, COMPONENTS)["dependencies"]
    for key, lock in (("python", "main.lock"), ("tfdv_environment", "tfdv.lock")):
        locked = _locked(ROOT / "requirements" / lock)
        unknown = [d for d in dependencies.get(key, []) if re.sub(r"[-_.]+", "-", d).lower() not in locked]
        assert unknown == [], f"{name}: dependencies.{key} not in requirements/{lock}"


@pytest.mark.parametrize("name", FOLDERS)
def test_tests_sit_beside_the_component(name: str) -> None:
    tests = COMPONENTS / name / "tests"
    assert "python_func" in (tests / "test_component_unit.py").read_text()
    local = (tests / "test_component_local.py").read_text()
    assert "kfp_local" in local or "run_with_imported_artifacts" in local
    assert not (tests / "__init__.py").exists(), "tests/ must not become an installed package"
    verified = readmes.load_metadata(name, COMPONENTS)["last_verified"]["tests"]
    assert f"components/{name}/tests/test_component_local.py" in verified


def test_readmes_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert readmes.main(["--check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", FOLDERS)
def test_the_readme_shows_the_metadata(name: str) -> None:
    metadata = readmes.load_metadata(name, COMPONENTS)
    generated = _generated_part(name)
    assert f"- **Stability**: {metadata['stability']}" in generated
    assert f"- **Last verified**: {metadata['last_verified']['date']}" in generated
    for image in metadata["images"]:
        assert f"`kfp-cicd-{image}`" in generated or f"  - `{image}`:" in generated
    for entry in metadata["components"]:
        assert f"## `{entry['function']}`" in generated


@pytest.mark.parametrize("name", FOLDERS)
def test_the_usage_snippets_compile(name: str, tmp_path: Path) -> None:
    snippets = re.findall(r"```python\n(.*?)```", _generated_part(name), flags=re.DOTALL)
    assert snippets
    for number, snippet in enumerate(snippets):
        namespace: dict[str, object] = {}
        exec(compile(snippet, f"{name}-README-snippet-{number}", "exec", dont_inherit=True), namespace)
        compiler.Compiler().compile(namespace["example"], str(tmp_path / f"{number}.yaml"))
        assert (tmp_path / f"{number}.yaml").stat().st_size > 0


def _copy(name: str, root: Path) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for file in ("README.md", "metadata.yaml"):
        shutil.copy(COMPONENTS / name / file, folder / file)
    return folder


def test_a_stale_readme_is_caught_and_regenerating_keeps_the_notes(tmp_path: Path) -> None:
    folder = _copy("register", tmp_path / "components")
    readme = folder / "README.md"
    original = "| `model_name` | `str` | required |"
    edited = readme.read_text().replace(original, "| `model_name` | `int` | `3` |")
    readme.write_text(edited + "\nA hand-written note.\n")
    assert readmes.stale_readmes(["register"], folder.parent) == ["register"]

    assert readmes.write_readmes(["register"], folder.parent) == ["register"]
    assert readmes.stale_readmes(["register"], folder.parent) == []
    regenerated = readme.read_text()
    assert original in regenerated
    assert regenerated.endswith("\nA hand-written note.\n")
    assert "## Design notes" in regenerated.split(readmes.END)[1]


def test_a_readme_without_markers_gets_the_reference_on_top(tmp_path: Path) -> None:
    folder = _copy("register", tmp_path / "components")
    (folder / "README.md").write_text("## Notes\n\nKeep me.\n")
    readmes.write_readmes(["register"], folder.parent)
    text = (folder / "README.md").read_text()
    assert text.startswith(readmes.START) and text.endswith(f"{readmes.END}\n\n## Notes\n\nKeep me.\n")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.pop("stability"), "lacks ['stability']"),
        (lambda m: m.update(stability="gamma"), "stability 'gamma'"),
        (lambda m: m.update(images={"gpu": "x"}), "images must map"),
        (lambda m: m["components"][0].update(image="predictor"), "is not in images"),
        (lambda m: m["components"][0].update(function="other"), "builds register_model"),
        (lambda m: m.update(description="Something else."), "docstring's first line"),
        (lambda m: m["last_verified"].update(tests=["components/register/tests/nope.py"]), "do not exist"),
        (lambda m: m["last_verified"].update(date="yesterday"), "must be a date"),
        (lambda m: m["dependencies"].update(python=["mlflow"]), "kfp included"),
    ],
)
def test_invalid_metadata_is_reported(tmp_path: Path, change, problem: str) -> None:
    folder = _copy("register", tmp_path / "components")
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    change(metadata)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    problems = readmes.metadata_problems("register", folder.parent)
    assert any(problem in p for p in problems), problems


def test_a_variant_must_load_and_name_a_component(tmp_path: Path) -> None:
    folder = _copy("train", tmp_path / "components")
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    metadata["variants"] = [{"component": "train_modle", "builder": "kfp_cicd.components.train.vertex:nope"}]
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    problems = readmes.metadata_problems("train", folder.parent)
    assert any("cannot be loaded" in p for p in problems) and any("names no component" in p for p in problems)


def test_a_missing_metadata_file_fails_the_check(tmp_path: Path) -> None:
    folder = _copy("register", tmp_path / "components")
    (folder / "metadata.yaml").unlink()
    assert readmes.metadata_problems("register", folder.parent) == ["register: metadata.yaml is missing"]
