"""kfp-cicd's components, ready to use in your own Kubeflow pipelines.

Import the ones you need; each is a KFP component (a ``kfp.dsl`` ``PythonComponent``) whose image is
the project's image of this package version, ``ghcr.io/kfp-cicd/kfp-cicd-<image>:<version>``::

    from kfp_cicd.components import validate_data_op, train_op, evaluate_op, register_op, deploy_op

Your images live elsewhere (a mirror, a private registry, another tag)? Bind the suite there; every
op of ``ops(...)`` runs on ``REGISTRY/kfp-cicd-<image>:TAG``, the references ``make images
IMAGE_REGISTRY=R IMAGE_TAG=T`` builds and ``kfp-cicd compile --image-registry R --image-tag T`` uses::

    from kfp_cicd.components import ops

    suite = ops(registry="europe-docker.pkg.dev/my-project/ml", tag="2026.1")
    validate = suite.validate_data_op(train_data=..., eval_data=..., label_column="y", schema_path="")

One task on one other image is kfp's own ``task.set_container_image("...")``.

Teams that do not install the package load the same components from their compiled YAML,
``compiled/components/<name>.yaml`` (``kfp.components.load_component_from_file`` or
``load_component_from_url``); :data:`OP_SPECS` says which op each file holds.

The ops are built on first use (PEP 562 module ``__getattr__``): importing this package, or one
component's module, imports no component. This package is the components layer's public face, the
one module allowed to import every component (docs/architecture.md); no component imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

from kfp_cicd.images import DEFAULT_REGISTRY, ImageRefs
from kfp_cicd.version import __version__

if TYPE_CHECKING:
    from kfp.dsl.python_component import PythonComponent


@dataclass(frozen=True)
class OpSpec:
    """One op of the suite: the component folder and ``build_*`` function behind it, and its image.

    Attributes:
        name: The op's name, the attribute to import (``validate_data_op``).
        folder: Its folder under ``components/`` (``kfp_cicd.components.<folder>.component``).
        image: The image it runs on, a name of ``kfp_cicd.images.DOCKERFILES``.
        builder: The ``build_*(image)`` function of the folder's ``component.py``.
    """

    name: str
    folder: str
    image: str
    builder: str = "build_component"

    @property
    def yaml_name(self) -> str:
        """The file its compiled YAML has under ``compiled/components/`` (``validate_data.yaml``)."""
        return f"{self.name.removesuffix('_op')}.yaml"


#: Every op of the suite, in pipeline order (validate, train, evaluate, register, deploy, monitor).
OP_SPECS: tuple[OpSpec, ...] = (
    OpSpec("data_contract_reference_op", "validate_data", "validation", "build_reference_component"),
    OpSpec("validate_data_op", "validate_data", "validation"),
    OpSpec("train_op", "train", "runtime"),
    OpSpec("train_pytorchjob_op", "train_pytorchjob", "runtime"),
    OpSpec("evaluate_op", "evaluate", "runtime"),
    OpSpec("register_op", "register", "runtime"),
    OpSpec("deploy_op", "deploy", "runtime"),
    OpSpec("check_drift_op", "monitor", "validation"),
    OpSpec("monitoring_verdict_op", "monitor", "runtime", "build_verdict_component"),
    OpSpec("record_retraining_trigger_op", "monitor", "runtime", "build_record_component"),
)
OP_NAMES = tuple(spec.name for spec in OP_SPECS)
_SPECS_BY_NAME = {spec.name: spec for spec in OP_SPECS}


def _component_module(folder: str) -> ModuleType:
    """``kfp_cicd.components.<folder>.component``, imported now (each import is spelled out so the
    layering test, which reads import statements, sees every edge)."""
    match folder:
        case "validate_data":
            from kfp_cicd.components.validate_data import component
        case "train":
            from kfp_cicd.components.train import component
        case "train_pytorchjob":
            from kfp_cicd.components.train_pytorchjob import component
        case "evaluate":
            from kfp_cicd.components.evaluate import component
        case "register":
            from kfp_cicd.components.register import component
        case "deploy":
            from kfp_cicd.components.deploy import component
        case "monitor":
            from kfp_cicd.components.monitor import component
        case _:
            raise ValueError(f"no component folder {folder!r}")
    return component


def build_op(spec: OpSpec, images: ImageRefs) -> PythonComponent:
    """The op ``spec`` names, built on its image under ``images``."""
    builder = getattr(_component_module(spec.folder), spec.builder)
    return builder(images.ref(spec.image))


class ComponentOps:
    """The suite's ops on one registry and tag; each op is built the first time it is read.

    Get one from :func:`ops`. Attributes: one per name of :data:`OP_NAMES`, plus ``images``.
    """

    def __init__(self, images: ImageRefs) -> None:
        self.images = images

    def __repr__(self) -> str:
        return f"ComponentOps(registry={self.images.registry!r}, tag={self.images.tag!r})"

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *OP_NAMES})

    def __getattr__(self, name: str) -> PythonComponent:
        spec = _SPECS_BY_NAME.get(name)
        if spec is None:
            raise AttributeError(
                f"{type(self).__name__} has no op {name!r}; the ops are {', '.join(OP_NAMES)}"
            )
        op = build_op(spec, self.images)
        setattr(self, name, op)  # built once per suite
        return op

    def by_name(self) -> dict[str, PythonComponent]:
        """Every op by its name (builds them all)."""
        return {name: getattr(self, name) for name in OP_NAMES}


def ops(registry: str = DEFAULT_REGISTRY, tag: str = __version__) -> ComponentOps:
    """The suite's ops on ``REGISTRY/kfp-cicd-<image>:TAG``.

    Args:
        registry: Where the project's images are, e.g. "europe-docker.pkg.dev/p/r" (default: the
            project's own registry).
        tag: Their tag (default: this package's version, the images it was released with).

    Returns:
        A :class:`ComponentOps`; ``ops(...).validate_data_op`` and the like are KFP components.

    Raises:
        DataError: ``registry`` or ``tag`` is not a valid image registry or tag.
    """
    from kfp_cicd.parameter_validation import check_image_registry, check_image_tag

    return ComponentOps(
        ImageRefs(registry=check_image_registry(registry, "registry"), tag=check_image_tag(tag, "tag"))
    )


@cache
def _default_ops() -> ComponentOps:
    return ops()


def __getattr__(name: str) -> PythonComponent:
    """``from kfp_cicd.components import validate_data_op``: the op on the default images."""
    if name in _SPECS_BY_NAME:
        return getattr(_default_ops(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *OP_NAMES})


__all__ = ["OP_NAMES", "OP_SPECS", "ComponentOps", "OpSpec", "build_op", "ops", *OP_NAMES]
