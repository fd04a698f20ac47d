"""Training throughput (rows/s): the component's inner loop beside a bare PyTorch loop; DDP scaling.

Prints figures; asserts nothing (speed goals are read, not tested). Three parts:

1. **Inner loop vs bare loop**, same process, same model (32 -> 256x3 -> 1 MLP, no dropout), same
   device-resident data and batch size, alternating runs (A B A B …), median rows/s and the ratio
   (goal ≥ 0.9). The component side is ``tabular_loop.run_epoch`` with ``EpochSampler`` indices, on
   the plain network (what a world of one runs) and on the DDP-wrapped one (what each rank of a
   multi-process job runs; here a world of one, gloo/NCCL, so the gap is DDP's own overhead).
2. **DDP scaling on CPU** (only where no CUDA is visible): the real workers under ``torchrun``
   (``run_workers``) with 1 and 2 processes of one thread each (plus one process with all threads),
   median epoch rows/s after the first epoch (goal: 2 processes >= 1.7 x 1 process).
3. **GPU** (only where CUDA exists): part 1 on ``cuda:0`` with bf16 autocast at batch 8,192 and 65,536.

Usage: ``.venv/bin/python benchmarks/training_throughput.py [--rows N] [--repeats R] [--skip-scaling]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from kfp_cicd.components.train.sampling import EpochSampler
from kfp_cicd.components.train.tabular_loop import run_epoch
from kfp_cicd.components.train.training import TrainingConfig, run_workers
from kfp_cicd.model.network import TabularMLP

HIDDEN = (256, 256, 256)
FEATURES = 32


def make_data(rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, FEATURES, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 1.0).float()
    return x.to(device), y.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    epoch: int,
    bf16: bool,
) -> None:
    """A hand-written loop: shuffle, slice, forward, loss, backward, step."""
    generator = torch.Generator().manual_seed(epoch)
    order = torch.randperm(len(y), generator=generator).to(x.device)
    for begin in range(0, len(order), batch_size):
        batch = order[begin : begin + batch_size]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x[batch])
        loss = loss_fn(logits.float(), y[batch])
        loss.backward()
        optimizer.step()


def compare_inner_loops(
    device: torch.device, rows: int, batch_size: int, repeats: int, bf16: bool
) -> dict[str, float]:
    """Median rows/s of the bare loop and of the component's loop, alternating runs.

    The component's loop runs twice: on the plain network, which is what a world of one runs
    (``TrainingContext.wrap`` returns it unwrapped), and DDP-wrapped, which is what every rank of a
    multi-process job runs (here a world of one, so the figure is DDP's own overhead).
    """
    x, y = make_data(rows, device)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    models: dict[str, torch.nn.Module] = {}
    for name in ("bare loop", "component loop", "component loop under DDP"):
        torch.manual_seed(0)
        models[name] = TabularMLP(FEATURES, HIDDEN, dropout=0.0).to(device)
    models["component loop under DDP"] = DistributedDataParallel(
        models["component loop under DDP"], device_ids=[device.index] if device.type == "cuda" else None
    )
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-3) for name, model in models.items()}
    sampler = EpochSampler(rows, rank=0, world_size=1, seed=0)
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for epoch in range(repeats + 1):  # epoch 0 warms every variant up
        for name, model in models.items():
            sync(device)
            started = time.perf_counter()
            if name == "bare loop":
                bare_epoch(model, optimizers[name], loss_fn, x, y, batch_size, epoch, bf16)
            else:
                indices = sampler.indices(epoch).to(device)
                loss_sum = run_epoch(
                    model, optimizers[name], loss_fn, x, y, indices, batch_size, device, bf16
                )
                float(loss_sum)  # the component reads the loss once per epoch
            sync(device)
            if epoch:
                speeds[name].append(rows / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in speeds.items()}


def report_inner_loops(label: str, speeds: dict[str, float]) -> None:
    bare = speeds["bare loop"]
    print(
        f"{label}: "
        + ", ".join(
            f"{name} {speed:,.0f} rows/s ({speed / bare:.3f}x bare)" for name, speed in speeds.items()
        )
        + " (goal >= 0.9x)"
    )


def init_single_process_group(backend: str) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    from kfp_cicd.components.train.launch_env import free_port

    os.environ.setdefault("MASTER_PORT", str(free_port()))
    dist.init_process_group(backend=backend, rank=0, world_size=1)


def ddp_scaling(rows: int, epochs: int) -> dict[str, float]:
    """Median epoch rows/s (epochs after the first) of the real torchrun workers."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-bench-") as scratch:
        data = Path(scratch)
        x, y = make_data(rows, torch.device("cpu"))
        torch.save(x, data / "features.pt")
        torch.save(y, data / "labels.pt")
        cases = {
            "1 process x 1 thread": (1, "1"),
            "2 processes x 1 thread": (2, "1"),
            f"1 process x {os.cpu_count()} threads": (1, str(os.cpu_count())),
        }
        for label, (processes, threads) in cases.items():
            config = TrainingConfig(
                epochs=epochs,
                batch_size=8192,
                hidden_units=HIDDEN,
                dropout=0.0,
                num_processes=processes,
                max_restarts=0,
            )
            env = {**os.environ, "OMP_NUM_THREADS": threads}
            summary = run_workers(data, data / label.replace(" ", "_"), config, env=env)
            results[label] = statistics.median(h["rows_per_second"] for h in summary["history"][1:])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(
        f"# training throughput, {date.today()}, {platform.node()}, {machine}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    init_single_process_group("gloo")
    report_inner_loops(
        "CPU fp32 batch 8192",
        compare_inner_loops(torch.device("cpu"), args.rows, 8192, args.repeats, bf16=False),
    )
    dist.destroy_process_group()
    if not args.skip_scaling and torch.cuda.is_available():
        print(
            "CPU DDP scaling: skipped, CUDA is visible (the workers would take the GPUs); "
            "run again with CUDA_VISIBLE_DEVICES= to measure it"
        )
    elif not args.skip_scaling:
        scaling = ddp_scaling(args.rows // 2, epochs=4)
        one = scaling["1 process x 1 thread"]
        for label, speed in scaling.items():
            print(f"CPU DDP (torchrun, gloo) {label}: {speed:,.0f} rows/s ({speed / one:.2f}x of 1x1)")
    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        torch.cuda.set_device(device)
        init_single_process_group("nccl")
        bf16 = torch.cuda.is_bf16_supported()
        print(f"GPU {torch.cuda.get_device_name(device)}, bf16 {bf16}")
        for batch in (8192, 65_536):
            rows = max(args.rows, 8 * batch)
            speeds = compare_inner_loops(device, rows, batch, args.repeats, bf16)
            report_inner_loops(f"GPU bf16 batch {batch}", speeds)
        dist.destroy_process_group()
    else:
        print("GPU: no CUDA device here; the GPU section runs where one exists")


if __name__ == "__main__":
    main()
