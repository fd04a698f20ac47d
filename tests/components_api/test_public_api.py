"""``from kfp_cicd.components import validate_data_op, ...``: the suite's public import surface, its
default images (the package version), rebinding to another registry and tag, and lazy loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp.dsl.python_component import PythonComponent

import kfp_cicd.components as suite_module
from kfp_cicd.components import OP_NAMES, OP_SPECS, ops
from kfp_cicd.errors import DataError
from kfp_cicd.images import DEFAULT_REGISTRY, ImageRefs
from kfp_cicd.version import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]


def _image(op: PythonComponent) -> str:
    return op.component_spec.implementation.container.image


def test_the_documented_import_line_works() -> None:
    from kfp_cicd.components import deploy_op, evaluate_op, register_op, train_op, validate_data_op

    for op in (validate_data_op, train_op, evaluate_op, register_op, deploy_op):
        assert isinstance(op, PythonComponent)
    assert validate_data_op.python_func.__name__ == "validate_data"
    assert deploy_op.python_func.__name__ == "deploy_model"


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda s: s.name)
def test_default_images_are_the_package_versions(spec) -> None:
    op = getattr(suite_module, spec.name)
    assert _image(op) == f"{DEFAULT_REGISTRY}/kfp-cicd-{spec.image}:{__version__}"
    assert getattr(suite_module, spec.name) is op, "built once"


def test_ops_rebinds_every_op_to_another_registry_and_tag() -> None:
    default, rebound = ops(), ops(registry="europe-docker.pkg.dev/p/ml/", tag="2026.1")
    assert rebound.images == ImageRefs("europe-docker.pkg.dev/p/ml", "2026.1")
    for spec in OP_SPECS:
        op = getattr(rebound, spec.name)
        assert _image(op) == f"europe-docker.pkg.dev/p/ml/kfp-cicd-{spec.image}:2026.1"
        same = getattr(default, spec.name).component_spec
        assert op.component_spec.inputs == same.inputs and op.component_spec.outputs == same.outputs
    assert set(rebound.by_name()) == set(OP_NAMES)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"registry": "https://ghcr.io/x"}, "registry"), ({"tag": "-bad tag"}, "tag")],
)
def test_a_bad_registry_or_tag_is_refused(arguments: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        ops(**arguments)


def test_an_unknown_op_names_the_ops() -> None:
    with pytest.raises(AttributeError, match="validate_data_op"):
        _ = ops().validate_op
    with pytest.raises(AttributeError):
        _ = suite_module.validate_op
    assert set(OP_NAMES) <= set(dir(suite_module)) and set(OP_NAMES) <= set(suite_module.__all__)


def test_importing_the_suite_or_one_component_imports_no_other() -> None:
    code = (
        "import sys, kfp_cicd.components\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('kfp_cicd.components.'))\n"
        "assert loaded() == [], loaded()\n"
        "from kfp_cicd.components import register_op\n"
        "assert all(m.startswith('kfp_cicd.components.register') for m in loaded()), loaded()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda s: s.name)
def test_each_op_is_its_folders_component_on_its_image(spec) -> None:
    """The suite and components/<folder>/metadata.yaml agree on the builder and the image."""
    metadata = yaml.safe_load((REPO_ROOT / "components" / spec.folder / "metadata.yaml").read_text())
    entries = {entry["builder"]: entry for entry in metadata["components"]}
    assert entries[spec.builder]["image"] == spec.image
    assert getattr(ops(), spec.name).python_func.__name__ == entries[spec.builder]["function"]


def test_every_component_of_every_folder_is_in_the_suite() -> None:
    listed = {
        (folder.name, entry["builder"])
        for folder in (REPO_ROOT / "components").iterdir()
        if (folder / "metadata.yaml").is_file()
        for entry in yaml.safe_load((folder / "metadata.yaml").read_text())["components"]
    }
    assert listed == {(spec.folder, spec.builder) for spec in OP_SPECS}


def test_the_readme_section_compiles(tmp_path: Path) -> None:
    from kfp import compiler

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use the components in your own pipeline", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README-own-pipeline", "exec", dont_inherit=True), namespace)
    compiler.Compiler().compile(namespace["my_pipeline"], str(tmp_path / "my_pipeline.yaml"))
    assert "kfp-cicd-validation" in (tmp_path / "my_pipeline.yaml").read_text()
