"""``kfp-cicd``: run the pipeline locally, compile it, generate data, serve a model.

Each command group lives in its own module with a ``register(commands)`` function; add new groups
to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kfp_cicd.cli import compile as compile_command
from kfp_cicd.cli import data, monitor, registry, run, runs, schema, serve, vertex
from kfp_cicd.cli import kfp as kfp_commands
from kfp_cicd.errors import KfpCicdError
from kfp_cicd.version import __version__

COMMAND_MODULES = (run, runs, compile_command, data, serve, kfp_commands, vertex, registry, schema, monitor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kfp-cicd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kfp-cicd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except KfpCicdError as exc:
        print(f"kfp-cicd: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
