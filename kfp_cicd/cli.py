"""``kfp-cicd``: run the pipeline locally, compile it, generate data, serve a model."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kfp_cicd.errors import KfpCicdError
from kfp_cicd.version import __version__


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the training pipeline locally through kfp.local")
    data = run.add_argument_group("data (default: generate the synthetic fraud data set)")
    data.add_argument("--data", help="one labelled file to split into training and holdout data")
    data.add_argument("--train-data", help="training data file (with --eval-data)")
    data.add_argument("--eval-data", help="holdout data file (with --train-data)")
    data.add_argument("--rows", type=int, default=20_000, help="rows to generate (default 20000)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--home", type=Path, help="where runs and the MLflow store live "
                     "(default $KFP_CICD_HOME or ~/.kfp-cicd)")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite store in --home)")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="pipeline parameter, e.g. --param epochs=4 --param min_roc_auc=0.9")
    run.set_defaults(handler=_run)


def _parse_params(pairs: list[str]) -> dict:
    """``key=value`` pairs, typed as the pipeline declares them."""
    from kfp_cicd.pipelines.training_pipeline import build_training_pipeline

    declared = build_training_pipeline().component_spec.inputs or {}
    casts = {"Integer": int, "Float": float, "Boolean": lambda v: v.lower() in ("1", "true", "yes")}
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in declared:
            raise KfpCicdError(f"bad --param {pair!r}: expected KEY=VALUE with KEY one of {sorted(declared)}")
        try:
            parsed[key] = casts.get(declared[key].type, str)(value)
        except ValueError as exc:
            raise KfpCicdError(f"bad --param {pair!r}: {key} is {declared[key].type}") from exc
    return parsed


def _run(args: argparse.Namespace) -> int:
    from kfp_cicd.local_run import LocalRunRequest, default_home, run_locally
    from kfp_cicd.run_summary import format_summary

    request = LocalRunRequest(home=(args.home or default_home()).resolve(), data=args.data,
                              train_data=args.train_data, eval_data=args.eval_data, rows=args.rows,
                              seed=args.seed, tracking_uri=args.tracking_uri,
                              pipeline_arguments=_parse_params(args.param))
    result = run_locally(request)
    print(format_summary(result))
    return 0 if result.succeeded else 1


def _add_compile(commands: argparse._SubParsersAction) -> None:
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


def _add_data(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="data sets").add_subparsers(dest="data_command", required=True)
    generate = data.add_parser("generate", help="write the synthetic card-fraud data set")
    generate.add_argument("--rows", type=int, default=20_000)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out-dir", type=Path, default=Path("data"))
    generate.add_argument("--format", choices=("csv", "parquet"), default="csv")
    generate.add_argument("--holdout-fraction", type=float, default=0.2)
    generate.add_argument("--fraud-rate", type=float, default=0.02)
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from kfp_cicd.data.synthetic import generate_dataset

    files = generate_dataset(args.out_dir, rows=args.rows, seed=args.seed, fmt=args.format,
                             holdout_fraction=args.holdout_fraction, fraud_rate=args.fraud_rate)
    print(f"training data: {files.train}\nholdout data:  {files.holdout}")
    return 0


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve a model with the KServe predictor on this machine")
    serve.add_argument("--model", required=True,
                       help="models:/<name>@<alias>, models:/<name>/<version>, or a model directory")
    serve.add_argument("--tracking-uri", help="MLflow tracking URI for models:/ URIs")
    serve.add_argument("--model-name", help="name served under /v1/models/<name> (default: from --model)")
    serve.add_argument("--http-port", type=int, default=8080)
    serve.add_argument("--grpc-port", type=int, default=8081)
    serve.add_argument("--no-grpc", action="store_true")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from kfp_cicd.serving.model_source import resolve_model_source
    from kfp_cicd.serving.server import serve

    model_dir, name = resolve_model_source(args.model, tracking_uri=args.tracking_uri)
    serve(str(model_dir), model_name=args.model_name or name, http_port=args.http_port,
          grpc_port=args.grpc_port, enable_grpc=not args.no_grpc)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kfp-cicd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kfp-cicd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_compile, _add_data, _add_serve):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except KfpCicdError as exc:
        print(f"kfp-cicd: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
