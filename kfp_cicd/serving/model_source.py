"""Turn what a user names (``models:/name@alias``, ``models:/name/3``, a directory) into a local model."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from kfp_cicd.errors import KfpCicdError

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def resolve_model_source(source: str, *, tracking_uri: str | None) -> tuple[Path, str]:
    """(local model directory, model name) for a registry URI or a directory."""
    from kfp_cicd.components.register.registry import download_version, version_for_alias

    match = _MODELS_URI.match(source)
    if match is None:
        path = Path(source)
        if not (path / "MLmodel").is_file():
            raise KfpCicdError(f"{source} is neither models:/<name>@<alias>, models:/<name>/<version> "
                               "nor an MLflow model directory")
        return path, re.sub(r"[^a-z0-9-]", "-", path.resolve().name.lower()).strip("-") or "model"
    if not tracking_uri:
        raise KfpCicdError(f"{source} is a registry URI: give --tracking-uri (e.g. sqlite:///… or http://…)")
    name = match["name"]
    version = match["version"] or version_for_alias(tracking_uri, name, match["alias"])
    if version is None:
        raise KfpCicdError(f"model {name} has no alias {match['alias']!r} at {tracking_uri}")
    destination = Path(tempfile.mkdtemp(prefix=f"kfp-cicd-serve-{name}-"))
    return download_version(tracking_uri, name, version, destination), name
