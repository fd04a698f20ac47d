"""Registry test fixtures: a SQLite store per test, one real ``mlflow server`` per session, and a
cuttable proxy in front of it (to stop, slow or cut the server in the middle of an operation)."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from kfp_cicd.components.deploy.local_target import free_port


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on loopback (SQLite backend, local artifact root), always stopped."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--default-artifact-root", (root / "artifacts").as_uri(), "--no-serve-artifacts",
               "--workers", "1"]
    log = (root / "server.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@dataclass
class ProxyRule:
    """What the proxy does to the next ``times`` requests whose method and path match.

    ``refuse``: answer nothing (the server is down); ``lose-answer``: forward (the server commits),
    then cut the connection before the answer; ``then-down``: forward and answer, then go down for
    every later request; ``slow``: wait ``seconds`` before forwarding.
    """

    method: str
    path_suffix: str
    action: str
    times: int = 1
    seconds: float = 0.0


@dataclass
class CuttableProxy:
    """A loopback HTTP proxy in front of the REAL ``mlflow server`` that a test can cut or slow down.

    Not a fake: every request it lets through is answered by the real server. ``down`` refuses
    everything (the server is stopped, as far as the client can tell); ``delay`` slows every
    request; ``rules`` act on particular REST calls, so a test can stop the server exactly between
    two steps of an operation. ``seen`` records (method, path, what happened) of every request.
    """

    upstream: str
    down: bool = False
    delay: float = 0.0
    rules: list[ProxyRule] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

            def do_PATCH(self) -> None:
                proxy._handle(self, "PATCH")

            def do_PUT(self) -> None:
                proxy._handle(self, "PUT")

            def do_DELETE(self) -> None:
                proxy._handle(self, "DELETE")

        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def add_rule(self, method: str, path_suffix: str, action: str, seconds: float = 0.0) -> None:
        """Act once on the next matching request (see ProxyRule)."""
        with self._lock:
            self.rules.append(ProxyRule(method, path_suffix, action, seconds=seconds))

    def calls(self, method: str, path_suffix: str, outcome: str | None = None) -> int:
        """How many requests matching ``method``/``path_suffix`` (and ``outcome``) were seen."""
        return sum(1 for m, p, o in self.seen
                   if m == method and p.endswith(path_suffix) and (outcome is None or o == outcome))

    def _rule_for(self, method: str, path: str) -> ProxyRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.times > 0 and rule.method == method and path.endswith(rule.path_suffix):
                    rule.times -= 1
                    return rule
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlparse(handler.path).path
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        handler.close_connection = True
        rule = None if self.down else self._rule_for(method, path)
        if self.down or (rule and rule.action == "refuse"):
            self.seen.append((method, path, "refused"))
            return  # the connection closes without an answer
        time.sleep(self.delay + (rule.seconds if rule and rule.action == "slow" else 0.0))
        upstream = urlparse(self.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(method, handler.path, body=body or None, headers=headers)
            response = connection.getresponse()
            data, status, content_type = response.read(), response.status, response.getheader("Content-Type")
        finally:
            connection.close()
        if rule and rule.action == "lose-answer":
            self.seen.append((method, path, "answer lost"))
            return
        if rule and rule.action == "then-down":
            self.down = True
        self.seen.append((method, path, str(status)))
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type or "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client gave up waiting (its timeout): nothing to answer
            pass


@pytest.fixture
def mlflow_proxy(mlflow_server: str) -> Iterator[CuttableProxy]:
    """A cuttable proxy in front of the session's real mlflow server, closed after the test."""
    proxy = CuttableProxy(mlflow_server)
    try:
        yield proxy
    finally:
        proxy.close()
