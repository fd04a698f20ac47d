"""A short run of ``benchmarks/load_test.py`` against the real server: zero errors, bounded memory.

It reports figures (req/s, p50/p99) but asserts none of them: only that every request succeeded
over V1 and V2 and the server's RSS grew less than the script's bound after the warm-up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_ten_clients_for_five_seconds_get_no_errors_and_memory_stays_bounded(
    untrained_model_dir: Path, repo_root: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks" / "load_test.py"),
            "--clients",
            "10",
            "--duration",
            "5",
            "--warmup",
            "2",
            "--max-growth-mb",
            "64",
            "--model-dir",
            str(untrained_model_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=repo_root,
    )
    print(result.stdout[-3000:])
    summary = re.search(r"RESULT (PASS|FAIL) errors=(\d+) rss_growth_mib=(-?[\d.]+)", result.stdout)
    assert summary, (
        f"no RESULT line (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    assert summary[1] == "PASS" and int(summary[2]) == 0, result.stdout[-2000:]
    assert float(summary[3]) <= 64
    assert result.returncode == 0
    for protocol in ("V1", "V2"):
        assert re.search(rf"\| {protocol} \| [1-9]\d* \|", result.stdout), f"{protocol} answered no request"
