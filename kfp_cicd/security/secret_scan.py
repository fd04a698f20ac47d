"""Find credentials where none may be: compiled specs, run artifacts, MLflow stores, captured logs.

Two kinds of search, both pure functions over text or files:

- **patterns** (:data:`PATTERNS`): the shapes credentials have (AWS access key ids, secret-key
  assignments, private keys, GCP key ids, GitHub tokens, ``password=``/``token=`` assignments,
  ``Authorization: Bearer …``, MLflow tracking credentials, URLs with ``user:password@``). Generic
  assignments are only reported when the value looks like a secret and not like a placeholder
  (``REPLACE_ME``, ``${VAR}``, ``<token>``) or a reference (an environment variable's name such
  as ``MLFLOW_TRACKING_PASSWORD``, a ``snake_case`` variable in embedded component code);
- **known values** (:func:`find_values`): literal secrets a caller knows (e.g. values planted in a
  run's environment), searched byte for byte in every file, binary ones included (SQLite stores,
  pickles, model files), also in their URL-encoded form.

A :class:`Finding` never carries the secret itself: its ``excerpt`` is masked, so reporting a
finding (in a test failure, a CI log) does not leak what was found.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# Files larger than this are searched for known values only (model weights, data files).
MAX_TEXT_BYTES = 20 * 1024 * 1024
_SECRET_CHARS = r"[A-Za-z0-9_\-+/=!@#%^*~]"


@dataclass(frozen=True)
class SecretPattern:
    """One credential shape; the group ``value`` (when present) is what must not be a placeholder."""

    name: str
    regex: re.Pattern[str]
    generic: bool = False  # an assignment whose value is checked against placeholders/references


@dataclass(frozen=True)
class Finding:
    """Where a credential was found: ``location`` (file or source name), 1-based line, masked text."""

    location: str
    line: int
    pattern: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.location}:{self.line}: {self.pattern}: {self.excerpt}"


PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "aws-access-key-id", re.compile(r"(?<![A-Z0-9])(?P<value>(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])")
    ),
    SecretPattern(
        "aws-secret-access-key",
        re.compile(r"(?i)aws_secret_access_key['\"]?\s*[=:]\s*['\"]?(?P<value>[A-Za-z0-9/+=]{16,})"),
        generic=True,
    ),
    SecretPattern("private-key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    SecretPattern(
        "gcp-private-key-id",
        re.compile(r"(?i)['\"]?private_key_id['\"]?\s*[=:]\s*['\"]?(?P<value>[0-9a-f]{16,})"),
    ),
    SecretPattern(
        "github-token",
        re.compile(
            r"(?<![A-Za-z0-9])(?P<value>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"
        ),
    ),
    SecretPattern(
        "bearer-token",
        re.compile(r"(?i)authorization['\"]?\s*[=:]\s*['\"]?bearer\s+(?P<value>[A-Za-z0-9._~+/=\-]{8,})"),
        generic=True,
    ),
    SecretPattern(
        "mlflow-credential",
        re.compile(
            r"MLFLOW_TRACKING_(?:PASSWORD|TOKEN)['\"]?\s*[=:]\s*['\"]?(?P<value>" + _SECRET_CHARS + r"{4,})"
        ),
        generic=True,
    ),
    SecretPattern(
        "password-or-token-assignment",
        re.compile(
            r"(?i)(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])*(?:password|passwd|pwd|token|secret|api[_-]?key)"
            r"['\"]?\s*[=:]\s*['\"]?(?P<value>" + _SECRET_CHARS + r"{8,})"
        ),
        generic=True,
    ),
    SecretPattern(
        "url-with-credentials",
        re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://(?P<user>[^\s:/@'\"]+):(?P<value>[^\s:/@'\"]+)@"),
        generic=True,
    ),
)

_PLACEHOLDER_WORDS = {
    "replace_me",
    "replaceme",
    "changeme",
    "change_me",
    "example",
    "placeholder",
    "redacted",
    "secret",
    "password",
    "token",
    "none",
    "null",
    "true",
    "false",
    "xxx",
    "xxxx",
    "dummy",
    "your_token",
    "your_password",
    "masked",
}
_REFERENCE = re.compile(
    r"^(?:[A-Z][A-Z0-9_]*"  # an environment variable's name: MLFLOW_TRACKING_PASSWORD
    r"|[a-z_][a-z0-9]*(?:_[a-z0-9]+)+"  # a snake_case name in code: connection_token
    r"|\$.*|<.*|\{\{.*|%\(.*"  # ${VAR}, $(VAR), <token>, {{ .Values.x }}, %(name)s
    r"|[*xX.\-_=]+)$"
)  # *****, xxxx, ----


def is_placeholder(value: str) -> bool:
    """True when ``value`` is a stand-in or a reference to a secret rather than a secret."""
    stripped = value.strip("'\"")
    return (
        not stripped
        or stripped.lower() in _PLACEHOLDER_WORDS
        or "replace_me" in stripped.lower()
        or bool(_REFERENCE.match(stripped))
    )


def _mask(value: str) -> str:
    return f"{value[:4]}…({len(value)} chars)" if len(value) > 4 else "…"


def scan_text(text: str, location: str = "<text>") -> list[Finding]:
    """Every credential-shaped match in ``text`` (placeholders and references excepted)."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        reported: set[int] = set()  # where a value starts: one finding per value (the first pattern's)
        for pattern in PATTERNS:
            for match in pattern.regex.finditer(line):
                group = "value" if "value" in pattern.regex.groupindex else 0
                value, start = match.group(group), match.start(group)
                if start in reported or (pattern.generic and is_placeholder(value)):
                    continue
                reported.add(start)
                findings.append(Finding(location, number, pattern.name, _mask(value)))
    return findings


