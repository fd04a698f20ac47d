"""FAKES of Google Cloud's REST APIs the deploy step calls, for the REAL google-auth and kubernetes clients.

None of these services can exist here, so the tests run the real clients against loopback FAKES
(named as such) that record every request and answer the way the real services do:

- ``FakeGoogleCloud``: one HTTP server playing
  - the OAuth 2.0 token endpoint (``/token``): the JWT-bearer grant a service-account key makes
    (google-auth's ``service_account.Credentials``; the assertion's RS256 signature is checked with
    the key's public half); tokens are ``ya29.fake-N``;
  - the GKE API (``GET /v1/projects/P/locations/L/clusters/C``, container.googleapis.com): a cluster's
    ``endpoint``, ``masterAuth.clusterCaCertificate`` (base64 PEM) and ``status``;
  - Secret Manager (``GET /v1/projects/P/secrets/S/versions/V:access``): ``payload.data`` base64;
  every API call needs a live Bearer token, or a self-signed service-account JWT as Google accepts
  (401 ``UNAUTHENTICATED`` otherwise), ``denied`` holds the
  IAM permissions the caller lacks (403 ``PERMISSION_DENIED``, worded like Google's), unknown names
  are 404 ``NOT_FOUND``; all in Google's error JSON ``{"error": {"code", "message", "status"}}``.
- Cloud Storage's JSON API (``GET /storage/v1/b/B/o?prefix=`` and ``/o/NAME?alt=media``) over
  ``objects``, for the Vertex serving container's model download;
- ``FakeGkeControlPlane``: the cluster's HTTPS endpoint, with a certificate signed by the cluster CA
  the GKE fake hands out; it accepts only Bearer tokens the token endpoint issued and that are still
  live (401 ``Unauthorized`` Status, as the API server answers), then forwards to the plain
  ``FakeKubernetesApiServer`` (``fake_kubernetes_api``).

Token lifetime: ``token_lifetime`` seconds. google-auth renews a token 225 s (its
``REFRESH_THRESHOLD``) before ``expires_in`` runs out, so the fake answers ``expires_in`` =
lifetime + 225 and stops accepting the token ``grace`` seconds after the client should have renewed
it: a client that never renews gets 401s after ``token_lifetime + grace`` seconds.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

GOOGLE_AUTH_REFRESH_MARGIN = 225.0  # google.auth._helpers.REFRESH_THRESHOLD, in seconds
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


# --- keys and certificates (generated per test session; nothing is committed) ----------------------


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_private(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class ClusterCertificates:
    """A cluster CA and the API server certificate it signed (for 127.0.0.1), as PEM."""

    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes

    @classmethod
    def generate(cls) -> ClusterCertificates:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        ca_key, server_key = _rsa_key(), _rsa_key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-gke-cluster-ca")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca.public_bytes(serialization.Encoding.PEM),
            server.public_bytes(serialization.Encoding.PEM),
            _pem_private(server_key),
        )


# --- the HTTP plumbing ------------------------------------------------------------------------------


@dataclass
class Answer:
    code: int
    body: Any
    content_type: str = "application/json"


def google_error(code: int, status: str, message: str) -> Answer:
    """Google's JSON error body (google.rpc.Status as REST APIs render it)."""
    return Answer(code, {"error": {"code": code, "message": message, "status": status}})


def _serve(server: Any, answer: Any) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = answer(self.command, self.path, body, self.headers)
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.code)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    return server, thread


@dataclass
class IssuedToken:
    value: str
    issued_at: float
    lifetime: float
    grace: float

    def live(self) -> bool:
        return time.monotonic() < self.issued_at + self.lifetime + self.grace


@dataclass
class FakeCluster:
    """A GKE cluster the fake GKE API knows: its control plane endpoint and CA."""

    endpoint: str
    ca_pem: bytes
    status: str = "RUNNING"


