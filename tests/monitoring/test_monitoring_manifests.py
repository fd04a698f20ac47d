"""manifests/monitoring: scrape config, alert rules and dashboard are well-formed and use the
metric names and labels the predictor exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "manifests" / "monitoring"
# The predictor's metrics (kfp_cicd/serving), each labelled model_name and model_version; the
# latency histogram also by protocol. Histograms expose _bucket/_sum/_count series.
COUNTERS = (
    "kfp_cicd_predictions_total",
    "kfp_cicd_prediction_errors_total",
    "kfp_cicd_out_of_domain_inputs_total",
)
HISTOGRAMS = ("kfp_cicd_request_latency_seconds", "kfp_cicd_prediction_score")
EXPORTED = set(COUNTERS) | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "sum", "count")}
VERSION_LABELS = {"model_name", "model_version"}
_SERIES = re.compile(r"\b(kfp_cicd_[a-z0-9_]+)\b")
_RECORDED = re.compile(r"\b(kfp_cicd:[a-z0-9_:]+)\b")


def _yaml(name: str) -> dict:
    return yaml.safe_load((MONITORING / name).read_text())


def _rules() -> list[dict]:
    return [rule for group in _yaml("prometheus_rules.yaml")["spec"]["groups"] for rule in group["rules"]]


def _dashboard() -> dict:
    return json.loads((MONITORING / "grafana_dashboard.json").read_text())


def _balanced(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1, "{": 1, "}": -1, "[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_kustomization_lists_existing_files_and_one_scrape_config() -> None:
    kustomization = _yaml("kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (MONITORING / resource).is_file(), resource
    assert kustomization["resources"].count("pod_monitor.yaml") == 1
    assert "service_monitor.yaml" not in kustomization["resources"], "would double every series"
    (generator,) = kustomization["configMapGenerator"]
    assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
    source = generator["files"][0].split("=", 1)[1]
    assert (MONITORING / source).is_file()


@pytest.mark.parametrize(
    "name, kind, endpoints",
    [
        ("pod_monitor.yaml", "PodMonitor", "podMetricsEndpoints"),
        ("service_monitor.yaml", "ServiceMonitor", "endpoints"),
    ],
)
def test_scrape_configs_select_predictor_pods_on_the_metrics_path(
    name: str, kind: str, endpoints: str
) -> None:
    document = _yaml(name)
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == kind
    expressions = {e["key"]: e for e in document["spec"]["selector"]["matchExpressions"]}
    assert expressions["serving.kserve.io/inferenceservice"]["operator"] == "Exists"
    assert expressions["component"]["values"] == ["predictor"]
    (endpoint,) = document["spec"][endpoints]
    assert endpoint["path"] == "/metrics"
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert "inference_service" in targets


def test_pod_monitor_scrapes_the_runtime_http_port() -> None:
    runtime = yaml.safe_load((MONITORING.parent / "runtime" / "cluster_serving_runtime.yaml").read_text())
    port = runtime["spec"]["annotations"]["prometheus.kserve.io/port"]
    (endpoint,) = _yaml("pod_monitor.yaml")["spec"]["podMetricsEndpoints"]
    address = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "__address__")
    assert address["replacement"] == "${1}:" + port


def test_rules_use_only_exported_metrics_grouped_per_model_version() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    for rule in _rules():
        expr = rule["expr"]
        assert _balanced(expr), expr
        assert set(_SERIES.findall(expr)) <= EXPORTED, expr
        assert set(_RECORDED.findall(expr)) <= recorded, expr
        for grouping in re.findall(r"by \(([^)]*)\)", expr):
            assert {label.strip() for label in grouping.split(",")} >= VERSION_LABELS, expr


def test_alerts_cover_errors_latency_score_shift_and_out_of_domain_inputs() -> None:
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    assert set(alerts) == {
        "KfpCicdPredictorErrorRateHigh",
        "KfpCicdPredictorLatencyP99High",
        "KfpCicdPredictionScoreShift",
        "KfpCicdOutOfDomainInputsHigh",
    }
    recorded = {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}
    expanded = {
        name: rule["expr"] + "".join(recorded[r] for r in _RECORDED.findall(rule["expr"]))
        for name, rule in alerts.items()
    }
    assert "kfp_cicd_prediction_errors_total" in expanded["KfpCicdPredictorErrorRateHigh"]
    assert "histogram_quantile(0.99" in expanded["KfpCicdPredictorLatencyP99High"]
    assert "kfp_cicd_request_latency_seconds_bucket" in expanded["KfpCicdPredictorLatencyP99High"]
    assert "kfp_cicd_prediction_score_sum" in expanded["KfpCicdPredictionScoreShift"]
    assert "kfp_cicd_out_of_domain_inputs_total" in expanded["KfpCicdOutOfDomainInputsHigh"]
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_dashboard_queries_use_exported_metrics_and_known_variables() -> None:
    dashboard = _dashboard()
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "model_name", "model_version"} <= variables
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert _balanced(expr), expr
            assert set(_SERIES.findall(expr)) <= EXPORTED, expr
            assert set(re.findall(r"\$(\w+)", expr)) <= variables | {"__rate_interval"}, expr


def test_dashboard_shows_traffic_latency_errors_and_scores_per_version_side_by_side() -> None:
    panels = [p for p in _dashboard()["panels"] if p["type"] != "row"]
    queries = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels}
    used = set(_SERIES.findall(" ".join(queries.values())))
    unused = {"kfp_cicd_request_latency_seconds_sum", "kfp_cicd_request_latency_seconds_count"}
    assert used >= EXPORTED - unused
    assert any(
        p["type"] == "heatmap" and "kfp_cicd_prediction_score_bucket" in queries[p["title"]] for p in panels
    )
    repeated = [p for p in panels if p.get("repeat") == "model_version"]
    assert repeated and all(p["repeatDirection"] == "h" for p in repeated), "canary vs stable side by side"
    covered = " ".join(queries[p["title"]] for p in repeated)
    for metric in (
        "kfp_cicd_predictions_total",
        "kfp_cicd_prediction_errors_total",
        "kfp_cicd_request_latency_seconds_bucket",
        "kfp_cicd_prediction_score_bucket",
    ):
        assert metric in covered
    for panel in panels:
        if "repeat" not in panel and panel["type"] != "heatmap":
            assert "model_version" in queries[panel["title"]], panel["title"]
