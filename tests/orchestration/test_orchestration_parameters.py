"""Typing --param values from the compiled spec, cadences and version names."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.orchestration.cadence import interval_seconds, kfp_cron, vertex_cron
from kfp_cicd.orchestration.errors import ParameterError, SpecError
from kfp_cicd.orchestration.parameters import convert, typed_parameters
from kfp_cicd.orchestration.spec import ParameterDefinition, load_compiled_pipeline, require_single_document
from kfp_cicd.orchestration.versioning import job_id, version_name

REPO = Path(__file__).resolve().parents[2]
REQUIRED = [
    "train_data=a.csv",
    "eval_data=b.csv",
    "mlflow_tracking_uri=sqlite:///m.db",
    "label_column=y",
    "model_name=m",
]


def test_spec_declares_types_descriptions_and_required_inputs() -> None:
    pipeline = load_compiled_pipeline(REPO / "compiled" / "kubeflow" / "training_pipeline.yaml")
    assert pipeline.documents == 2 and pipeline.name == "kfp-cicd-training"
    assert pipeline.parameters["epochs"].parameter_type == "NUMBER_INTEGER"
    assert pipeline.parameters["epochs"].description  # the KFP run form shows it
    assert pipeline.required_parameters() == [
        "eval_data",
        "label_column",
        "mlflow_tracking_uri",
        "model_name",
        "train_data",
    ]
    with pytest.raises(SpecError, match="compiled/vertex"):
        require_single_document(pipeline)
    require_single_document(load_compiled_pipeline(REPO / "compiled" / "vertex" / "training_pipeline.yaml"))


def test_values_are_typed_as_declared() -> None:
    pipeline = load_compiled_pipeline(REPO / "compiled" / "vertex" / "training_pipeline.yaml")
    required = [item for item in REQUIRED if not item.startswith("model_name=")]
    typed = typed_parameters(pipeline, [*required, "epochs=3", "learning_rate=1e-3", "model_name=007"])
    assert typed["epochs"] == 3 and type(typed["epochs"]) is int
    assert typed["learning_rate"] == 0.001 and type(typed["learning_rate"]) is float
    assert typed["model_name"] == "007"


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("BOOLEAN", "true", True),
        ("BOOLEAN", "No", False),
        ("LIST", '["a", 1]', ["a", 1]),
        ("STRUCT", '{"k": 2}', {"k": 2}),
        ("NUMBER_DOUBLE", "2", 2.0),
        ("STRING", "", ""),
    ],
)
def test_convert(kind: str, text: str, expected: object) -> None:
    assert convert(ParameterDefinition("p", kind), text) == expected


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("NUMBER_INTEGER", "3.5"),
        ("NUMBER_DOUBLE", "nan"),
        ("BOOLEAN", "maybe"),
        ("LIST", '{"a": 1}'),
        ("STRUCT", "[1]"),
    ],
)
def test_convert_rejects(kind: str, text: str) -> None:
    with pytest.raises(ValueError, match=r"parameter|finite"):
        convert(ParameterDefinition("p", kind), text)


def test_repeated_or_malformed_assignments() -> None:
    pipeline = load_compiled_pipeline(REPO / "compiled" / "vertex" / "training_pipeline.yaml")
    with pytest.raises(ParameterError, match="given twice"):
        typed_parameters(pipeline, ["epochs=1", "epochs=2"])
    with pytest.raises(ParameterError, match="key=value"):
        typed_parameters(pipeline, ["epochs"])


def test_cadences() -> None:
    assert kfp_cron("0 3 * * *") == "0 0 3 * * *" and kfp_cron("30 0 3 * * *") == "30 0 3 * * *"
    assert interval_seconds("24h") == 86400 and interval_seconds("15m") == 900
    assert vertex_cron("TZ=Europe/Berlin 0 3 * * *") == "TZ=Europe/Berlin 0 3 * * *"
    for bad in (
        lambda: kfp_cron("TZ=UTC 0 3 * * *"),
        lambda: kfp_cron("* *"),
        lambda: interval_seconds("5s"),
        lambda: interval_seconds("daily"),
        lambda: vertex_cron("0 3 * * * *"),
    ):
        with pytest.raises(ParameterError):
            bad()


def test_version_and_job_names() -> None:
    sha = "ab" * 20
    assert version_name(sha, "f" * 64) == f"rev-{sha[:12]}"
    assert version_name(sha, "f" * 64, "v1.2.3") == f"1.2.3-{sha[:12]}"
    assert version_name(f"{sha}-dirty", "0123abcd" + "0" * 56) == f"rev-{sha[:12]}-dirty-0123abcd"
    with pytest.raises(ParameterError, match="semantic"):
        version_name(sha, "f" * 64, "latest")
    identifier = job_id("kfp-cicd-training", sha, "f" * 64)
    assert identifier.startswith(f"kfp-cicd-training-{sha[:12]}-") and len(identifier) <= 128


def test_an_unknown_parameter_suggests_the_closest_names_not_all_of_them() -> None:
    pipeline = load_compiled_pipeline(REPO / "compiled" / "kubeflow" / "training_pipeline.yaml")
    with pytest.raises(ParameterError) as refused:
        typed_parameters(pipeline, [*REQUIRED, "epoch=3"])
    message = str(refused.value)
    assert "unknown parameter 'epoch'; did you mean 'epochs'" in message
    assert "canary_traffic_percent" not in message
