"""``kfp-cicd run`` as a person sees it: a real run in a pseudo-terminal, a failing run in a pipe,
the run's page (opened by headless Chromium), and ``runs list`` / ``runs show`` reading it back.

One successful run (module fixture) serves every assertion about it; the failing run stops at
validation, so it is quick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kfp_cicd.data.synthetic import DEMO_PARAMETERS, generate_dataset

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("kfp-cicd"))
TASKS = ("validate-data", "train-model", "evaluate-model", "register-model", "deploy-model")
#: A successful run's console, as the terminal finally shows it, fits in this many lines.
MAX_SUCCESS_LINES = 40
ESCAPE = re.compile(r"\x1b\[(\??[0-9;]*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after ``raw``: rich's cursor-up/erase redraws applied, colours dropped."""
    lines, row, col = [""], 0, 0
    position = 0
    while position < len(raw):
        match = ESCAPE.match(raw, position)
        if match:
            argument, command = match.groups()
            count = int(argument) if argument.isdigit() else 1
            if command == "A":
                row = max(row - count, 0)
            elif command == "K":
                lines[row] = lines[row][:col] if argument in ("", "0") else ""
            elif command == "G":
                col = count - 1
            position = match.end()
            continue
        char = raw[position]
        position += 1
        if char == "\n":
            row += 1
            col = 0
            while len(lines) <= row:
                lines.append("")
        elif char == "\r":
            col = 0
        elif char >= " ":
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1 :]
            col += 1
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


