"""Turn what a user names (``models:/name@alias``, ``models:/name/3``, a directory) into a local model."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfp_cicd.errors import KfpCicdError

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelSource:
    """A local model directory, the name to serve it under, and the registry's digest if known."""

    model_dir: Path
    name: str
    expected_digest: str | None = None


def resolve_model_source(source: str, *, tracking_uri: str | None) -> ModelSource:
    """A :class:`ModelSource` for a registry URI (downloaded to a temporary directory) or a directory."""
    from kfp_cicd.components.register.registry import (
        MODEL_DIGEST_TAG,
        client_for,
        download_version,
        version_for_alias,
    )

    match = _MODELS_URI.match(source)
    if match is None:
        path = Path(source)
        if not (path / "MLmodel").is_file():
            raise KfpCicdError(f"{source} is neither models:/<name>@<alias>, models:/<name>/<version> "
                               "nor an MLflow model directory")
        name = re.sub(r"[^a-z0-9-]", "-", path.resolve().name.lower()).strip("-") or "model"
        return ModelSource(path, name)
    if not tracking_uri:
        raise KfpCicdError(f"{source} is a registry URI: give --tracking-uri (e.g. sqlite:///… or http://…)")
    name = match["name"]
    version = match["version"] or version_for_alias(tracking_uri, name, match["alias"])
    if version is None:
        raise KfpCicdError(f"model {name} has no alias {match['alias']!r} at {tracking_uri}")
    tags = client_for(tracking_uri).get_model_version(name, version).tags or {}
    destination = Path(tempfile.mkdtemp(prefix=f"kfp-cicd-serve-{name}-"))
    return ModelSource(download_version(tracking_uri, name, version, destination), name,
                       tags.get(MODEL_DIGEST_TAG))
