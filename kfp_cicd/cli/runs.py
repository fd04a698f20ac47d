"""``kfp-cicd runs list`` / ``runs show RUN``: past local runs, read back from ``--home``.

Each ``kfp-cicd run`` / ``monitor`` leaves ``<home>/runs/<id>/`` with its record (``run.json``),
its page (``index.html``), its task logs (``logs/``) and every artifact (``pipeline_root/``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kfp_cicd.cli.store import add_home_argument, home_of
from kfp_cicd.errors import KfpCicdError


def register(commands: argparse._SubParsersAction) -> None:
    runs = commands.add_parser("runs", help="list past local runs, or show one")
    actions = runs.add_subparsers(dest="runs_action", required=True)
    listing = actions.add_parser("list", help="one line per run in --home, newest first")
    add_home_argument(listing)
    listing.add_argument("--limit", type=int, default=20, help="how many runs to list (default 20)")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="the steps, summary and page of one run")
    show.add_argument("run", help="a run id from `runs list` (a unique prefix will do), or 'latest'")
    add_home_argument(show)
    show.add_argument("--open", action="store_true", help="open the run's page in a browser")
    show.set_defaults(handler=_show)


def run_dirs(home: Path) -> list[Path]:
    """Every run directory under ``home``, newest first."""
    root = home / "runs"
    return (
        sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)
        if root.is_dir()
        else []
    )


def _record(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {}


def list_line(run_dir: Path) -> str:
    """``20261204-231719  succeeded  1m52s  kfp-cicd-training  gate APPROVED …``."""
    from kfp_cicd.console import format_seconds

    record = _record(run_dir)
    if not record:
        return f"{run_dir.name:<18} {'unfinished':<10} {'':>6}  (no run.json: interrupted, or still running)"
    steps = record.get("steps", [])
    failed = next((s for s in steps if s.get("state") == "failed"), None)
    headlines = {s.get("name", ""): s.get("headline", "") for s in steps}
    # a monitoring run: its verdict; a training run (or one that retrained): the gate's
    result = headlines.get("monitoring-verdict") or headlines.get("evaluate-model", "")
    detail = f"{failed['name']}: {failed.get('headline', '')}" if failed else result
    return (
        f"{run_dir.name:<18} {record.get('status', '?'):<10} {format_seconds(record.get('seconds')):>6}  "
        f"{record.get('pipeline', ''):<20} {detail}"
    ).rstrip()


def find_run(home: Path, wanted: str) -> Path:
    """The run directory ``wanted`` names: an id, a unique prefix of one, or ``latest``."""
    dirs = run_dirs(home)
    if not dirs:
        raise KfpCicdError(f"no runs in {home / 'runs'}: start one with `kfp-cicd run --home {home}`")
    if wanted == "latest":
        return dirs[0]
    exact = [d for d in dirs if d.name == wanted]
    matches = exact or [d for d in dirs if d.name.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        recent = ", ".join(d.name for d in dirs[:5])
        raise KfpCicdError(
            f"no run {wanted!r} in {home / 'runs'}; recent runs: {recent} (see `kfp-cicd runs list`)"
        )
    raise KfpCicdError(
        f"{wanted!r} names {len(matches)} runs ({', '.join(d.name for d in matches[:5])}): give more of it"
    )


def _list(args: argparse.Namespace) -> int:
    home = home_of(args)
    dirs = run_dirs(home)
    if not dirs:
        print(f"no runs in {home / 'runs'}")
        return 0
    print(f"{'run':<18} {'status':<10} {'time':>6}  {'pipeline':<20} result")
    for run_dir in dirs[: max(args.limit, 1)]:
        print(list_line(run_dir))
    return 0


def _show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from kfp_cicd.cli.monitor import format_monitoring_summary
    from kfp_cicd.cli.run import open_page
    from kfp_cicd.console import print_failure, step_table
    from kfp_cicd.local_run import load_run
    from kfp_cicd.run_page import write_run_page
    from kfp_cicd.run_summary import format_summary

    result = load_run(find_run(home_of(args), args.run))
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        Text(f"{result.pipeline_name} run {result.run_dir.name}, started {result.started}", style="bold")
    )
    console.print(step_table(result.steps))
    monitoring = "monitoring" in result.pipeline_name
    console.print(
        Text(format_monitoring_summary(result) if monitoring else format_summary(result, artifacts=False))
    )
    page = result.page if result.page.is_file() else write_run_page(result)
    console.print(Text(f"page:  {page}"))
    print_failure(console, result)
    if args.open:
        open_page(page)
    return 0
