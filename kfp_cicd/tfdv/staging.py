"""Local copies of remote tables for the TFDV jobs.

The TFDV environment has no object-store clients, so ``gs://``/``s3://`` (any fsspec URL) tables
are copied to local disk in the main environment before a job reads them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kfp_cicd.errors import DataError


def stage(location: str, staging_dir: Path) -> str:
    """A local path for ``location``: itself, or a downloaded copy of a remote (fsspec URL) file.

    The copy keeps the file name (and so the format suffix).
    """
    if "://" not in location or location.startswith("file://"):
        return location.removeprefix("file://")
    target = staging_dir / location.rstrip("/").rsplit("/", 1)[-1]
    staging_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fsspec

        with fsspec.open(location, "rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, length=1 << 20)
    except (ImportError, OSError, ValueError) as error:
        raise DataError(
            f"cannot download {location}: {error}. Check the URL and the "
            "credentials; gs:// needs gcsfs and s3:// needs s3fs installed."
        ) from error
    return str(target)
