"""Tests of the validate_data component: real TFDV runs in the validation environment.

Every TFDV run imports TensorFlow (10-25 s), so the TFDV work is batched into two module-scoped
runs: a clean one through the KFP component itself (kfp.local), and one whose evaluation data has
several problems at once, validated against the clean run's schema. Input errors are caught
before TFDV is imported, so those tests each take about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kfp_cicd.components.validate_data.validation import (
    Anomaly,
    DataValidationFailed,
    ValidationResult,
    raise_for_anomalies,
    run_validation_task,
    validate_datasets,
)
from kfp_cicd.errors import DataError, EnvironmentNotReady, KfpCicdError
from kfp_cicd.tfdv import environment as tfdv_environment
from kfp_cicd.tfdv.environment import TFDV_PYTHON_ENV_VAR, find_tfdv_python

LABEL = "is_fraud"
CHANNELS = ["online", "pos", "atm", "contactless"]
COUNTRIES = ["US", "GB", "DE", "FR"]


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """A small table with float, int and string features and a 0/1 label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 30.0, rows).round(2),
            "hour": rng.integers(0, 24, rows),
            "channel": rng.choice(CHANNELS, rows),
            "country": rng.choice(COUNTRIES, rows),
            LABEL: (rng.random(rows) < 0.1).astype(int),
        }
    )


def make_bad_eval(rows: int, seed: int) -> pd.DataFrame:
    """Evaluation data with four problems: a new category, a dropped column, a string among
    the numbers, and a column the schema does not know."""
    frame = make_frame(rows, seed)
    frame.loc[frame.index[:6], "channel"] = "teleport"
    frame = frame.drop(columns=["country"])
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[frame.index[3], "amount"] = "lots"
    frame["coupon_code"] = "SAVE10"
    return frame


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Input CSVs shared by the module: train (300 rows), clean eval and bad eval (200 rows)."""
    root = tmp_path_factory.mktemp("validate_data_inputs")
    make_frame(300, seed=1).to_csv(root / "train.csv", index=False)
    make_frame(200, seed=2).to_csv(root / "eval.csv", index=False)
    make_bad_eval(200, seed=3).to_csv(root / "bad_eval.csv", index=False)
    return root


@pytest.fixture(scope="module")
def clean_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One clean validation through the KFP component, run locally by kfp.local."""
    from kfp import local
    from kfp.local import config as local_config

    from kfp_cicd.components.validate_data.component import build_component

    find_tfdv_python()  # fail with the "run make install" message, not a task failure
    previous = local_config.LocalExecutionConfig.instance
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path_factory.mktemp("kfp_local_root")),
    )
    try:
        component = build_component("python:3.11")
        task = component(
            train_data=str(data_dir / "train.csv"),
            eval_data=str(data_dir / "eval.csv"),
            label_column=LABEL,
            schema_path="",
        )
    finally:
        local_config.LocalExecutionConfig.instance = previous
    return task


