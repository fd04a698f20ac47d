"""Test support: a REAL ``mlflow server`` process that tests can kill and restart, and a cuttable
loopback proxy in front of it (to stop, slow or cut the server between two REST calls).

Neither is a fake: every request that gets through is answered by the real server.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from kfp_cicd.components.deploy.local_target import free_port


@dataclass
class RealMlflowServer:
    """A real ``mlflow server`` process on loopback (SQLite backend, local artifact root).

    ``kill`` stops it the hard way (SIGKILL, as a crashed pod); ``start`` brings it back on the same
    port and store, so a test can stop the real server in the middle of an operation and restart it.
    """

    root: Path
    port: int = 0
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RealMlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--default-artifact-root",
            (self.root / "artifacts").as_uri(),
            "--no-serve-artifacts",
            "--workers",
            "1",
        ]
        with (self.root / "server.log").open("a") as log:
            # Its own process group: `mlflow server` serves from child worker processes, which a kill
            # of the parent alone would leave running (and answering) on the port.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mlflow server did not start:\n{(self.root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the server and its workers, as a crashed pod; returns once the port is closed."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"mlflow server on port {self.port} still answers after SIGKILL")

    def stop(self) -> None:
        """SIGTERM the server's process group (workers included); SIGKILL what outlives 15 s."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class ProxyRule:
    """What the proxy does to the next ``times`` requests whose method and path match.

    ``refuse``: answer nothing (the server is down); ``lose-answer``: forward (the server commits),
    then cut the connection before the answer; ``then-down``: forward and answer, then go down for
    every later request; ``slow``: wait ``seconds`` before forwarding; ``then-call``: forward (the
    server commits), call ``callback`` (e.g. kill the real server process), answer nothing.
    """

    method: str
    path_suffix: str
    action: str
    times: int = 1
    seconds: float = 0.0
    callback: Callable[[], None] | None = None


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

    def add_rule(
        self,
        method: str,
        path_suffix: str,
        action: str,
        seconds: float = 0.0,
        callback: Callable[[], None] | None = None,
    ) -> None:
        """Act once on the next matching request (see ProxyRule)."""
        with self._lock:
            self.rules.append(ProxyRule(method, path_suffix, action, seconds=seconds, callback=callback))

    def calls(self, method: str, path_suffix: str, outcome: str | None = None) -> int:
        """How many requests matching ``method``/``path_suffix`` (and ``outcome``) were seen."""
        return sum(
            1
            for m, p, o in self.seen
            if m == method and p.endswith(path_suffix) and (outcome is None or o == outcome)
        )

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
        except OSError:  # the real server process is not running: the client sees no answer
            self.seen.append((method, path, "upstream down"))
            return
        finally:
            connection.close()
        if rule and rule.action == "lose-answer":
            self.seen.append((method, path, "answer lost"))
            return
        if rule and rule.action == "then-call" and rule.callback is not None:
            rule.callback()
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
