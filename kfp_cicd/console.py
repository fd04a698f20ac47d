"""What ``kfp-cicd run`` and ``monitor`` show while a pipeline works, and how a failure ends.

Three displays of the same steps (:class:`kfp_cicd.local_run.StepDisplay`):

- :class:`LiveSteps` on a terminal: a ``rich`` live table, one row per task (state, elapsed time,
  headline such as rows validated or ``epoch 3/8, loss 0.21``), redrawn in place;
- :class:`PlainSteps` when stdout is not a terminal (CI, a pipe): one line per step change;
- :class:`StreamingSteps` with ``-v``: every line each task prints, as kfp.local prints it, and
  the step lines.

Each task's full output is in ``<run dir>/logs/<task>.log`` whichever display is used.
"""

from __future__ import annotations

import builtins
import importlib
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from kfp_cicd.local_run import (
    CACHED,
    FAILED,
    PENDING,
    QUALIFIED_ERROR,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    LocalRunResult,
    Step,
    StepDisplay,
    short_error,
)

STYLE = {
    SUCCEEDED: "green",
    CACHED: "green",
    FAILED: "bold red",
    RUNNING: "yellow",
    PENDING: "dim",
    SKIPPED: "dim",
}
MARK = {SUCCEEDED: "✓", CACHED: "=", FAILED: "✗", PENDING: "·", SKIPPED: "-"}


def elapsed(step: Step) -> float | None:
    """Seconds the step took, or has taken so far while it runs."""
    if step.seconds is not None:
        return step.seconds
    if step.state == RUNNING and step.started_at is not None:
        return time.monotonic() - step.started_at
    return None


def format_seconds(seconds: float | None) -> str:
    """``8.1s`` / ``2m03s``; "" when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


#: Room for the longest task name (``record-retraining-trigger``).
NAME_WIDTH = 26


def step_row(step: Step, now: float | None = None) -> Text:
    """One step as one line: mark (a spinner frame while it runs), name, elapsed time, headline.

    Only the headline is cut (with an ellipsis) when the terminal is narrow; the rest never shrinks.
    """
    style = STYLE.get(step.state, "")
    if step.state == RUNNING:
        mark = Spinner("dots", style=style).render(now if now is not None else time.monotonic())
    else:
        mark = Text(MARK.get(step.state, "?"), style=style)
    label = step.state if step.state in (PENDING, SKIPPED) else step.headline
    quiet = step.state in (PENDING, SKIPPED)
    row = Text.assemble(
        mark,
        " ",
        (f"{step.name:<{NAME_WIDTH}}", "bold" if step.state == RUNNING else ""),
        (f" {format_seconds(elapsed(step)):>7}  ", "dim"),
        (label, "red" if step.state == FAILED else ("dim" if quiet else "")),
    )
    row.no_wrap = True
    row.overflow = "ellipsis"
    return row


def step_table(steps: list[Step]) -> Group:
    """The step rows, one line each."""
    return Group(*(step_row(step) for step in steps))


class LiveSteps:
    """A live table of the steps on a terminal, redrawn a few times a second."""

    def __init__(self, console: Console, title: str = "") -> None:
        self.console = console
        self.title = title
        self.steps: list[Step] = []
        self._live: Live | None = None

    def __rich__(self) -> Group:
        parts = [Text(self.title, style="bold")] if self.title else []
        return Group(*parts, step_table(self.steps))

    def start(self, steps: list[Step]) -> None:
        self.steps = steps
        self._live = Live(
            self,
            console=self.console,
            refresh_per_second=8,
            redirect_stdout=False,  # the run already routes stdout/stderr to the task logs
            redirect_stderr=False,
        )
        self._live.start()

    def step_changed(self, step: Step) -> None:
        if step not in self.steps:
            self.steps.append(step)

    def task_line(self, step: Step, line: str) -> None:
        """Lines stay in the task's log; the headline carries the progress."""

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()


