"""The project's container images: their names, Dockerfiles and the references compiled pipelines use.

One image per environment (see images/): ``runtime`` runs train, evaluate, register and deploy;
``validation`` carries a small kfp environment plus the separate TFDV environment; ``predictor`` is
the KServe model server alone (no kfp), the image a ServingRuntime runs. The runtime image also comes
as a **CUDA variant** (``kfp-cicd-runtime:TAG-cuda``): the same Dockerfile with PyPI's default Linux
torch wheel, which is the CUDA build. Every task that asks for an accelerator runs it; every other task
runs the CPU images.

``images/build.py`` (``make images``) builds exactly :meth:`ImageRefs.builds`, under the references this
module gives, so ``kfp-cicd compile --image-registry R --image-tag T`` and ``make images
IMAGE_REGISTRY=R IMAGE_TAG=T`` agree, the ``-cuda`` variant included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kfp_cicd.version import __version__

DEFAULT_REGISTRY = "ghcr.io/kfp-cicd"

# image name -> its Dockerfile, relative to the repository root (the build context).
DOCKERFILES = {
    "runtime": "images/runtime/Dockerfile",
    "validation": "images/validation/Dockerfile",
    "predictor": "images/predictor/Dockerfile",
}


@dataclass(frozen=True)
class Variant:
    """A second build of some images from the same Dockerfile, told apart by a tag suffix."""

    name: str
    images: tuple[str, ...]
    build_args: dict[str, str] = field(default_factory=dict)

    def tag(self, tag: str) -> str:
        """The variant's tag: ``TAG-NAME`` (the one rule for variant names, compile and build alike)."""
        return f"{tag}-{self.name}"


# The CUDA runtime: no extra index, so pip takes PyPI's default Linux torch wheel for main.lock's
# ``torch==X``, the CUDA build; the CUDA libraries come with it as nvidia-* wheels, the node supplies
# the driver. TORCH_VARIANT=cuda makes the build fail if torch.version.cuda is None.
CUDA = Variant("cuda", ("runtime",), {"TORCH_VARIANT": "cuda", "TORCH_INDEX_URL": ""})
VARIANTS = {CUDA.name: CUDA}


@dataclass(frozen=True)
class ImageBuild:
    """One image ``make images`` builds: which Dockerfile, with which build arguments, under which ref."""

    name: str
    variant: str
    ref: str
    dockerfile: str
    build_args: dict[str, str]

    @property
    def key(self) -> str:
        """``runtime``, ``runtime-cuda``, …: the name ``images/build.py --only`` takes."""
        return f"{self.name}-{self.variant}" if self.variant else self.name


@dataclass(frozen=True)
class ImageRefs:
    """Where the project's images live; ``kfp-cicd compile --image-registry/--image-tag`` set it."""

    registry: str = DEFAULT_REGISTRY
    tag: str = __version__

    def ref(self, name: str, variant: str = "") -> str:
        """``REGISTRY/kfp-cicd-NAME:TAG`` (``:TAG-VARIANT`` for a variant) for one of :data:`DOCKERFILES`."""
        if name not in DOCKERFILES:
            raise ValueError(f"unknown image {name!r}; the images are {', '.join(DOCKERFILES)}")
        tag = self.tag
        if variant:
            known = VARIANTS.get(variant)
            if known is None or name not in known.images:
                offered = [f"{n}-{v.name}" for v in VARIANTS.values() for n in v.images]
                raise ValueError(
                    f"image {name!r} has no {variant!r} variant; the variants are {', '.join(offered)}"
                )
            tag = known.tag(self.tag)
        return f"{self.registry.rstrip('/')}/kfp-cicd-{name}:{tag}"

    def builds(self, variants: bool = True) -> list[ImageBuild]:
        """Every image ``make images`` builds: the CPU images, then (``variants``) the CUDA runtime."""
        builds = [ImageBuild(name, "", self.ref(name), path, {}) for name, path in DOCKERFILES.items()]
        if variants:
            builds += [
                ImageBuild(name, v.name, self.ref(name, v.name), DOCKERFILES[name], dict(v.build_args))
                for v in VARIANTS.values()
                for name in v.images
            ]
        return builds

    @property
    def runtime(self) -> str:
        """Image for training, evaluation, registration and deployment (CPU torch)."""
        return self.ref("runtime")

    @property
    def runtime_cuda(self) -> str:
        """The runtime image with CUDA torch, for every task that asks for an accelerator."""
        return self.ref("runtime", CUDA.name)

    def training(self, gpus: int) -> str:
        """The image of a training task (or pod) with ``gpus`` accelerators: CUDA when ``gpus > 0``."""
        return self.runtime_cuda if gpus > 0 else self.runtime

    @property
    def validation(self) -> str:
        """Image for data validation (kfp environment + TFDV environment)."""
        return self.ref("validation")

    @property
    def predictor(self) -> str:
        """Image of the KServe predictor (``python -m kfp_cicd.serving``) that serves a model."""
        return self.ref("predictor")
