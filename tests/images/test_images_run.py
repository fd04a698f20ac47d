"""The compiled Kubeflow pipeline's tasks, each run inside its own image (opt-in, slow).

Builds the images here with buildah (see conftest), compiles the training pipeline against them, and
lets kfp.local walk the compiled spec while a buildah task handler runs every executor's own image,
command and args with a real executor input, on small generated data. A component that needs a package
its image lacks, or a command that only works on a developer's machine, fails here. Deployment runs in
its local mode (the KServe predictor on loopback inside the runtime image) and MLflow on a SQLite file
in a mounted directory; the predictor image then serves the trained model on its own.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_dataset
from kfp_cicd.local_run import TaskRecord, read_task_records
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import version_for_alias

pytestmark = [pytest.mark.slow, pytest.mark.images]
CONTAINER_USER = "1000:1000"
FIGURES_VARIABLE = "KFP_CICD_IMAGE_FIGURES"
CONTAINER_HOSTNAME = "kfp-task"
TASK_TIMEOUT_SECONDS = float(os.environ.get("KFP_CICD_IMAGE_TASK_TIMEOUT", "900"))
MODEL = "fraud-detector"
TFX_IMAGE_BYTES = 6.7e9  # what users measured for TFX's image; ours must stay well under it
EXPECTED_IMAGE = {
    "data_contract_reference": "validation",
    "validate_data": "validation",
    "train_model": "runtime",
    "evaluate_model": "runtime",
    "register_model": "runtime",
    "deploy_model": "runtime",
}


@dataclass
class TaskRun:
    image: str
    command: list[str]
    returncode: int
    seconds_to_first_line: float | None
    seconds: float
    output: str


@dataclass
class BuildahTaskHandler:
    """kfp.local's task handler interface, running the task's command in its image with buildah.

    The pipeline root is mounted at the same path (executor input paths stay valid) and owned by the
    container's non-root user; the working directory is a mounted scratch directory so MLflow's local
    artifact store survives from one task's container to the next.
    """

    image: str
    full_command: list[str]
    pipeline_root: str
    runner: object = None
    env_vars: dict = field(default_factory=dict)

    buildah: str = "buildah"
    workdir: str = ""
    runs: list = field(default_factory=list)

    def run(self):
        from kfp.local import status

        subprocess.run(["chown", "-R", CONTAINER_USER, self.pipeline_root, self.workdir], check=True)
        # The container's hostname must resolve (torchrun's rendezvous looks it up), as in a pod.
        container = subprocess.run(
            [
                self.buildah,
                "from",
                "--pull-never",
                "--add-host",
                f"{CONTAINER_HOSTNAME}:127.0.0.1",
                self.image,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        command = [
            self.buildah,
            "run",
            "--isolation",
            "chroot",
            "--user",
            CONTAINER_USER,
            "--hostname",
            CONTAINER_HOSTNAME,
            "--volume",
            f"{self.pipeline_root}:{self.pipeline_root}:rw",
            "--volume",
            f"{self.workdir}:{self.workdir}:rw",
            "--workingdir",
            self.workdir,
        ]
        for key, value in self.env_vars.items():
            command += ["--env", f"{key}={value}"]
        command += [container, "--", *self.full_command]
        started = time.monotonic()
        first_line, lines = None, []
        try:
            with subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ) as process:
                watchdog = threading.Timer(TASK_TIMEOUT_SECONDS, process.kill)  # a hung task fails
                watchdog.start()
                for line in process.stdout:
                    first_line = first_line if first_line is not None else time.monotonic() - started
                    lines.append(line)
                    print(line, end="")
            watchdog.cancel()
        finally:
            subprocess.run([self.buildah, "rm", container], capture_output=True)
        self.runs.append(
            TaskRun(
                self.image,
                self.full_command,
                process.returncode,
                first_line,
                time.monotonic() - started,
                "".join(lines),
            )
        )
        return status.Status.SUCCESS if process.returncode == 0 else status.Status.FAILURE


def record_figures(runs: list[TaskRun], images) -> None:
    """Write sizes, build times and task start-up times to ``$KFP_CICD_IMAGE_FIGURES`` (benchmarks)."""
    target = os.environ.get(FIGURES_VARIABLE)
    if not target:
        return
    payload = {
        "images": {
            name: {"ref": b.ref, "size_bytes": b.size_bytes, "build_seconds": b.seconds, "reused": b.reused}
            for name, b in images.built.items()
        },
        "tasks": [
            {
                "image": r.image,
                "function": r.command[r.command.index("--function_to_execute") + 1]
                if "--function_to_execute" in r.command
                else "",
                "seconds_to_first_line": r.seconds_to_first_line,
                "seconds": r.seconds,
            }
            for r in runs
        ],
    }
    Path(target).write_text(json.dumps(payload, indent=2))


@dataclass
class InImageRun:
    spec: dict
    runs: list
    tasks: dict[str, TaskRecord]
    tracking_uri: str
    holdout: Path
    error: str | None


def compile_pipeline(out_dir: Path, images) -> dict:
    """``kfp-cicd compile --image-registry localhost --image-tag <version> --gpus 0``; the Kubeflow spec.

    ``--gpus 0``: no task asks for a GPU, so training runs the CPU runtime image built here (with a GPU
    it would reference the CUDA variant, which this test does not build; see test_gpu_images.py).
    """
    from kfp_cicd.cli import main

    assert (
        main(
            [
                "compile",
                "--image-registry",
                images.refs.registry,
                "--image-tag",
                images.refs.tag,
                "--gpus",
                "0",
                "--output-dir",
                str(out_dir),
            ]
        )
        == 0
    )
    return next(yaml.safe_load_all((out_dir / "kubeflow" / "training_pipeline.yaml").read_text()))


@pytest.fixture(scope="module")
def in_image_run(
    tmp_path_factory: pytest.TempPathFactory, built_images, buildah: str, monkeypatch_module
) -> InImageRun:
    from google.protobuf import json_format
    from kfp import local
    from kfp.local import pipeline_orchestrator, subprocess_task_handler
    from kfp.pipeline_spec import pipeline_spec_pb2

    base = tmp_path_factory.mktemp("in-image")
    base.chmod(0o755)
    spec = compile_pipeline(base / "compiled", built_images)
    data = generate_dataset(base / "work" / "data", rows=4_000, seed=3)
    work, root = base / "work", base / "pipeline_root"
    root.mkdir()
    runs: list = []
    handler = functools.partial(BuildahTaskHandler, buildah=buildah, workdir=str(work), runs=runs)
    monkeypatch_module.setattr(subprocess_task_handler, "SubprocessTaskHandler", handler)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    arguments = {
        "train_data": str(data.train),
        "eval_data": str(data.holdout),
        "label_column": LABEL_COLUMN,
        "model_name": MODEL,
        "mlflow_tracking_uri": tracking_uri,
        "deploy_target": "local",
        "epochs": 8,
        "num_processes": 2,
        "min_roc_auc": 0.6,
        "min_pr_auc": 0.05,
        "baseline_metrics": "",  # this test checks the images, not that 4,000 rows beat a baseline
        "smoke_requests": 5,
    }
    error = None
    try:
        pipeline_orchestrator.run_local_pipeline(
            json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec()), arguments
        )
    except RuntimeError as exc:
        error = f"{exc}\n" + "\n".join(r.output[-3000:] for r in runs if r.returncode)
    record_figures(runs, built_images)
    subprocess.run(["chown", "-R", "root:root", str(base)], check=True)
    return InImageRun(spec, runs, read_task_records(root), tracking_uri, data.holdout, error)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def function_of(command: list[str]) -> str:
    return command[command.index("--function_to_execute") + 1]


def test_every_compiled_task_runs_in_its_image(in_image_run: InImageRun, built_images) -> None:
    assert in_image_run.error is None, in_image_run.error
    executors = in_image_run.spec["deploymentSpec"]["executors"]
    by_function = {function_of(r.command): r for r in in_image_run.runs}
    assert sorted(by_function) == sorted(EXPECTED_IMAGE), "every task of the compiled pipeline ran"
    for function, run in by_function.items():
        executor = executors[f"exec-{function.replace('_', '-')}"]["container"]
        assert run.image == executor["image"] == built_images.refs.ref(EXPECTED_IMAGE[function])
        assert run.command[: len(executor["command"])] == executor["command"], "the compiled command ran"
        assert run.returncode == 0


def test_tasks_wrote_their_outputs(in_image_run: InImageRun) -> None:
    assert in_image_run.error is None, in_image_run.error
    tasks = in_image_run.tasks
    statistics = tasks["validate-data"].artifacts
    assert statistics and all(Path(a["uri"]).exists() for a in statistics.values())
    model_dir = Path(tasks["train-model"].artifacts["model"]["uri"])
    assert (model_dir / "MLmodel").is_file() and (model_dir / "checksums.json").is_file()
    training = tasks["train-model"].artifacts["metrics"]["metadata"]
    assert training["world_size"] == 2, "two torchrun workers inside the runtime image"
    assert tasks["evaluate-model"].parameters["Output"] is True
    version = tasks["register-model"].parameters["version"]
    assert version_for_alias(in_image_run.tracking_uri, MODEL, CHAMPION) == version
    assert "v1" in tasks["deploy-model"].parameters["smoke_summary"].lower()


def test_predictor_image_serves_the_trained_model(in_image_run: InImageRun, buildah: str) -> None:
    """The predictor image alone (no kfp) loads the trained model and answers V1 and V2."""
    from kfp_cicd.components.deploy.local_target import feature_rows, free_port
    from kfp_cicd.components.deploy.smoke import smoke_test

    assert in_image_run.error is None, in_image_run.error
    model_dir = Path(in_image_run.tasks["train-model"].artifacts["model"]["uri"])
    image = in_image_run.runs[0].image.replace("-validation:", "-predictor:")
    port = free_port()
    container = subprocess.run(
        [buildah, "from", "--pull-never", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    server = subprocess.Popen(
        [
            buildah,
            "run",
            "--isolation",
            "chroot",
            "--user",
            CONTAINER_USER,
            "--volume",
            f"{model_dir}:/mnt/models:ro",
            container,
            "--",
            "python3",
            "-m",
            "kfp_cicd.serving",
            "--model-dir",
            "/mnt/models",
            "--model-name",
            MODEL,
            "--http-port",
            str(port),
            "--no-grpc",
        ]
    )
    try:
        rows = feature_rows(pd.read_csv(in_image_run.holdout).head(4).to_dict("records"), LABEL_COLUMN)
        result = smoke_test(f"http://127.0.0.1:{port}", MODEL, rows, timeout=120)
        assert len(result.v1_predictions) == 4
        assert all(0.0 <= p.probability <= 1.0 for p in result.v1_predictions)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run([buildah, "rm", container], capture_output=True)


def run_in(buildah: str, image: str, *command: str, user: str | None = None) -> str:
    """stdout of ``command`` in a fresh container of ``image`` (as the image's own user by default)."""
    container = subprocess.run(
        [buildah, "from", "--pull-never", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        return subprocess.run(
            [
                buildah,
                "run",
                "--isolation",
                "chroot",
                *(["--user", user] if user else []),
                container,
                "--",
                *command,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        subprocess.run([buildah, "rm", container], capture_output=True)


def image_config(buildah: str, ref: str) -> dict:
    data = json.loads(
        subprocess.run(
            [buildah, "inspect", "--type", "image", ref], check=True, capture_output=True, text=True
        ).stdout
    )
    return data["OCIv1"]["config"]


FORBIDDEN_IN_RUNTIME = [
    "usr/bin/gcc",
    "usr/bin/cc",
    "usr/bin/g++",
    "usr/bin/c++",
    "usr/bin/make",
    "root/.cache/pip",
    "home/kfp/.cache",
    "opt/uv",
    "src",
]


@pytest.mark.parametrize("name", ["runtime", "validation", "predictor"])
def test_image_is_non_root_labelled_and_free_of_build_leftovers(
    name: str, built_images, buildah: str
) -> None:
    ref = built_images.refs.ref(name)
    config = image_config(buildah, ref)
    assert config["User"] == CONTAINER_USER
    assert run_in(buildah, ref, "id", "-u").strip() == "1000"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == built_images.refs.tag
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    container = subprocess.run(
        [buildah, "from", "--pull-never", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        rootfs = Path(
            subprocess.run(
                [buildah, "mount", container], check=True, capture_output=True, text=True
            ).stdout.strip()
        )
        leftovers = [p for p in FORBIDDEN_IN_RUNTIME if (rootfs / p).exists()]
        apt_lists = [
            p.name for p in (rootfs / "var/lib/apt/lists").glob("*") if p.is_file() and p.name != "lock"
        ]
    finally:
        subprocess.run([buildah, "umount", container], capture_output=True)
        subprocess.run([buildah, "rm", container], capture_output=True)
    assert leftovers == [], f"build tools or caches left in {ref}"
    assert apt_lists == []


@pytest.mark.parametrize("name", ["runtime", "predictor"])
def test_torch_is_the_cpu_build(name: str, built_images, buildah: str) -> None:
    """No build silently pulled PyPI's multi-GB CUDA torch for a CPU image."""
    out = run_in(
        buildah,
        built_images.refs.ref(name),
        "python3",
        "-c",
        "import torch; print(torch.__version__, torch.version.cuda)",
    )
    assert out.split() == [installed_version("torch"), "None"]


def test_predictor_image_has_no_pipeline_packages(built_images, buildah: str) -> None:
    out = run_in(
        buildah,
        built_images.refs.predictor,
        "python3",
        "-c",
        "import json; from importlib.metadata import distributions as d; "
        "print(json.dumps(sorted({x.metadata['Name'].lower() for x in d()})))",
    )
    installed = set(json.loads(out))
    assert {"kserve", "mlflow-skinny", "torch", "scikit-learn", "skops"} <= installed
    assert installed.isdisjoint({"kfp", "google-cloud-pipeline-components", "google-cloud-aiplatform"})


def test_images_are_small_and_the_predictor_smallest(built_images) -> None:
    sizes = {name: built.size_bytes for name, built in built_images.built.items()}
    assert all(0 < size < TFX_IMAGE_BYTES * 0.75 for size in sizes.values()), sizes
    assert min(sizes, key=sizes.get) == "predictor", sizes


CUDA_OPT_IN_VARIABLE = "KFP_CICD_CUDA_IMAGE_TESTS"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # for pip behind a TLS-intercepting proxy


def test_cuda_runtime_image_has_cuda_torch(buildah: str, base_image: str, build_module) -> None:
    """The CUDA variant GPU tasks run (``kfp-cicd-runtime:<version>-cuda``) carries CUDA torch.

    A separate opt-in (``KFP_CICD_CUDA_IMAGE_TESTS=1``), never in CI: it downloads PyPI's CUDA torch
    and its nvidia-* wheels (several GB) and needs tens of GB of vfs storage. No GPU is needed: it checks
    the build, not a device.
    """
    from kfp_cicd.images import CUDA, ImageRefs
    from kfp_cicd.version import __version__

    if os.environ.get(CUDA_OPT_IN_VARIABLE) != "1":
        pytest.skip(f"the CUDA image build is opt-in: set {CUDA_OPT_IN_VARIABLE}=1 (GBs of downloads)")
    refs = ImageRefs("localhost", __version__)
    build_args, volumes = {"BASE_IMAGE": base_image}, []
    if CA_BUNDLE.is_file():
        build_args["PIP_CERT"] = str(CA_BUNDLE)
        volumes.append(f"{CA_BUNDLE}:{CA_BUNDLE}:ro")
    builder = build_module.Builder(buildah)
    existing = builder.inspect(refs.runtime_cuda) if os.environ.get("KFP_CICD_IMAGE_REUSE") == "1" else None
    if existing:  # as for the CPU images: any image under the reference, when iterating on the test
        built = build_module.BuiltImage("runtime-cuda", refs.runtime_cuda, 0.0, existing["size"], True)
    else:
        built = build_module.build_image(builder, "runtime", refs, build_args, volumes, True, CUDA.name)
    assert built.ref == refs.runtime_cuda
    out = run_in(
        buildah, built.ref, "python3", "-c", "import torch; print(torch.__version__, torch.version.cuda)"
    )
    version, cuda = out.split()
    assert version.split("+")[0] == installed_version("torch").split("+")[0] and cuda != "None", out
    assert built.size_bytes < TFX_IMAGE_BYTES * 1.5, built.size_bytes
