"""Bounded load test of the real predictor: N concurrent clients for D seconds over V1 and V2.

Starts ``python -m kfp_cicd.serving`` (the real KServe ModelServer, one worker) on a loopback port,
then runs ``--clients`` closed-loop clients (each sends its next request as soon as the last one
answered, alternating V1 ``/v1/models/<name>:predict`` and V2 ``/v2/models/<name>/infer``) for a
warm-up and then ``--duration`` seconds, and stops by itself. It reports requests/s, p50 and p99
latency and errors per protocol, and the server's resident memory (RSS) when ready, after the
warm-up, at its peak and at the end.

PASS needs zero errors and RSS growth from the end of the warm-up to the end of the run within
``--max-growth-mb``; anything else prints FAIL and exits 1.

    .venv/bin/python benchmarks/load_test.py [--clients 50] [--duration 60] [--rows 1]
        [--model-dir DIR] [--max-growth-mb 64] [--output benchmarks/results/load.md]

Without ``--model-dir`` a real model is built in seconds (fitted preprocessor + untrained MLP, as
``predictor_throughput.py`` does). The clients run on the same machine and share its CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predictor_throughput import build_model, free_port, machine, start, stop, v2_body, wait_for

MODEL_NAME = "load"
MIB = 1024 * 1024
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Tally:
    """Latencies (ms) and failures of one protocol."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    examples: list[str] = field(default_factory=list)

    def failed(self, what: str) -> None:
        self.errors += 1
        if len(self.examples) < 3:
            self.examples.append(what[:200])


@dataclass(frozen=True)
class Figures:
    protocol: str
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def figures(protocol: str, tally: Tally, seconds: float) -> Figures:
    latencies = tally.latencies_ms or [0.0]
    quantiles = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [latencies[0]] * 99
    )
    return Figures(
        protocol,
        len(tally.latencies_ms),
        len(tally.latencies_ms) / seconds,
        quantiles[49],
        quantiles[98],
        tally.errors,
    )


async def drive(
    urls: dict[str, str], bodies: dict[str, bytes], clients: int, seconds: float, tallies: dict[str, Tally]
) -> None:
    """``clients`` closed-loop clients alternating V1/V2 for ``seconds``; results into ``tallies``."""
    import aiohttp

    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        turn = index
        while time.perf_counter() < deadline:
            protocol = ("V1", "V2")[turn % 2]
            turn += 1
            started = time.perf_counter()
            try:
                async with session.post(urls[protocol], data=bodies[protocol], headers=headers) as response:
                    text = await response.read()
                    if response.status != 200:
                        tallies[protocol].failed(f"HTTP {response.status}: {text[:150]!r}")
                        continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                tallies[protocol].failed(f"{type(exc).__name__}: {exc}")
                continue
            tallies[protocol].latencies_ms.append((time.perf_counter() - started) * 1000.0)

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session, index) for index in range(clients)))


async def sample_rss(process: psutil.Process, stop_event: asyncio.Event, peak: list[int]) -> None:
    while not stop_event.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.5)


async def run_phase(
    urls: dict[str, str],
    bodies: dict[str, bytes],
    clients: int,
    seconds: float,
    server: psutil.Process,
    peak: list[int],
) -> tuple[dict[str, Tally], float]:
    tallies = {"V1": Tally(), "V2": Tally()}
    stop_event = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, stop_event, peak))
    started = time.perf_counter()
    await drive(urls, bodies, clients, seconds, tallies)
    elapsed = time.perf_counter() - started
    stop_event.set()
    await sampler
    return tallies, elapsed


