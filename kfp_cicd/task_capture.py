"""What each task of a ``kfp.local`` run printed, where it goes, and when each task starts and ends.

``kfp.local``'s SubprocessRunner reads each task's merged stdout/stderr line by line and ``print``s
it to ``sys.stdout``; its own log records go to a ``logging.StreamHandler(sys.stdout)`` it installs
for every task. So while a pipeline runs, ``sys.stdout`` (and ``sys.stderr``) is replaced by a
:class:`TaskOutputRouter` that writes every line to ``<run dir>/logs/<task>.log`` (lines outside a
task to ``logs/pipeline.log``) and hands it to a listener. The task boundaries come from wrapping
``kfp.local.task_dispatcher.run_single_task_implementation``, the one function the orchestrator
calls per task, with the task's component name, and which returns the task's status.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PIPELINE_LOG = "pipeline"
#: kfp.local's line for a task it reuses from its cache instead of running it.
CACHE_HIT = re.compile(r"Task (?P<task>[\w.-]+) cache hit")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: kfp.local's SubprocessRunner indents every line a task prints by four spaces.
KFP_INDENT = "    "


class TaskListener(Protocol):
    """Who hears of task starts, the lines they print and their ends."""

    def task_started(self, task: str) -> None: ...

    def task_line(self, task: str, line: str) -> None: ...

    def task_finished(self, task: str, succeeded: bool, seconds: float) -> None: ...

    def task_cached(self, task: str) -> None: ...


@dataclass
class _OpenLog:
    name: str
    stream: io.TextIOBase
    started: float


class TaskOutputRouter(io.TextIOBase):
    """A text stream that writes each line to the current task's log file and to the listener."""

    def __init__(self, log_dir: Path, listener: TaskListener) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.listener = listener
        self._pending = ""
        self._current: _OpenLog | None = None
        log_dir.mkdir(parents=True, exist_ok=True)
        self._pipeline_log = (log_dir / f"{PIPELINE_LOG}.log").open("a", encoding="utf-8")

    def log_path(self, task: str) -> Path:
        """Where ``task``'s output goes."""
        return self.log_dir / f"{task}.log"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        stream = self._current.stream if self._current else self._pipeline_log
        if not stream.closed:
            stream.flush()

    def _line(self, raw: str) -> None:
        line = ANSI.sub("", raw).rstrip("\r")
        if self._current is None:
            self._pipeline_log.write(line + "\n")
            cached = CACHE_HIT.search(line)
            if cached:
                self.listener.task_cached(cached["task"])
            return
        self._current.stream.write(line + "\n")
        self.listener.task_line(self._current.name, line.removeprefix(KFP_INDENT))

    def start(self, task: str) -> None:
        """``task`` starts: its lines go to its own log from now on (appended on a retry)."""
        self._end_partial_line()
        self._current = _OpenLog(task, self.log_path(task).open("a", encoding="utf-8"), time.monotonic())
        self.listener.task_started(task)

    def finish(self, succeeded: bool) -> None:
        """The current task ended; later lines go to the pipeline log again."""
        self._end_partial_line()
        current, self._current = self._current, None
        if current is None:
            return
        current.stream.close()
        self.listener.task_finished(current.name, succeeded, time.monotonic() - current.started)

    def _end_partial_line(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""

    def close(self) -> None:
        if self.closed:
            return
        self._end_partial_line()
        super().close()  # flushes
        if self._current is not None:
            self._current.stream.close()
        self._pipeline_log.close()


def _task_name(component_name: str) -> str:
    from kfp.local import executor_input_utils

    return executor_input_utils.get_local_task_resource_name(component_name)


@contextlib.contextmanager
def _tasks_reported_to(router: TaskOutputRouter) -> Iterator[None]:
    """Wrap kfp.local's per-task entry point so the router knows which task is printing."""
    from kfp.local import status, task_dispatcher

    original = task_dispatcher.run_single_task_implementation

    def run_task(*args, **kwargs):  # the orchestrator passes everything by keyword
        router.start(_task_name(kwargs["component_name"]))
        succeeded = False
        try:
            outputs, task_status = original(*args, **kwargs)
            succeeded = task_status == status.Status.SUCCESS
            return outputs, task_status
        finally:
            router.finish(succeeded)

    task_dispatcher.run_single_task_implementation = run_task
    try:
        yield
    finally:
        task_dispatcher.run_single_task_implementation = original


@contextlib.contextmanager
def _parent_output_to(router: TaskOutputRouter) -> Iterator[None]:
    """This process's own log records and warnings go to the logs too, never to the console."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    handler = logging.StreamHandler(router)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        router.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        try:
            yield
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)


@contextlib.contextmanager
def capture_tasks(log_dir: Path, listener: TaskListener) -> Iterator[TaskOutputRouter]:
    """Inside this block, every task's output goes to ``log_dir/<task>.log`` and to ``listener``."""
    router = TaskOutputRouter(log_dir, listener)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = router
    try:
        with _parent_output_to(router), _tasks_reported_to(router):
            yield router
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        router.close()


def component_error(log_text: str) -> str | None:
    """The error the component raised, as its traceback ends in ``log_text``; None when there is none.

    ``module.ErrorName: message`` as Python prints it (the module path says which error it is).
    A message may span lines (e.g. an anomaly list): every line the task printed after the last
    traceback's exception line belongs to it, up to kfp.local's own (unindented) lines.
    """
    raw = log_text.splitlines()
    from_task = [not line.strip() or line.startswith(KFP_INDENT) for line in raw]
    lines = [line.removeprefix(KFP_INDENT).rstrip() for line in raw]
    headers = [
        i for i, line in enumerate(lines) if from_task[i] and line.startswith("Traceback (most recent")
    ]
    if not headers:
        return None
    # After the header come indented frame lines; the first line at column 0 is the exception's.
    start = next(
        (i for i in range(headers[-1] + 1, len(lines)) if lines[i] and not lines[i][0].isspace()), None
    )
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if not from_task[i]), len(lines))
    message = lines[start:end]
    while message and not message[-1].strip():
        message.pop()
    return "\n".join(message)
