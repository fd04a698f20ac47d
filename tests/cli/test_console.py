"""The console of a local run as a person sees it, its pieces on real kfp.local tasks.

The end-to-end tests of the real ``kfp-cicd run`` (pseudo-terminal, pipe, failure, page, browser)
are in ``test_run_console.py``; these check the parts quickly: a real two-task pipeline through
kfp.local whose output goes to per-task logs and never to the console, the error a component
raised read back from its log, and the plain step lines.
"""

import io
import json
import re
from pathlib import Path

import pytest
from kfp import dsl, local

from kfp_cicd.cli import main
from kfp_cicd.console import PlainSteps, advice_for, failure_lines, plain_line
from kfp_cicd.headlines import final_headline, progress_headline
from kfp_cicd.local_run import (
    CACHED,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    LocalRunResult,
    RunProgress,
    Step,
    TaskRecord,
    planned_steps,
    write_run_record,
)
from kfp_cicd.task_capture import capture_tasks, component_error


@dsl.component(base_image="python:3.11")
def say(text: str) -> str:
    import sys
    import warnings

    print(f"saying {text}")
    warnings.warn("a library warning nobody asked for", FutureWarning, stacklevel=1)
    print("epoch 2/5 loss 0.2500", file=sys.stderr)
    return text.upper()


@dsl.component(base_image="python:3.11")
def refuse(text: str) -> str:
    reasons = "\n  - reason one\n  - reason two\nfix the input and run again"
    raise ValueError(f"the value {text!r} is refused:{reasons}")


@dsl.pipeline(name="two-steps")
def two_steps(text: str = "hello"):
    first = say(text=text)
    refuse(text=first.output)


@dsl.pipeline(name="one-step")
def one_step(text: str = "hello"):
    say(text=text)


