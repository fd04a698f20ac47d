"""Known vulnerabilities in the pinned requirement files, through ``pip-audit``, with documented exceptions.

For every lock file it runs exactly::

    pip-audit --no-deps --disable-pip -r requirements/<name>.lock --format json --ignore-vuln ID …

(``--no-deps``: the lock already lists every package; ``--disable-pip``: nothing is installed). The
``--ignore-vuln`` ids come from ``requirements/audit-exceptions.txt``, where each accepted advisory
has a reason and a review date (see :func:`read_exceptions`).

pip-audit exits 0 even when its advisory service answered for no package at all (offline, a proxy
that hides the PyPI JSON API: every package is then "skipped"), which would make an audit that
checked nothing look clean. :func:`run_audit` therefore raises :class:`AuditUnavailable` when not a
single package was audited; CI fails on it, the test suite skips with the reason.

CLI (the CI step): ``python -m kfp_cicd.security.dependency_audit requirements/*.lock``; exit 0 no
known vulnerability, 1 vulnerabilities found, 2 the audit could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kfp_cicd.errors import EnvironmentNotReady, KfpCicdError

DEFAULT_EXCEPTIONS = Path("requirements") / "audit-exceptions.txt"
AUDIT_TIMEOUT_SECONDS = 900


class AuditConfigError(KfpCicdError, ValueError):
    """The exceptions file is malformed."""


class AuditUnavailable(EnvironmentNotReady):
    """pip-audit could not run or its advisory service answered for no package."""


@dataclass(frozen=True)
class AuditException:
    """One accepted advisory: why it does not apply or cannot be fixed yet, and when to look again."""

    vuln_id: str
    package: str
    reason: str
    review_by: dt.date

    def overdue(self, today: dt.date | None = None) -> bool:
        return (today or dt.date.today()) > self.review_by


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    vuln_id: str
    fix_versions: tuple[str, ...]

    def __str__(self) -> str:
        fix = f"fixed in {', '.join(self.fix_versions)}" if self.fix_versions else "no fixed version yet"
        return f"{self.package}=={self.version}: {self.vuln_id} ({fix})"


@dataclass
class AuditResult:
    """What pip-audit reported for one lock file."""

    lock: Path
    audited: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    vulnerabilities: list[Vulnerability] = field(default_factory=list)


def read_exceptions(path: Path) -> list[AuditException]:
    """Entries ``ID | package | reason | YYYY-MM-DD`` (review date), one a line; ``#`` starts a comment."""
    exceptions = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 4 or not all(parts):
            raise AuditConfigError(
                f"{path}:{number}: expected 'ID | package | reason | review date (YYYY-MM-DD)', got {raw!r}"
            )
        vuln_id, package, reason, review = parts
        try:
            review_by = dt.date.fromisoformat(review)
        except ValueError:
            raise AuditConfigError(f"{path}:{number}: review date {review!r} is not YYYY-MM-DD") from None
        exceptions.append(AuditException(vuln_id, package, reason, review_by))
    ids = [e.vuln_id for e in exceptions]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise AuditConfigError(f"{path}: advisories listed twice: {', '.join(duplicates)}")
    return exceptions


def pip_audit_command(lock: Path, exceptions: Sequence[AuditException]) -> list[str]:
    """The pip-audit invocation for one lock file (this interpreter's pip-audit)."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--no-deps",
        "--disable-pip",
        "-r",
        str(lock),
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    for exception in exceptions:
        command += ["--ignore-vuln", exception.vuln_id]
    return command


def parse_report(lock: Path, report: dict) -> AuditResult:
    """pip-audit's JSON report (``{"dependencies": [{name, version, vulns | skip_reason}]}``)."""
    result = AuditResult(lock)
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" in dependency:
            result.skipped[name] = dependency["skip_reason"]
            continue
        result.audited.append(name)
        result.vulnerabilities += [
            Vulnerability(
                name, dependency.get("version", "?"), vuln["id"], tuple(vuln.get("fix_versions", []))
            )
            for vuln in dependency.get("vulns", [])
        ]
    return result


def run_audit(
    lock: Path, exceptions: Sequence[AuditException], timeout_s: float = AUDIT_TIMEOUT_SECONDS
) -> AuditResult:
    """Audit one lock file; :class:`AuditUnavailable` when nothing could be audited."""
    if not lock.is_file():
        raise FileNotFoundError(f"lock file {lock} does not exist")
    try:
        completed = subprocess.run(
            pip_audit_command(lock, exceptions),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AuditUnavailable(f"pip-audit of {lock} did not finish within {timeout_s:.0f}s") from None
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise AuditUnavailable(
            f"pip-audit of {lock} failed (exit {completed.returncode}): {last_line[-600:]}"
        ) from None
    result = parse_report(lock, report)
    if not result.audited:
        reasons = sorted(set(result.skipped.values()))[:2]
        raise AuditUnavailable(
            f"pip-audit audited none of the {len(result.skipped)} packages of {lock}: "
            f"the advisory service did not answer (e.g. {'; '.join(reasons)})"
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kfp_cicd.security.dependency_audit", description=__doc__.splitlines()[0]
    )
    parser.add_argument("locks", nargs="+", type=Path, help="pinned requirement files")
    parser.add_argument(
        "--exceptions",
        type=Path,
        default=DEFAULT_EXCEPTIONS,
        help=f"accepted advisories (default {DEFAULT_EXCEPTIONS})",
    )
    args = parser.parse_args(argv)
    try:
        exceptions = read_exceptions(args.exceptions) if args.exceptions.is_file() else []
        for exception in exceptions:
            state = "OVERDUE for review" if exception.overdue() else "review by"
            print(
                f"accepted: {exception.vuln_id} in {exception.package} ({state} {exception.review_by}): "
                f"{exception.reason}"
            )
        found = []
        for lock in args.locks:
            result = run_audit(lock, exceptions)
            print(
                f"{lock}: {len(result.audited)} packages audited, {len(result.skipped)} not on the "
                f"advisory service ({', '.join(sorted(result.skipped)) or 'none'}), "
                f"{len(result.vulnerabilities)} known vulnerabilities"
            )
            found += [f"{lock}: {vulnerability}" for vulnerability in result.vulnerabilities]
    except (KfpCicdError, FileNotFoundError) as error:
        print(f"dependency audit could not run: {error}", file=sys.stderr)
        return 2
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(
            f"{len(found)} known vulnerabilities: upgrade the pins, or accept one in {args.exceptions} "
            "with a reason and a review date",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
