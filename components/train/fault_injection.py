"""TEST-ONLY fault injection: a worker that kills itself once, mid-epoch, to prove restarts work.

Inert unless ``KFP_CICD_TEST_ONLY_KILL`` is set (tests set it; nothing in the pipeline does). Its
value is ``RANK:EPOCH:STEP:MARKER``: the worker of global rank RANK sends itself SIGKILL after
optimisation step STEP of epoch EPOCH (0-based), once: it first creates the file MARKER, and a
restarted worker that finds MARKER carries on. This is a real crash (no exception handlers, no
cleanup), which ``torchrun --max-restarts`` must recover from by resuming from the checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

TEST_ONLY_KILL_ENV = "KFP_CICD_TEST_ONLY_KILL"


def kill_hook(rank: int, epoch: int) -> Callable[[int], None] | None:
    """A per-step callback that kills this process at the configured step, or None (the norm)."""
    raw = os.environ.get(TEST_ONLY_KILL_ENV)
    if not raw:
        return None
    kill_rank, kill_epoch, kill_step, marker = raw.split(":", 3)
    if int(kill_rank) != rank or int(kill_epoch) != epoch or Path(marker).exists():
        return None

    def maybe_kill(step: int) -> None:
        if step == int(kill_step):
            Path(marker).write_text(f"rank {rank} killed itself at epoch {epoch} step {step}\n")
            print(
                f"TEST-ONLY: rank {rank} sends itself SIGKILL at epoch {epoch} step {step}",
                file=sys.stderr,
                flush=True,
            )
            os.kill(os.getpid(), signal.SIGKILL)

    return maybe_kill
