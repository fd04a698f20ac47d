"""The model digest the registry recorded for a version, which every deployment must match.

``register_model_version`` tags each version with ``model_digest`` (the checksums.json digest of
the files it uploaded). Deployments verify downloaded files against it (local target) or hand it to
the predictor, which verifies ``/mnt/models`` at load (cluster target, ``MODEL_DIGEST`` env var);
``kfp-cicd serve`` verifies a ``models:/`` URI's download against it.
"""

from __future__ import annotations

from kfp_cicd.errors import DeploymentError, RegistryError
from kfp_cicd.registry.client import version_tags
from kfp_cicd.registry.retries import RegistryUnavailable
from kfp_cicd.registry.tags import MODEL_DIGEST_TAG

DIGEST_ENV = "MODEL_DIGEST"


def registered_digest(tracking_uri: str, model_name: str, version: str) -> str:
    """The ``model_digest`` tag of the version; DeploymentError when the version or the tag is missing."""
    try:
        tags = version_tags(tracking_uri, model_name, str(version))
    except RegistryUnavailable:
        raise  # the server did not answer: say so, not "not found"
    except RegistryError as exc:
        raise DeploymentError(f"{model_name} version {version} not found at {tracking_uri}: {exc}") from exc
    digest = tags.get(MODEL_DIGEST_TAG)
    if not digest:
        raise DeploymentError(
            f"{model_name} version {version} has no {MODEL_DIGEST_TAG!r} tag, so "
            "its files cannot be verified; register it again with register_model, "
            "which records it"
        )
    return str(digest)
