"""Options every ``submit`` command shares (Kubeflow Pipelines and Vertex AI): caching and waiting."""

from __future__ import annotations

import argparse


def add_submit_options(parser: argparse.ArgumentParser, *, what: str, poll_seconds: float) -> None:
    """``--no-cache``, ``--wait``, ``--timeout`` and ``--poll-interval`` for a run or job (``what``).

    There is no ``--cache``: forcing caching on for every task would override the pipelines'
    per-task settings and let a re-run skip register and deploy, which are uncacheable on purpose.
    """
    parser.add_argument(
        "--no-cache",
        dest="enable_caching",
        action="store_const",
        const=False,
        help="force caching off for every task (e.g. new data at the same path)",
    )
    parser.add_argument("--wait", action="store_true", help=f"follow the {what}; exit 1 if it fails")
    parser.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds (exit 6)")
    parser.add_argument(
        "--poll-interval", type=float, default=poll_seconds, help="with --wait: seconds between checks"
    )
