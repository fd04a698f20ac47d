"""Read compiled pipeline specs: name, description, declared parameters, backend checks.

A Kubeflow spec may hold two YAML documents (the pipeline spec and the kfp-kubernetes platform
spec); a Vertex spec must be exactly one (Vertex rejects platform specs). Only the first document
declares parameters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfp_cicd.orchestration.errors import SpecError

PARAMETER_TYPES = frozenset({"NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN", "STRING", "LIST", "STRUCT"})


@dataclass(frozen=True)
class ParameterDefinition:
    """One pipeline input parameter as the compiled spec declares it."""

    name: str
    parameter_type: str
    description: str = ""
    optional: bool = False
    default: Any = None


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled spec file and what the orchestration commands need from it."""

    path: Path
    name: str
    description: str
    documents: int
    parameters: dict[str, ParameterDefinition] = field(default_factory=dict)
    sha256: str = ""

    def required_parameters(self) -> list[str]:
        """Parameters without a default that every run must be given."""
        return sorted(name for name, p in self.parameters.items() if not p.optional)


def load_compiled_pipeline(path: Path | str) -> CompiledPipeline:
    """Parse a compiled spec; :class:`SpecError` names the file and how to produce a valid one."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"compiled spec {path} does not exist; run `kfp-cicd compile` first")
    raw = path.read_bytes()
    try:
        documents = [doc for doc in yaml.safe_load_all(raw) if doc is not None]
    except yaml.YAMLError as exc:
        raise SpecError(
            f"compiled spec {path} is not valid YAML ({exc}); recompile with `kfp-cicd compile`"
        ) from exc
    if not documents or not isinstance(documents[0], dict) or "pipelineInfo" not in documents[0]:
        raise SpecError(
            f"{path} is not a compiled KFP pipeline spec (no pipelineInfo); "
            "pass a file written by `kfp-cicd compile`"
        )
    return pipeline_from_documents(documents, path, hashlib.sha256(raw).hexdigest())


def pipeline_from_documents(documents: list[dict], source: Path, sha256: str = "") -> CompiledPipeline:
    """A :class:`CompiledPipeline` from parsed documents (a file, or a version the KFP API returned)."""
    pipeline_spec = documents[0]
    if "pipelineInfo" not in pipeline_spec and isinstance(pipeline_spec.get("pipeline_spec"), dict):
        pipeline_spec = pipeline_spec["pipeline_spec"]  # the API's {pipeline_spec, platform_spec} form
    info = pipeline_spec.get("pipelineInfo") or {}
    return CompiledPipeline(
        path=source,
        name=str(info.get("name", "")),
        description=str(info.get("description", "")),
        documents=len(documents),
        parameters=_parameter_definitions(pipeline_spec, source),
        sha256=sha256,
    )


def require_single_document(pipeline: CompiledPipeline) -> None:
    """Vertex accepts only a plain pipeline spec: refuse a Kubeflow spec with a platform document."""
    if pipeline.documents != 1:
        raise SpecError(
            f"{pipeline.path} has {pipeline.documents} YAML documents (a Kubeflow platform spec); "
            "Vertex needs the single-document spec: use compiled/vertex/<pipeline>.yaml"
        )


def _parameter_definitions(pipeline_spec: dict, path: Path) -> dict[str, ParameterDefinition]:
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}) or {}
    definitions = {}
    for name, entry in declared.items():
        parameter_type = entry.get("parameterType", "")
        if parameter_type not in PARAMETER_TYPES:
            raise SpecError(f"{path}: parameter {name!r} has unknown parameterType {parameter_type!r}")
        definitions[name] = ParameterDefinition(
            name=name,
            parameter_type=parameter_type,
            description=str(entry.get("description", "")),
            optional=bool(entry.get("isOptional", False)) or "defaultValue" in entry,
            default=entry.get("defaultValue"),
        )
    return definitions
