"""Predictor throughput and latency beside ``mlflow models serve``, on the same model, in one run.

Starts both servers on loopback with one worker each, then for 1-row and 100-row bodies and a few
concurrency levels drives each endpoint for a bounded time with a closed-loop aiohttp client
(``concurrency`` connections, each sending its next request as soon as the last one answered) and
reports requests/s, p50 and p99 latency, and our predictor's req/s as a ratio of MLflow's. It also
reports the CPU time each server's process tree spent per request (psutil): on a machine shared with
other jobs wall-clock figures swing with the load, while CPU ms per request stays comparable, and
1000 / (CPU ms per request) is the req/s one worker can reach on an idle core.

    .venv/bin/python benchmarks/predictor_throughput.py [--duration 5] [--concurrency 1 4 16]
        [--model-dir DIR] [--output benchmarks/results/predictor.md [--append] [--note TEXT]]

Without ``--model-dir`` a model is built in seconds (the fitted 24-feature preprocessor of the
synthetic data + an untrained MLP: serving cost does not depend on the weights). The load generator
runs on the same machine, so absolute numbers include its CPU use; the ratios compare like with like.
Other processes on the machine skew both: the report records the load average before and after.
The goal it checks (issue 6): ≥ 3x MLflow's req/s in every cell and a single-row p99 under 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

MODEL_NAME = "bench"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figures:
    server: str
    protocol: str
    rows: int
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (MLflow serves from a child)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_model(directory: Path) -> Path:
    """A real model directory (fitted preprocessor, untrained network), like the tests use."""
    import torch

    from kfp_cicd.data.synthetic import (
        CATEGORICAL_FEATURES,
        LABEL_COLUMN,
        NUMERIC_FEATURES,
        generate_transactions,
    )
    from kfp_cicd.model.features import FeatureSpec
    from kfp_cicd.model.network import TabularMLP
    from kfp_cicd.model.packaging import save_classifier, training_numeric_ranges
    from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

    spec = FeatureSpec(LABEL_COLUMN, NUMERIC_FEATURES, CATEGORICAL_FEATURES)
    features = feature_frame(generate_transactions(2000, seed=11), spec)
    preprocessor = build_preprocessor(spec).fit(features)
    input_dim = preprocessor.transform(features.head(2)).shape[1]
    torch.manual_seed(1)
    return save_classifier(
        directory / "model",
        preprocessor=preprocessor,
        network=TabularMLP(input_dim),
        input_dim=input_dim,
        spec=spec,
        example=features.head(5),
        numeric_ranges=training_numeric_ranges(features, spec),
    )


def venv_path() -> str:
    """PATH with this interpreter's bin first: ``mlflow models serve`` execs ``uvicorn`` from PATH."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def start(command: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PATH": venv_path()},
        )