def report(
    args: argparse.Namespace,
    results: list[Figures],
    rss: dict[str, int],
    verdict: str,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
) -> str:
    lines = [
        f"## {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}: {args.clients} clients, "
        f"{args.duration:.0f} s, {args.rows} row(s) per request",
        "",
        f"- machine: {machine()}",
        f"- load average before / after: {' '.join(f'{v:.2f}' for v in load_before)} / "
        f"{' '.join(f'{v:.2f}' for v in load_after)}",
        f"- method: `benchmarks/load_test.py --clients {args.clients} --duration {args.duration:g} "
        f"--rows {args.rows}`; one server worker, loopback, closed-loop aiohttp clients alternating "
        f"V1/V2 on the same machine, {args.warmup:g} s warm-up first",
        "",
        "| protocol | requests | req/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {f.protocol} | {f.requests} | {f.requests_per_s:.1f} | {f.p50_ms:.1f} | {f.p99_ms:.1f} | "
        f"{f.errors} |"
        for f in results
    ]
    growth = (rss["end"] - rss["after_warmup"]) / MIB
    lines += [
        "",
        f"- server RSS: ready {rss['ready'] / MIB:.1f} MiB, after warm-up "
        f"{rss['after_warmup'] / MIB:.1f} MiB, peak {rss['peak'] / MIB:.1f} MiB, end "
        f"{rss['end'] / MIB:.1f} MiB; growth after warm-up {growth:+.1f} MiB "
        f"(bound {args.max_growth_mb:g} MiB)",
        f"- verdict: **{verdict}**",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds, not measured (default 5)")
    parser.add_argument("--rows", type=int, default=1, help="rows per request (default 1)")
    parser.add_argument(
        "--max-growth-mb",
        type=float,
        default=64.0,
        help="largest RSS growth after warm-up that passes (default 64 MiB)",
    )
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--output", type=Path, help="append the markdown section to this file")
    args = parser.parse_args(argv)
    from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

    with tempfile.TemporaryDirectory(prefix="kfp-cicd-load-") as work:
        work_dir = Path(work)
        model_dir = args.model_dir or build_model(work_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start(
            [
                sys.executable,
                "-m",
                "kfp_cicd.serving",
                "--model-dir",
                str(model_dir),
                "--model-name",
                MODEL_NAME,
                "--http-port",
                str(port),
                "--no-grpc",
            ],
            work_dir / "server.log",
        )
        try:
            wait_for(f"{base}/v2/models/{MODEL_NAME}/ready", process)
            server = psutil.Process(process.pid)
            metadata = requests.get(f"{base}/v2/models/{MODEL_NAME}", timeout=10).json()
            records = (
                generate_transactions(args.rows, seed=3)
                .drop(columns=[LABEL_COLUMN])
                .to_dict(orient="records")
            )
            urls = {
                "V1": f"{base}/v1/models/{MODEL_NAME}:predict",
                "V2": f"{base}/v2/models/{MODEL_NAME}/infer",
            }
            bodies = {
                "V1": json.dumps({"instances": records}).encode(),
                "V2": json.dumps(v2_body(records, metadata)).encode(),
            }
            rss: dict[str, int] = {"ready": server.memory_info().rss}
            peak = [rss["ready"]]
            load_before = os.getloadavg()
            print(f"server ready (RSS {rss['ready'] / MIB:.1f} MiB); warm-up {args.warmup:g} s", flush=True)
            asyncio.run(run_phase(urls, bodies, args.clients, args.warmup, server, peak))
            rss["after_warmup"] = server.memory_info().rss
            print(f"measuring {args.clients} clients for {args.duration:g} s", flush=True)
            tallies, elapsed = asyncio.run(run_phase(urls, bodies, args.clients, args.duration, server, peak))
            rss["end"] = server.memory_info().rss
            rss["peak"] = max(peak[0], rss["end"])
            alive = (
                process.poll() is None
                and requests.get(f"{base}/v2/models/{MODEL_NAME}/ready", timeout=10).status_code == 200
            )
            load_after = os.getloadavg()
        finally:
            stop(process)
    results = [figures(protocol, tally, elapsed) for protocol, tally in tallies.items()]
    everything = Tally(
        [v for t in tallies.values() for v in t.latencies_ms], sum(t.errors for t in tallies.values())
    )
    results.append(figures("total", everything, elapsed))
    growth_mb = (rss["end"] - rss["after_warmup"]) / MIB
    problems = [
        f"{everything.errors} failed requests: {[e for t in tallies.values() for e in t.examples]}"
        if everything.errors
        else "",
        f"RSS grew {growth_mb:.1f} MiB > {args.max_growth_mb:g} MiB"
        if growth_mb > args.max_growth_mb
        else "",
        "" if alive else "the server was not ready after the run",
    ]
    problems = [p for p in problems if p]
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    text = report(args, results, rss, verdict, load_before, load_after)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    print(
        f"RESULT {'PASS' if not problems else 'FAIL'} errors={everything.errors} "
        f"rss_growth_mib={growth_mb:.1f} bound_mib={args.max_growth_mb:g}",
        flush=True,
    )
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
