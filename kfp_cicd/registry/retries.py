"""Bounded retries of MLflow calls: transient failures are retried with backoff, the rest fail at once.

What MLflow's own HTTP client already does (mlflow 3.x, ``mlflow.utils.rest_utils`` and
``request_utils``): urllib3 retries *every* request, POSTs included, up to
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (default 7) times with backoff factor
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (default 2, up to ~4 minutes) on connection errors, read
errors and HTTP 408/429/500/502/503/504, and every try may wait ``MLFLOW_HTTP_REQUEST_TIMEOUT``
(default 120 s) for an answer. That is wrong for a pipeline step twice over: an unreachable server
holds the step for many minutes, and a POST whose answer was lost (read timeout, connection cut
after the server committed) is sent again blindly, which registers a second model version.

So every registry call runs with MLflow's transport retries off and a bounded request timeout
(:func:`mlflow_http_settings`), and retrying happens here, per operation, where it is known to be
safe: reads and alias/tag writes are idempotent; creating a run or a model version is made
idempotent by a ``recover`` function that looks for the object a lost answer may have created
before sending the request again (``registration.py``). Errors the server answered on purpose (4xx:
"version not found", "invalid alias") are not retried.

Settings (environment variables of the register/deploy tasks):

- ``KFP_CICD_REGISTRY_ATTEMPTS`` (default 5): tries per operation, the first one included;
- ``KFP_CICD_REGISTRY_BACKOFF_SECONDS`` (default 1): wait before the second try, doubled before
  each further one, capped at ``KFP_CICD_REGISTRY_MAX_BACKOFF_SECONDS`` (default 16);
- ``KFP_CICD_REGISTRY_TIMEOUT_SECONDS`` (default 60): how long one HTTP request may wait for an
  answer (it becomes ``MLFLOW_HTTP_REQUEST_TIMEOUT`` during the call).

With the defaults a server that is down fails the step after 5 tries and 15 s of backoff.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from mlflow.exceptions import MlflowException, RestException

from kfp_cicd.errors import RegistryError

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS_ENV = "KFP_CICD_REGISTRY_ATTEMPTS"
BACKOFF_ENV = "KFP_CICD_REGISTRY_BACKOFF_SECONDS"
MAX_BACKOFF_ENV = "KFP_CICD_REGISTRY_MAX_BACKOFF_SECONDS"
TIMEOUT_ENV = "KFP_CICD_REGISTRY_TIMEOUT_SECONDS"
# HTTP answers that say "try again later" rather than "this request is wrong".
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MLFLOW_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
_MLFLOW_TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"


class RegistryUnavailable(RegistryError):
    """The MLflow server did not answer (or kept answering 5xx/429) through every allowed try."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one registry operation is tried."""

    attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 16.0
    request_timeout_seconds: int = 60

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise RegistryError(f"registry attempts must be at least 1, got {self.attempts} ({ATTEMPTS_ENV})")
        if self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise RegistryError(f"registry backoff must not be negative ({BACKOFF_ENV}, {MAX_BACKOFF_ENV})")
        if self.request_timeout_seconds < 1:
            raise RegistryError(
                f"registry request timeout must be at least 1 s, got "
                f"{self.request_timeout_seconds} ({TIMEOUT_ENV})"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """The policy from the ``KFP_CICD_REGISTRY_*`` variables (defaults for those unset)."""
        environ = os.environ if environ is None else environ
        default = cls()

        def read(name: str, kind: type, fallback: float) -> float:
            raw = environ.get(name, "").strip()
            if not raw:
                return fallback
            try:
                return kind(raw)
            except ValueError:
                raise RegistryError(
                    f"{name}={raw!r} is not a valid {kind.__name__}; unset it or give "
                    f"a number (default {fallback})"
                ) from None

        return cls(
            attempts=int(read(ATTEMPTS_ENV, int, default.attempts)),
            backoff_seconds=read(BACKOFF_ENV, float, default.backoff_seconds),
            max_backoff_seconds=read(MAX_BACKOFF_ENV, float, default.max_backoff_seconds),
            request_timeout_seconds=int(read(TIMEOUT_ENV, int, default.request_timeout_seconds)),
        )

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt`` (2, 3, …): exponential, capped."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 2))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling (MLflow wraps without ``from``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may succeed: no answer, a timeout, or an HTTP 408/429/5xx answer."""
    import requests
    import urllib3.exceptions

    transport = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.RetryError,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
    )
    if any(isinstance(link, transport) for link in _chain(exc)):
        return True
    if isinstance(exc, RestException) or (
        isinstance(exc, MlflowException) and str(exc.message).startswith("API request to")
    ):
        return exc.get_http_status_code() in TRANSIENT_STATUS
    return False


@contextmanager
def mlflow_http_settings(policy: RetryPolicy) -> Iterator[None]:
    """MLflow's transport retries off and its request timeout bounded, for the duration of a call."""
    saved = {name: os.environ.get(name) for name in (_MLFLOW_RETRIES, _MLFLOW_TIMEOUT)}
    os.environ[_MLFLOW_RETRIES] = "0"
    os.environ[_MLFLOW_TIMEOUT] = str(policy.request_timeout_seconds)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cause(exc: BaseException, limit: int = 400) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + " …"


def call_with_retries(
    operation: str,
    call: Callable[[], T],
    *,
    tracking_uri: str,
    policy: RetryPolicy | None = None,
    recover: Callable[[], T | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried again on transient failures; RegistryUnavailable after the last try.

    ``operation`` names the call in logs and in the final error. ``recover`` (for calls that are
    not idempotent) runs before each retry: when it finds what a try whose answer was lost
    already created, that is returned instead of calling again. Non-transient errors propagate
    at once, unchanged.
    """
    policy = policy or RetryPolicy.from_environment()
    started = time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        try:
            with mlflow_http_settings(policy):
                if attempt > 1 and recover is not None:
                    found = recover()
                    if found is not None:
                        log.info("%s: a try whose answer was lost had succeeded; using it", operation)
                        return found
                return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last = exc
            if attempt == policy.attempts:
                break
            delay = policy.delay_before(attempt + 1)
            log.warning(
                "MLflow at %s: %s failed (try %d of %d: %s); trying again in %.1f s",
                tracking_uri,
                operation,
                attempt,
                policy.attempts,
                _cause(exc, 200),
                delay,
            )
            sleep(delay)
    elapsed = time.monotonic() - started
    raise RegistryUnavailable(
        f"MLflow at {tracking_uri} did not complete '{operation}' after {policy.attempts} attempt(s) over "
        f"{elapsed:.1f} s; last cause: {_cause(last)}. Check that the server is up and reachable from "
        f"this task, or allow more with {ATTEMPTS_ENV} / {TIMEOUT_ENV}; aliases only ever point at "
        "complete, READY versions, so re-running the step once the server answers is safe"
    ) from last