def _variants(value: str) -> set[bytes]:
    """The forms in which ``value`` could be stored: as is and URL-encoded."""
    return {value.encode(), quote(value, safe="").encode()}


def find_values(data: bytes, values: Iterable[str], location: str = "<bytes>") -> list[Finding]:
    """Each known secret value occurring in ``data`` (any encoding of text or a binary file)."""
    findings = []
    for value in values:
        if not value:
            raise ValueError("an empty string cannot be searched for as a secret value")
        for variant in _variants(value):
            offset = data.find(variant)
            if offset >= 0:
                line = data.count(b"\n", 0, offset) + 1
                findings.append(Finding(location, line, "known-secret-value", _mask(value)))
                break
    return findings


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


def scan_file(path: Path, known_values: Iterable[str] = ()) -> list[Finding]:
    """Patterns (text files up to :data:`MAX_TEXT_BYTES`) and known values (every file) in ``path``."""
    data = path.read_bytes()
    findings = find_values(data, tuple(known_values), str(path))
    if not _is_binary(data) and len(data) <= MAX_TEXT_BYTES:
        findings += scan_text(data.decode("utf-8", errors="replace"), str(path))
    if _is_binary(data) and data.startswith(b"SQLite format 3\x00"):
        findings += scan_sqlite(path)
    return findings


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` (or ``root`` itself), in a stable order; links not followed."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def scan_tree(root: Path, known_values: Iterable[str] = ()) -> list[Finding]:
    """:func:`scan_file` over every file under ``root``."""
    if not root.exists():
        raise FileNotFoundError(f"nothing to scan: {root} does not exist")
    values = tuple(known_values)
    return [finding for path in iter_files(root) for finding in scan_file(path, values)]


def sqlite_rows_as_text(path: Path) -> Iterator[tuple[str, str]]:
    """(``table``, row as text) for every row of every table of a SQLite database (e.g. mlflow.db)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # table names come from the schema
                yield table, " ".join("" if cell is None else str(cell) for cell in row)
    finally:
        connection.close()


def scan_sqlite(path: Path) -> list[Finding]:
    """Patterns in every row of a SQLite database (run params, tags, registry tags of an MLflow store)."""
    return [
        finding for table, row in sqlite_rows_as_text(path) for finding in scan_text(row, f"{path}[{table}]")
    ]


_URL_CREDENTIALS = re.compile(r"(?i)\b(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<userinfo>[^\s/@'\"]+)@")


def redact_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL replaced by ``***@`` (for logs and summaries)."""
    return _URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}***@", text)
