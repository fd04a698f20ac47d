"""Who am I in the job? Rank, world size and master address from whichever launcher started us.

Two levels, because a node and a worker process are different things:

- **Node topology** (:func:`discover_node`), read by the process that starts ``torchrun`` on a
  node: how many nodes, this node's rank, where node 0 is.
  * Kubeflow ``PyTorchJob`` (training-operator v1): ``PET_NNODES``, ``PET_NODE_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT`` (Master is node 0, ``worker-i`` is node ``i + 1``);
  * Vertex AI custom job: ``CLUSTER_SPEC`` (``workerpool0`` is the chief, ``workerpool1`` the
    workers; reduction servers and evaluators do not train);
  * anything else: one standalone node.
- **Process rank** (:func:`discover_process`), read by each training process: ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK`` set by ``torchrun``; a PyTorchJob pod or a Vertex replica that
  runs the worker directly (one process per node); else a single process.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
VERTEX_TRAINING_POOLS = ("workerpool0", "workerpool1")


class LaunchEnvironmentError(ValueError):
    """The launcher's environment variables are inconsistent or not supported."""


@dataclass(frozen=True)
class NodeTopology:
    """This node's place in a (possibly multi-node) job."""

    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    source: str  # "standalone", "pytorchjob" or "vertex"

    @property
    def is_chief(self) -> bool:
        """Node 0 packages the model and writes the task's outputs."""
        return self.node_rank == 0

    @property
    def standalone(self) -> bool:
        return self.source == "standalone"


@dataclass(frozen=True)
class ProcessRank:
    """This training process's place in the process group."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    launcher: str  # "torchrun", "pytorchjob", "vertex" or "single"

    def init_env(self) -> dict[str, str]:
        """The variables ``init_process_group(init_method="env://")`` reads."""
        return {
            "RANK": str(self.rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_RANK": str(self.local_rank),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }


def _int(environ: Mapping[str, str], name: str) -> int:
    raw = environ.get(name, "")
    try:
        return int(raw)
    except ValueError:
        raise LaunchEnvironmentError(
            f"environment variable {name}={raw!r} is not an integer; "
            "the launcher (torchrun, PyTorchJob, Vertex) sets it"
        ) from None


def _host_port(address: str, where: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LaunchEnvironmentError(f"{where}: expected 'host:port', got {address!r}")
    return host, int(port)


@dataclass(frozen=True)
class VertexCluster:
    """The training part of a Vertex ``CLUSTER_SPEC``: hosts in rank order and our index there."""

    hosts: tuple[str, ...]
    my_index: int

    @classmethod
    def parse(cls, text: str) -> VertexCluster:
        try:
            spec = json.loads(text)
            cluster, task = spec["cluster"], spec["task"]
            task_type, task_index = task["type"], int(task["index"])
        except (ValueError, KeyError, TypeError) as error:
            raise LaunchEnvironmentError(
                f"CLUSTER_SPEC is not a Vertex cluster spec ({error!r}); expected "
                '{"cluster": {"workerpool0": ["host:port"], ...}, "task": {"type": ..., "index": ...}}'
            ) from None
        if task_type not in VERTEX_TRAINING_POOLS:
            raise LaunchEnvironmentError(
                f"this replica is in Vertex pool {task_type!r}; only workerpool0 (chief) and "
                "workerpool1 (workers) run training (reduction servers/evaluators run other images)"
            )
        chief = list(cluster.get("workerpool0", []))
        if len(chief) != 1:
            raise LaunchEnvironmentError(f"CLUSTER_SPEC workerpool0 must hold exactly one host, got {chief}")
        hosts = tuple(chief + list(cluster.get("workerpool1", [])))
        offset = 0 if task_type == "workerpool0" else 1
        if not 0 <= offset + task_index < len(hosts):
            raise LaunchEnvironmentError(f"CLUSTER_SPEC task index {task_index} is outside {task_type}")
        return cls(hosts=hosts, my_index=offset + task_index)

    def master(self) -> tuple[str, int]:
        return _host_port(self.hosts[0], "CLUSTER_SPEC workerpool0")


def discover_node(environ: Mapping[str, str] | None = None) -> NodeTopology:
    """This node's topology from the PyTorchJob or Vertex environment; standalone otherwise."""
    environ = os.environ if environ is None else environ
    if "PET_NNODES" in environ and "MASTER_ADDR" in environ:
        if ":" in environ["PET_NNODES"]:
            raise LaunchEnvironmentError(
                f"PET_NNODES={environ['PET_NNODES']!r} is an elastic range; this trainer needs a fixed "
                "number of nodes (do not set elasticPolicy on the PyTorchJob)"
            )
        nnodes = _int(environ, "PET_NNODES")
        rank_var = "PET_NODE_RANK" if "PET_NODE_RANK" in environ else "RANK"
        node_rank = _int(environ, rank_var)
        if not 0 <= node_rank < nnodes:
            raise LaunchEnvironmentError(f"{rank_var}={node_rank} is outside 0..{nnodes - 1}")
        return NodeTopology(
            nnodes=nnodes,
            node_rank=node_rank,
            master_addr=environ["MASTER_ADDR"],
            master_port=_int(environ, "MASTER_PORT"),
            source="pytorchjob",
        )
    if environ.get("CLUSTER_SPEC"):
        cluster = VertexCluster.parse(environ["CLUSTER_SPEC"])
        host, port = cluster.master()
        return NodeTopology(
            nnodes=len(cluster.hosts),
            node_rank=cluster.my_index,
            master_addr=host,
            master_port=port,
            source="vertex",
        )
    return NodeTopology(nnodes=1, node_rank=0, master_addr=LOOPBACK, master_port=0, source="standalone")


def free_port() -> int:
    """A free TCP port on loopback (for a single process that needs a process-group store)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def discover_process(environ: Mapping[str, str] | None = None) -> ProcessRank:
    """This process's rank: torchrun's variables first, then PyTorchJob/Vertex, else single."""
    environ = os.environ if environ is None else environ
    if "TORCHELASTIC_RUN_ID" in environ or "LOCAL_RANK" in environ:
        missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in environ]
        if missing:
            raise LaunchEnvironmentError(f"started by torchrun but {', '.join(missing)} not set")
        return ProcessRank(
            rank=_int(environ, "RANK"),
            world_size=_int(environ, "WORLD_SIZE"),
            local_rank=_int(environ, "LOCAL_RANK"),
            master_addr=environ["MASTER_ADDR"],
            master_port=_int(environ, "MASTER_PORT"),
            launcher="torchrun",
        )
    if "PET_NNODES" in environ and "MASTER_ADDR" in environ:
        per_node = environ.get("PET_NPROC_PER_NODE", "1")
        if per_node not in ("1", ""):
            raise LaunchEnvironmentError(
                f"PET_NPROC_PER_NODE={per_node}: with several processes per pod, start the worker "
                "through torchrun (the node launcher does); a bare process is one rank per pod"
            )
        topology = discover_node(environ)
        return ProcessRank(
            rank=topology.node_rank,
            world_size=topology.nnodes,
            local_rank=0,
            master_addr=topology.master_addr,
            master_port=topology.master_port,
            launcher="pytorchjob",
        )
    if environ.get("CLUSTER_SPEC"):
        topology = discover_node(environ)
        return ProcessRank(
            rank=topology.node_rank,
            world_size=topology.nnodes,
            local_rank=0,
            master_addr=topology.master_addr,
            master_port=topology.master_port,
            launcher="vertex",
        )
    return ProcessRank(
        rank=0, world_size=1, local_rank=0, master_addr=LOOPBACK, master_port=free_port(), launcher="single"
    )