def wait_for(url: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def v2_body(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> dict[str, Any]:
    from kfp_cicd.components.deploy.smoke import v2_inputs

    return {"inputs": v2_inputs(rows, metadata)}


async def drive(url: str, body: dict[str, Any], concurrency: int, duration: float) -> tuple[list[float], int]:
    """Closed loop: ``concurrency`` clients, each posting back to back for ``duration`` seconds."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    deadline = time.perf_counter() + duration

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=payload, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000.0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return latencies, errors


def measure(
    server: str,
    protocol: str,
    url: str,
    body: dict[str, Any],
    rows: int,
    concurrency: int,
    duration: float,
    pid: int,
) -> Figures:
    asyncio.run(drive(url, body, concurrency, min(1.0, duration / 3)))  # warm-up
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    latencies, errors = asyncio.run(drive(url, body, concurrency, duration))
    elapsed = time.perf_counter() - started
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000.0 / len(latencies)
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    figures = Figures(
        server,
        protocol,
        rows,
        concurrency,
        len(latencies) / elapsed,
        quantiles[49],
        quantiles[98],
        errors,
        cpu_ms,
    )
    print(
        f"{server:>8} {protocol:>3} rows={rows:<3} c={concurrency:<3} {figures.requests_per_s:8.1f} req/s "
        f"p50 {figures.p50_ms:6.2f} ms p99 {figures.p99_ms:6.2f} ms errors {errors} "
        f"server CPU {cpu_ms:6.2f} ms/request",
        flush=True,
    )
    return figures


def machine() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def goal_summary(figures: list[Figures]) -> str:
    """Whether the run meets issue 6's goal, and by how much it misses where it does not."""
    baseline = {(f.rows, f.concurrency): f.requests_per_s for f in figures if f.server == "mlflow"}
    ours = [f for f in figures if f.server != "mlflow"]
    worst = min(ours, key=lambda f: f.requests_per_s / baseline[(f.rows, f.concurrency)])
    worst_ratio = worst.requests_per_s / baseline[(worst.rows, worst.concurrency)]
    single = [f for f in ours if f.rows == 1 and f.concurrency == 1]
    p99 = max(f.p99_ms for f in single) if single else float("nan")
    met = worst_ratio >= 3.0 and p99 < 10.0
    verdict = "met" if met else "NOT met"
    cpu = {(f.server, f.protocol, f.rows): [] for f in figures}
    for f in figures:
        cpu[(f.server, f.protocol, f.rows)].append(f.cpu_ms_per_request)
    mean_cpu = {key: statistics.fmean(values) for key, values in cpu.items()}
    cpu_ratios = ", ".join(
        f"{protocol} {rows} row{'s' if rows > 1 else ''}: {mean_cpu[('mlflow', '-', rows)] / value:.2f}x"
        for (server, protocol, rows), value in mean_cpu.items()
        if server != "mlflow"
    )
    return (
        f"goal (>= 3x MLflow's req/s in every cell, single-row p99 < 10 ms): {verdict}; "
        f"lowest ratio {worst_ratio:.2f}x ({worst.protocol}, {worst.rows} row(s), concurrency "
        f"{worst.concurrency}); single-row p99 at concurrency 1: {p99:.2f} ms.\n\n"
        f"Server CPU per request, MLflow's divided by ours (capacity per core; less load-sensitive "
        f"than wall clock): "
        f"{cpu_ratios}"
    )


def report(
    figures: list[Figures],
    duration: float,
    model_dir: Path,
    loads: tuple[str, str],
    note: str = "",
    heading: str = "#",
) -> str:
    lines = [
        f"{heading} Predictor throughput vs `mlflow models serve`",
        "",
        f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]}",
        *([f"- note: {note}"] if note else []),
        f"- model: {model_dir} (24 input columns: fitted preprocessor + MLP)",
        f"- method: `benchmarks/predictor_throughput.py`, one worker per server, loopback, closed-loop "
        f"aiohttp client on the same machine, {duration:.0f} s per cell after a warm-up",
        "",
        "| rows | concurrency | server | protocol | req/s | p50 ms | p99 ms | errors | ratio | "
        "server CPU ms/request |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    baseline = {(f.rows, f.concurrency): f.requests_per_s for f in figures if f.server == "mlflow"}
    for f in figures:
        base = baseline.get((f.rows, f.concurrency))
        ratio = f.requests_per_s / base if base else 0.0
        lines.append(
            f"| {f.rows} | {f.concurrency} | {f.server} | {f.protocol} | {f.requests_per_s:.1f} | "
            f"{f.p50_ms:.2f} | {f.p99_ms:.2f} | {f.errors} | {ratio:.2f}x | "
            f"{f.cpu_ms_per_request:.2f} |"
        )
    lines += ["", goal_summary(figures)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell (default 5)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--output", type=Path, help="write the markdown table here as well")
    parser.add_argument("--append", action="store_true", help="append to --output as a new section")
    parser.add_argument("--note", default="", help="a line about this run, recorded with the figures")
    args = parser.parse_args(argv)
    from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

    with tempfile.TemporaryDirectory(prefix="kfp-cicd-bench-") as work:
        work_dir = Path(work)
        model_dir = args.model_dir or build_model(work_dir)
        load_before = load_average()
        ours_port, mlflow_port = free_port(), free_port()
        print(f"starting both servers on {model_dir}", flush=True)
        ours = start(
            [
                sys.executable,
                "-m",
                "kfp_cicd.serving",
                "--model-dir",
                str(model_dir),
                "--model-name",
                MODEL_NAME,
                "--http-port",
                str(ours_port),
                "--no-grpc",
            ],
            work_dir / "ours.log",
        )
        mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
        theirs = start(
            [
                mlflow_cli,
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(mlflow_port),
                "-w",
                "1",
            ],
            work_dir / "mlflow.log",
        )
        try:
            ours_url, mlflow_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{mlflow_port}"
            wait_for(f"{ours_url}/v2/models/{MODEL_NAME}/ready", ours)
            wait_for(f"{mlflow_url}/ping", theirs)
            metadata = requests.get(f"{ours_url}/v2/models/{MODEL_NAME}", timeout=10).json()
            figures = []
            for rows in (1, 100):
                frame = generate_transactions(rows, seed=rows).drop(columns=[LABEL_COLUMN])
                records = frame.to_dict(orient="records")
                cells = [
                    ("mlflow", "-", f"{mlflow_url}/invocations", {"dataframe_records": records}, theirs),
                    (
                        "kfp-cicd",
                        "V1",
                        f"{ours_url}/v1/models/{MODEL_NAME}:predict",
                        {"instances": records},
                        ours,
                    ),
                    (
                        "kfp-cicd",
                        "V2",
                        f"{ours_url}/v2/models/{MODEL_NAME}/infer",
                        v2_body(records, metadata),
                        ours,
                    ),
                ]
                for concurrency in args.concurrency:
                    for server, protocol, url, body, process in cells:
                        figures.append(
                            measure(
                                server, protocol, url, body, rows, concurrency, args.duration, process.pid
                            )
                        )
        finally:
            stop(ours)
            stop(theirs)
        text = report(
            figures,
            args.duration,
            model_dir,
            (load_before, load_average()),
            args.note,
            heading="##" if args.append else "#",
        )
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if args.append and args.output.exists():
            args.output.write_text(args.output.read_text().rstrip("\n") + "\n\n" + text)
        else:
            args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
