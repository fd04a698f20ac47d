"""The check_drift component's body: champion's baseline and previous window -> TFDV -> decision.

With no champion the decision is to train the first one (no comparison, nothing stored).
Otherwise the window's statistics are compared with the champion's training statistics (TFDV's
skew comparator) and with the previous window's (TFDV's drift comparator; the previous window is
the last one a check stored in the MLflow experiment ``<model_name>/monitoring``, see
:mod:`kfp_cicd.registry.monitoring_windows`), the decision is made, and this window's statistics
are stored there for the next check. Every output is written either way, so the run always says
what it found and why it did (not) retrain.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_cicd.components.monitor.baseline import FROM_STATISTICS, download_statistics, find_champion_baseline
from kfp_cicd.components.monitor.decision import (
    RetrainingDecision,
    decide_from_comparisons,
    decide_without_champion,
)
from kfp_cicd.components.monitor.drift_job import DriftRequest, DriftResult, run_drift_job
from kfp_cicd.components.monitor.report import drift_report_html, drift_report_markdown, no_champion_view
from kfp_cicd.data.tables import file_fingerprint
from kfp_cicd.registry.monitoring_windows import (
    CHAMPION_TAG,
    DIGEST_TAG,
    RETRAIN_TAG,
    TRIGGER_TAG,
    WINDOW_TAG,
    StoredWindow,
    download_window_statistics,
    find_previous_window,
    metric_name,
    store_window,
)
from kfp_cicd.tfdv.options import ValidationOptions

log = logging.getLogger(__name__)
STATISTICS_FILES = ("production_stats.pb", "baseline_stats.pb", "previous_stats.pb")


@dataclass(frozen=True)
class MonitoringOutputs:
    """Where the component's outputs go (artifact paths) and their metadata dicts."""

    decision_file: str
    report_markdown: str
    report_html: str
    statistics_dir: str
    statistics_view: str
    metadata: MutableMapping[str, Any] | None = None


def check_production_drift(
    *,
    production_data: str,
    tracking_uri: str,
    model_name: str,
    label_column: str,
    schema_path: str,
    options: ValidationOptions,
    numeric_histogram: str,
    outputs: MonitoringOutputs,
    tfdv_python: str | None = None,
) -> RetrainingDecision:
    """Decide whether to retrain; write the decision, the reports and the statistics."""
    baseline = find_champion_baseline(tracking_uri, model_name)
    result: DriftResult | None = None
    with tempfile.TemporaryDirectory(prefix="check_drift-") as scratch:
        work = Path(scratch)
        if baseline is None:
            decision = decide_without_champion(model_name, production_data)
        else:
            digest = file_fingerprint(production_data)
            previous = find_previous_window(tracking_uri, model_name, digest)
            log.info(
                "comparing %s with %s and %s",
                production_data,
                baseline.describe(),
                previous.describe() if previous else "no previous window (the first checked window)",
            )
            statistics = (
                str(download_statistics(baseline, tracking_uri, work / "baseline"))
                if baseline.source == FROM_STATISTICS
                else ""
            )
            request = DriftRequest(
                data=production_data,
                label_column=label_column,
                baseline_statistics=statistics,
                baseline_data="" if statistics else baseline.location,
                baseline_name=baseline.describe(),
                previous_statistics=(
                    str(download_window_statistics(tracking_uri, previous, work / "previous"))
                    if previous
                    else ""
                ),
                previous_name=previous.window if previous else "",
                schema_path=schema_path,
                options=options,
                numeric_histogram=numeric_histogram,
            )
            result = run_drift_job(request, work / "job", tfdv_python=tfdv_python)
            decision = decide_from_comparisons(
                model_name,
                baseline.version,
                production_data,
                result.skew,
                baseline.describe(),
                drift=result.drift,
                previous_window=previous.describe() if previous else "",
                anomaly_count=len(result.anomalies),
            )
            stored = _store_window(tracking_uri, decision, result, digest, work / "report")
            decision = dataclasses.replace(decision, window_statistics=stored.statistics_uri)
            log.info("stored this window's statistics for the next check: %s", stored.statistics_uri)
        _write_outputs(decision, result, outputs)
    log.info("monitoring verdict: %s", decision.reason)
    return decision


def _store_window(
    tracking_uri: str, decision: RetrainingDecision, result: DriftResult, digest: str, report_dir: Path
) -> StoredWindow:
    """This window's statistics, decision and report as a run of the model's monitoring experiment."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "decision.json").write_text(decision.to_json(), encoding="utf-8")
    (report_dir / "drift_report.md").write_text(_markdown(decision, result), encoding="utf-8")
    metrics = {metric_name("skew", d["feature"]): d["value"] for d in result.skew if d["value"] is not None}
    metrics.update(
        {
            metric_name("window_drift", d["feature"]): d["value"]
            for d in result.drift
            if d["value"] is not None
        }
    )
    return store_window(
        tracking_uri,
        decision.model_name,
        tags={
            WINDOW_TAG: decision.production_data,
            DIGEST_TAG: digest,
            CHAMPION_TAG: decision.champion_version,
            RETRAIN_TAG: str(decision.retrain).lower(),
            TRIGGER_TAG: decision.trigger,
        },
        statistics_file=result.output_dir / "production_stats.pb",
        metrics=metrics,
        report_dir=report_dir,
    )


def _counts(result: DriftResult | None) -> dict[str, int]:
    if result is None:
        return {}
    return {"rows": result.rows, "baseline_rows": result.baseline_rows, "previous_rows": result.previous_rows}


def _markdown(decision: RetrainingDecision, result: DriftResult | None) -> str:
    return drift_report_markdown(decision, result.anomalies if result else [], **_counts(result))


def _write_outputs(
    decision: RetrainingDecision, result: DriftResult | None, outputs: MonitoringOutputs
) -> None:
    anomalies = result.anomalies if result else []
    for path in (
        outputs.decision_file,
        outputs.report_markdown,
        outputs.report_html,
        outputs.statistics_view,
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs.decision_file).write_text(decision.to_json(), encoding="utf-8")
    Path(outputs.report_markdown).write_text(_markdown(decision, result), encoding="utf-8")
    Path(outputs.report_html).write_text(
        drift_report_html(decision, anomalies, **_counts(result)), encoding="utf-8"
    )
    statistics_dir = Path(outputs.statistics_dir)
    statistics_dir.mkdir(parents=True, exist_ok=True)
    if result is not None:
        for name in STATISTICS_FILES:
            if (result.output_dir / name).is_file():
                shutil.copyfile(result.output_dir / name, statistics_dir / name)
        shutil.copyfile(result.output_dir / "stats.html", outputs.statistics_view)
    else:
        Path(outputs.statistics_view).write_text(no_champion_view(decision), encoding="utf-8")
    if outputs.metadata is not None:
        outputs.metadata.update(
            retrain=decision.retrain,
            trigger=decision.trigger,
            reason=decision.reason,
            champion_version=decision.champion_version,
            drifted_features=decision.drifted_features,
            skewed_features=decision.skewed_features,
            window_drifted_features=decision.window_drifted_features,
            previous_window=decision.previous_window,
            window_statistics=decision.window_statistics,
            features_compared=decision.features_compared,
            anomaly_count=decision.anomaly_count,
        )
