"""Turn what a user names (``models:/name@alias``, ``models:/name/3``, a directory) into a local model.

Models load only from the MLflow registry the user configured (``--tracking-uri``), verified
against the digest the registry recorded for the version, or from a local directory (verified
against its own checksums, and ``--expected-digest`` when given). Other URIs (``s3://``,
``https://``, ``file://``...) are refused rather than fetched: what is served must come from the
registry whose digest vouches for it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfp_cicd.errors import KfpCicdError

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_URI_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class ModelSource:
    """A local model directory, the name to serve it under, and the registry's digest if known."""

    model_dir: Path
    name: str
    expected_digest: str | None = None


def resolve_model_source(source: str, *, tracking_uri: str | None) -> ModelSource:
    """A :class:`ModelSource` for a registry URI (downloaded to a temporary directory) or a directory."""
    from kfp_cicd.registry.client import download_version, version_for_alias
    from kfp_cicd.registry.digest import registered_digest

    match = _MODELS_URI.match(source)
    scheme = _URI_SCHEME.match(source)
    if match is None and scheme is not None:
        raise KfpCicdError(
            f"{source}: kfp-cicd serve loads models only from the MLflow registry you "
            "configure (models:/<name>@<alias> or models:/<name>/<version> with "
            "--tracking-uri) or from a local directory; it does not fetch "
            f"{scheme['scheme']}:// URIs. Register the model, or copy it to a directory "
            "with its checksums.json"
        )
    if match is None:
        path = Path(source)
        if not (path / "MLmodel").is_file():
            raise KfpCicdError(
                f"{source} is neither models:/<name>@<alias>, models:/<name>/<version> "
                "nor an MLflow model directory"
            )
        name = re.sub(r"[^a-z0-9-]", "-", path.resolve().name.lower()).strip("-") or "model"
        return ModelSource(path, name)
    if not tracking_uri:
        raise KfpCicdError(f"{source} is a registry URI: give --tracking-uri (e.g. sqlite:///… or http://…)")
    name = match["name"]
    version = match["version"] or version_for_alias(tracking_uri, name, match["alias"])
    if version is None:
        raise KfpCicdError(f"model {name} has no alias {match['alias']!r} at {tracking_uri}")
    digest = registered_digest(tracking_uri, name, version)  # refuses a version without one
    destination = Path(tempfile.mkdtemp(prefix="kfp-cicd-serve-"))
    return ModelSource(download_version(tracking_uri, name, version, destination), name, digest)
