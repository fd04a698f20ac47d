"""The data contract with real TFDV: a release's schema and statistics are the next run's reference.

Three TFDV processes for the whole module (TensorFlow's import is paid once each):

1. ``first_release``: the first release of a generated table and of a real public data set
   (ISLP Default, one half): no schema given, so one is inferred (observed ranges, category
   domains) and stored; the summary and report say so.
2. ``evolved``: ``diff_schema`` of new data against the generated reference (evolve_schema mode).
3. ``matrix``: every corruption kind against the reference (its schema and training statistics,
   drift on), a clean new sample of each data set (no false alarm), and the new data against the
   accepted evolved schema.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import public_datasets
import pytest

from kfp_cicd.components.validate_data.schema_lifecycle import (
    SchemaDiff,
    diff_schema,
    read_acceptance,
    write_accepted_schema,
)
from kfp_cicd.components.validate_data.validation import ValidationJob, ValidationResult, validate_many
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions, split_train_holdout
from kfp_cicd.tfdv.options import ValidationOptions

OBSERVED = "kfp-cicd:observed-range"
FIRST_RELEASE = "First release: the schema was inferred from the training data"
REFERENCE_NAME = "champion fraud-ab12cd version 3"
DRIFT = {"default": 0.15, "features": {"amount": 0.3}}  # amount is heavy-tailed (see the matrix test)
Frames = tuple[pd.DataFrame, pd.DataFrame]


def _respell_category(train: pd.DataFrame) -> pd.DataFrame:
    """A third of the rows' merchant categories written differently (upper case)."""
    train = train.copy()
    rows = train.index[::3]
    train.loc[rows, "merchant_category"] = train.loc[rows, "merchant_category"].str.upper()
    return train


def _amount_times_1000(train: pd.DataFrame) -> pd.DataFrame:
    """A fifth of the amounts three orders of magnitude above anything seen."""
    train = train.copy()
    rows = train.index[::5]
    train.loc[rows, "amount"] = train["amount"].max() * 1000 + train.loc[rows, "amount"]
    return train


def _thousands_separators(train: pd.DataFrame) -> pd.DataFrame:
    """credit_limit written with thousands separators: "6,100" (text, not a number)."""
    return train.assign(credit_limit=train["credit_limit"].map(lambda v: f"{v:,.0f}"))


def _all_null(train: pd.DataFrame) -> pd.DataFrame:
    return train.assign(device_type=None)


def _channel_drift(train: pd.DataFrame) -> pd.DataFrame:
    """The channel mix shifts (known categories only): 70 % online."""
    rng = np.random.default_rng(5)
    channels = rng.choice(["online", "pos", "atm", "contactless"], len(train), p=[0.7, 0.1, 0.05, 0.15])
    return train.assign(channel=channels)


#: name -> (edit of the new training table, feature, accepted anomaly kinds)
CORRUPTIONS: dict[str, tuple[Any, str, set[str]]] = {
    "category respelled in a third of the rows": (
        _respell_category,
        "merchant_category",
        {"ENUM_TYPE_UNEXPECTED_STRING_VALUES"},
    ),
    "a fifth of a numeric column x1000": (_amount_times_1000, "amount", {"FLOAT_TYPE_BIG_FLOAT"}),
    "thousands separators in a numeric column": (
        _thousands_separators,
        "credit_limit",
        {"UNEXPECTED_DATA_TYPE", "FLOAT_TYPE_STRING_NOT_FLOAT"},
    ),
    "a column became all null": (
        _all_null,
        "device_type",
        {"FEATURE_TYPE_LOW_FRACTION_PRESENT", "FEATURE_TYPE_NOT_PRESENT", "SCHEMA_MISSING_COLUMN"},
    ),
    "missing column": (lambda t: t.drop(columns=["country"]), "country", {"SCHEMA_MISSING_COLUMN"}),
    "new column": (lambda t: t.assign(coupon_code="SAVE10"), "coupon_code", {"SCHEMA_NEW_COLUMN"}),
    "drift past the threshold": (_channel_drift, "channel", {"COMPARATOR_L_INFTY_HIGH"}),
}


