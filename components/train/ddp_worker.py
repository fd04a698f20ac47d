"""The distributed training worker: one process per GPU (or per CPU slot), started by ``torchrun``.

``torchrun`` (and a Kubeflow PyTorchJob) set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; ``init_process_group`` reads them. NCCL on CUDA, gloo on CPU; bf16 autocast on GPUs
that support it. The data arrive pre-tensorised (``features.pt``/``labels.pt``), so workers never
parse files, and on GPU the shard lives on the device so batches never wait on Python or PCIe.

Rank 0 writes ``state_dict.pt`` and ``history.json`` to ``--output-dir``; a checkpoint after each
epoch lets a restarted job resume instead of starting over.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from kfp_cicd.model.network import TabularMLP

log = logging.getLogger("kfp_cicd.train.worker")


@dataclass(frozen=True)
class WorkerConfig:
    """Hyper-parameters every rank receives as JSON (``--config``)."""

    epochs: int
    batch_size: int
    learning_rate: float
    hidden_units: tuple[int, ...]
    dropout: float
    weight_decay: float
    seed: int

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        payload = json.loads(text)
        payload["hidden_units"] = tuple(payload["hidden_units"])
        return cls(**payload)


def choose_device_and_backend() -> tuple[torch.device, str]:
    """``cuda:LOCAL_RANK`` with NCCL when a GPU is visible, else CPU with gloo."""
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank), "nccl"
    return torch.device("cpu"), "gloo"


def shard(features: torch.Tensor, labels: torch.Tensor, rank: int, world_size: int,
          seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows: a seeded permutation split like ``DistributedSampler`` (padded evenly)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    per_rank = -(-len(order) // world_size)
    padded = torch.cat([order, order[: per_rank * world_size - len(order)]])
    mine = padded[rank::world_size]
    return features[mine], labels[mine]


def train(data_dir: Path, output_dir: Path, config: WorkerConfig) -> None:
    """Run the DDP training loop on this rank."""
    device, backend = choose_device_and_backend()
    dist.init_process_group(backend=backend)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(config.seed)
    features = torch.load(data_dir / "features.pt")
    labels = torch.load(data_dir / "labels.pt")
    positives = float(labels.sum())
    pos_weight = torch.tensor((len(labels) - positives) / max(positives, 1.0), device=device)
    x, y = shard(features, labels, rank, world_size, config.seed)
    x, y = x.to(device), y.to(device)
    if device.type == "cpu" and rank == 0:
        log.info("training on CPU with %s, world size %d", backend, world_size)

    network = TabularMLP(features.shape[1], config.hidden_units, config.dropout).to(device)
    model = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()

    checkpoint = output_dir / "checkpoint.pt"
    start_epoch, history = 0, []
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        if rank == 0:
            log.info("resuming from checkpoint after epoch %d", state["epoch"] + 1)

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        model.train()
        epoch_generator = torch.Generator(device="cpu").manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(y), generator=epoch_generator).to(device)
        loss_sum = torch.zeros((), device=device)
        for begin in range(0, len(order), config.batch_size):
            batch = order[begin: begin + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(x[batch])
            loss = loss_fn(logits.float(), y[batch])
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
        totals = torch.stack([loss_sum, torch.tensor(float(len(y)), device=device)])
        dist.all_reduce(totals)
        mean_loss = float(totals[0] / totals[1])
        history.append({"epoch": epoch + 1, "loss": mean_loss,
                        "seconds": round(time.perf_counter() - started, 3)})
        if rank == 0:
            log.info("epoch %d/%d loss %.4f (%.2fs, %d ranks, %s%s)", epoch + 1, config.epochs,
                     mean_loss, history[-1]["seconds"], world_size, device.type,
                     ", bf16" if use_bf16 else "")
            torch.save({"model": network.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch, "history": history}, checkpoint)
        dist.barrier()

    if rank == 0:
        torch.save({k: v.cpu() for k, v in network.state_dict().items()}, output_dir / "state_dict.pt")
        summary = {"history": history, "world_size": world_size, "backend": backend,
                   "device": device.type, "bf16": use_bf16}
        (output_dir / "history.json").write_text(json.dumps(summary, indent=2))
    dist.barrier()
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--config", required=True, help="WorkerConfig as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    train(args.data_dir, args.output_dir, WorkerConfig.from_json(args.config))


if __name__ == "__main__":
    main()
