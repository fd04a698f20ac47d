"""Compile the pipelines for Kubeflow and Vertex, and check the committed specs are fresh.

Compilation is deterministic with a pinned kfp, so ``compiled/`` is committed and CI fails when a
file there differs from what the code compiles to.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfp import compiler

from kfp_cicd.images import ImageRefs
from kfp_cicd.pipelines.monitoring_pipeline import build_monitoring_pipeline
from kfp_cicd.pipelines.training_pipeline import Target, TrainingResources, build_training_pipeline

DEFAULT_OUTPUT_DIR = Path("compiled")
PIPELINES = {"training_pipeline": build_training_pipeline, "monitoring_pipeline": build_monitoring_pipeline}
TARGETS = (Target.KUBEFLOW, Target.VERTEX)


@dataclass(frozen=True)
class CompiledSpec:
    target: Target
    pipeline: str

    def relative_path(self) -> Path:
        return Path(self.target.value) / f"{self.pipeline}.yaml"


def all_specs() -> list[CompiledSpec]:
    return [CompiledSpec(target, name) for target in TARGETS for name in PIPELINES]


def compile_spec(
    spec: CompiledSpec, output_dir: Path, images: ImageRefs, resources: TrainingResources | None = None
) -> Path:
    """Compile one pipeline for one target into ``output_dir``."""
    path = output_dir / spec.relative_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    pipeline = PIPELINES[spec.pipeline](images=images, target=spec.target, resources=resources)
    compiler.Compiler().compile(pipeline, str(path))
    return path


def compile_all(
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    images: ImageRefs | None = None,
    resources: TrainingResources | None = None,
) -> list[Path]:
    """Compile every pipeline for every target; returns the written files."""
    images = images or ImageRefs()
    return [compile_spec(spec, Path(output_dir), images, resources) for spec in all_specs()]


def stale_specs(
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    images: ImageRefs | None = None,
    resources: TrainingResources | None = None,
) -> list[str]:
    """Committed specs that are missing or differ from a fresh compilation (relative paths)."""
    images = images or ImageRefs()
    output_dir = Path(output_dir)
    stale = []
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-compile-") as scratch:
        for spec in all_specs():
            fresh = compile_spec(spec, Path(scratch), images, resources)
            committed = output_dir / spec.relative_path()
            if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
                stale.append(str(committed))
    return stale


# --- the component suite: one YAML per op (kfp_cicd.components.OP_SPECS) ---------------------------

COMPONENTS_SUBDIR = "components"


def compile_components(output_dir: Path = DEFAULT_OUTPUT_DIR, images: ImageRefs | None = None) -> list[Path]:
    """Compile every op of the suite to ``<output_dir>/components/<name>.yaml``; returns the files.

    Each file is one component (``kfp.components.load_component_from_file`` loads it) on the images
    ``images`` names, for teams that use the components without installing the package.
    """
    from kfp_cicd.components import OP_SPECS, ops

    images = images or ImageRefs()
    suite = ops(registry=images.registry, tag=images.tag)
    folder = Path(output_dir) / COMPONENTS_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in OP_SPECS:
        path = folder / spec.yaml_name
        compiler.Compiler().compile(getattr(suite, spec.name), str(path))
        written.append(path)
    return written


def stale_components(output_dir: Path = DEFAULT_OUTPUT_DIR, images: ImageRefs | None = None) -> list[str]:
    """Committed component YAMLs that are missing, differ from a fresh compilation, or belong to no op."""
    committed_dir = Path(output_dir) / COMPONENTS_SUBDIR
    stale = []
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-components-") as scratch:
        fresh_files = compile_components(Path(scratch), images)
        for fresh in fresh_files:
            committed = committed_dir / fresh.name
            if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
                stale.append(str(committed))
        expected = {fresh.name for fresh in fresh_files}
    if committed_dir.is_dir():
        stale += sorted(str(p) for p in committed_dir.glob("*.yaml") if p.name not in expected)
    return stale
