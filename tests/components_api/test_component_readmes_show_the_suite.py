"""Each component README shows how to get its op: the import line and the compiled YAML's path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from kfp_cicd.cli import component_readmes as readmes
from kfp_cicd.components import OP_SPECS, OpSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = REPO_ROOT / "components"


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda s: s.name)
def test_the_readme_shows_the_import_line_and_the_yaml(spec: OpSpec) -> None:
    text = (COMPONENTS / spec.folder / "README.md").read_text(encoding="utf-8")
    generated = text[text.index(readmes.START) : text.index(readmes.END)]
    yaml_path = f"compiled/components/{spec.yaml_name}"

    assert f"from kfp_cicd.components import {spec.name}" in generated
    assert f"`{yaml_path}`" in generated and (REPO_ROOT / yaml_path).is_file()
    assert f"    {spec.name}(" in generated, "the usage snippet calls the op"


def test_a_builder_without_an_op_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "components" / "monitor"
    folder.mkdir(parents=True)
    shutil.copy(COMPONENTS / "monitor" / "metadata.yaml", folder / "metadata.yaml")
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    metadata["components"][1]["image"] = "validation"
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))

    problems = readmes.metadata_problems("monitor", folder.parent)
    assert any("monitoring_verdict_op runs on 'runtime', metadata says 'validation'" in p for p in problems)
    assert readmes.suite_op("monitor", "build_nothing") is None
