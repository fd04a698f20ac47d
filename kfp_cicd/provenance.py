"""Where the running code came from, for model lineage (code revision, package version)."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from kfp_cicd.version import __version__

REVISION_VARIABLE = "KFP_CICD_CODE_REVISION"  # images bake it in at build time


@cache
def code_revision() -> str:
    """The git commit of the code (``-dirty`` if the tree has changes), or the image's baked value."""
    baked = os.environ.get(REVISION_VARIABLE)
    if baked:
        return baked
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"kfp-cicd=={__version__}"
    return f"{commit}-dirty" if dirty else commit
