"""Names for uploaded pipeline versions and Vertex job ids, derived from the code revision.

A version is identified by the revision of the code it was compiled from: uploading the same
revision twice finds the existing version and does nothing. A dirty working tree is not one
revision, so its version name also carries a digest of the compiled spec (changed files, new name).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kfp_cicd.orchestration.errors import ParameterError

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.-]+)?$")
_UNSAFE = re.compile(r"[^a-z0-9.-]+")
REVISION_LENGTH = 12


def revision_token(revision: str, spec_sha256: str) -> str:
    """Short, name-safe identifier of a code revision (plus the spec digest if the tree was dirty)."""
    commit = revision.strip().partition("-dirty")[0]
    token = _UNSAFE.sub("-", commit.lower()).strip("-.")
    if re.fullmatch(r"[0-9a-f]{40}", token):
        token = token[:REVISION_LENGTH]
    if "-dirty" in revision:
        token = f"{token}-dirty-{spec_sha256[:8]}"
    return token or f"spec-{spec_sha256[:REVISION_LENGTH]}"


def version_name(revision: str, spec_sha256: str, semver: str | None = None) -> str:
    """``<semver>-<revision>`` or ``rev-<revision>``: readable in the KFP UI, sortable by semver."""
    token = revision_token(revision, spec_sha256)
    if semver:
        if not _SEMVER.match(semver):
            raise ParameterError(f"--semver {semver!r} is not a semantic version like 1.4.0 or 1.4.0-rc.1")
        return f"{semver.lstrip('v')}-{token}"
    return f"rev-{token}"


def job_id(pipeline_name: str, revision: str, spec_sha256: str, now: datetime | None = None) -> str:
    """A Vertex PipelineJob id: ``<pipeline>-<revision>-<UTC timestamp>``.

    Readable (pipeline and code revision are visible in the console), stable for a given
    revision, and unique per submission. Vertex ids match ``[a-z][-a-z0-9]{0,127}``.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = _UNSAFE.sub("-", pipeline_name.lower()).replace(".", "-").strip("-")
    token = revision_token(revision, spec_sha256).replace(".", "-")[:24]
    identifier = f"{base[:80]}-{token}-{stamp}".strip("-")
    if not identifier[0].isalpha():
        identifier = f"p-{identifier}"
    return identifier[:128]