def plain_line(step: Step) -> str:
    """``validate-data   succeeded   8.1s  20,000 + 5,000 rows validated, 0 anomalies``."""
    if step.state == RUNNING:
        return f"{step.name:<{NAME_WIDTH}} {step.state}"
    line = f"{step.name:<{NAME_WIDTH}} {step.state:<9} {format_seconds(step.seconds):>7}  {step.headline}"
    return line.rstrip()


class PlainSteps:
    """One line per step change, for logs and CI; no cursor movement, no colour."""

    def __init__(self, out: TextIO, title: str = "") -> None:
        self.out = out
        self.title = title
        self._shown: dict[str, str] = {}

    def start(self, steps: list[Step]) -> None:
        if self.title:
            self._print(self.title)

    def step_changed(self, step: Step) -> None:
        if self._shown.get(step.name) == step.state or step.state == PENDING:
            return  # a progress update, not a change of step
        self._shown[step.name] = step.state
        self._print(plain_line(step))

    def task_line(self, step: Step, line: str) -> None:
        """Lines stay in the task's log."""

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def stop(self) -> None:
        """Nothing to tear down."""


class StreamingSteps(PlainSteps):
    """``-v``: every line the tasks print, as kfp.local prints it, besides the step lines."""

    def task_line(self, step: Step, line: str) -> None:
        self._print(f"    {line}")


def display_for(out: TextIO, verbose: bool, title: str = "") -> tuple[StepDisplay, Console]:
    """The display that suits ``out`` (live on a terminal) and a console for what follows it."""
    console = Console(file=out, highlight=False, soft_wrap=True)
    if verbose:
        return StreamingSteps(out, title), console
    if console.is_terminal:
        return LiveSteps(console, title), console
    return PlainSteps(out, title), console


#: What to do, by the kind of error a component raised (the first base class found wins).
ADVICE = (
    ("DataError", "fix the data or the parameter the message names, then run again"),
    ("EnvironmentNotReady", "install or start what the message names, then run again"),
    ("KfpCicdError", "the message says what is wrong and what to do; do that, then run again"),
)
UNEXPECTED_ADVICE = (
    "this error is not one the suite raises on purpose: the full output below shows where it came "
    "from; if the cause is not in your data or parameters, report it with that log"
)


def _error_class(error: str) -> type | None:
    """The exception class a ``module.Name: message`` line names, imported; None if it cannot be."""
    match = QUALIFIED_ERROR.match(error)
    if not match:
        found = getattr(builtins, error.split(":", 1)[0].strip(), None)
        return found if isinstance(found, type) else None
    try:
        found = getattr(importlib.import_module(match.group(1).rstrip(".")), match.group(2))
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) else None


def advice_for(error: str) -> str:
    """What to do about ``error`` (the component's ``module.Kind: message``), by the error's kind."""
    kind = _error_class(error)
    names = {base.__name__ for base in kind.__mro__} if kind else set()
    return next((advice for name, advice in ADVICE if name in names), UNEXPECTED_ADVICE)


def failure_lines(result: LocalRunResult) -> list[str]:
    """How a failed run ends: the failing task, the component's error, what to do, the log path."""
    if result.succeeded:
        return []
    step = next((s for s in result.steps if s.name == result.failed_task), None)
    took = f" after {format_seconds(step.seconds)}" if step and step.seconds is not None else ""
    task = result.failed_task or "the pipeline"
    lines = [f"✗ {task} failed{took}:"]
    lines += [f"  {line}" for line in short_error(result.error or "").splitlines()]
    lines.append(f"what to do: {advice_for(result.error or '')}")
    log = (
        result.log_dir / f"{result.failed_task}.log"
        if result.failed_task
        else result.log_dir / "pipeline.log"
    )
    lines.append(f"full output: {log}")
    return lines


def print_failure(console: Console, result: LocalRunResult) -> None:
    """The failure block, in red on a terminal."""
    lines = failure_lines(result)
    if not lines:
        return
    console.print(Text(lines[0], style="bold red"))
    for line in lines[1:]:
        console.print(Text(line), markup=False)
