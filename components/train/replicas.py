"""Replicas of a multi-replica training job: the chief writes the task's outputs, workers leave.

Every replica of a Vertex custom job (``vertex.py``) runs the same ``train_model`` code. Only the
chief (replica 0) may let the KFP executor write the task's outputs; a worker replica ends here
once training is done, so it never overwrites the chief's executor output.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def leave_as_worker_replica() -> None:
    """End a worker replica after training, before the KFP executor writes (the chief's) outputs."""
    log.info("worker replica done; the chief replica writes the task's outputs")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
