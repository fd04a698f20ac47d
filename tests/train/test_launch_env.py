"""Rank/world/master discovery from torchrun, PyTorchJob and Vertex environments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfp_cicd.components.train.launch_env import (
    LaunchEnvironmentError,
    NodeTopology,
    discover_node,
    discover_process,
)
from kfp_cicd.components.train.training import TrainingConfig, torchrun_command


def vertex_spec(task_type: str, index: int, workers: int = 2) -> str:
    return json.dumps(
        {
            "cluster": {
                "workerpool0": ["chief-0:2222"],
                "workerpool1": [f"worker-{i}:2222" for i in range(workers)],
            },
            "environment": "cloud",
            "task": {"type": task_type, "index": index},
        }
    )


def test_a_plain_process_is_one_standalone_node_and_rank_zero() -> None:
    assert discover_node({}).standalone
    process = discover_process({})
    assert (process.rank, process.world_size, process.launcher) == (0, 1, "single")
    assert process.master_port > 0


def test_torchrun_variables_give_the_process_rank() -> None:
    env = {
        "TORCHELASTIC_RUN_ID": "x",
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29500",
    }
    process = discover_process(env)
    assert (process.rank, process.world_size, process.local_rank, process.launcher) == (3, 4, 1, "torchrun")
    assert process.init_env()["MASTER_ADDR"] == "10.0.0.1"


def test_pytorchjob_worker_pod_is_node_rank_plus_one() -> None:
    # what training-operator v1 sets on pod worker-1 of a job with a Master and 2 Workers, 4 GPUs each
    env = {
        "MASTER_ADDR": "job-master-0",
        "MASTER_PORT": "23456",
        "WORLD_SIZE": "12",
        "RANK": "2",
        "PET_NPROC_PER_NODE": "4",
        "PET_NODE_RANK": "2",
        "PET_NNODES": "3",
    }
    node = discover_node(env)
    assert node == NodeTopology(
        nnodes=3, node_rank=2, master_addr="job-master-0", master_port=23456, source="pytorchjob"
    )
    with pytest.raises(LaunchEnvironmentError, match="through torchrun"):
        discover_process(env)


def test_pytorchjob_with_one_process_per_pod_runs_without_torchrun() -> None:
    env = {
        "MASTER_ADDR": "m",
        "MASTER_PORT": "23456",
        "WORLD_SIZE": "2",
        "RANK": "1",
        "PET_NPROC_PER_NODE": "1",
        "PET_NODE_RANK": "1",
        "PET_NNODES": "2",
    }
    process = discover_process(env)
    assert (process.rank, process.world_size, process.launcher) == (1, 2, "pytorchjob")


def test_elastic_pytorchjob_is_refused_naming_the_range() -> None:
    with pytest.raises(LaunchEnvironmentError, match=r"'1:3' is an elastic range"):
        discover_node({"PET_NNODES": "1:3", "MASTER_ADDR": "m", "MASTER_PORT": "1", "RANK": "0"})


@pytest.mark.parametrize(
    ("task_type", "index", "rank"), [("workerpool0", 0, 0), ("workerpool1", 0, 1), ("workerpool1", 1, 2)]
)
def test_vertex_cluster_spec_orders_chief_then_workers(task_type: str, index: int, rank: int) -> None:
    node = discover_node({"CLUSTER_SPEC": vertex_spec(task_type, index)})
    assert (node.nnodes, node.node_rank, node.master_addr, node.master_port) == (3, rank, "chief-0", 2222)
    assert node.is_chief == (rank == 0)
    process = discover_process({"CLUSTER_SPEC": vertex_spec(task_type, index)})
    assert (process.rank, process.world_size, process.launcher) == (rank, 3, "vertex")


def test_vertex_reduction_server_and_garbage_are_refused() -> None:
    with pytest.raises(LaunchEnvironmentError, match="workerpool2"):
        discover_node({"CLUSTER_SPEC": vertex_spec("workerpool2", 0)})
    with pytest.raises(LaunchEnvironmentError, match="not a Vertex cluster spec"):
        discover_node({"CLUSTER_SPEC": "{not json"})


def test_multi_node_torchrun_command_joins_node_zero() -> None:
    node = NodeTopology(
        nnodes=3, node_rank=1, master_addr="job-master-0", master_port=23456, source="pytorchjob"
    )
    command = torchrun_command(
        Path("/d"), Path("/o"), TrainingConfig(num_processes=2, max_restarts=3), node, Path("/ckpt")
    )
    assert "--standalone" not in command
    for flag in (
        "--nnodes=3",
        "--node-rank=1",
        "--master-addr=job-master-0",
        "--master-port=23456",
        "--nproc-per-node=2",
        "--max-restarts=3",
    ):
        assert flag in command
    assert command[command.index("--checkpoint-dir") + 1] == "/ckpt"
