"""pip-audit over every pinned requirement file, with the documented exceptions, as CI runs it.

The audit itself needs pip-audit's advisory service (the PyPI JSON API); where it does not answer,
the audit test skips with the reason and CI fails instead (``AuditUnavailable``, exit 2): an audit
that checked nothing never passes as clean.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kfp_cicd.security.dependency_audit import (
    AuditConfigError,
    AuditException,
    AuditUnavailable,
    parse_report,
    pip_audit_command,
    read_exceptions,
    run_audit,
)

REPO = Path(__file__).resolve().parents[2]
EXCEPTIONS = REPO / "requirements" / "audit-exceptions.txt"
LOCKS = sorted((REPO / "requirements").glob("*.lock"))


def test_the_exceptions_file_documents_every_accepted_advisory() -> None:
    for exception in read_exceptions(EXCEPTIONS):
        assert exception.vuln_id.startswith(("GHSA-", "PYSEC-", "CVE-", "OSV-")), exception
        assert len(exception.reason.split()) >= 4, f"{exception.vuln_id}: say why it is accepted"


def test_malformed_exceptions_are_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "exceptions.txt"
    path.write_text(
        "# comment\nGHSA-aaaa-bbbb-cccc | pkg | unreachable code path here | 2027-01-01\n"
        "PYSEC-2026-1 | pkg | no review date\n"
    )
    with pytest.raises(AuditConfigError, match=r"exceptions.txt:3: expected 'ID \| package"):
        read_exceptions(path)
    path.write_text("PYSEC-2026-1 | pkg | a reason for it | next year\n")
    with pytest.raises(AuditConfigError, match="review date 'next year' is not YYYY-MM-DD"):
        read_exceptions(path)
    path.write_text("PYSEC-2026-1 | a | one reason | 2027-01-01\nPYSEC-2026-1 | a | again | 2027-01-01\n")
    with pytest.raises(AuditConfigError, match="listed twice: PYSEC-2026-1"):
        read_exceptions(path)


def test_the_command_audits_the_pins_without_installing_and_ignores_only_the_exceptions() -> None:
    exception = AuditException("GHSA-aaaa-bbbb-cccc", "pkg", "reason", dt.date(2027, 1, 1))
    command = pip_audit_command(Path("requirements/main.lock"), [exception])
    assert command[:3] == [sys.executable, "-m", "pip_audit"]
    assert {"--no-deps", "--disable-pip"} <= set(command)
    assert command[command.index("-r") + 1] == "requirements/main.lock"
    assert command[command.index("--ignore-vuln") + 1] == "GHSA-aaaa-bbbb-cccc"
    assert command.count("--ignore-vuln") == 1
    assert exception.overdue(dt.date(2027, 1, 2)) and not exception.overdue(dt.date(2027, 1, 1))


def test_a_report_separates_audited_skipped_and_vulnerable_packages() -> None:
    report = {
        "dependencies": [
            {"name": "clean", "version": "1.0", "vulns": []},
            {"name": "torch", "skip_reason": "Dependency not found on PyPI: torch (2.13.0+cpu)"},
            {"name": "old", "version": "0.1", "vulns": [{"id": "PYSEC-2026-7", "fix_versions": ["0.2"]}]},
        ],
        "fixes": [],
    }
    result = parse_report(Path("x.lock"), report)
    assert result.audited == ["clean", "old"] and set(result.skipped) == {"torch"}
    assert [str(v) for v in result.vulnerabilities] == ["old==0.1: PYSEC-2026-7 (fixed in 0.2)"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_audit_that_reaches_no_advisory_service_fails_instead_of_passing(tmp_path: Path) -> None:
    """The real pip-audit through a proxy that refuses connections: exit 2, never 0."""
    lock = tmp_path / "one.lock"
    lock.write_text("pip_audit==2.10.1\n")
    env = {
        **os.environ,
        "HTTPS_PROXY": f"http://127.0.0.1:{_closed_port()}",
        "NO_PROXY": "",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }  # no cached answers
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kfp_cicd.security.dependency_audit",
            str(lock),
            "--exceptions",
            str(EXCEPTIONS),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "dependency audit could not run" in completed.stderr


def test_pinned_requirements_have_no_known_vulnerabilities(tmp_path: Path) -> None:
    """As CI: every lock file, exceptions ignored. Skips where the advisory service does not answer."""
    exceptions = read_exceptions(EXCEPTIONS)
    probe = tmp_path / "probe.lock"
    probe.write_text("pip_audit==2.10.1\n")
    try:
        run_audit(probe, exceptions, timeout_s=60)
    except AuditUnavailable as unavailable:
        pytest.skip(f"pip-audit's advisory service is unreachable from here: {unavailable}")
    assert LOCKS, "requirements/*.lock not found"
    found = [f"{lock.name}: {v}" for lock in LOCKS for v in run_audit(lock, exceptions).vulnerabilities]
    assert found == [], f"upgrade the pins or document the advisory in {EXCEPTIONS.name}"


def test_ci_audits_every_lock_file_before_anything_ships() -> None:
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "pipelines.yml").read_text())
    steps = workflow["jobs"]["audit"]["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert "python -m kfp_cicd.security.dependency_audit requirements/*.lock" in runs
    assert "grep -iE '^pip[-_]audit==' requirements/main.lock" in runs
    assert any(
        line.lower().startswith(("pip-audit==", "pip_audit=="))
        for line in (REPO / "requirements" / "main.lock").read_text().splitlines()
    )
    for job in ("kubeflow", "vertex"):
        assert "audit" in workflow["jobs"][job]["needs"], f"{job} must wait for the audit"
