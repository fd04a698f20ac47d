"""The check_drift component's body: champion's baseline -> drift check -> decision -> reports.

With no champion the decision is to train the first one (no drift check). Otherwise the window is
compared with the champion's training statistics (or statistics of its training data) and the
decision is to retrain when any feature drifted past its threshold. Every output is written
either way, so the run always says what it found and why it did (not) retrain.
"""

from __future__ import annotations

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
    decide_from_drift,
    decide_without_champion,
)
from kfp_cicd.components.monitor.drift_job import DriftRequest, DriftResult, run_drift_job
from kfp_cicd.components.monitor.report import drift_report_html, drift_report_markdown
from kfp_cicd.tfdv.options import ValidationOptions

log = logging.getLogger(__name__)


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
                schema_path=schema_path,
                options=options,
                numeric_histogram=numeric_histogram,
            )
            result = run_drift_job(request, work / "job", tfdv_python=tfdv_python)
            decision = decide_from_drift(
                model_name,
                baseline.version,
                production_data,
                result.drift,
                baseline.describe(),
                anomaly_count=len(result.anomalies),
            )
        _write_outputs(decision, result, outputs)
    log.info("monitoring verdict: %s", decision.reason)
    return decision


def _write_outputs(
    decision: RetrainingDecision, result: DriftResult | None, outputs: MonitoringOutputs
) -> None:
    drift = result.drift if result else []
    anomalies = result.anomalies if result else []
    counts = {"rows": result.rows, "baseline_rows": result.baseline_rows} if result else {}
    for path in (
        outputs.decision_file,
        outputs.report_markdown,
        outputs.report_html,
        outputs.statistics_view,
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs.decision_file).write_text(decision.to_json(), encoding="utf-8")
    Path(outputs.report_markdown).write_text(
        drift_report_markdown(decision, drift, anomalies, **counts), encoding="utf-8"
    )
    Path(outputs.report_html).write_text(
        drift_report_html(decision, drift, anomalies, **counts), encoding="utf-8"
    )
    statistics_dir = Path(outputs.statistics_dir)
    statistics_dir.mkdir(parents=True, exist_ok=True)
    if result is not None:
        for name in ("production_stats.pb", "baseline_stats.pb"):
            shutil.copyfile(result.output_dir / name, statistics_dir / name)
        shutil.copyfile(result.output_dir / "stats.html", outputs.statistics_view)
    else:
        Path(outputs.statistics_view).write_text(
            "<!DOCTYPE html>\n<html><body><p>No champion yet: no baseline, no statistics compared."
            "</p></body></html>\n",
            encoding="utf-8",
        )
    if outputs.metadata is not None:
        outputs.metadata.update(
            retrain=decision.retrain,
            trigger=decision.trigger,
            reason=decision.reason,
            champion_version=decision.champion_version,
            drifted_features=decision.drifted_features,
            features_compared=decision.features_compared,
            anomaly_count=decision.anomaly_count,
        )
