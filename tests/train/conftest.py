"""Fixtures of the training tests: the FAKE Kubernetes API server with the training operator.

No Kubernetes API exists here; ``FakeKubernetesApiServer`` (``tests/support/fake_kubernetes_api.py``,
shared with the deploy tests) stands in for it. Its PyTorchJobs start each replica as a local
process in ``run`` mode (the default), stay Running in ``hang`` mode, and replay ``script``'s
conditions in ``script`` mode; see ``tests/support/fake_training_operator.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_kubernetes_api import FakeKubernetesApiServer


@pytest.fixture
def fake_kubernetes(tmp_path: Path) -> Iterator[FakeKubernetesApiServer]:
    """A started fake API server with pod logs under ``tmp_path``; stopped (its processes killed) after."""
    log_dir = tmp_path / "pod-logs"
    log_dir.mkdir()
    with FakeKubernetesApiServer(log_dir=log_dir) as server:
        yield server
