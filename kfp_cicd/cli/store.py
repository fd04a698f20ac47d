"""The local store every command that reads it shares: ``--home`` and the tracking URI it implies.

``run`` and ``monitor`` write runs and the MLflow store (``mlflow.db``, ``mlartifacts/``) under
``--home``; ``registry show``, ``rollback`` and ``serve`` read that same store, so they take the
same option and resolve the registry the same way.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HOME_HELP = "where runs and the MLflow store live (default $KFP_CICD_HOME or ~/.kfp-cicd)"


def add_home_argument(parser: argparse.ArgumentParser) -> None:
    """``--home DIR`` with the one help text."""
    parser.add_argument("--home", type=Path, help=HOME_HELP)


def home_of(args: argparse.Namespace) -> Path:
    """``--home``, else ``$KFP_CICD_HOME``, else ``~/.kfp-cicd`` (resolved)."""
    from kfp_cicd.local_run import default_home

    return (args.home or default_home()).resolve()


def tracking_uri_of(args: argparse.Namespace) -> str:
    """The registry to read: ``--tracking-uri``; else the store in ``--home`` when it is given; else
    ``$MLFLOW_TRACKING_URI``; else the store in the default home."""
    if args.tracking_uri:
        return args.tracking_uri
    if args.home is None and os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{home_of(args) / 'mlflow.db'}"
