"""The one way to run a TFDV job script in the TFDV interpreter and read what it wrote.

A job script (:mod:`kfp_cicd.tfdv.jobs`) gets a JSON request file and writes its results, including
``result.json`` (a summary, or ``{"error": ...}`` when its inputs were unusable), into an output
directory. :func:`run_job` starts it in its own process group, copies its output lines to our
stderr as they come (the task's log) while keeping the last few for error messages, and kills the
whole group when it runs past its time or we are interrupted. :func:`read_result` turns what the
job left behind into its summary or the right error: :class:`~kfp_cicd.errors.DataError` for
unusable inputs, :class:`~kfp_cicd.errors.EnvironmentNotReady` for a TFDV environment missing a
package, :class:`~kfp_cicd.errors.KfpCicdError` for a crash, each with the job's last lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_cicd.errors import DataError, EnvironmentNotReady, KfpCicdError
from kfp_cicd.tfdv.environment import TFDV_PYTHON_ENV_VAR

#: Output lines kept for error messages.
TAIL_LINES = 30
_SHOWN_LINES = 15


@dataclass(frozen=True)
class TfdvJob:
    """A job script and how messages name it.

    Attributes:
        script: the script, run by path (``kfp_cicd.tfdv.jobs.JOB_SCRIPT`` ...).
        name: what the job does, for messages ("validation", "drift check").
        timeout_advice: what to do when it runs past its time.
    """

    script: Path
    name: str
    timeout_advice: str


@dataclass(frozen=True)
class JobRun:
    """How one job process ended: the interpreter, its exit code and its last output lines."""

    job: TfdvJob
    python: str
    returncode: int
    tail: tuple[str, ...]


def run_job(job: TfdvJob, request_path: Path, *, python: str, timeout_s: float) -> JobRun:
    """Run ``job`` on ``request_path`` with the TFDV interpreter ``python``; wait at most ``timeout_s``.

    ``-I`` (isolated mode) keeps this environment's PYTHONPATH and user site-packages out of the
    TFDV interpreter; ``-u`` makes its progress lines arrive as they are written.

    Raises:
        EnvironmentNotReady: the interpreter cannot be started.
        KfpCicdError: the job ran past ``timeout_s`` (it and everything it started were killed).
    """
    command = [python, "-I", "-u", str(job.script), str(request_path)]
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        raise EnvironmentNotReady(
            f"cannot start the TFDV interpreter {python}: {error}. Run `make install`, or set "
            f"{TFDV_PYTHON_ENV_VAR} to a working interpreter."
        ) from error
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    pump = threading.Thread(target=_forward_lines, args=(process, tail), daemon=True)
    pump.start()
    try:
        returncode = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        _kill_job(process)
        raise KfpCicdError(
            f"the TFDV {job.name} job did not finish within {timeout_s:g} s and was stopped. "
            f"{job.timeout_advice}"
        ) from error
    except BaseException:  # e.g. KeyboardInterrupt: the job runs in its own session, stop it too
        _kill_job(process)
        raise
    finally:
        pump.join(timeout=10)
    return JobRun(job, python, returncode, tuple(tail))


def read_result(output_dir: Path, run: JobRun) -> dict[str, Any]:
    """The job's ``result.json`` in ``output_dir``, or the error it reports, as the right exception.

    Raises:
        DataError: the job found its inputs unusable (its ``{"error": ...}``).
        EnvironmentNotReady: the job wrote no result and failed importing a package.
        KfpCicdError: the job wrote no result (crashed); the message holds its last lines.
    """
    result_path = output_dir / "result.json"
    summary: dict[str, Any] = {}
    if result_path.is_file():
        summary = json.loads(result_path.read_text(encoding="utf-8"))
    if "error" not in summary and summary:
        return summary
    if "error" in summary:
        raise DataError(summary["error"])
    last_lines = "\n".join(f"    {line}" for line in run.tail[-_SHOWN_LINES:])
    if any("ModuleNotFoundError" in line or "ImportError" in line for line in run.tail):
        raise EnvironmentNotReady(
            f"the TFDV interpreter {run.python} lacks a package the {run.job.name} job needs:\n"
            f"{last_lines}\nRun `make install` to (re)build .venv-tfdv, or set {TFDV_PYTHON_ENV_VAR}."
        )
    raise KfpCicdError(
        f"the TFDV {run.job.name} job failed (exit code {run.returncode}); its last "
        f"output lines:\n{last_lines}"
    )


def _kill_job(process: subprocess.Popen[str]) -> None:
    """Kill the job and anything it started (it leads its own process group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _forward_lines(process: subprocess.Popen[str], tail: deque[str]) -> None:
    """Copy the job's output lines to our stderr and keep the last few for error messages."""
    assert process.stdout is not None
    for line in process.stdout:
        tail.append(line.rstrip("\n"))
        sys.stderr.write(line)
        sys.stderr.flush()
