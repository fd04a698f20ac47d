"""The registry when the MLflow server is down, dies mid-operation, loses an answer or is slow.

The server is the REAL ``mlflow server`` (tests/support/real_mlflow_server.py); a ``CuttableProxy`` in front
of it lets each test stop it exactly between two REST calls of an operation. After every fault the
aliases must point at complete, READY versions, and running the step again must converge.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from real_mlflow_server import CuttableProxy, RealMlflowServer

from kfp_cicd.errors import RegistryError
from kfp_cicd.registry.aliases import (
    CANDIDATE,
    CHAMPION,
    PREVIOUS,
    ROLLBACK_PENDING_TAG,
    promote,
    rollback,
    set_alias,
)
from kfp_cicd.registry.client import require_registered_model
from kfp_cicd.registry.registration import register_model_version
from kfp_cicd.registry.retries import (
    ATTEMPTS_ENV,
    BACKOFF_ENV,
    TIMEOUT_ENV,
    RegistryUnavailable,
    RetryPolicy,
    is_transient,
)
from kfp_cicd.registry.tags import MODEL_DIGEST_TAG

ATTEMPTS = 3
ALIAS_WRITE = ("POST", "/registered-models/alias")
CREATE_VERSION = ("POST", "/model-versions/create")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three tries, short backoff, 5 s per request: the test sees the whole retry cycle quickly."""
    monkeypatch.setenv(ATTEMPTS_ENV, str(ATTEMPTS))
    monkeypatch.setenv(BACKOFF_ENV, "0.05")
    monkeypatch.setenv(TIMEOUT_ENV, "5")


@pytest.fixture
def name() -> str:
    return f"faults-{uuid.uuid4().hex[:8]}"


def _client(url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=url, registry_uri=url)


def assert_aliases_on_complete_versions(server: str, name: str) -> dict[str, str]:
    """Every alias points at a READY version with its digest tag and its stored MLmodel."""
    client = _client(server)
    aliases = require_registered_model(server, name)
    for alias, version in aliases.items():
        found = client.get_model_version(name, version)
        assert found.status == "READY", f"{alias} -> {version} is {found.status}"
        assert found.tags.get(MODEL_DIGEST_TAG), f"{alias} -> {version} has no digest"
        stored = {f.path for f in client.list_artifacts(found.run_id, "model")}
        assert "model/MLmodel" in stored, f"{alias} -> {version}: model files missing"
    return aliases


def _versions(server: str, name: str) -> list[str]:
    return sorted(v.version for v in _client(server).search_model_versions(f"name='{name}'"))


def test_server_down_before_the_step_fails_after_bounded_retries_and_changes_nothing(
    untrained_model_dir: Path, mlflow_server: str, mlflow_proxy: Any, name: str
) -> None:
    first = register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    promote(mlflow_proxy.url, name, first.version)
    mlflow_proxy.down = True

    with pytest.raises(RegistryUnavailable) as failure:
        register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    message = str(failure.value)
    assert mlflow_proxy.url in message and f"after {ATTEMPTS} attempt(s)" in message
    assert "get or create experiment" in message and "last cause:" in message
    assert len([s for s in mlflow_proxy.seen if s[2] == "refused"]) == ATTEMPTS, "bounded: 3 tries, no more"
    with pytest.raises(RegistryUnavailable, match=f"after {ATTEMPTS} attempt"):
        promote(mlflow_proxy.url, name, first.version)

    assert _versions(mlflow_server, name) == [first.version]
    assert assert_aliases_on_complete_versions(mlflow_server, name) == {CANDIDATE: "1", CHAMPION: "1"}


def test_an_error_the_server_answered_fails_at_once_with_its_message(
    untrained_model_dir: Path, mlflow_proxy: Any, name: str
) -> None:
    register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    before = len(mlflow_proxy.seen)
    with pytest.raises(RegistryError, match="has no version 99") as failure:
        set_alias(mlflow_proxy.url, name, CHAMPION, "99")
    assert not isinstance(failure.value, RegistryUnavailable)
    assert [s[2] for s in mlflow_proxy.seen[before:]] == ["404"], "a 404 is not retried"


