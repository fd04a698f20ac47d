"""``kfp-cicd serve``: the KServe predictor on this machine."""

from __future__ import annotations

import argparse

from kfp_cicd.cli.store import add_home_argument, tracking_uri_of
from kfp_cicd.serving.limits import add_limit_arguments, request_limits


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``kfp-cicd serve``: the same ``serve()`` the serving image's entrypoint runs."""
    serve = commands.add_parser("serve", help="serve a model with the KServe predictor on this machine")
    serve.add_argument(
        "--model",
        required=True,
        help="models:/<name>@<alias>, models:/<name>/<version>, or a model directory",
    )
    serve.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI for models:/ URIs (default: the store in --home when given, else "
        "$MLFLOW_TRACKING_URI, else the store in the default home)",
    )
    add_home_argument(serve)
    serve.add_argument("--model-name", help="name served under /v1/models/<name> (default: from --model)")
    serve.add_argument("--http-port", type=int, default=8080)
    serve.add_argument("--grpc-port", type=int, default=8081)
    serve.add_argument("--no-grpc", action="store_true")
    serve.add_argument(
        "--expected-digest",
        help="refuse to load unless the model's digest is this (default: the registry's "
        "model_digest tag for models:/ URIs); checksums are verified either way",
    )
    add_limit_arguments(serve)
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from kfp_cicd.parameter_validation import check_port, check_tracking_uri, require_text

    require_text(args.model, "--model")
    tracking_uri = check_tracking_uri(tracking_uri_of(args), "--tracking-uri")
    if args.model_name is not None:
        require_text(args.model_name, "--model-name", max_length=253)
    check_port(args.http_port, "--http-port")
    check_port(args.grpc_port, "--grpc-port")
    limits = request_limits(args)
    from kfp_cicd.serving.model_source import resolve_model_source  # heavy: after the checks
    from kfp_cicd.serving.server import serve

    source = resolve_model_source(args.model, tracking_uri=tracking_uri)
    serve(
        str(source.model_dir),
        model_name=args.model_name or source.name,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_grpc=not args.no_grpc,
        expected_digest=args.expected_digest or source.expected_digest,
        limits=limits,
    )
    return 0