@pytest.fixture(scope="module")
def bad_run(data_dir: Path, clean_run: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One validation of the bad eval data against the clean run's schema: it must fail."""
    out = tmp_path_factory.mktemp("bad_run")
    paths = {
        "statistics_dir": str(out / "statistics"),
        "schema_dir": str(out / "schema"),
        "anomalies_file": str(out / "anomalies"),
        "report_file": str(out / "report"),
    }
    metadata: dict[str, dict[str, Any]] = {
        name: {} for name in ("statistics", "schema", "anomalies", "report")
    }
    schema_file = Path(clean_run.outputs["schema"].path) / "schema.pbtxt"
    with pytest.raises(DataValidationFailed) as caught:
        run_validation_task(
            str(data_dir / "train.csv"),
            str(data_dir / "bad_eval.csv"),
            LABEL,
            str(schema_file),
            artifact_metadata=metadata,
            **paths,
        )
    return {"error": caught.value, "paths": paths, "metadata": metadata}


# --- the clean run ---------------------------------------------------------------------------


def test_clean_data_passes_with_row_counts(clean_run: Any) -> None:
    assert clean_run.outputs["train_rows"] == 300
    assert clean_run.outputs["eval_rows"] == 200
    assert clean_run.outputs["anomaly_count"] == 0
    anomalies = json.loads(Path(clean_run.outputs["anomalies"].path).read_text())
    assert anomalies == []


def test_clean_run_fingerprint_is_sha256_of_training_bytes(clean_run: Any, data_dir: Path) -> None:
    expected = hashlib.sha256((data_dir / "train.csv").read_bytes()).hexdigest()
    assert clean_run.outputs["data_fingerprint"] == f"sha256:{expected}"


def test_features_json_kinds_and_dtypes(clean_run: Any) -> None:
    features = json.loads((Path(clean_run.outputs["schema"].path) / "features.json").read_text())
    assert features["label"] == LABEL
    assert features["row_counts"] == {"train": 300, "eval": 200}
    by_name = {f["name"]: (f["kind"], f["dtype"]) for f in features["features"]}
    assert by_name == {
        "amount": ("numeric", "float"),
        "hour": ("numeric", "int"),
        "channel": ("categorical", "string"),
        "country": ("categorical", "string"),
    }


def test_artifact_layout_and_metadata(clean_run: Any) -> None:
    outputs = clean_run.outputs
    statistics = Path(outputs["statistics"].path)
    assert sorted(p.name for p in statistics.iterdir()) == ["eval_stats.pb", "train_stats.pb"]
    assert b"amount" in (statistics / "train_stats.pb").read_bytes()
    schema_dir = Path(outputs["schema"].path)
    assert sorted(p.name for p in schema_dir.iterdir()) == ["contract.json", "features.json", "schema.pbtxt"]
    assert 'name: "channel"' in (schema_dir / "schema.pbtxt").read_text()
    report = Path(outputs["report"].path).read_text()
    assert "No anomalies" in report and "First release" in report
    assert "facets" not in report and "<script" not in report, "self-contained: no Facets view"
    assert outputs["statistics"].metadata["train_rows"] == 300
    assert outputs["schema"].metadata["inferred"] is True
    assert outputs["anomalies"].metadata["anomaly_count"] == 0


# --- the bad run -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "kind"),
    [
        ("channel", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
        ("country", "SCHEMA_MISSING_COLUMN"),
        ("amount", "UNEXPECTED_DATA_TYPE"),
        ("coupon_code", "SCHEMA_NEW_COLUMN"),
    ],
)
def test_bad_eval_data_reports_each_anomaly(bad_run: dict[str, Any], feature: str, kind: str) -> None:
    error: DataValidationFailed = bad_run["error"]
    found = {(a.dataset, a.feature, a.kind) for a in error.anomalies}
    assert ("eval", feature, kind) in found, found
    assert f"[eval] feature '{feature}'" in str(error)
    assert f"({kind})" in str(error)


def test_bad_run_blames_only_the_eval_data(bad_run: dict[str, Any]) -> None:
    assert {a.dataset for a in bad_run["error"].anomalies} == {"eval"}
    assert "teleport" in str(bad_run["error"])


def test_bad_run_writes_every_output_before_failing(bad_run: dict[str, Any], data_dir: Path) -> None:
    paths, metadata = bad_run["paths"], bad_run["metadata"]
    records = json.loads(Path(paths["anomalies_file"]).read_text())
    assert len(records) == len(bad_run["error"].anomalies) >= 4
    assert "teleport" in Path(paths["report_file"]).read_text()
    assert (Path(paths["statistics_dir"]) / "eval_stats.pb").is_file()
    assert (Path(paths["schema_dir"]) / "schema.pbtxt").is_file()
    assert metadata["anomalies"]["anomaly_count"] == len(records)
    assert metadata["schema"]["inferred"] is False
    expected = hashlib.sha256((data_dir / "train.csv").read_bytes()).hexdigest()
    assert metadata["statistics"]["data_fingerprint"] == f"sha256:{expected}"


# --- input errors: caught before TFDV is imported ----------------------------------------------


def _validate(tmp_path: Path, train: Path | str, evaluation: Path | str, **kwargs: Any) -> ValidationResult:
    return validate_datasets(
        str(train),
        str(evaluation),
        label_column=kwargs.pop("label", LABEL),
        output_dir=tmp_path / "out",
        **kwargs,
    )


def test_empty_training_file_is_a_data_error(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "train.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"training data .*train\.csv is empty"):
        _validate(tmp_path, empty, data_dir / "eval.csv")


def test_binary_garbage_is_a_data_error(tmp_path: Path, data_dir: Path) -> None:
    garbage = tmp_path / "eval.csv"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match=r"evaluation data .*eval\.csv is a binary file"):
        _validate(tmp_path, data_dir / "train.csv", garbage)


def test_non_utf8_text_is_a_data_error(tmp_path: Path, data_dir: Path) -> None:
    latin1 = tmp_path / "eval.csv"
    latin1.write_bytes("city,amount\nZürich,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"eval\.csv is not UTF-8"):
        _validate(tmp_path, data_dir / "train.csv", latin1)


def test_header_only_file_is_a_data_error(tmp_path: Path, data_dir: Path) -> None:
    header_only = tmp_path / "eval.csv"
    header_only.write_text("amount,hour\n")
    with pytest.raises(DataError, match="has a header but no data rows"):
        _validate(tmp_path, data_dir / "train.csv", header_only)


def test_remote_tables_are_staged_and_named_by_url(tmp_path: Path, data_dir: Path) -> None:
    import fsspec

    with fsspec.open("memory://validate_data_test/eval.csv", "wb") as remote:
        remote.write(b"amount,hour\n")
    with pytest.raises(
        DataError,
        match=r"evaluation data memory://validate_data_test/eval\.csv "
        "has a header but no data rows",
    ):
        _validate(tmp_path, data_dir / "train.csv", "memory://validate_data_test/eval.csv")
    with pytest.raises(DataError, match=r"cannot download memory://validate_data_test/none\.csv"):
        _validate(tmp_path, data_dir / "train.csv", "memory://validate_data_test/none.csv")


def test_missing_label_column_is_a_data_error(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"no label column 'target'.*is_fraud"):
        _validate(tmp_path, data_dir / "train.csv", data_dir / "eval.csv", label="target")


def test_missing_files_are_data_errors(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        _validate(tmp_path, tmp_path / "nope.csv", data_dir / "eval.csv")
    with pytest.raises(DataError, match=r"evaluation data .*gone\.csv does not exist"):
        _validate(tmp_path, data_dir / "train.csv", tmp_path / "gone.csv")
    with pytest.raises(DataError, match=r"schema .*absent\.pbtxt does not exist"):
        _validate(
            tmp_path,
            data_dir / "train.csv",
            data_dir / "eval.csv",
            schema_path=str(tmp_path / "absent.pbtxt"),
        )


def test_interpreter_without_tfdv_is_environment_not_ready(tmp_path: Path, data_dir: Path) -> None:
    # The main environment's interpreter reads the data (pandas) but has no TFDV.
    with pytest.raises(EnvironmentNotReady, match="make install"):
        _validate(tmp_path, data_dir / "train.csv", data_dir / "eval.csv", tfdv_python=sys.executable)


def test_bad_interpreter_env_var_is_environment_not_ready(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TFDV_PYTHON_ENV_VAR, str(tmp_path / "no-such-python"))
    with pytest.raises(EnvironmentNotReady, match=TFDV_PYTHON_ENV_VAR):
        _validate(tmp_path, data_dir / "train.csv", data_dir / "eval.csv")


@pytest.mark.parametrize(
    ("script", "timeout_s", "message"),
    [
        ("echo 'Traceback: boom' >&2; exit 1", 30.0, r"exit code 1.*Traceback: boom"),
        ("exec sleep 30", 0.5, r"did not finish within 0\.5 s"),
    ],
)
def test_crash_or_timeout_of_the_job_is_reported(
    tmp_path: Path, data_dir: Path, script: str, timeout_s: float, message: str
) -> None:
    fake = _fake_python(tmp_path / "fake/python", body=script)
    with pytest.raises(KfpCicdError, match=f"(?s){message}"):
        _validate(
            tmp_path,
            data_dir / "train.csv",
            data_dir / "eval.csv",
            tfdv_python=str(fake),
            timeout_s=timeout_s,
        )


# --- units: no subprocess --------------------------------------------------------------------


def _fake_python(path: Path, body: str = "") -> Path:
    """An executable shell script standing in for an interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_default_interpreters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point both default locations at paths that do not exist, and clear the variable."""
    monkeypatch.delenv(TFDV_PYTHON_ENV_VAR, raising=False)
    monkeypatch.setattr(tfdv_environment, "REPO_TFDV_PYTHON", tmp_path / "repo/bin/python")
    monkeypatch.setattr(tfdv_environment, "IMAGE_TFDV_PYTHON", tmp_path / "opt/bin/python")
    yield


def test_find_tfdv_python_prefers_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = _fake_python(tmp_path / "custom/python")
    monkeypatch.setenv(TFDV_PYTHON_ENV_VAR, str(python))
    assert find_tfdv_python() == str(python)


def test_find_tfdv_python_rejects_a_non_executable_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "python"
    plain.write_text("")
    monkeypatch.setenv(TFDV_PYTHON_ENV_VAR, str(plain))
    with pytest.raises(EnvironmentNotReady, match=f"{TFDV_PYTHON_ENV_VAR}=.*not an executable"):
        find_tfdv_python()


def test_find_tfdv_python_falls_back_repo_then_image(no_default_interpreters: None) -> None:
    image = _fake_python(tfdv_environment.IMAGE_TFDV_PYTHON)
    assert find_tfdv_python() == str(image)
    repo = _fake_python(tfdv_environment.REPO_TFDV_PYTHON)
    assert find_tfdv_python() == str(repo)


def test_find_tfdv_python_says_what_to_do(no_default_interpreters: None) -> None:
    with pytest.raises(EnvironmentNotReady, match=rf"make install.*{TFDV_PYTHON_ENV_VAR}"):
        find_tfdv_python()


def test_repo_default_is_the_make_install_venv() -> None:
    expected = Path(__file__).resolve().parents[2] / ".venv-tfdv" / "bin" / "python"
    assert expected == tfdv_environment.REPO_TFDV_PYTHON
    if tfdv_environment.REPO_TFDV_PYTHON.exists() and TFDV_PYTHON_ENV_VAR not in os.environ:
        assert find_tfdv_python() == str(tfdv_environment.REPO_TFDV_PYTHON)  # not resolved


def _result(anomalies: list[Anomaly]) -> ValidationResult:
    here = Path("unused")
    return ValidationResult(
        row_counts={"train": 1, "eval": 1},
        anomalies=anomalies,
        train_statistics=here,
        eval_statistics=here,
        schema=here,
        features=here,
        anomalies_file=here,
        report_html=Path("r.html"),
        data_fingerprint="sha256:0",
        schema_inferred=True,
    )


def test_data_validation_failed_lists_every_anomaly() -> None:
    anomalies = [
        Anomaly("train", "amount", "UNEXPECTED_DATA_TYPE", "Expected FLOAT but got STRING"),
        Anomaly("eval", "", "DATASET_LOW_NUM_EXAMPLES", "Too few examples"),
    ]
    message = str(DataValidationFailed(anomalies, report="r.html"))
    lines = message.splitlines()
    assert lines[0] == "Data validation found 2 anomalies:"
    assert lines[1] == ("  - [train] feature 'amount': Expected FLOAT but got STRING (UNEXPECTED_DATA_TYPE)")
    assert lines[2] == ("  - [eval] the dataset as a whole: Too few examples (DATASET_LOW_NUM_EXAMPLES)")
    assert "r.html" in message and "schema_path" in message


def test_raise_for_anomalies_tolerates_named_kinds() -> None:
    new_column = Anomaly("eval", "extra", "SCHEMA_NEW_COLUMN", "New column")
    missing = Anomaly("eval", "country", "SCHEMA_MISSING_COLUMN", "Column dropped")
    raise_for_anomalies(_result([]))
    raise_for_anomalies(_result([new_column]), tolerate_kinds=["SCHEMA_NEW_COLUMN"])
    with pytest.raises(DataValidationFailed) as caught:
        raise_for_anomalies(_result([new_column, missing]), tolerate_kinds=["SCHEMA_NEW_COLUMN"])
    assert caught.value.anomalies == (missing,)
