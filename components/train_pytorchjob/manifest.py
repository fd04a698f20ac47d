"""The ``kubeflow.org/v1`` PyTorchJob the launcher creates, and the checks the CRD schema lacks.

One Master and ``workers`` Worker replicas, each a pod running the same node entry point
(``python -m kfp_cicd.components.train.node_main``), which starts ``torchrun`` with one process per
GPU and joins node 0 (training-operator sets MASTER_ADDR/MASTER_PORT/PET_NNODES/PET_NODE_RANK). Every
pod mounts the shared PersistentVolumeClaim the user names, at the same path as the launcher pod:
data, checkpoints and the model pass through it.

The upstream CRD schema never sets ``additionalProperties: false`` and leaves enum-like strings
free, so :func:`check_pytorchjob` checks what a cluster would reject or silently ignore.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from kfp_cicd.errors import KfpCicdError
from kfp_cicd.parameter_validation import is_dns_label

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"
CONTAINER_NAME = "pytorch"  # the training operator finds the container (and its port) by this name
PORT_NAME, DEFAULT_PORT = "pytorchjob-port", 23456
REPLICA_TYPES = ("Master", "Worker")
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICIES = ("All", "Running", "None")
# The images' user (images/runtime/Dockerfile); pods meet the Pod Security Standard "restricted".
RUN_AS_USER = 1000
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "fsGroup": RUN_AS_USER,  # the shared volume stays writable for that user
    "fsGroupChangePolicy": "OnRootMismatch",  # no recursive chown of a large volume
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
MAX_JOB_NAME = 48  # pod names add a suffix to the job's name
SPEC_FIELDS = {"elasticPolicy", "nprocPerNode", "pytorchReplicaSpecs", "runPolicy"}
REPLICA_FIELDS = {"replicas", "restartPolicy", "template"}
RUN_POLICY_FIELDS = {
    "activeDeadlineSeconds",
    "backoffLimit",
    "cleanPodPolicy",
    "managedBy",
    "schedulingPolicy",
    "suspend",
    "ttlSecondsAfterFinished",
}


class InvalidPyTorchJob(KfpCicdError, ValueError):
    """The PyTorchJob request or manifest is not one the training operator would run as meant."""


@dataclass(frozen=True)
class PyTorchJobRequest:
    """What the user asks for; the manifest follows from it."""

    name: str
    namespace: str
    image: str
    command: tuple[str, ...]
    shared_pvc: str
    shared_mount_path: str
    workers: int = 1
    gpus_per_worker: int = 1
    gpu_resource: str = "nvidia.com/gpu"
    cpu: str = "4"
    memory: str = "16Gi"
    restart_policy: str = "OnFailure"
    backoff_limit: int = 3
    active_deadline_seconds: int = 0
    service_account: str = ""
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerate_gpu_taint: bool = True
    labels: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        if not is_dns_label(self.name, max_length=MAX_JOB_NAME):
            problems.append(
                f"name {self.name!r} must be a DNS label of at most 48 characters "
                "(lower-case letters, digits, '-'; pod names add a suffix)"
            )
        if not is_dns_label(self.namespace):
            problems.append(f"namespace {self.namespace!r} is not a valid namespace name")
        if self.workers < 0:
            problems.append(f"workers must be >= 0, got {self.workers}")
        if self.gpus_per_worker < 0:
            problems.append(f"gpus_per_worker must be >= 0, got {self.gpus_per_worker}")
        if self.restart_policy not in RESTART_POLICIES:
            problems.append(f"restart_policy {self.restart_policy!r} must be one of {RESTART_POLICIES}")
        if not self.shared_pvc:
            problems.append(
                "shared_pvc is empty: name the ReadWriteMany PersistentVolumeClaim that holds "
                "data, checkpoints and the model for every pod"
            )
        if not self.shared_mount_path.startswith("/"):
            problems.append(f"shared_mount_path {self.shared_mount_path!r} must be an absolute path")
        if not self.image:
            problems.append("image is empty")
        if problems:
            raise InvalidPyTorchJob("invalid PyTorchJob request: " + "; ".join(problems))


def _pod_template(request: PyTorchJobRequest) -> dict:
    resources: dict[str, dict[str, str]] = {
        "requests": {"cpu": request.cpu, "memory": request.memory},
        "limits": {"cpu": request.cpu, "memory": request.memory},
    }
    pod_spec: dict = {
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": request.image,
                "command": list(request.command),
                "ports": [{"name": PORT_NAME, "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
                "resources": resources,
                "volumeMounts": [
                    {"name": "shared", "mountPath": request.shared_mount_path},
                    {"name": "dshm", "mountPath": "/dev/shm"},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
                # The root filesystem is read-only: temporary files and caches ($HOME) go to /tmp.
                "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "HOME", "value": "/tmp"}],
                "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
            }
        ],
        "volumes": [
            {"name": "shared", "persistentVolumeClaim": {"claimName": request.shared_pvc}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},  # NCCL needs a large /dev/shm
            {"name": "tmp", "emptyDir": {}},
        ],
        "securityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
        "automountServiceAccountToken": False,  # training pods never call the Kubernetes API
    }
    if request.gpus_per_worker:
        for kind in ("requests", "limits"):
            resources[kind][request.gpu_resource] = str(request.gpus_per_worker)
        if request.tolerate_gpu_taint:
            pod_spec["tolerations"] = [
                {"key": request.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
            ]
    if request.node_selector:
        pod_spec["nodeSelector"] = dict(request.node_selector)
    if request.service_account:
        pod_spec["serviceAccountName"] = request.service_account
    return {"metadata": {"labels": dict(request.labels)}, "spec": pod_spec}


def build_pytorchjob(request: PyTorchJobRequest) -> dict:
    """The PyTorchJob manifest (a plain dict, as the kubernetes client's custom-object API takes it)."""
    replica = {"restartPolicy": request.restart_policy, "template": _pod_template(request)}
    replicas = {"Master": {"replicas": 1, **replica}}
    if request.workers:
        replicas["Worker"] = {"replicas": request.workers, **replica}
    run_policy: dict = {"cleanPodPolicy": "Running", "backoffLimit": request.backoff_limit}
    if request.active_deadline_seconds:
        run_policy["activeDeadlineSeconds"] = request.active_deadline_seconds
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": {"app.kubernetes.io/managed-by": "kfp-cicd", **dict(request.labels)},
        },
        "spec": {
            "nprocPerNode": str(max(request.gpus_per_worker, 1)),
            "pytorchReplicaSpecs": replicas,
            "runPolicy": run_policy,
        },
    }
    check_pytorchjob(manifest)
    return manifest