@pytest.fixture(scope="module")
def console_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``kfp-cicd run`` on the demo data in a pseudo-terminal of 50x150: its raw output and home."""
    home = tmp_path_factory.mktemp("console-home")
    child = pexpect.spawn(
        CLI,
        ["run", "--home", str(home), "--rows", "10000", "--param", "epochs=4"],
        encoding="utf-8",
        dimensions=(50, 150),
        env={**os.environ, "COLUMNS": "150", "LINES": "50", "TERM": "xterm-256color"},
        timeout=900,
        cwd=str(home),
    )
    child.expect(pexpect.EOF)
    child.close()
    (run_dir,) = (home / "runs").iterdir()
    return {"raw": child.before, "code": child.exitstatus, "home": home, "run_dir": run_dir}


def test_terminal_shows_one_row_per_step_then_the_summary(console_run: dict) -> None:
    assert console_run["code"] == 0, console_run["raw"][-3000:]
    shown = screen(console_run["raw"])
    text = "\n".join(shown)
    assert "executor_input" not in console_run["raw"], "kfp.local's executor_input dump stays in the logs"
    assert "Streamed logs" not in console_run["raw"] and "oneDNN" not in console_run["raw"]
    for noise in ("Warning", "cuDNN", "crcmod", "Setting OMP_NUM_THREADS", "KFP Executor"):
        assert noise not in console_run["raw"], f"{noise!r}: start-up noise and warnings stay in the logs"
    for task in TASKS:
        row = next((line for line in shown if re.match(rf"^✓ {task}\s", line)), None)
        assert row is not None, f"no finished row for {task} in:\n{text}"
        assert re.search(r"\d+(\.\d)?s|\dm\d\ds", row), f"no elapsed time in {row!r}"
    rows = {task: next(line for line in shown if line.startswith(f"✓ {task}")) for task in TASKS}
    assert re.search(r"[\d,]+ \+ [\d,]+ rows validated, 0 anomalies", rows["validate-data"])
    assert re.search(r"\d+ epochs, loss 0\.\d+, 2 workers", rows["train-model"])
    assert "gate APPROVED (roc_auc 0." in rows["evaluate-model"]
    assert "registered models:/fraud-detector/1" in rows["register-model"]
    assert re.search(r"smoke test passed, latency V1 [\d.]+ ms", rows["deploy-model"])
    assert "kfp-cicd local run: SUCCEEDED" in text and "gate:       APPROVED" in text
    assert shown[-1] == f"page:  {console_run['run_dir'] / 'index.html'}", "the page's path ends the output"
    assert len(shown) <= MAX_SUCCESS_LINES, text


def test_training_progress_was_shown_while_it_trained(console_run: dict) -> None:
    assert re.search(r"epoch \d+/\d+, loss 0\.\d+", console_run["raw"]), "epoch k/N and loss while training"


def test_each_task_has_its_full_output_in_its_log(console_run: dict) -> None:
    logs = console_run["run_dir"] / "logs"
    for task in TASKS:
        assert "Got executor_input" in (logs / f"{task}.log").read_text(), task
    assert re.search(r"epoch \d+/\d+ loss", (logs / "train-model.log").read_text())
    assert (logs / "pipeline.log").is_file()


def test_the_page_is_self_contained_and_links_the_reports(console_run: dict) -> None:
    run_dir = console_run["run_dir"]
    page = (run_dir / "index.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page), "no external URLs"
    assert "<script" not in page and "<link" not in page
    for task in TASKS:
        assert task in page
    assert "Quality gate" in page and "APPROVED" in page and "roc_auc vs baseline" in page
    assert "candidate" in page and "baseline" in page and "champion" in page
    assert page.count("<svg") == 2, "training curves and ROC curve"
    hrefs = re.findall(r"href='([^']+)'|href=\"([^\"]+)\"", page)
    targets = {a or b for a, b in hrefs}
    for view in (
        "views/validation.html",
        "views/evaluation.html",
        "views/model_card.md",
        "views/audit_record.json",
    ):
        assert view in targets, view
        assert (run_dir / view).resolve().is_file(), f"{view} leads nowhere"
    assert json.loads((run_dir / "views" / "audit_record.json").read_text())["decision"]["approved"] is True


def test_runs_list_and_show_read_the_run_back(console_run: dict) -> None:
    home, run_dir = str(console_run["home"]), console_run["run_dir"]
    listed = subprocess.run([CLI, "runs", "list", "--home", home], capture_output=True, text=True, check=True)
    assert re.search(
        rf"^{run_dir.name}\s+succeeded\s+\S+\s+kfp-cicd-training\s+gate APPROVED", listed.stdout, re.M
    )
    shown = subprocess.run(
        [CLI, "runs", "show", run_dir.name[:11], "--home", home], capture_output=True, text=True, check=True
    )
    assert "✓ deploy-model" in shown.stdout and "gate:       APPROVED" in shown.stdout
    assert f"page:  {run_dir / 'index.html'}" in shown.stdout
    missing = subprocess.run([CLI, "runs", "show", "nope", "--home", home], capture_output=True, text=True)
    assert missing.returncode == 2 and f"recent runs: {run_dir.name}" in missing.stderr


@pytest.mark.browser
def test_chromium_renders_the_page(console_run: dict, tmp_path: Path) -> None:
    """Headless Chromium opens index.html and draws it (the screenshot is kept beside the run)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = console_run["run_dir"] / "index.png"
    completed = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2200",
            f"--screenshot={shot}",
            (console_run["run_dir"] / "index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000, "a page with content, not a blank screen"


@pytest.fixture(scope="module")
def bad_holdout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = generate_dataset(tmp_path_factory.mktemp("bad-data"), rows=4_000, seed=3)
    holdout = pd.read_csv(data.holdout)
    holdout.loc[:50, "channel"] = "carrier-pigeon"
    bad = data.holdout.with_name("bad_holdout.csv")
    holdout.to_csv(bad, index=False)
    return data.train, bad


def test_a_failing_run_ends_with_the_anomaly_what_to_do_and_the_log(bad_holdout, tmp_path: Path) -> None:
    """Piped (not a terminal): plain lines, one per step change; the cause ends the output."""
    train, bad = bad_holdout
    completed = subprocess.run(
        [CLI, "run", "--train-data", str(train), "--eval-data", str(bad), "--home", str(tmp_path)]
        + [f"--param={key}={value}" for key, value in DEMO_PARAMETERS.items()],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 1, completed.stdout[-3000:] + completed.stderr[-3000:]
    out = completed.stdout
    assert "\x1b[" not in out, "no terminal control codes in a pipe"
    assert "executor_input" not in out and "Inner task failed" not in out + completed.stderr
    lines = out.splitlines()
    assert lines[0] == "kfp-cicd-training (local, kfp.local)"
    assert re.search(r"^data-contract-reference\s+succeeded", out, re.M), "the reference step ran first"
    start = lines.index("validate-data              running")
    assert lines[start + 1].startswith("validate-data              failed"), lines
    assert re.search(r"^train-model\s+skipped$", out, re.M), "what never ran is said"
    (run_dir,) = (tmp_path / "runs").iterdir()
    tail = "\n".join(lines[-12:])
    assert "✗ validate-data failed after" in tail
    assert "carrier-pigeon" in tail and "channel" in tail, tail
    assert lines[-2].startswith("what to do: ")
    assert lines[-1] == f"full output: {run_dir / 'logs' / 'validate-data.log'}"
    assert "Traceback" in (run_dir / "logs" / "validate-data.log").read_text()
    page = (run_dir / "index.html").read_text()
    assert "failed" in page and "carrier-pigeon" in page
    assert "views/validation.html" in page, "the validation view is linked even though the step failed"
