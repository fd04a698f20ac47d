"""Registry test fixtures: a SQLite store per test, one real ``mlflow server`` per session, and a
cuttable proxy in front of it (to stop, slow or cut the server in the middle of an operation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from real_mlflow_server import CuttableProxy, RealMlflowServer


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's real ``mlflow server``, always stopped."""
    server = RealMlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def mlflow_proxy(mlflow_server: str) -> Iterator[CuttableProxy]:
    """A cuttable proxy in front of the session's real mlflow server, closed after the test."""
    proxy = CuttableProxy(mlflow_server)
    try:
        yield proxy
    finally:
        proxy.close()