class FakeGoogleCloud:
    """See the module docstring. Use as a context manager; ``url`` is every API's base URL."""

    def __init__(self, token_lifetime: float = 3600.0, grace: float = 1.0) -> None:
        self.token_lifetime = token_lifetime
        self.grace = grace
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []
        self.tokens: dict[str, IssuedToken] = {}
        self.self_signed: list[dict[str, Any]] = []  # claims of the self-signed JWTs accepted
        self.denied: set[str] = set()
        self.clusters: dict[str, FakeCluster] = {}
        self.secrets: dict[str, bytes] = {}  # projects/P/secrets/S/versions/V -> payload
        self.objects: dict[tuple[str, str], bytes] = {}  # (bucket, object name) -> bytes
        self.service_account_key = _rsa_key()
        self.httpd, self._thread = _serve(
            ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler, bind_and_activate=True), self.answer
        )
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.client_email = "deployer@my-project.iam.gserviceaccount.com"

    def __enter__(self) -> FakeGoogleCloud:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def service_account_file(self, directory: Path) -> Path:
        """A service-account key file whose token_uri is this fake (for GOOGLE_APPLICATION_CREDENTIALS)."""
        path = directory / "fake-service-account.json"
        info = {
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": "fake-key-1",
            "private_key": _pem_private(self.service_account_key).decode(),
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "token_uri": f"{self.url}/token",
        }
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    def is_live(self, token: str) -> bool:
        """An access token this fake issued and still live, or a self-signed service-account JWT.

        Google APIs accept a JWT the service account signs itself (google-auth's
        ``always_use_jwt_access``, which the GAPIC clients such as aiplatform's switch on): valid
        when signed by the account's key, issued by its email and not expired.
        """
        with self.lock:
            issued = self.tokens.get(token)
            if issued is not None:
                return issued.live()
        if token.count(".") != 2:
            return False
        import jwt

        try:
            claims = jwt.decode(
                token,
                self.service_account_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError:
            return False
        with self.lock:
            self.self_signed.append(claims)
        return claims.get("iss") == self.client_email

    def api_requests(self, prefix: str = "/v1/") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(prefix)]

    # --- routes -------------------------------------------------------------------------------------

    def answer(self, method: str, raw_path: str, body: bytes, headers: Any) -> Answer:
        path = urlparse(raw_path).path
        token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        with self.lock:
            self.requests.append({"method": method, "path": raw_path, "token": token, "body": body})
        if path == "/token" and method == "POST":
            return self._token(body)
        if not self.is_live(token):
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
        if method == "GET" and path.startswith("/v1/projects/") and "/clusters/" in path:
            return self._cluster(path.removeprefix("/v1/"))
        if method == "GET" and path.startswith("/v1/projects/") and path.endswith(":access"):
            return self._secret(path.removeprefix("/v1/").removesuffix(":access"))
        if method == "GET" and path.startswith("/storage/v1/b/"):
            return self._storage(path, {k: v[0] for k, v in parse_qs(urlparse(raw_path).query).items()})
        return google_error(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")

    def _token(self, body: bytes) -> Answer:
        import jwt  # PyJWT (requirements/main.lock)

        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER:
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.service_account_key.public_key(),
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,  # google-auth always signs for Google's endpoint
            )
        except jwt.PyJWTError as exc:
            return Answer(
                400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. {exc}"}
            )
        if claims.get("iss") != self.client_email:
            return Answer(400, {"error": "invalid_grant", "error_description": "Invalid issuer"})
        with self.lock:
            value = f"ya29.fake-{len(self.tokens) + 1}"
            self.tokens[value] = IssuedToken(value, time.monotonic(), self.token_lifetime, self.grace)
        return Answer(
            200,
            {
                "access_token": value,
                "expires_in": int(self.token_lifetime + GOOGLE_AUTH_REFRESH_MARGIN),
                "token_type": "Bearer",
            },
        )

    def _storage(self, path: str, query: dict[str, str]) -> Answer:
        """Cloud Storage JSON API: list a prefix, or an object's bytes (``alt=media``)."""
        from urllib.parse import unquote

        bucket, _, rest = path.removeprefix("/storage/v1/b/").partition("/")
        if "storage.objects.get" in self.denied or "storage.objects.list" in self.denied:
            permission = "storage.objects.list" if rest == "o" else "storage.objects.get"
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"{self.client_email} does not have {permission} access to the Google Cloud Storage bucket.",
            )
        if not any(b == bucket for b, _ in self.objects):
            return google_error(404, "NOT_FOUND", "The specified bucket does not exist.")
        if rest == "o":
            prefix = query.get("prefix", "")
            items = [
                {"kind": "storage#object", "name": name, "bucket": bucket, "size": str(len(data))}
                for (b, name), data in sorted(self.objects.items())
                if b == bucket and name.startswith(prefix)
            ]
            return Answer(
                200, {"kind": "storage#objects", "items": items} if items else {"kind": "storage#objects"}
            )
        name = unquote(rest.removeprefix("o/"))
        data = self.objects.get((bucket, name))
        if data is None:
            return google_error(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
        if query.get("alt") != "media":
            return Answer(
                200, {"kind": "storage#object", "name": name, "bucket": bucket, "size": str(len(data))}
            )
        return Answer(200, data, "application/octet-stream")

    def _cluster(self, name: str) -> Answer:
        if "container.clusters.get" in self.denied:
            return google_error(
                403, "PERMISSION_DENIED", f'Required "container.clusters.get" permission(s) for "{name}".'
            )
        cluster = self.clusters.get(name)
        if cluster is None:
            return google_error(404, "NOT_FOUND", f"Not found: {name}.")
        short = name.rsplit("/", 1)[-1]
        return Answer(
            200,
            {
                "name": short,
                "selfLink": f"{self.url}/v1/{name}",
                "endpoint": cluster.endpoint,
                "masterAuth": {"clusterCaCertificate": base64.b64encode(cluster.ca_pem).decode()},
                "status": cluster.status,
                "currentMasterVersion": "1.33.5-gke.1000000",
                "location": name.split("/")[3],
            },
        )

    def _secret(self, name: str) -> Answer:
        if "secretmanager.versions.access" in self.denied:
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'secretmanager.versions.access' denied for resource '{name}' "
                "(or it may not exist).",
            )
        payload = self.secrets.get(name)
        if payload is None:
            secret = name.rsplit("/versions/", 1)[0]
            return google_error(404, "NOT_FOUND", f"Secret [{secret}] not found or has no versions.")
        import google_crc32c

        return Answer(
            200,
            {
                "name": name.replace("/latest", "/1"),
                "payload": {
                    "data": base64.b64encode(payload).decode(),
                    "dataCrc32c": str(google_crc32c.value(payload)),
                },
            },
        )


