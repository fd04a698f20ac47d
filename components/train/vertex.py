"""The Vertex AI variant of train_model: a multi-replica custom job with GPUs.

``google_cloud_pipeline_components``' ``create_custom_training_job_from_component`` turns the train
component into a Vertex custom job: ``workerpool0`` (one chief replica) plus ``workerpool1``
(``replica_count - 1`` worker replicas), each on ``machine_type`` with ``accelerator_count``
``accelerator_type`` GPUs. Every replica runs the same component code; :mod:`launch_env` reads
Vertex's ``CLUSTER_SPEC``, so each replica starts ``torchrun`` with one process per GPU, joined through
the chief. The chief writes the outputs; worker replicas leave without writing any
(:func:`.replicas.leave_as_worker_replica`), so they never overwrite the chief's executor output.

The job wraps ``train_model`` itself, so it takes every one of its parameters with the same defaults
(``epochs``/``batch_size``/``learning_rate`` 0 and ``hidden_units`` "" chosen from the data,
``early_stopping_patience``, ``validation_fraction``, ``validation_folds``, ``decision_threshold``
-1 for the max-F1 threshold, ...); every replica resolves the automatic ones identically.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp.dsl.python_component import PythonComponent


@dataclass(frozen=True)
class VertexTrainingCluster:
    """Compile options of the Vertex training job."""

    replica_count: int = 2
    machine_type: str = "g2-standard-24"
    accelerator_type: str = "NVIDIA_L4"
    accelerator_count: int = 2
    boot_disk_size_gb: int = 100
    timeout: str = "86400s"
    restart_job_on_worker_restart: bool = True
    display_name: str = "train-model-distributed"

    def __post_init__(self) -> None:
        problems = []
        if self.replica_count < 1:
            problems.append(f"replica_count must be >= 1, got {self.replica_count}")
        if self.accelerator_type and self.accelerator_count < 1:
            problems.append(
                f"accelerator_count must be >= 1 with {self.accelerator_type}, got {self.accelerator_count}"
            )
        if self.accelerator_type and self.accelerator_type != self.accelerator_type.upper():
            problems.append(
                f"accelerator_type {self.accelerator_type!r} must be a Vertex accelerator "
                "name such as NVIDIA_L4, NVIDIA_TESLA_A100, NVIDIA_H100_80GB"
            )
        if problems:
            raise ValueError("invalid Vertex training cluster: " + "; ".join(problems))


def build_vertex_component(image: str, cluster: VertexTrainingCluster | None = None) -> PythonComponent:
    """train_model as a Vertex custom job over ``cluster`` (inputs and outputs unchanged)."""
    from google_cloud_pipeline_components.v1.custom_job import (
        create_custom_training_job_from_component,
    )

    from kfp_cicd.components.train.component import build_component

    cluster = cluster or VertexTrainingCluster()
    return create_custom_training_job_from_component(
        build_component(image),
        display_name=cluster.display_name,
        replica_count=cluster.replica_count,
        machine_type=cluster.machine_type,
        accelerator_type=cluster.accelerator_type,
        accelerator_count=cluster.accelerator_count if cluster.accelerator_type else 0,
        boot_disk_size_gb=cluster.boot_disk_size_gb,
        timeout=cluster.timeout,
        restart_job_on_worker_restart=cluster.restart_job_on_worker_restart,
    )
