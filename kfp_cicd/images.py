"""The project's container images: their names, Dockerfiles and the references compiled pipelines use.

One image per environment (see images/): ``runtime`` runs train, evaluate, register and deploy;
``validation`` carries a small kfp environment plus the separate TFDV environment; ``predictor`` is
the KServe model server alone (no kfp), the image a ServingRuntime runs. ``images/build.py`` (``make
images``) builds them under exactly the references this module gives, so ``kfp-cicd compile
--image-registry R --image-tag T`` and ``make images IMAGE_REGISTRY=R IMAGE_TAG=T`` agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp_cicd.version import __version__

DEFAULT_REGISTRY = "ghcr.io/kfp-cicd"

# image name -> its Dockerfile, relative to the repository root (the build context).
DOCKERFILES = {
    "runtime": "images/runtime/Dockerfile",
    "validation": "images/validation/Dockerfile",
    "predictor": "images/predictor/Dockerfile",
}


@dataclass(frozen=True)
class ImageRefs:
    """Where the project's images live; ``kfp-cicd compile --image-registry/--image-tag`` set it."""

    registry: str = DEFAULT_REGISTRY
    tag: str = __version__

    def ref(self, name: str) -> str:
        """``REGISTRY/kfp-cicd-NAME:TAG`` for one of :data:`DOCKERFILES`' names."""
        if name not in DOCKERFILES:
            raise ValueError(f"unknown image {name!r}; the images are {', '.join(DOCKERFILES)}")
        return f"{self.registry.rstrip('/')}/kfp-cicd-{name}:{self.tag}"

    @property
    def runtime(self) -> str:
        """Image for training, evaluation, registration and deployment."""
        return self.ref("runtime")

    @property
    def validation(self) -> str:
        """Image for data validation (kfp environment + TFDV environment)."""
        return self.ref("validation")

    @property
    def predictor(self) -> str:
        """Image of the KServe predictor (``python -m kfp_cicd.serving``) that serves a model."""
        return self.ref("predictor")