def check_pytorchjob(manifest: dict) -> None:
    """What the CRD schema does not enforce: field names, replica names, enums, the container name."""
    problems = []
    spec = manifest.get("spec", {})
    problems += [f"unknown spec field {k!r}" for k in sorted(set(spec) - SPEC_FIELDS)]
    problems += [
        f"unknown runPolicy field {k!r}" for k in sorted(set(spec.get("runPolicy", {})) - RUN_POLICY_FIELDS)
    ]
    clean = spec.get("runPolicy", {}).get("cleanPodPolicy", "None")
    if clean not in CLEAN_POD_POLICIES:
        problems.append(f"cleanPodPolicy {clean!r} must be one of {CLEAN_POD_POLICIES}")
    replicas = spec.get("pytorchReplicaSpecs", {})
    if "Master" not in replicas:
        problems.append("pytorchReplicaSpecs needs a Master (node 0, whose address the workers join)")
    elif replicas["Master"].get("replicas", 1) != 1:
        problems.append("Master must have exactly 1 replica")
    for name, replica in replicas.items():
        if name not in REPLICA_TYPES:
            problems.append(f"replica type {name!r} must be one of {REPLICA_TYPES}")
        problems += [f"unknown field {k!r} in {name}" for k in sorted(set(replica) - REPLICA_FIELDS)]
        if replica.get("restartPolicy", "Never") not in RESTART_POLICIES:
            problems.append(
                f"{name} restartPolicy {replica.get('restartPolicy')!r} must be one of {RESTART_POLICIES}"
            )
        containers = replica.get("template", {}).get("spec", {}).get("containers", [])
        if not any(c.get("name") == CONTAINER_NAME for c in containers):
            problems.append(
                f"{name} needs a container named {CONTAINER_NAME!r} (the operator sets the "
                "rendezvous environment on it)"
            )
    if problems:
        raise InvalidPyTorchJob("invalid PyTorchJob manifest: " + "; ".join(problems))