def _write(folder: Path, train: pd.DataFrame, ev: pd.DataFrame) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    ev.to_csv(folder / "eval.csv", index=False)
    return str(folder / "train.csv"), str(folder / "eval.csv")


def _job(folder: Path, frames: Frames, label: str, schema: str = "", **options: Any) -> ValidationJob:
    train, ev = _write(folder, *frames)
    return ValidationJob(train, ev, label, folder / "out", schema, ValidationOptions(**options))


@pytest.fixture(scope="module")
def frames() -> dict[str, Frames]:
    """Generated tables (reference and new sample) and the two halves of ISLP Default."""
    dataset = public_datasets.get("credit_default")
    tables = {
        "reference": split_train_holdout(generate_transactions(2_000, seed=31), seed=31),
        "new": split_train_holdout(generate_transactions(2_000, seed=32), seed=32),
    }
    if dataset.installed():
        credit = dataset.load().sample(frac=1.0, random_state=3).reset_index(drop=True)
        halves = credit.iloc[: len(credit) // 2], credit.iloc[len(credit) // 2 :]
        for name, half in zip(("credit_reference", "credit_new"), halves, strict=True):
            cut = int(len(half) * 0.8)
            tables[name] = (half.iloc[:cut], half.iloc[cut:])
    return tables


@pytest.fixture(scope="module")
def first_release(tmp_path_factory: pytest.TempPathFactory, frames: dict[str, Frames]) -> dict[str, Any]:
    """The first release (no schema, no baseline) of each reference table, in one TFDV process."""
    root = tmp_path_factory.mktemp("first_release")
    jobs = {"synthetic": _job(root / "synthetic", frames["reference"], LABEL_COLUMN)}
    if "credit_reference" in frames:
        jobs["credit"] = _job(root / "credit", frames["credit_reference"], "default")
    return dict(zip(jobs, validate_many(list(jobs.values())), strict=True))


def _evolve_data(new: Frames) -> pd.DataFrame:
    """New data the reference does not accept: a new channel, higher amounts, a new column,
    thousands separators in credit_limit, no card_type column."""
    train = new[0].copy()
    train.loc[train.index[::10], "channel"] = "crypto_wallet"
    train.loc[train.index[:3], "amount"] = [20_000.0, 30_000.0, 40_000.0]
    train["loyalty_tier"] = np.where(train.index % 2 == 0, "gold", "silver")
    train = _thousands_separators(train)
    return train.drop(columns=["card_type"])


@pytest.fixture(scope="module")
def evolved(
    tmp_path_factory: pytest.TempPathFactory, frames: dict[str, Frames], first_release: dict[str, Any]
) -> dict[str, Any]:
    """``diff_schema`` of the evolve data against the generated reference, accepted to a file."""
    root = tmp_path_factory.mktemp("evolve")
    data = root / "new.csv"
    _evolve_data(frames["new"]).to_csv(data, index=False)
    reference = str(first_release["synthetic"].schema)
    diff = diff_schema(reference, str(data), label_column=LABEL_COLUMN)
    accepted = write_accepted_schema(
        diff.evolved_schema_text,
        root / "accepted" / "schema.pbtxt",
        accepted_by="alice@example.org",
        accepted_at="2026-12-04T10:00:00+00:00",
        based_on=REFERENCE_NAME + "'s schema",
        data=str(data),
    )
    return {"diff": diff, "accepted": accepted, "data": data}


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory,
    frames: dict[str, Frames],
    first_release: dict[str, Any],
    evolved: dict[str, Any],
) -> dict[str, ValidationResult]:
    """Every corruption, the clean new samples and the evolved schema: one TFDV process."""
    root = tmp_path_factory.mktemp("against_reference")
    reference = first_release["synthetic"]
    contract = {
        "baseline_statistics": str(reference.train_statistics),
        "drift_default_threshold": DRIFT["default"],
        "drift_thresholds": DRIFT["features"],
        "reference_name": REFERENCE_NAME,
    }
    schema = str(reference.schema)
    new_train, new_eval = frames["new"]
    jobs = {"clean": _job(root / "clean", frames["new"], LABEL_COLUMN, schema, **contract)}
    for index, (name, (edit, _, _)) in enumerate(CORRUPTIONS.items()):
        jobs[name] = _job(
            root / f"case{index}", (edit(new_train), new_eval), LABEL_COLUMN, schema, **contract
        )
    if "credit" in first_release:
        credit = first_release["credit"]
        credit_contract = {
            **contract,
            "baseline_statistics": str(credit.train_statistics),
            "drift_thresholds": {},
        }
        credit_schema = str(credit.schema)
        jobs["credit clean"] = _job(
            root / "credit_clean", frames["credit_new"], "default", credit_schema, **credit_contract
        )
        credit_train, credit_eval = frames["credit_new"]
        corrupted = credit_train.copy()
        corrupted.loc[corrupted.index[::5], "balance"] = corrupted["balance"].max() * 1000
        corrupted.loc[corrupted.index[::3], "student"] = corrupted["student"].str.lower()
        jobs["credit corrupted"] = _job(
            root / "credit_corrupted", (corrupted, credit_eval), "default", credit_schema, **credit_contract
        )
    evolve_data = pd.read_csv(evolved["data"])
    jobs["evolved"] = _job(
        root / "evolved", (evolve_data, evolve_data), LABEL_COLUMN, str(evolved["accepted"])
    )
    outcomes = validate_many(list(jobs.values()))
    return dict(zip(jobs, outcomes, strict=True))


