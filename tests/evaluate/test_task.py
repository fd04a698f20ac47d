"""The component's parameters: documented, defaults as settings, contradictions refused up front."""

from __future__ import annotations

import inspect
import re

import pytest

from kfp_cicd.components.evaluate.component import evaluate_model
from kfp_cicd.components.evaluate.task import evaluation_settings
from kfp_cicd.errors import DataError

SIGNATURE = inspect.signature(evaluate_model)
SETTING_NAMES = set(inspect.signature(evaluation_settings).parameters)


def _defaults(**changes: object) -> dict:
    """The component's own defaults for every parameter evaluation_settings takes, plus ``changes``."""
    values = {name: p.default for name, p in SIGNATURE.parameters.items() if name in SETTING_NAMES}
    return {**values, **changes}


def test_every_component_input_is_documented_in_the_docstring() -> None:
    doc = inspect.getdoc(evaluate_model)
    args = doc.split("Args:")[1].split("Returns:")[0]
    documented = set(re.findall(r"^    (\w+): ", args, flags=re.MULTILINE))
    assert documented == set(SIGNATURE.parameters)


def test_the_baseline_check_is_on_by_default() -> None:
    assert SIGNATURE.parameters["baseline_metrics"].default == "roc_auc,log_loss"
    assert SIGNATURE.parameters["baseline_margin"].default == 0.02
    policy = evaluation_settings(**_defaults()).policy
    assert (policy.baseline_metrics, policy.baseline_margin) == (("roc_auc", "log_loss"), 0.02)
    assert evaluation_settings(**_defaults(baseline_metrics="")).policy.baseline_metrics == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"baseline_margin": -0.1}, "baseline_margin must be >= 0"),
        (
            {"baseline_metrics": "roc_auc,rows"},
            r"baseline_metrics names \['rows'\], which cannot be compared",
        ),
        ({"baseline_metrics": "expected_cost"}, "expected_cost needs cost_false_negative"),
        ({"champion_metrics": "latency_ms_per_1k_rows"}, "champion_metrics names"),
        ({"max_recall_gap": 0.2}, "slice_keys is empty"),
    ],
)
def test_contradictory_parameters_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        evaluation_settings(**_defaults(**changes))


def test_auto_slices_count_as_slice_keys_for_the_gap_limits() -> None:
    settings = evaluation_settings(**_defaults(slice_keys="auto", max_recall_gap=0.2))
    assert settings.auto_slices and settings.slice_keys == ()
    combined = evaluation_settings(**_defaults(slice_keys="auto,amount:q5", max_fpr_gap=0.05))
    assert combined.auto_slices and [k.label for k in combined.slice_keys] == ["amount:q5"]
    assert not evaluation_settings(**_defaults()).auto_slices, "the default is no slices"


def test_costs_make_expected_cost_comparable() -> None:
    settings = evaluation_settings(
        **_defaults(
            baseline_metrics="roc_auc,expected_cost", cost_false_negative=5.0, cost_false_positive=1.0
        )
    )
    assert settings.policy.baseline_metrics == ("roc_auc", "expected_cost")
