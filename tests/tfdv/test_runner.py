"""The one TFDV job runner (kfp_cicd.tfdv.runner), as validate_data and the drift check use it.

Fake interpreters (shell scripts) stand in for the TFDV one: no TFDV needed.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from kfp_cicd.components.monitor.drift_job import DriftRequest, run_drift_job
from kfp_cicd.errors import DataError, EnvironmentNotReady, KfpCicdError
from kfp_cicd.tfdv.runner import JobRun, TfdvJob, read_result, run_job

JOB = TfdvJob(Path("job.py"), "test", "Try less.")


def _fake_python(path: Path, body: str) -> Path:
    """An executable shell script standing in for an interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _drift(tmp_path: Path, python: Path, timeout_s: float = 30.0) -> None:
    request = DriftRequest(
        data=str(tmp_path / "day.csv"),
        label_column="label",
        baseline_statistics=str(tmp_path / "train_stats.pb"),
    )
    run_drift_job(request, tmp_path / "work", tfdv_python=str(python), timeout_s=timeout_s)


def test_the_drift_check_reports_a_crash_with_the_jobs_last_lines(tmp_path: Path) -> None:
    python = _fake_python(tmp_path / "fake/python", "echo 'Traceback: boom' >&2; exit 3")
    with pytest.raises(KfpCicdError, match=r"(?s)drift check job failed \(exit code 3\).*Traceback: boom"):
        _drift(tmp_path, python)


def test_the_drift_check_past_its_time_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    """The job leads its own process group: a grandchild it started dies with it."""
    pid_file = tmp_path / "child.pid"
    python = _fake_python(tmp_path / "fake/python", f"sleep 60 & echo $! > {pid_file}; wait")
    with pytest.raises(KfpCicdError, match=r"did not finish within 1 s and was stopped\. Check a smaller"):
        _drift(tmp_path, python, timeout_s=1.0)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_an_interpreter_missing_a_package_is_environment_not_ready(tmp_path: Path) -> None:
    python = _fake_python(
        tmp_path / "fake/python", "echo 'ModuleNotFoundError: No module named tfx_bsl'; exit 1"
    )
    with pytest.raises(EnvironmentNotReady, match=r"(?s)lacks a package the drift check job needs.*tfx_bsl"):
        _drift(tmp_path, python)


def test_an_interpreter_that_cannot_start_is_environment_not_ready(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentNotReady, match="cannot start the TFDV interpreter"):
        run_job(JOB, tmp_path / "request.json", python=str(tmp_path / "missing"), timeout_s=5)


def test_the_jobs_output_is_streamed_and_its_tail_kept(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    python = _fake_python(tmp_path / "fake/python", 'for i in $(seq 1 40); do echo "line $i"; done')
    run = run_job(JOB, tmp_path / "request.json", python=str(python), timeout_s=30)
    assert run.returncode == 0 and len(run.tail) == 30 and run.tail[-1] == "line 40"
    assert "line 1\n" in capfd.readouterr().err


def test_read_result_returns_the_summary_or_the_jobs_own_error(tmp_path: Path) -> None:
    run = JobRun(JOB, "python", 0, ())
    (tmp_path / "result.json").write_text(json.dumps({"rows": 3}))
    assert read_result(tmp_path, run) == {"rows": 3}
    (tmp_path / "result.json").write_text(json.dumps({"error": "day.csv is empty"}))
    with pytest.raises(DataError, match=r"day\.csv is empty"):
        read_result(tmp_path, run)
