"""``python -m kfp_cicd.serving``: serve an MLflow pyfunc model directory with KServe.

The ClusterServingRuntime runs this in the serving image with ``--model-dir /mnt/models
--model-name {{.Name}}``; the local deployment target runs it as a subprocess.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from kfp_cicd.errors import KfpCicdError
from kfp_cicd.serving.limits import add_limit_arguments, request_limits
from kfp_cicd.serving.server import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_MODEL_DIR, serve

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The command line; defaults come from MODEL_DIR / MODEL_NAME so a container can use env vars."""
    parser = argparse.ArgumentParser(
        prog="python -m kfp_cicd.serving",
        description="Serve an MLflow pyfunc classifier over the KServe V1 and V2 protocols.",
    )
    parser.add_argument(
        "--model-dir",
        default=os.environ.get("MODEL_DIR", DEFAULT_MODEL_DIR),
        help="MLflow model directory (default: $MODEL_DIR or %(default)s)",
    )
    parser.add_argument(
        "--model-name",
        default=os.environ.get("MODEL_NAME"),
        help="name in the URLs /v1/models/<name>:predict and /v2/models/<name>/infer "
        "(required; default: $MODEL_NAME)",
    )
    parser.add_argument(
        "--http-port", type=int, default=DEFAULT_HTTP_PORT, help="REST port, V1 and V2 (default: %(default)s)"
    )
    parser.add_argument(
        "--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="V2 gRPC port (default: %(default)s)"
    )
    parser.add_argument("--no-grpc", action="store_true", help="do not start the gRPC server")
    parser.add_argument(
        "--expected-digest",
        default=os.environ.get("MODEL_DIGEST") or None,
        help="the registry's model digest (sha256:…); loading refuses files that do not "
        "match it (default: $MODEL_DIGEST; the checksums are verified either way)",
    )
    parser.add_argument(
        "--model-version",
        default=os.environ.get("MODEL_VERSION", ""),
        help="registry version, a label of the /metrics series (default: $MODEL_VERSION)",
    )
    add_limit_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve; returns the exit status when the server stops or fails."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model_name:
        parser.error("--model-name is required (or set MODEL_NAME)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        serve(
            args.model_dir,
            model_name=args.model_name,
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            enable_grpc=not args.no_grpc,
            expected_digest=args.expected_digest,
            model_version=args.model_version,
            limits=request_limits(args),
        )
    except KfpCicdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
