"""The distributed training worker: one process per GPU (or CPU slot), whoever launched it.

``python -m kfp_cicd.components.train.ddp_worker --data-dir D --output-dir O --checkpoint-dir C
--config JSON [--entry-point MODULE]`` under ``torchrun`` (single or multi node), in a PyTorchJob
pod, in a Vertex replica, or alone. It discovers its rank (:mod:`launch_env`), picks NCCL on CUDA
and gloo on CPU, bf16 on GPUs that support it, initialises the process group, builds the training
module's network (seeded, so every rank starts equal) and calls its ``train`` (:mod:`contract`).

Rank 0 then writes ``state_dict.pt`` (the trained weights) and ``history.json`` (per-epoch loss,
val_loss, rows/s, seconds; what the module reported, e.g. best epoch; world size, backend, device,
bf16) to ``--output-dir``.

A cross-fitted data directory (``members.json``: one subdirectory per fold) is trained member after
member in the same process group: each member gets a fresh network, its own seed (``seed + 1009 *
index``, so the members differ in initialisation and shuffling too), its own checkpoint
subdirectory and output subdirectory (``<output>/<member>/state_dict.pt``). A restarted worker
group resumes every member from its checkpoints: finished members end at once (their last checkpoint
says so), so no finished work is redone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from kfp_cicd.components.train.checkpoints import CheckpointStore
from kfp_cicd.components.train.contract import (
    FEATURES_FILE,
    EntryPoint,
    TrainingContext,
    load_entry_point,
    member_dirs,
)
from kfp_cicd.components.train.launch_env import ProcessRank, discover_process
from kfp_cicd.components.train.progress import EpochProgress

log = logging.getLogger("kfp_cicd.train.worker")
PROCESS_GROUP_TIMEOUT_S = 600
MEMBER_SEED_STRIDE = 1009


def choose_device_and_backend(local_rank: int) -> tuple[torch.device, str, bool]:
    """``cuda:LOCAL_RANK`` with NCCL (+ bf16 if supported) when a GPU is visible, else CPU/gloo."""
    if torch.cuda.is_available():
        device_index = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(device_index)
        return torch.device("cuda", device_index), "nccl", torch.cuda.is_bf16_supported()
    return torch.device("cpu"), "gloo", False


def run_key(params: dict[str, Any], entry_point: str, input_dim: int) -> str:
    """What a checkpoint must match to be resumed: everything but the epoch count."""
    relevant = {k: v for k, v in params.items() if k != "epochs"}
    text = json.dumps(
        {"params": relevant, "entry_point": entry_point, "input_dim": input_dim}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def init_process_group(process: ProcessRank, backend: str, device: torch.device) -> None:
    """Join the process group; under torchrun, in a store namespace of its own per restart.

    torchrun's agent keeps one TCPStore across worker-group restarts, and ``env://`` lets every
    attempt write the same keys: a restarted rank can read its peer's address from the killed
    attempt and fail to connect. Prefixing the keys with the restart count keeps attempts apart.
    """
    os.environ.update(process.init_env())
    timeout = timedelta(seconds=PROCESS_GROUP_TIMEOUT_S)
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timeout}
    if device.type == "cuda":
        kwargs["device_id"] = device
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        agent_store = dist.TCPStore(
            process.master_addr, process.master_port, process.world_size, is_master=False, timeout=timeout
        )
        kwargs.update(
            store=dist.PrefixStore(f"kfp_cicd/attempt_{attempt}", agent_store),
            rank=process.rank,
            world_size=process.world_size,
        )
    dist.init_process_group(**kwargs)


def member_params(params: dict[str, Any], index: int, members: int) -> dict[str, Any]:
    """A member's parameters: its own seed when several are trained (the only difference)."""
    if members == 1:
        return params
    return {**params, "seed": int(params.get("seed", 0)) + MEMBER_SEED_STRIDE * index}


def train_member(
    entry: EntryPoint,
    process: ProcessRank,
    device: torch.device,
    backend: str,
    bf16: bool,
    data_dir: Path,
    checkpoint_dir: Path,
    params: dict[str, Any],
    input_dim: int,
    label: str,
) -> tuple[torch.nn.Module, TrainingContext]:
    """Build one network (seeded: equal on every rank) and run the training module on it."""
    torch.manual_seed(int(params.get("seed", 0)))
    network = entry.build_network(input_dim, params).to(device)
    context = TrainingContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=process.local_rank,
        device=device,
        backend=backend,
        bf16=bf16,
        launcher=process.launcher,
        data_dir=data_dir,
        params=params,
        checkpoints=CheckpointStore(checkpoint_dir, run_key(params, entry.module, input_dim)),
        progress=EpochProgress(total_epochs=int(params["epochs"]), label=label),
    )
    entry.train(context, network)
    return network, context


def run_summary(members: list[dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    """What ``history.json`` holds: every member's summary, and one history of all epochs.

    With one member its history and reported facts (e.g. ``best_epoch``) are also at the top level;
    with several, each history entry names its ``member`` (0-based).
    """
    if len(members) == 1:
        top = {k: v for k, v in members[0].items() if k != "name"}
    else:
        top = {
            "history": [
                {"member": index, **epoch}
                for index, member in enumerate(members)
                for epoch in member["history"]
            ]
        }
    return {**top, "members": members, **facts}


def train(
    data_dir: Path, output_dir: Path, checkpoint_dir: Path, params: dict[str, Any], entry_point: str = ""
) -> None:
    """Run the training module on this rank (once per member); rank 0 saves weights and history."""
    entry = load_entry_point(entry_point)
    process = discover_process()
    device, backend, bf16 = choose_device_and_backend(process.local_rank)
    init_process_group(process, backend, device)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    members = member_dirs(data_dir)
    input_dim = int(torch.load(members[0][1] / FEATURES_FILE, mmap=True, weights_only=True).shape[1])
    restarts = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if rank == 0:
        log.info(
            "training module %s: world size %d (%s), %s with %s%s, restart %s%s",
            entry.module,
            world_size,
            process.launcher,
            device,
            backend,
            ", bf16" if bf16 else "",
            restarts,
            f", {len(members)} cross-fitted members" if len(members) > 1 else "",
        )
    summaries = []
    for index, (name, member_dir) in enumerate(members):
        label = f"member {index + 1}/{len(members)}" if len(members) > 1 else ""
        network, context = train_member(
            entry,
            process,
            device,
            backend,
            bf16,
            member_dir,
            checkpoint_dir / name,
            member_params(params, index, len(members)),
            input_dim,
            label,
        )
        if rank == 0:
            (output_dir / name).mkdir(parents=True, exist_ok=True)
            torch.save(
                {k: v.detach().cpu() for k, v in network.state_dict().items()},
                output_dir / name / "state_dict.pt",
            )
            summaries.append({"name": name, "history": context.history, **context.results})
    if rank == 0:
        facts = {
            "world_size": world_size,
            "backend": backend,
            "device": device.type,
            "bf16": bf16,
            "entry_point": entry.module,
            "input_dim": input_dim,
            "launcher": process.launcher,
            "restart_count": int(restarts),
        }
        (output_dir / "history.json").write_text(json.dumps(run_summary(summaries, facts), indent=2))
    dist.barrier()
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="default: OUTPUT_DIR/checkpoints")
    parser.add_argument("--config", required=True, help="training parameters as JSON")
    parser.add_argument("--entry-point", default="", help="training module (default: built-in MLP)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train(
        args.data_dir,
        args.output_dir,
        args.checkpoint_dir or args.output_dir / "checkpoints",
        json.loads(args.config),
        args.entry_point,
    )


if __name__ == "__main__":
    main()
