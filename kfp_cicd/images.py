"""Container image references baked into compiled pipelines.

One image per environment (see images/): ``runtime`` runs train, evaluate, register, deploy and the
KServe predictor; ``validation`` carries the kfp environment plus the separate TFDV environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp_cicd.version import __version__

DEFAULT_REGISTRY = "ghcr.io/kfp-cicd"


@dataclass(frozen=True)
class ImageRefs:
    """Where the project's images live; ``kfp-cicd compile --image-registry/--image-tag`` set it."""

    registry: str = DEFAULT_REGISTRY
    tag: str = __version__

    def _ref(self, name: str) -> str:
        return f"{self.registry.rstrip('/')}/kfp-cicd-{name}:{self.tag}"

    @property
    def runtime(self) -> str:
        """Image for training, evaluation, registration, deployment and serving."""
        return self._ref("runtime")

    @property
    def validation(self) -> str:
        """Image for data validation (kfp environment + TFDV environment)."""
        return self._ref("validation")