def test_a_lost_answer_to_create_version_does_not_register_twice(
    untrained_model_dir: Path, mlflow_server: str, mlflow_proxy: Any, name: str
) -> None:
    register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    mlflow_proxy.add_rule(*CREATE_VERSION, "lose-answer")

    second = register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)

    assert mlflow_proxy.calls(*CREATE_VERSION, "answer lost") == 1, "the server committed, the answer was cut"
    assert mlflow_proxy.calls(*CREATE_VERSION) == 2, (
        "one per registration: the retry found the version "
        "the lost answer belonged to instead of creating another"
    )
    assert _versions(mlflow_server, name) == ["1", "2"] and second.version == "2"
    assert assert_aliases_on_complete_versions(mlflow_server, name) == {CANDIDATE: "2"}


def test_server_stopped_after_registration_before_the_alias_moves(
    untrained_model_dir: Path, mlflow_server: str, mlflow_proxy: Any, name: str
) -> None:
    register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    promote(mlflow_proxy.url, name, "1")
    mlflow_proxy.add_rule(*CREATE_VERSION, "then-down")  # version 2 created, then down

    with pytest.raises(RegistryUnavailable, match=f"{name} version 2"):
        register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    assert mlflow_proxy.calls(*ALIAS_WRITE, "refused") == 0, "no alias move was even tried"
    assert assert_aliases_on_complete_versions(mlflow_server, name) == {CANDIDATE: "1", CHAMPION: "1"}

    mlflow_proxy.down = False  # the server is back: the re-run converges
    again = register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    assert again.version == "3"
    assert assert_aliases_on_complete_versions(mlflow_server, name) == {CANDIDATE: "3", CHAMPION: "1"}


@pytest.mark.slow
def test_the_real_server_killed_after_committing_a_version_then_restarted_converges(
    untrained_model_dir: Path, tmp_path: Path, name: str
) -> None:
    """Not a cut connection: the real ``mlflow server`` process is SIGKILLed mid-registration."""
    server = RealMlflowServer(tmp_path / "store").start()
    proxy = CuttableProxy(server.url)  # only to kill the process right after it committed version 2
    try:
        register_model_version(untrained_model_dir, tracking_uri=proxy.url, model_name=name)
        promote(proxy.url, name, "1")
        proxy.add_rule(*CREATE_VERSION, "then-call", callback=server.kill)
        alias_writes = proxy.calls(*ALIAS_WRITE)

        with pytest.raises(RegistryUnavailable, match=name):
            register_model_version(untrained_model_dir, tracking_uri=proxy.url, model_name=name)
        assert server.process is not None and server.process.poll() is not None, "the server must be dead"
        assert proxy.calls(*ALIAS_WRITE) == alias_writes, "no alias move may follow a failed registration"

        server.start()  # same port, same store: what the dead server committed is still there
        assert assert_aliases_on_complete_versions(server.url, name) == {CANDIDATE: "1", CHAMPION: "1"}
        again = register_model_version(untrained_model_dir, tracking_uri=proxy.url, model_name=name)
        assert assert_aliases_on_complete_versions(server.url, name) == {
            CANDIDATE: again.version,
            CHAMPION: "1",
        }
        promote(proxy.url, name, again.version)
        aliases = assert_aliases_on_complete_versions(server.url, name)
        assert (aliases[CHAMPION], aliases[PREVIOUS]) == (again.version, "1")
    finally:
        proxy.close()
        server.stop()


