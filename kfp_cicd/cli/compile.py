"""``kfp-cicd compile [--check]``: compiled specs for Kubeflow and Vertex."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfp_cicd.version import __version__


def register(commands: argparse._SubParsersAction) -> None:
    compile_ = commands.add_parser("compile", help="compile pipelines for Kubeflow and Vertex")
    compile_.add_argument("--output-dir", type=Path, default=Path("compiled"))
    compile_.add_argument("--image-registry", help="registry of the project's images")
    compile_.add_argument("--image-tag", help="tag of the project's images (default: package version)")
    training = compile_.add_argument_group("training resources")
    training.add_argument("--gpus", type=int, default=1, help="GPUs per training node/replica (default 1)")
    training.add_argument("--kubeflow-accelerator", default="nvidia.com/gpu")
    training.add_argument("--vertex-accelerator", default="NVIDIA_L4")
    training.add_argument(
        "--vertex-replicas",
        type=int,
        default=2,
        help="Vertex training replicas; >1 compiles a custom job with worker pools",
    )
    training.add_argument("--vertex-machine-type", default="g2-standard-8")
    training.add_argument(
        "--kubeflow-nodes",
        type=int,
        default=1,
        help="Kubeflow training nodes; >1 trains as a PyTorchJob (needs --shared-pvc)",
    )
    training.add_argument("--shared-pvc", default="", help="ReadWriteMany PVC for multi-node training")
    compile_.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming every stale or missing spec"
    )
    compile_.set_defaults(handler=_compile)


def _compile(args: argparse.Namespace) -> int:
    from kfp_cicd.compiler import compile_all, compile_components, stale_components, stale_specs
    from kfp_cicd.errors import KfpCicdError
    from kfp_cicd.images import DEFAULT_REGISTRY, ImageRefs
    from kfp_cicd.parameter_validation import check_dns_subdomain, check_image_registry, check_image_tag
    from kfp_cicd.pipelines.training_pipeline import TrainingResources

    registry = DEFAULT_REGISTRY if args.image_registry is None else check_image_registry(args.image_registry)
    tag = check_image_tag(args.image_tag) if args.image_tag is not None else __version__
    if args.shared_pvc:
        check_dns_subdomain(args.shared_pvc, "--shared-pvc")
    images = ImageRefs(registry=registry, tag=tag)
    try:
        resources = TrainingResources(
            gpus=args.gpus,
            kubeflow_accelerator=args.kubeflow_accelerator,
            vertex_accelerator=args.vertex_accelerator,
            vertex_replica_count=args.vertex_replicas,
            vertex_machine_type=args.vertex_machine_type,
            kubeflow_nodes=args.kubeflow_nodes,
            shared_pvc=args.shared_pvc,
        )
    except ValueError as exc:
        raise KfpCicdError(f"bad training resources: {exc}") from exc
    if args.check:
        stale = stale_specs(args.output_dir, images, resources)
        for path in stale:
            print(
                f"stale: {path} differs from what the pipeline code compiles to; run `kfp-cicd compile`",
                file=sys.stderr,
            )
        stale_yamls = stale_components(args.output_dir, images)
        for path in stale_yamls:
            print(
                f"stale: {path} is missing, differs from what its component compiles to, or belongs to "
                "no op of kfp_cicd.components; run `kfp-cicd compile`",
                file=sys.stderr,
            )
        stale += stale_yamls
        if not stale:
            print(f"compiled specs under {args.output_dir} are up to date")
        return 1 if stale else 0
    for path in compile_all(args.output_dir, images, resources) + compile_components(args.output_dir, images):
        print(f"wrote {path}")
    return 0
