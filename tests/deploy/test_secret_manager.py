"""MLflow credentials from Secret Manager: the REAL google-auth client against the Secret Manager FAKE.

``FakeGoogleCloud`` (tests/support/fake_google_cloud.py) plays Google's token endpoint and
``secretmanager.googleapis.com`` (``:access`` with a base64 payload and its CRC32C, Google's error
JSON for 404/403); the task's credentials are a service-account key file pointing at it, so
``google.auth.default()`` runs as on Vertex. MLflow's own credential lookup reads the result.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_google_cloud import FakeGoogleCloud

from kfp_cicd.errors import DataError
from kfp_cicd.gcp.secret_manager import SECRET_MANAGER_API, SecretUnavailable, load_mlflow_credentials

REPO = Path(__file__).resolve().parents[2]
TOKEN_SECRET = "projects/my-project/secrets/mlflow-token/versions/latest"
USER_SECRET = "projects/my-project/secrets/mlflow-user/versions/3"
PASSWORD_SECRET = "projects/my-project/secrets/mlflow-password/versions/latest"


@pytest.fixture(scope="module")
def google_fake() -> Iterator[FakeGoogleCloud]:
    with FakeGoogleCloud() as google:
        yield google


@pytest.fixture
def google(google_fake: FakeGoogleCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGoogleCloud:
    google_fake.requests.clear()
    google_fake.denied = set()
    google_fake.secrets = {
        TOKEN_SECRET: b"tok-5d1e9a\n",  # as `echo tok | gcloud secrets versions add` stores it
        USER_SECRET: b"ci-bot",
        PASSWORD_SECRET: b"pw-77c0f1",
    }
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google_fake.service_account_file(tmp_path)))
    monkeypatch.setenv(SECRET_MANAGER_API.env_var, google_fake.url)
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return google_fake


def test_secrets_become_the_environment_mlflow_reads(
    google: FakeGoogleCloud, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    names = load_mlflow_credentials(
        f"MLFLOW_TRACKING_USERNAME={USER_SECRET}, MLFLOW_TRACKING_PASSWORD={PASSWORD_SECRET}"
    )

    assert names == ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]
    from mlflow.utils.credentials import get_default_host_creds

    creds = get_default_host_creds("http://mlflow.example:5000")
    assert (creds.username, creds.password) == ("ci-bot", "pw-77c0f1")
    accesses = google.api_requests()
    assert [r["path"] for r in accesses] == [f"/v1/{USER_SECRET}:access", f"/v1/{PASSWORD_SECRET}:access"]
    assert all(r["method"] == "GET" and r["token"].startswith("ya29.fake-") for r in accesses)
    assert "pw-77c0f1" not in caplog.text and "ci-bot" not in caplog.text
    assert f"MLFLOW_TRACKING_PASSWORD from Secret Manager {PASSWORD_SECRET}" in caplog.text


def test_a_trailing_line_break_is_removed_from_a_token(google: FakeGoogleCloud) -> None:
    import os

    load_mlflow_credentials(f"MLFLOW_TRACKING_TOKEN={TOKEN_SECRET}")
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "tok-5d1e9a"


def test_a_missing_secret_is_named_and_no_variable_is_set(google: FakeGoogleCloud) -> None:
    import os

    missing = "projects/my-project/secrets/mlflow-tokn/versions/latest"
    with pytest.raises(SecretUnavailable) as failure:
        load_mlflow_credentials(f"MLFLOW_TRACKING_USERNAME={USER_SECRET},MLFLOW_TRACKING_PASSWORD={missing}")
    message = str(failure.value)
    assert f"secret version {missing} does not exist" in message and "HTTP 404 NOT_FOUND" in message
    assert "gcloud secrets create" in message
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ  # all or nothing


def test_permission_denied_names_the_role(google: FakeGoogleCloud) -> None:
    google.denied = {"secretmanager.versions.access"}
    with pytest.raises(SecretUnavailable) as failure:
        load_mlflow_credentials(f"MLFLOW_TRACKING_TOKEN={TOKEN_SECRET}")
    message = str(failure.value)
    assert "HTTP 403 PERMISSION_DENIED" in message and "roles/secretmanager.secretAccessor" in message


@pytest.mark.parametrize(
    "value",
    [
        "tok-5d1e9a",  # a value instead of a name
        "MLFLOW_TRACKING_TOKEN=tok-5d1e9a",
        f"MLFLOW_TRACKING_TOKEN={TOKEN_SECRET.removesuffix('/versions/latest')}",
        f"PATH={TOKEN_SECRET}",
        f"MLFLOW_TRACKING_TOKEN={TOKEN_SECRET},MLFLOW_TRACKING_TOKEN={TOKEN_SECRET}",
    ],
)
def test_malformed_values_are_refused_before_any_call(google: FakeGoogleCloud, value: str) -> None:
    with pytest.raises(DataError, match="mlflow_secrets") as failure:
        load_mlflow_credentials(value)
    assert google.requests == []
    assert "tok-5d1e9a" not in str(failure.value)  # a pasted credential is never repeated


def test_empty_means_no_call(google: FakeGoogleCloud) -> None:
    assert load_mlflow_credentials("") == []
    assert google.requests == []


def _component_functions() -> list[tuple[Path, ast.FunctionDef]]:
    """Every component function (a top-level def with a ``tracking_uri`` input) of components/."""
    found = []
    for path in sorted((REPO / "components").glob("*/component.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and "tracking_uri" in [a.arg for a in node.args.args]:
                found.append((path, node))
    return found


def test_every_component_that_talks_to_mlflow_loads_the_secrets_first() -> None:
    functions = _component_functions()
    assert {f.name for _, f in functions} >= {
        "evaluate_model",
        "register_model",
        "deploy_model",
        "check_drift",
        "record_retraining_trigger",
    }
    for path, function in functions:
        assert "mlflow_secrets" in [a.arg for a in function.args.args], f"{path}: {function.name}"
        calls = [
            node
            for node in ast.walk(function)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "load_mlflow_credentials"
        ]
        assert calls, f"{path}: {function.name} never calls load_mlflow_credentials"
        first_other_call = min(
            (
                node.lineno
                for statement in function.body
                for node in ast.walk(statement)
                if isinstance(node, ast.Call) and node is not calls[0]
            ),
            default=10**9,
        )
        assert calls[0].lineno <= first_other_call, f"{path}: {function.name} calls something before it"
