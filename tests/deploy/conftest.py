"""Fixtures of the deploy tests: the FAKE Kubernetes API server with KServe installed.

No cluster exists here; ``FakeKubernetesApiServer`` (``tests/support/fake_kubernetes_api.py``,
shared with the training tests) stands in for it. See that module for what the fake does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_kubernetes_api import FakeKubernetesApiServer


@pytest.fixture(scope="module")
def fake_kubernetes() -> Iterator[FakeKubernetesApiServer]:
    """One fake API server per test module (reset before each test by the tests' own fixture)."""
    with FakeKubernetesApiServer(reconcile_delay=0.2) as fake:
        yield fake
