"""No secret in compiled specs, manifests, a real run's artifacts, its MLflow store or its logs.

The scanner (``kfp_cicd.security.secret_scan``) is first shown to find every credential shape it
knows and every planted value, in text, binary and SQLite files, so the scans below can fail. The
full run is a real ``kfp-cicd run`` (kfp.local, TFDV, torchrun, MLflow SQLite store, the KServe
predictor on loopback) with credentials planted in its environment, which every task inherits.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kfp_cicd.security.secret_scan import find_values, scan_text, scan_tree

REPO = Path(__file__).resolve().parents[2]

# Fake credentials, assembled at run time so that no credential-shaped literal sits in the repository.
FAKE = {
    "aws_key_id": "AKIA" + "KFPCICDPLANTED01",
    "aws_secret": "kfpcicd" + "PlantedAwsSecret/0123456789abcdef",
    "github": "gh" + "p_" + "Kf" * 18,
    "mlflow_password": "kfpcicd-" + "planted-mlflow-password",
    "mlflow_token": "kfpcicd-" + "planted-mlflow-token",
    "kfp_token": "kfpcicd-" + "planted-kfp-token",
    "url_password": "kfpcicd" + "UrlPassw0rd",
}
SHAPES = {
    "aws-access-key-id": f"aws_access_key_id = {FAKE['aws_key_id']}",
    "aws-secret-access-key": f"AWS_SECRET_ACCESS_KEY={FAKE['aws_secret']}",
    "private-key": '{"private_key": "-----BEGIN ' + 'PRIVATE KEY-----\\nMIIEv..."}',
    "gcp-private-key-id": '"private_key_id": "' + "0123456789abcdef" * 2 + '",',
    "github-token": f"GITHUB_TOKEN: {FAKE['github']}",
    "bearer-token": f"Authorization: Bearer {FAKE['kfp_token']}",
    "mlflow-credential": f"export MLFLOW_TRACKING_PASSWORD='{FAKE['mlflow_password']}'",
    "password-or-token-assignment": f"db_password: {FAKE['url_password']}",
    "url-with-credentials": f"tracking_uri = https://alice:{FAKE['url_password']}@mlflow.example.com",
}


@pytest.mark.parametrize(("pattern", "line"), list(SHAPES.items()), ids=list(SHAPES))
def test_the_scanner_finds_each_credential_shape_and_never_repeats_it(pattern: str, line: str) -> None:
    findings = scan_text(f"harmless: 1\n{line}\n", "sample.txt")
    assert [(f.pattern, f.line) for f in findings] == [(pattern, 2)]
    for value in FAKE.values():
        assert value not in str(findings[0]), "a finding must not carry the secret it found"


@pytest.mark.parametrize(
    "line",
    [
        "AWS_SECRET_ACCESS_KEY: REPLACE_ME",
        "- envVar: MLFLOW_TRACKING_PASSWORD",
        "secretKey: MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_PASSWORD: MLFLOW_TRACKING_PASSWORD",
        "token = ${KFP_CICD_KFP_TOKEN}",
        "password: <your password>",
        "token=connection_token",
        "Authorization: Bearer $(cat /var/run/secrets/token)",
        "url: https://mlflow.example.com:5000/api",
    ],
)
def test_placeholders_and_references_are_not_findings(line: str) -> None:
    assert scan_text(line) == []


def test_planted_values_are_found_in_text_binary_and_sqlite_files(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text(f"start\nconnecting with {FAKE['kfp_token']}\n")
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01" + FAKE["aws_secret"].encode() + b"\x00")
    (tmp_path / "encoded.txt").write_text("uri=https://u:kfpcicd%2Fpass@host\n")
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("CREATE TABLE tags (key TEXT, value TEXT)")
        db.execute("INSERT INTO tags VALUES ('note', ?)", (f"db_password={FAKE['url_password']}",))
    db.close()
    known = [FAKE["kfp_token"], FAKE["aws_secret"], "kfpcicd/pass", FAKE["url_password"]]
    findings = scan_tree(tmp_path, known)
    located = {(Path(f.location.split("[")[0]).name, f.pattern) for f in findings}
    assert located >= {
        ("log.txt", "known-secret-value"),
        ("weights.bin", "known-secret-value"),
        ("encoded.txt", "known-secret-value"),  # URL-encoded form
        ("mlflow.db", "known-secret-value"),
        ("mlflow.db", "password-or-token-assignment"),
    }
    assert find_values(b"nothing here", known) == []
    with pytest.raises(ValueError, match="empty string"):
        find_values(b"x", [""])


def test_compiled_specs_carry_no_credentials() -> None:
    specs = sorted((REPO / "compiled").rglob("*.yaml"))
    assert len(specs) >= 4
    assert [str(f) for f in scan_tree(REPO / "compiled")] == []


def test_manifests_carry_only_placeholders() -> None:
    assert [str(f) for f in scan_tree(REPO / "manifests")] == []


@pytest.mark.slow
def test_a_full_local_run_leaks_no_planted_secret(tmp_path: Path) -> None:
    """Credentials in the environment of every task; none may reach an artifact, the store or a log.

    A canary (``approved_by``, a pipeline parameter that is meant to be recorded) proves that the
    scan reaches the places where values do land: the MLflow store, the artifacts and the log.
    """
    canary = "kfpcicd-scan-canary-5e1f"
    planted = {
        "AWS_ACCESS_KEY_ID": FAKE["aws_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE["aws_secret"],
        "MLFLOW_TRACKING_USERNAME": "kfpcicd-planted-user",
        "MLFLOW_TRACKING_PASSWORD": FAKE["mlflow_password"],
        "MLFLOW_TRACKING_TOKEN": FAKE["mlflow_token"],
        "KFP_CICD_KFP_TOKEN": FAKE["kfp_token"],
        "GITHUB_TOKEN": FAKE["github"],
    }
    home = tmp_path / "home"
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("kfp-cicd")),
            "run",
            "--rows",
            "2000",
            "--seed",
            "3",
            "--home",
            str(home),
            "--param",
            "epochs=1",
            "--param",
            "num_processes=1",
            "--param",
            "min_roc_auc=-1",
            "--param",
            "min_pr_auc=-1",
            "--param",
            "champion_metrics=",
            "--param",
            "baseline_metrics=",
            "--param",
            "max_ece=-1",
            "--param",
            "smoke_requests=2",
            "--param",
            f"approved_by={canary}",
        ],
        cwd=tmp_path,
        env={**os.environ, **planted},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    (tmp_path / "stdout.log").write_text(completed.stdout)
    (tmp_path / "stderr.log").write_text(completed.stderr)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "registry:   models:/" in completed.stdout and "deployment: local deployment" in completed.stdout

    outputs = [home, tmp_path / "stdout.log", tmp_path / "stderr.log"]
    leaks = [f for root in outputs for f in scan_tree(root, planted.values())]
    assert [str(f) for f in leaks] == [], "credentials reached a run output"

    reached = {f.location for root in outputs for f in scan_tree(root, [canary])}
    assert any(location.endswith("mlflow.db") for location in reached), reached
    assert any("/pipeline_root/" in location for location in reached), reached
    # The task output the console keeps back is in the run's logs/ (<task>.log): scanned too.
    assert any("/logs/" in location for location in reached), reached


def test_url_credentials_can_be_redacted_before_anything_prints_them() -> None:
    from kfp_cicd.security.secret_scan import redact_url_credentials

    line = f"MLflow store: https://alice:{FAKE['url_password']}@mlflow.example.com:5000 (sqlite:///x.db)"
    redacted = redact_url_credentials(line)
    assert redacted == "MLflow store: https://***@mlflow.example.com:5000 (sqlite:///x.db)"
    assert scan_text(line) and scan_text(redacted) == []
