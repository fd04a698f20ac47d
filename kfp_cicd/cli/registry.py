"""``kfp-cicd rollback`` and ``kfp-cicd registry show``: the MLflow registry's aliases by hand."""

from __future__ import annotations

import argparse

from kfp_cicd.cli.store import add_home_argument, tracking_uri_of

SHOWN_TAGS = (
    "gate_decision",
    "approved_by",
    "approved_at",
    "operating_threshold",
    "champion_compared",
    "code_revision",
    "rolled_back_at",
)


def _add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: the store in --home when given, else $MLFLOW_TRACKING_URI, "
        "else the store in the default home)",
    )
    add_home_argument(parser)


def register(commands: argparse._SubParsersAction) -> None:
    rollback = commands.add_parser(
        "rollback", help="make the 'previous' version champion again (the demoted one becomes 'previous')"
    )
    _add_registry_arguments(rollback)
    rollback.set_defaults(handler=_rollback)
    registry = commands.add_parser("registry", help="inspect the MLflow model registry")
    actions = registry.add_subparsers(dest="registry_command", required=True)
    show = actions.add_parser("show", help="list a model's versions with their aliases and audit tags")
    _add_registry_arguments(show)
    show.set_defaults(handler=_show)


def _checked_target(args: argparse.Namespace) -> str:
    """The tracking URI, after checking it and ``--model`` (before the registry is contacted)."""
    from kfp_cicd.parameter_validation import check_model_name, check_tracking_uri

    check_model_name(args.model, "--model")
    return check_tracking_uri(tracking_uri_of(args), "--tracking-uri")


def _rollback(args: argparse.Namespace) -> int:
    uri = _checked_target(args)  # before importing MLflow: a bad value fails at once
    from kfp_cicd.registry.aliases import rollback

    done = rollback(uri, args.model)
    print(
        f"{done.model_name}: champion is version {done.restored} again; version {done.demoted} "
        "is now 'previous' (run rollback again to undo)"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    uri = _checked_target(args)  # before importing MLflow: a bad value fails at once
    from kfp_cicd.registry.client import list_versions

    versions = list_versions(uri, args.model)
    print(f"{args.model} at {uri}: {len(versions)} version(s)")
    for v in versions:
        aliases = ", ".join(v.aliases) or "-"
        print(f"  version {v.version:>4}  [{aliases}]  created {v.created}  {v.status}")
        for tag in SHOWN_TAGS:
            if tag in v.tags:
                print(f"      {tag}: {v.tags[tag]}")
    return 0