def _found(result: ValidationResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for anomaly in result.anomalies:
        found.setdefault(anomaly.feature, set()).add(anomaly.kind)
    return found


# --- first release -------------------------------------------------------------------------------


def test_first_release_stores_observed_ranges_and_category_domains(first_release: dict[str, Any]) -> None:
    result = first_release["synthetic"]
    assert isinstance(result, ValidationResult), result
    assert result.anomalies == [], result.anomalies
    assert result.schema_inferred and result.reference_name == ""
    text = result.schema.read_text()
    amount = re.search(r'name: "amount"\n(.*?)\n}', text, re.S).group(1)
    assert "float_domain" in amount and OBSERVED in amount, amount
    # the stored form: the training data's own min/max, not widened
    low, high = (float(v) for v in re.search(r"min: (\S+)\s+max: (\S+)", amount).groups())
    assert low > 0 and high < 10_000, (low, high)
    hour = re.search(r'name: "hour"\n(.*?)\n}', text, re.S).group(1)
    assert "int_domain" in hour and "max: 23" in hour and OBSERVED in hour, hour
    for category in ("channel", "country", "merchant_category", "card_type"):
        assert re.search(rf'string_domain {{\n  name: "{category}"', text), category
    assert f'value: "{"contactless"}"' in text


def test_first_release_says_so_in_the_summary_and_reports(first_release: dict[str, Any]) -> None:
    result = first_release["synthetic"]
    assert FIRST_RELEASE in result.summary_markdown.read_text()
    assert FIRST_RELEASE in result.report_html.read_text()
    result_json = (result.schema.parent / "result.json").read_text()
    assert '"schema_inferred": true' in result_json and '"reference_name": ""' in result_json


def test_first_release_of_a_real_data_set_has_ranges_and_domains(first_release: dict[str, Any]) -> None:
    if "credit" not in first_release:
        pytest.skip(public_datasets.INSTALL_HINT)
    result = first_release["credit"]
    assert result.anomalies == [], result.anomalies
    text = result.schema.read_text()
    for numeric in ("balance", "income"):
        block = re.search(rf'name: "{numeric}"\n(.*?)\n}}', text, re.S).group(1)
        assert "float_domain" in block and OBSERVED in block, block
    assert re.search(r'string_domain {\n  name: "student"\n  value: "No"\n  value: "Yes"', text), text


# --- against the reference -----------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_corruption_is_flagged_with_the_column_named(matrix: dict[str, Any], case: str) -> None:
    result = matrix[case]
    assert isinstance(result, ValidationResult), result
    _, feature, kinds = CORRUPTIONS[case]
    found = _found(result)
    assert found.get(feature, set()) & kinds, found
    assert any(a.dataset == "train" and a.feature == feature for a in result.anomalies)
    assert result.reference_name == REFERENCE_NAME


def test_a_clean_new_sample_passes_against_the_reference(matrix: dict[str, Any]) -> None:
    result = matrix["clean"]
    assert result.anomalies == [], [str(a) for a in result.anomalies]
    assert result.drift and not any(d.drifted for d in result.drift), result.drift
    assert not result.schema_inferred
    assert f"validated against {REFERENCE_NAME}" in result.summary_markdown.read_text()
    page = result.report_html.read_text()
    assert f"validated against {REFERENCE_NAME}" in page
    assert ">reference<" in page, "the reference statistics are a row of each feature's table"


def test_the_stored_schema_keeps_observed_ranges_unwidened(
    matrix: dict[str, Any], first_release: dict[str, Any]
) -> None:
    assert matrix["clean"].schema.read_text().count(OBSERVED) == (
        first_release["synthetic"].schema.read_text().count(OBSERVED)
    )
    reference = re.search(r'name: "amount"\n(.*?)\n}', first_release["synthetic"].schema.read_text(), re.S)
    stored = re.search(r'name: "amount"\n(.*?)\n}', matrix["clean"].schema.read_text(), re.S)
    assert re.search(r"float_domain \{.*?\}", reference.group(1), re.S).group(0) == re.search(
        r"float_domain \{.*?\}", stored.group(1), re.S
    ).group(0)


def test_the_report_highlights_the_anomaly_and_the_unknown_categories(matrix: dict[str, Any]) -> None:
    page = matrix["category respelled in a third of the rows"].report_html.read_text()
    anomalies_at = page.index("<h2>Anomalies (")
    assert page.index("merchant_category") > anomalies_at
    assert "class='feature flagged' id='feature-merchant_category'" in page
    assert "<span class='unknown'>GROCERY</span>" in page
    assert re.search(r"3\d\.\d% unknown", page), "about a third of the values are unknown categories"
    amount = matrix["a fifth of a numeric column x1000"].report_html.read_text()
    share = re.search(r"(\d+\.\d)&#8211;(\d+\.\d)% out of range", amount)
    assert share, "an interval: the histograms bound the share"
    least, most = float(share.group(1)), float(share.group(2))
    assert least - 0.5 <= 20.0 <= most + 0.5 and most - least <= 12, (least, most)  # counts approximate


def test_a_clean_half_of_a_real_data_set_passes(matrix: dict[str, Any]) -> None:
    if "credit clean" not in matrix:
        pytest.skip(public_datasets.INSTALL_HINT)
    result = matrix["credit clean"]
    assert result.anomalies == [], [str(a) for a in result.anomalies]
    assert result.drift and not any(d.drifted for d in result.drift), result.drift


def test_corruptions_of_a_real_data_set_are_flagged(matrix: dict[str, Any]) -> None:
    if "credit corrupted" not in matrix:
        pytest.skip(public_datasets.INSTALL_HINT)
    found = _found(matrix["credit corrupted"])
    assert "FLOAT_TYPE_BIG_FLOAT" in found.get("balance", set()), found
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in found.get("student", set()), found


def test_no_validation_page_loads_anything_from_outside(matrix: dict[str, Any]) -> None:
    pages = [
        path
        for result in matrix.values()
        for path in (result.report_html, result.drift_html)
        if isinstance(result, ValidationResult)
    ]
    assert len(pages) >= 2 * len(CORRUPTIONS)
    for page in pages:
        text = page.read_text().lower()
        for banned in ("http://", "https://", "<script src", "@import", "url(", "<link", "<iframe"):
            assert banned not in text, (page, banned)


# --- schema evolution ------------------------------------------------------------------------------


def test_diff_lists_each_change(evolved: dict[str, Any]) -> None:
    diff: SchemaDiff = evolved["diff"]
    changes = {(c.feature, c.kind): c for c in diff.changes}
    assert set(changes) >= {
        ("channel", "new_category"),
        ("amount", "range_widened"),
        ("loyalty_tier", "new_column"),
        ("card_type", "missing_column"),
        ("credit_limit", "type_changed"),
    }, sorted(changes)
    assert changes[("channel", "new_category")].new == ["crypto_wallet"]
    assert "crypto_wallet" in changes[("channel", "new_category")].detail
    assert changes[("amount", "range_widened")].new[1] >= 40_000.0
    assert changes[("credit_limit", "type_changed")].old == "FLOAT"
    assert changes[("credit_limit", "type_changed")].new == "BYTES"
    assert "crypto_wallet" in diff.evolved_schema_text and 'name: "loyalty_tier"' in diff.evolved_schema_text


def test_the_accepted_schema_validates_the_new_data(matrix: dict[str, Any]) -> None:
    result = matrix["evolved"]
    assert isinstance(result, ValidationResult), result
    # the missing column is reported by the diff and kept in the schema: the only anomaly left
    assert {(a.feature, a.kind) for a in result.anomalies} == {("card_type", "SCHEMA_MISSING_COLUMN")}, [
        str(a) for a in result.anomalies
    ]


def test_the_acceptance_header_reads_back(evolved: dict[str, Any], tmp_path: Path) -> None:
    accepted = evolved["accepted"]
    assert read_acceptance(accepted) == {
        "accepted-by": "alice@example.org",
        "accepted-at": "2026-12-04T10:00:00+00:00",
        "based-on": REFERENCE_NAME + "'s schema",
        "data": str(evolved["data"]),
    }
    assert accepted.read_text().startswith("# kfp-cicd accepted-by: alice@example.org\n")
    again = write_accepted_schema(
        accepted.read_text(),
        tmp_path / "again.pbtxt",
        accepted_by="bob\nsneaky: line",
        accepted_at="t",
        based_on="b",
        data="d",
    )
    assert read_acceptance(again)["accepted-by"] == "bob sneaky: line"
    assert again.read_text().count("# kfp-cicd accepted-by") == 1
    plain = tmp_path / "plain.pbtxt"
    plain.write_text('feature {\n  name: "a"\n}\n# kfp-cicd accepted-by: not a header\n')
    assert read_acceptance(plain) is None


# --- the page in a real browser ------------------------------------------------------------------


@pytest.mark.browser
def test_the_statistics_view_renders_in_headless_chromium(matrix: dict[str, Any], tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    from PIL import Image

    page = matrix["category respelled in a third of the rows"].report_html
    png = tmp_path / "stats.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={png}",
            "--window-size=1400,2000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(png).convert("RGB")
    assert image.size == (1400, 2000)
    colors = image.getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 50, "the page rendered (text, tables and charts), not a blank frame"
    red = sum(count for count, (r, g, b) in colors if r > 180 and g < 80 and b < 80)
    assert red > 500, "the anomaly is highlighted in red"


# --- options (no TFDV) ------------------------------------------------------------------------------


def test_contract_options_reach_the_job_request_and_bad_ones_are_refused() -> None:
    from kfp_cicd.errors import DataError

    fields = ValidationOptions(
        range_tolerance=0.25, max_unknown_category_fraction=0.05, reference_name=REFERENCE_NAME
    ).job_fields()
    assert fields["contract"] == {"range_tolerance": 0.25, "max_unknown_category_fraction": 0.05}
    assert fields["reference_name"] == REFERENCE_NAME
    defaults = ValidationOptions()
    assert (defaults.range_tolerance, defaults.max_unknown_category_fraction, defaults.reference_name) == (
        1.0,
        0.01,
        "",
    )
    with pytest.raises(DataError, match="range_tolerance"):
        ValidationOptions(range_tolerance=-0.1)
    with pytest.raises(DataError, match="max_unknown_category_fraction"):
        ValidationOptions(max_unknown_category_fraction=1.5)
