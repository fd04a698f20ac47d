"""The committed component YAMLs (compiled/components/): one per op, loadable, and the same interface
as the Python op they come from. Everything expected is read from the ops, never written here."""

from __future__ import annotations

import inspect
import shutil
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import components

from kfp_cicd.cli import main
from kfp_cicd.compiler import COMPONENTS_SUBDIR, compile_components, stale_components
from kfp_cicd.components import OP_SPECS, OpSpec, ops
from kfp_cicd.images import ImageRefs

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "compiled" / COMPONENTS_SUBDIR
SUITE = ops()


def interface(component: Any) -> dict[str, dict[str, tuple]]:
    """A component's inputs and outputs: name -> (type, default, optional) / name -> (type,)."""
    spec = component.component_spec
    return {
        "inputs": {n: (i.type, i.default, i.optional) for n, i in (spec.inputs or {}).items()},
        "outputs": {n: (o.type,) for n, o in (spec.outputs or {}).items()},
    }


def python_interface(function: Any) -> tuple[dict[str, Any], set[str]]:
    """From the Python function itself: its input parameters with their defaults (``inspect.Parameter.empty``
    when required) and the names of its outputs (``Output[...]`` parameters and the return value)."""
    inputs: dict[str, Any] = {}
    outputs: set[str] = set()
    hints = typing.get_type_hints(function, include_extras=True)
    for name, parameter in inspect.signature(function).parameters.items():
        marker = typing.get_args(hints.get(name))[1:2] if typing.get_origin(hints.get(name)) else ()
        if marker and "Output" in getattr(marker[0], "__name__", str(marker[0])):
            outputs.add(name)
        else:
            inputs[name] = parameter.default
    returned = hints.get("return")
    if returned not in (None, type(None)):
        outputs |= set(getattr(returned, "_fields", ("Output",)))
    return inputs, outputs


def _load(spec: OpSpec, folder: Path = COMMITTED) -> Any:
    return components.load_component_from_file(str(folder / spec.yaml_name))


def _interface_differences(loaded: Any, op: Any) -> list[str]:
    expected, actual = interface(op), interface(loaded)
    problems = []
    for kind in ("inputs", "outputs"):
        for name in sorted(set(expected[kind]) | set(actual[kind])):
            if expected[kind].get(name) != actual[kind].get(name):
                problems.append(
                    f"{kind} {name}: op {expected[kind].get(name)} != YAML {actual[kind].get(name)}"
                )
    return problems


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda s: s.name)
def test_the_yaml_has_the_ops_inputs_and_outputs(spec: OpSpec) -> None:
    op = getattr(SUITE, spec.name)
    loaded = _load(spec)

    assert _interface_differences(loaded, op) == []
    assert loaded.name == op.name
    assert loaded.component_spec.implementation.container.image == ImageRefs().ref(spec.image)


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda s: s.name)
def test_the_yaml_matches_the_python_function(spec: OpSpec) -> None:
    """Names and defaults straight from the function's signature (not through kfp's reading of it)."""
    op = getattr(SUITE, spec.name)
    inputs, outputs = python_interface(op.python_func)
    loaded = interface(_load(spec))

    assert set(loaded["inputs"]) == set(inputs)
    assert set(loaded["outputs"]) == outputs
    for name, default in inputs.items():
        _, yaml_default, optional = loaded["inputs"][name]
        if default is inspect.Parameter.empty:
            assert not optional, f"{name} is required in Python but optional in the YAML"
        else:
            assert optional and yaml_default == default, (
                f"{name}: default {default!r} != YAML {yaml_default!r}"
            )


def test_there_is_one_yaml_per_op_and_nothing_else() -> None:
    assert sorted(p.name for p in COMMITTED.glob("*.yaml")) == sorted(s.yaml_name for s in OP_SPECS)


def test_the_committed_yamls_are_fresh() -> None:
    """``kfp-cicd compile --check``'s component half on the committed folder."""
    assert stale_components(REPO_ROOT / "compiled") == []


def test_a_changed_interface_is_caught(tmp_path: Path) -> None:
    """The comparison can fail: a YAML whose default differs from the op's is reported."""
    spec = next(s for s in OP_SPECS if s.name == "train_op")
    document = yaml.safe_load((COMMITTED / spec.yaml_name).read_text())
    (definition,) = document["components"].values()  # the one component the file holds
    definition["inputDefinitions"]["parameters"]["epochs"]["defaultValue"] = 99
    (tmp_path / spec.yaml_name).write_text(yaml.safe_dump(document))

    problems = _interface_differences(_load(spec, tmp_path), SUITE.train_op)
    assert problems == ["inputs epochs: op ('Integer', 0, True) != YAML ('Integer', 99, True)"]


def test_rebound_yamls_name_the_other_registry(tmp_path: Path) -> None:
    written = compile_components(tmp_path, ImageRefs(registry="registry.example.com/team", tag="9.9.9"))
    images = {path.name: components.load_component_from_file(str(path)) for path in written}
    for spec in OP_SPECS:
        image = images[spec.yaml_name].component_spec.implementation.container.image
        assert image == f"registry.example.com/team/kfp-cicd-{spec.image}:9.9.9"


def test_compile_check_fails_on_a_stale_missing_or_orphaned_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "compiled"
    shutil.copytree(COMMITTED, output / COMPONENTS_SUBDIR)
    # the pipelines' half is not under test here: a fresh compilation of them
    assert main(["compile", "--output-dir", str(output)]) == 0
    assert main(["compile", "--check", "--output-dir", str(output)]) == 0
    capsys.readouterr()

    folder = output / COMPONENTS_SUBDIR
    (folder / "deploy.yaml").write_text((folder / "deploy.yaml").read_text() + "# edited by hand\n")
    (folder / "register.yaml").unlink()
    (folder / "retired_op.yaml").write_text("{}\n")
    assert main(["compile", "--check", "--output-dir", str(output)]) == 1
    err = capsys.readouterr().err
    for name in ("deploy.yaml", "register.yaml", "retired_op.yaml"):
        assert f"stale: {folder / name}" in err
    assert "training_pipeline" not in err