class FakeGkeControlPlane:
    """The cluster's HTTPS API endpoint (see the module docstring); ``endpoint`` is ``127.0.0.1:PORT``."""

    def __init__(self, google: FakeGoogleCloud, kubernetes_url: str) -> None:
        self.google = google
        self.backend = urlparse(kubernetes_url)
        self.certificates = ClusterCertificates.generate()
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="fake-gke-")
        cert = Path(self._dir.name) / "server.pem"
        cert.write_bytes(self.certificates.server_cert_pem + self.certificates.server_key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert)
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.httpd, self._thread = _serve(server, self.answer)
        self.endpoint = f"127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeGkeControlPlane:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()

    def tokens_used(self) -> list[str]:
        """The distinct tokens the client sent, in the order they were first used."""
        seen: list[str] = []
        for call in self.calls:
            if call["token"] not in seen:
                seen.append(call["token"])
        return seen

    def answer(self, method: str, raw_path: str, body: bytes, headers: Any) -> Answer:
        token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        live = self.google.is_live(token)
        with self.lock:
            self.calls.append({"method": method, "path": raw_path, "token": token, "accepted": live})
        if not live:
            return Answer(
                401,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "Unauthorized",
                    "reason": "Unauthorized",
                    "code": 401,
                },
            )
        connection = http.client.HTTPConnection(self.backend.hostname, self.backend.port, timeout=30)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
            connection.request(method, raw_path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            return Answer(
                response.status, response.read(), response.getheader("Content-Type", "application/json")
            )
        finally:
            connection.close()


@dataclass
class GoogleScenario:
    """What a GKE test set up: the Google fake, the control plane, the cluster's name."""

    google: FakeGoogleCloud
    control_plane: FakeGkeControlPlane
    cluster: str
    extra: dict[str, Any] = field(default_factory=dict)