class Recorder:
    """A display that keeps every change it is shown (the run calls it as it would the console)."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str]] = []
        self.lines: list[tuple[str, str]] = []

    def start(self, steps: list[Step]) -> None:
        self.started = [s.name for s in steps]

    def step_changed(self, step: Step) -> None:
        self.changes.append((step.name, step.state, step.headline))

    def task_line(self, step: Step, line: str) -> None:
        self.lines.append((step.name, line))

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture(scope="module")
def failed_pipeline(tmp_path_factory: pytest.TempPathFactory):
    """The two-step pipeline run for real through kfp.local with its output captured."""
    root = tmp_path_factory.mktemp("two-steps")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "pipeline_root"))
    recorder = Recorder()
    pipeline = two_steps
    progress = RunProgress(planned_steps(pipeline), root / "pipeline_root", root / "logs", recorder)
    recorder.start(list(progress.steps.values()))
    with capture_tasks(progress.log_dir, progress), pytest.raises(RuntimeError, match="Inner task failed"):
        pipeline(text="hello")
    progress.finish()
    return root, progress, recorder


def test_each_task_output_goes_to_its_own_log_and_not_to_the_console(
    failed_pipeline, capfd: pytest.CaptureFixture
) -> None:
    root, _, recorder = failed_pipeline
    assert recorder.started == ["say", "refuse"], "planned from the spec, in the order they run"
    say_log = (root / "logs" / "say.log").read_text()
    assert "saying hello" in say_log and "Got executor_input" in say_log, "the full output is kept"
    assert "FutureWarning" in say_log, "a task's warnings stay in its log"
    assert "\x1b[" not in say_log, "no colour codes in the logs"
    assert "refused" in (root / "logs" / "refuse.log").read_text()
    assert "Running pipeline" in (root / "logs" / "pipeline.log").read_text()
    captured = capfd.readouterr()
    assert "executor_input" not in captured.out + captured.err
    assert "saying hello" not in captured.out + captured.err


def test_steps_report_state_progress_and_the_components_own_error(failed_pipeline) -> None:
    _, progress, recorder = failed_pipeline
    say_step, refuse_step = progress.steps["say"], progress.steps["refuse"]
    assert say_step.state == SUCCEEDED and say_step.seconds > 0
    assert refuse_step.state == FAILED
    assert refuse_step.error.startswith("ValueError: the value 'HELLO' is refused:")
    assert "  - reason two\nfix the input and run again" in refuse_step.error, "the whole message, every line"
    assert "Inner task failed" not in refuse_step.error
    assert ("say", "running", "") in recorder.changes
    assert ("say", "saying hello") in recorder.lines, "lines reach the display without kfp's indent"


def test_a_task_reused_from_kfp_local_cache_is_shown_as_cached(tmp_path: Path) -> None:
    root = tmp_path / "pipeline_root"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        enable_caching=True,
        cache_root=str(tmp_path / "cache"),
    )
    states = []
    for attempt in range(2):
        progress = RunProgress(planned_steps(one_step), root, tmp_path / f"logs-{attempt}", Recorder())
        with capture_tasks(progress.log_dir, progress):
            one_step(text="again")
        progress.finish()
        states.append((progress.steps["say"].state, progress.steps["say"].headline))
    assert states == [(SUCCEEDED, ""), (CACHED, "reused from the cache")]


def test_component_error_is_the_last_traceback_exception_with_its_message() -> None:
    log = "\n".join(
        [
            "    [KFP Executor] starting",
            "    Traceback (most recent call last):",
            '      File "x.py", line 1, in <module>',
            "    KeyError: 'first'",
            "",
            "    During handling of the above exception, another exception occurred:",
            "",
            "    Traceback (most recent call last):",
            '      File "y.py", line 2, in f',
            "        raise DataError(msg)",
            "    kfp_cicd.errors.DataError: the holdout data has 1 anomaly:",
            "      - feature 'channel': unexpected values ['carrier-pigeon']",
            "",
            "",
        ]
    )
    assert component_error(log) == (
        "kfp_cicd.errors.DataError: the holdout data has 1 anomaly:\n"
        "  - feature 'channel': unexpected values ['carrier-pigeon']"
    )
    assert component_error("all good\n") is None


def test_plain_lines_one_per_step_change_not_per_progress_line() -> None:
    out = io.StringIO()
    display = PlainSteps(out, "title")
    step = Step("train-model")
    display.start([step])
    step.state = "running"
    display.step_changed(step)
    step.headline = "epoch 1/5, loss 0.3"
    display.step_changed(step)  # progress: no new line
    step.state, step.seconds, step.headline = SUCCEEDED, 12.5, "5 epochs, loss 0.1000, 2 workers"
    display.step_changed(step)
    skipped = Step("deploy-model", state=SKIPPED)
    display.step_changed(skipped)
    assert out.getvalue().splitlines() == [
        "title",
        "train-model                running",
        "train-model                succeeded   12.5s  5 epochs, loss 0.1000, 2 workers",
        "deploy-model               skipped",
    ]
    assert plain_line(step).startswith("train-model")


def test_headlines_from_progress_lines_and_task_outputs(tmp_path: Path) -> None:
    line = "23:17:41,690 kfp_cicd.train member 1/5 epoch 3/60 loss 0.0703 val_loss 0.0721 60 rows/s"
    assert progress_headline("train-model", line) == "member 1/5 epoch 3/60, loss 0.0703, val_loss 0.0721"
    assert progress_headline("validate-data", line) is None
    record = TaskRecord("validate-data", {"train_rows": 16000, "eval_rows": 4000, "anomaly_count": 0}, {})
    assert final_headline(record) == "16,000 + 4,000 rows validated, 0 anomalies"
    decision = tmp_path / "decision"
    checks = [{"metric": "roc_auc", "passed": False}, {"metric": "ece", "passed": True}]
    decision.write_text(json.dumps({"checks": checks}))
    gate = TaskRecord(
        "evaluate-model",
        {"Output": False},
        {
            "decision": {"uri": str(decision), "metadata": {}},
            "metrics": {"uri": "", "metadata": {"roc_auc": 0.7}},
        },
    )
    assert final_headline(gate) == "gate REJECTED: roc_auc failed (roc_auc 0.700)"


def test_failure_lines_end_with_what_to_do_and_the_log(tmp_path: Path) -> None:
    result = LocalRunResult(
        tmp_path,
        tmp_path / "pipeline_root",
        "sqlite:///x.db",
        "t.csv",
        "e.csv",
        {},
        error="kfp_cicd.errors.DataError: bad\n  - feature 'channel'",
        steps=[Step("validate-data", FAILED, 3.25)],
        failed_task="validate-data",
    )
    assert failure_lines(result) == [
        "✗ validate-data failed after 3.2s:",
        "  DataError: bad",
        "    - feature 'channel'",
        "what to do: fix the data or the parameter the message names, then run again",
        f"full output: {tmp_path / 'logs' / 'validate-data.log'}",
    ]
    assert advice_for("ValueError: x").startswith("this error is not one the suite raises on purpose")
    assert advice_for("kfp_cicd.components.validate_data.validation.DataValidationFailed: x").startswith(
        "the message says what is wrong and what to do"
    )


def _finished_run(home: Path, name: str, failed: bool) -> LocalRunResult:
    run_dir = home / "runs" / name
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "logs" / "validate-data.log").write_text("Traceback (most recent call last):\n")
    result = LocalRunResult(
        run_dir,
        run_dir / "pipeline_root",
        f"sqlite:///{home}/mlflow.db",
        "t.csv",
        "e.csv",
        {},
        error="kfp_cicd.errors.DataError: no <label> column" if failed else None,
        steps=[
            Step("validate-data", FAILED if failed else SUCCEEDED, 2.0, "DataError: no <label> column"),
            Step("train-model", SKIPPED if failed else SUCCEEDED, None if failed else 9.0, ""),
        ],
        failed_task="validate-data" if failed else None,
        pipeline_name="kfp-cicd-training",
        started="2026-12-04T10:00:00+00:00",
        seconds=11.0,
    )
    write_run_record(result)
    return result


def test_runs_list_and_show_read_records_back(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    _finished_run(home, "20261204-100000", failed=False)
    _finished_run(home, "20261204-110000", failed=True)
    (home / "runs" / "20261204-120000").mkdir()  # interrupted: no run.json
    assert main(["runs", "list", "--home", str(home)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("20261204-120000    unfinished")
    assert re.match(
        r"20261204-110000\s+failed\s+11\.0s\s+kfp-cicd-training\s+validate-data: DataError", lines[2]
    )
    assert re.match(r"20261204-100000\s+succeeded", lines[3])
    assert main(["runs", "show", "20261204-11", "--home", str(home)]) == 0
    shown = capsys.readouterr().out
    assert "✗ validate-data" in shown and "- train-model" in shown and "skipped" in shown
    assert shown.rstrip().endswith(
        f"full output: {home / 'runs' / '20261204-110000' / 'logs' / 'validate-data.log'}"
    )
    page = (home / "runs" / "20261204-110000" / "index.html").read_text()
    assert "DataError: no &lt;label&gt; column" in page, "the page escapes what it shows"
    assert "http" not in page, "no external URLs"
    assert main(["runs", "show", "20261204", "--home", str(home)]) == 2
    assert "names 3 runs" in capsys.readouterr().err
    assert main(["runs", "show", "latest", "--home", str(tmp_path / "empty")]) == 2
    assert "no runs in" in capsys.readouterr().err