def test_promote_interrupted_between_its_two_alias_moves_converges_on_rerun(
    untrained_model_dir: Path, mlflow_server: str, mlflow_proxy: Any, name: str
) -> None:
    for _ in range(2):
        register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    promote(mlflow_proxy.url, name, "1")
    mlflow_proxy.add_rule(*ALIAS_WRITE, "then-down")  # previous moves, then down

    with pytest.raises(RegistryUnavailable, match=f"read {name} version 2"):
        promote(mlflow_proxy.url, name, "2")
    aliases = assert_aliases_on_complete_versions(mlflow_server, name)
    assert (aliases[CHAMPION], aliases[PREVIOUS]) == ("1", "1"), "champion never left the old version"

    mlflow_proxy.down = False
    assert promote(mlflow_proxy.url, name, "2") == "1"
    aliases = assert_aliases_on_complete_versions(mlflow_server, name)
    assert (aliases[CHAMPION], aliases[PREVIOUS]) == ("2", "1")


def test_rollback_interrupted_between_its_two_alias_moves_is_finished_on_rerun(
    untrained_model_dir: Path, mlflow_server: str, mlflow_proxy: Any, name: str
) -> None:
    for _ in range(2):
        register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    promote(mlflow_proxy.url, name, "1")
    promote(mlflow_proxy.url, name, "2")
    mlflow_proxy.add_rule(*ALIAS_WRITE, "then-down")  # champion -> 1, then down

    with pytest.raises(RegistryUnavailable):
        rollback(mlflow_proxy.url, name)
    aliases = assert_aliases_on_complete_versions(mlflow_server, name)
    assert (aliases[CHAMPION], aliases[PREVIOUS]) == ("1", "1")
    assert _client(mlflow_server).get_registered_model(name).tags[ROLLBACK_PENDING_TAG] == "1->2"

    mlflow_proxy.down = False
    done = rollback(mlflow_proxy.url, name)  # finishes it instead of refusing "both on version 1"
    assert (done.restored, done.demoted) == ("1", "2")
    aliases = assert_aliases_on_complete_versions(mlflow_server, name)
    assert (aliases[CHAMPION], aliases[PREVIOUS]) == ("1", "2")
    assert ROLLBACK_PENDING_TAG not in _client(mlflow_server).get_registered_model(name).tags
    assert rollback(mlflow_proxy.url, name).restored == "2", "running it again still undoes it"


def test_a_slow_server_within_the_timeout_succeeds_and_one_timed_out_read_is_retried(
    untrained_model_dir: Path, mlflow_server: str, mlflow_proxy: Any, name: str
) -> None:
    mlflow_proxy.delay = 0.3  # every request answers late, within the 5 s timeout
    registered = register_model_version(untrained_model_dir, tracking_uri=mlflow_proxy.url, model_name=name)
    # Every request answered (404: "no such registered model yet", before it is created), none twice.
    assert {outcome for _, _, outcome in mlflow_proxy.seen} <= {"200", "404"}
    assert mlflow_proxy.calls(*CREATE_VERSION) == 1
    mlflow_proxy.add_rule("GET", "/model-versions/get", "slow", seconds=6.0)  # > timeout

    assert promote(mlflow_proxy.url, name, registered.version) is None

    assert mlflow_proxy.calls("GET", "/model-versions/get") >= 2, "the timed-out read was sent again"
    assert assert_aliases_on_complete_versions(mlflow_server, name)[CHAMPION] == registered.version


def test_what_counts_as_transient_and_the_policy_from_the_environment() -> None:
    from mlflow.exceptions import MlflowException, RestException

    assert is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}))
    assert is_transient(RestException({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "429"}))
    assert not is_transient(RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"}))
    assert not is_transient(MlflowException("a local validation error"))
    policy = RetryPolicy.from_environment({ATTEMPTS_ENV: "4", BACKOFF_ENV: "2"})
    assert [policy.delay_before(n) for n in (2, 3, 4)] == [2.0, 4.0, 8.0]
    assert RetryPolicy(backoff_seconds=10, max_backoff_seconds=16).delay_before(5) == 16
    with pytest.raises(RegistryError, match=f"{ATTEMPTS_ENV}='many' is not a valid int"):
        RetryPolicy.from_environment({ATTEMPTS_ENV: "many"})
    with pytest.raises(RegistryError, match="at least 1"):
        RetryPolicy.from_environment({ATTEMPTS_ENV: "0"})
