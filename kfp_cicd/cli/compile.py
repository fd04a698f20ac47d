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
    compile_.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 naming every stale or missing spec")
    compile_.set_defaults(handler=_compile)


def _compile(args: argparse.Namespace) -> int:
    from kfp_cicd.compiler import compile_all, stale_specs
    from kfp_cicd.images import DEFAULT_REGISTRY, ImageRefs

    images = ImageRefs(registry=args.image_registry or DEFAULT_REGISTRY, tag=args.image_tag or __version__)
    if args.check:
        stale = stale_specs(args.output_dir, images)
        for path in stale:
            print(f"stale: {path} differs from what the pipeline code compiles to; run `kfp-cicd compile`",
                  file=sys.stderr)
        if not stale:
            print(f"compiled specs under {args.output_dir} are up to date")
        return 1 if stale else 0
    for path in compile_all(args.output_dir, images):
        print(f"wrote {path}")
    return 0
