"""The one declaration of the pipeline parameters against everything that repeats a piece of it:
the pipelines' signatures, the component defaults, the CLI's parsing and the README."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kfp.dsl.python_component import PythonComponent

from kfp_cicd.cli.params import parse_pipeline_params
from kfp_cicd.components.deploy.component import build_component as build_deploy
from kfp_cicd.components.evaluate.component import build_component as build_evaluate
from kfp_cicd.components.monitor.component import build_component as build_check_drift
from kfp_cicd.components.monitor.component import build_record_component
from kfp_cicd.components.register.component import build_component as build_register
from kfp_cicd.components.train.component import build_component as build_train
from kfp_cicd.components.train_pytorchjob.component import build_component as build_pytorchjob
from kfp_cicd.components.validate_data.component import build_component as build_validate
from kfp_cicd.components.validate_data.component import build_reference_component
from kfp_cicd.errors import KfpCicdError
from kfp_cicd.pipelines import parameters as declared
from kfp_cicd.pipelines.monitoring_pipeline import build_monitoring_pipeline
from kfp_cicd.pipelines.training_pipeline import build_training_pipeline

README = Path(__file__).resolve().parents[2] / "README.md"
BUILDERS: dict[str, Callable[[str], PythonComponent]] = {
    declared.VALIDATE: build_validate,
    declared.REFERENCE: build_reference_component,
    declared.TRAIN: build_train,
    "pytorchjob": build_pytorchjob,
    declared.EVALUATE: build_evaluate,
    declared.REGISTER: build_register,
    declared.DEPLOY: build_deploy,
    declared.CHECK_DRIFT: build_check_drift,
    declared.RECORD: build_record_component,
}


def _inputs(component: str) -> dict:
    return BUILDERS[component]("image").component_spec.inputs or {}


@pytest.mark.parametrize("parameter", declared.BY_NAME.values(), ids=lambda p: p.name)
def test_every_component_input_a_parameter_feeds_exists_with_the_same_default(
    parameter: declared.PipelineParameter,
) -> None:
    for target in parameter.feeds:
        component = target.partition(":")[0]
        name = parameter.input_for(component)
        spec = _inputs(component).get(name)
        assert spec is not None, f"{parameter.name} feeds {component}.{name}, which does not exist"
        if spec.optional and not parameter.required:
            assert spec.default == parameter.default, (
                f"{component}.{name} defaults to {spec.default!r}, the pipelines to {parameter.default!r}"
            )


@pytest.mark.parametrize(
    ("build", "parameters"),
    [
        (build_training_pipeline, declared.TRAINING_PIPELINE),
        (build_monitoring_pipeline, declared.MONITORING_PIPELINE),
    ],
    ids=["training", "monitoring"],
)
def test_pipeline_inputs_are_the_declared_parameters(build: Callable, parameters: tuple) -> None:
    inputs = build().component_spec.inputs
    assert list(inputs) == [p.name for p in sorted(parameters, key=lambda p: not p.required)]
    for parameter in parameters:
        spec = inputs[parameter.name]
        assert spec.optional is not parameter.required, parameter.name
        if not parameter.required:
            assert spec.default == parameter.default, parameter.name
        assert spec.description == parameter.description, parameter.name


def test_monitoring_takes_every_training_parameter() -> None:
    training = set(build_training_pipeline().component_spec.inputs) - {declared.TRIGGER_REASON.name}
    monitoring = set(build_monitoring_pipeline().component_spec.inputs)
    assert training <= monitoring
    assert monitoring - training == {p.name for p in declared.MONITORING_ONLY}


def test_nothing_names_the_demo_data_set() -> None:
    for parameter in declared.BY_NAME.values():
        assert "fraud" not in f"{parameter.default}{parameter.description}".lower(), parameter.name
    assert declared.BY_NAME["label_column"].required and declared.BY_NAME["model_name"].required
    assert declared.BY_NAME["slice_keys"].default == ""


def test_the_readme_table_is_the_declaration() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- parameters:start -->\n", 1)[1].split("\n<!-- parameters:end -->", 1)[0]
    assert section == declared.readme_section(), (
        "README.md's parameter table is stale: paste `python -m kfp_cicd.pipelines.parameters` between "
        "the parameters:start/end markers"
    )


def test_cli_params_are_strict_and_typed_by_the_pipeline() -> None:
    pipeline = build_training_pipeline()
    assert parse_pipeline_params(["epochs=3", "learning_rate=0.01", "label_column=y"], pipeline) == {
        "epochs": 3,
        "learning_rate": 0.01,
        "label_column": "y",
    }
    with pytest.raises(KfpCicdError, match="given twice"):
        parse_pipeline_params(["epochs=3", "epochs=4"], pipeline)
    with pytest.raises(KfpCicdError, match="did you mean 'epochs'"):
        parse_pipeline_params(["epoch=3"], pipeline)
    with pytest.raises(KfpCicdError, match="epochs is an integer parameter"):
        parse_pipeline_params(["epochs=many"], pipeline)
    with pytest.raises(KfpCicdError, match="deploy_target"):
        parse_pipeline_params(["deploy_target=moon"], pipeline)
