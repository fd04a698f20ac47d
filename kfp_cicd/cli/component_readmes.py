"""Generate the reference part of every component folder's README.md from its code and metadata.yaml.

Each folder of ``components/`` follows the layout of kubeflow/pipelines-components: ``component.py``
(the KFP components and their ``build_*(image)`` functions), ``metadata.yaml``, ``README.md`` and
``tests/``. The README's reference (summary, inputs, outputs, image, import line and compiled YAML,
usage, metadata) is generated from the components' signatures and Google-style docstrings, from
``metadata.yaml`` and from the suite's op table (``kfp_cicd.components.OP_SPECS``), between the
markers :data:`START` and :data:`END`; everything outside the markers (the hand-written design
notes) is kept as it is.

    python -m kfp_cicd.cli.component_readmes            # rewrite the generated part of every README
    python -m kfp_cicd.cli.component_readmes --check    # exit 1 listing stale READMEs and bad metadata

This is an application-layer tool: it imports the components (the library never does).

metadata.yaml keys (``REQUIRED_KEYS``; ``tags``, ``variants`` and ``links`` are optional)::

    name: validate_data                  # the folder's name
    description: Validate the ...        # the component's docstring summary (folders of one component)
    stability: stable                    # alpha, beta or stable
    components:                          # every build_* function of component.py, in README order
      - function: validate_data          # the function the builder wraps (its python_func)
        builder: build_component
        image: validation                # the image it runs on: a name of kfp_cicd.images.DOCKERFILES
    images:                              # every image the folder uses, and what for
      validation: runs validate_data ...
    dependencies:
      kubeflow: [{name: Pipelines, version: ">=2.17,<2.18"}]
      python: [kfp, pandas]              # distributions imported at run time (requirements/main.lock)
      tfdv_environment: [tensorflow-data-validation]   # optional (requirements/tfdv.lock)
      external_services: [an MLflow tracking server]    # optional
    last_verified:
      date: 2026-12-04                   # when the tests below last passed against the component
      tests: [components/validate_data/tests/test_component_local.py]
    variants:                            # optional: other builders of the same component
      - builder: kfp_cicd.components.train.vertex:build_vertex_component
        component: train_model
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfp_cicd.components import OP_SPECS, OpSpec
from kfp_cicd.images import DOCKERFILES

START = "<!-- generated:start -->"
END = "<!-- generated:end -->"
NOTICE = (
    "<!-- Generated from component.py and metadata.yaml by "
    "`python -m kfp_cicd.cli.component_readmes`: edit those, not this part. "
    "Hand-written notes go below the end marker. -->"
)
STABILITY_LEVELS = ("alpha", "beta", "stable")
REQUIRED_KEYS = ("name", "description", "stability", "components", "images", "dependencies", "last_verified")
PLACEHOLDER_IMAGE = "kfp-cicd-readme:placeholder"
COMPONENTS_PACKAGE = "kfp_cicd.components"
#: Where ``kfp-cicd compile`` writes each op's YAML (compiler.compile_components), from the repository root.
COMPILED_COMPONENTS = "compiled/components"


# --- where things are -------------------------------------------------------------------------


def components_dir() -> Path:
    """The ``components/`` folder (``kfp_cicd.components`` in an installed package)."""
    package = importlib.import_module(COMPONENTS_PACKAGE)
    return Path(package.__file__).resolve().parent


def component_folders(root: Path | None = None) -> list[str]:
    """Names of the component folders: every folder of ``components/`` with a ``component.py``."""
    root = root or components_dir()
    return sorted(p.name for p in root.iterdir() if (p / "component.py").is_file())


def load_metadata(name: str, root: Path | None = None) -> dict[str, Any]:
    """The folder's metadata.yaml as a dict (``{}`` when the file is missing or not a mapping)."""
    path = (root or components_dir()) / name / "metadata.yaml"
    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else {}


# --- docstrings ---------------------------------------------------------------------------------


@dataclass
class Docstring:
    """A Google-style docstring: summary line, body, ``Args:`` and ``Returns:`` sections."""

    summary: str
    body: str = ""
    args: dict[str, str] = field(default_factory=dict)
    returns: str = ""


def _section_entries(lines: list[str]) -> dict[str, str]:
    """``name: text`` entries of an indented section; deeper-indented lines continue the text."""
    entries: dict[str, str] = {}
    current = ""
    indent: int | None = None
    for line in lines:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        match = re.match(r"\s*(\w+): ?(.*)$", line)
        if match and (indent is None or width <= indent):
            indent = width
            current = match.group(1)
            entries[current] = match.group(2).strip()
        elif current:
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries


def parse_docstring(text: str) -> Docstring:
    """Split a cleaned (``inspect.getdoc``) Google-style docstring into its parts."""
    lines = text.splitlines()
    sections: dict[str, list[str]] = {"body": []}
    current = "body"
    for line in lines[1:]:
        header = re.fullmatch(r"(Args|Arguments|Returns|Raises|Yields|Note|Notes|Example|Examples):", line)
        if header:
            current = header.group(1).lower()
            sections[current] = []
        else:
            sections[current].append(line)
    returns_lines = sections.get("returns", [])
    return Docstring(
        summary=lines[0].strip() if lines else "",
        body="\n".join(sections["body"]).strip(),
        args=_section_entries(sections.get("args", [])),
        returns=textwrap.dedent("\n".join(returns_lines)).strip(),
    )


# --- components ---------------------------------------------------------------------------------


@dataclass
class Parameter:
    """One input or output of a component as the README shows it."""

    name: str
    type: str
    description: str
    default: str = ""


@dataclass
class ComponentDoc:
    """What the README says about one component."""

    function: str
    module: str
    builder: str
    image: str
    doc: Docstring
    inputs: list[Parameter]
    outputs: list[Parameter]
    required_artifacts: list[tuple[str, str]]  # (input name, artifact class) without a default
    required_parameters: list[tuple[str, str]]  # (input name, type) without a default
    op: OpSpec | None = None  # the suite's op (``from kfp_cicd.components import <op>``)


def _artifact_annotation(annotation: Any) -> tuple[str, str] | None:
    """``("Input" | "Output", ArtifactClass)`` for kfp's ``Input[T]`` / ``Output[T]``, else None."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    artifact, marker = typing.get_args(annotation)[:2]
    direction = "Output" if "Output" in getattr(marker, "__name__", str(marker)) else "Input"
    return direction, artifact.__name__


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _default(parameter: inspect.Parameter) -> str:
    if parameter.default is inspect.Parameter.empty:
        return "required"
    if parameter.default is None:
        return "optional"
    return f"`{json.dumps(parameter.default)}`"


def _strip_output_prefix(text: str) -> str:
    return re.sub(r"^Output\.\s*", "", text)


def _return_outputs(annotation: Any, returns: str) -> list[Parameter]:
    """The outputs a function's return value becomes: NamedTuple fields, or one ``Output``."""
    if annotation in (inspect.Signature.empty, None, type(None)):
        return []
    fields = getattr(annotation, "_fields", None)
    if fields:
        described = _section_entries(returns.splitlines())
        types = typing.get_type_hints(annotation)
        return [Parameter(name, _type_name(types.get(name)), described.get(name, "")) for name in fields]
    return [Parameter("Output", _type_name(annotation), " ".join(returns.split()))]


def describe_function(function: Callable[..., Any], module: str, builder: str, image: str) -> ComponentDoc:
    """The README's view of one component function (the ``python_func`` of a built component)."""
    doc = parse_docstring(inspect.getdoc(function) or "")
    signature = inspect.signature(function)
    inputs: list[Parameter] = []
    outputs: list[Parameter] = []
    required_artifacts: list[tuple[str, str]] = []
    required_parameters: list[tuple[str, str]] = []
    for name, parameter in signature.parameters.items():
        artifact = _artifact_annotation(parameter.annotation)
        description = doc.args.get(name, "")
        if artifact and artifact[0] == "Output":
            outputs.append(Parameter(name, artifact[1], _strip_output_prefix(description)))
            continue
        type_name = f"Input[{artifact[1]}]" if artifact else _type_name(parameter.annotation)
        inputs.append(Parameter(name, type_name, description, _default(parameter)))
        if parameter.default is inspect.Parameter.empty:
            if artifact:
                required_artifacts.append((name, artifact[1]))
            else:
                required_parameters.append((name, type_name))
    outputs += _return_outputs(signature.return_annotation, doc.returns)
    return ComponentDoc(
        function=function.__name__,
        module=module,
        builder=builder,
        image=image,
        doc=doc,
        inputs=inputs,
        outputs=outputs,
        required_artifacts=required_artifacts,
        required_parameters=required_parameters,
    )


def _builders(name: str) -> dict[str, Callable[..., Any]]:
    """The ``build_*`` functions defined in ``components/<name>/component.py``."""
    module = importlib.import_module(f"{COMPONENTS_PACKAGE}.{name}.component")
    return {
        attribute: value
        for attribute, value in vars(module).items()
        if attribute.startswith("build_")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
    }


def suite_op(folder: str, builder: str) -> OpSpec | None:
    """The suite's op (``kfp_cicd.components.OP_SPECS``) built by ``builder`` of ``folder``, if any."""
    return next((op for op in OP_SPECS if (op.folder, op.builder) == (folder, builder)), None)


def describe_folder(name: str, metadata: dict[str, Any]) -> list[ComponentDoc]:
    """Every component of a folder, in metadata.yaml's order."""
    builders = _builders(name)
    documents = []
    for entry in metadata.get("components", []):
        builder = builders[entry["builder"]]
        function = builder(PLACEHOLDER_IMAGE).python_func
        document = describe_function(
            function, f"{COMPONENTS_PACKAGE}.{name}.component", entry["builder"], entry["image"]
        )
        document.op = suite_op(name, entry["builder"])
        documents.append(document)
    return documents


# --- metadata checks ------------------------------------------------------------------------------


def _check_components(name: str, metadata: dict[str, Any]) -> list[str]:
    entries = metadata.get("components")
    if not isinstance(entries, list) or not entries:
        return [f"{name}: components must be a non-empty list of {{function, builder, image}}"]
    problems = []
    builders = _builders(name)
    listed = [entry.get("builder") for entry in entries if isinstance(entry, dict)]
    if sorted(listed) != sorted(builders):
        problems.append(
            f"{name}: components lists builders {sorted(map(str, listed))}, component.py "
            f"defines {sorted(builders)}"
        )
    images = metadata.get("images") or {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("builder") not in builders:
            continue
        function = builders[entry["builder"]](PLACEHOLDER_IMAGE).python_func
        op = suite_op(name, entry["builder"])
        if op is None:
            problems.append(
                f"{name}: no op of kfp_cicd.components.OP_SPECS is built by {entry['builder']}; add one"
            )
        elif op.image != entry.get("image"):
            problems.append(f"{name}: {op.name} runs on {op.image!r}, metadata says {entry.get('image')!r}")
        if entry.get("function") != function.__name__:
            problems.append(
                f"{name}: {entry['builder']} builds {function.__name__}, metadata says "
                f"{entry.get('function')!r}"
            )
        if entry.get("image") not in images:
            problems.append(f"{name}: {function.__name__}'s image {entry.get('image')!r} is not in images")
        undocumented = [
            p
            for p in inspect.signature(function).parameters
            if p not in parse_docstring(inspect.getdoc(function) or "").args
        ]
        if undocumented:
            problems.append(f"{name}: {function.__name__}'s docstring has no Args entry for {undocumented}")
    return problems


def _check_last_verified(name: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"{name}: last_verified must be {{date, tests}}"]
    problems = []
    date = value.get("date")
    if not isinstance(date, dt.date):
        problems.append(f"{name}: last_verified.date must be a date (YYYY-MM-DD), got {date!r}")
    tests = value.get("tests")
    if not isinstance(tests, list) or not tests:
        problems.append(f"{name}: last_verified.tests must list the tests that verify the component")
    else:
        repository = components_dir().parent  # the paths are relative to the repository root
        missing = [t for t in tests if not (repository / str(t)).is_file()]
        if missing:
            problems.append(f"{name}: last_verified.tests names files that do not exist: {missing}")
    return problems


def metadata_problems(name: str, root: Path | None = None) -> list[str]:
    """What is missing or wrong in ``components/<name>/metadata.yaml`` (empty: it is valid)."""
    root = root or components_dir()
    if not (root / name / "metadata.yaml").is_file():
        return [f"{name}: metadata.yaml is missing"]
    try:
        metadata = load_metadata(name, root)
    except yaml.YAMLError as exc:
        return [f"{name}: metadata.yaml is not valid YAML: {exc}"]
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        return [f"{name}: metadata.yaml lacks {missing}"]
    problems = []
    if metadata["name"] != name:
        problems.append(f"{name}: metadata name is {metadata['name']!r}, not the folder's name")
    if metadata["stability"] not in STABILITY_LEVELS:
        problems.append(f"{name}: stability {metadata['stability']!r} is not one of {STABILITY_LEVELS}")
    images = metadata["images"]
    if not isinstance(images, dict) or not images or not set(images) <= set(DOCKERFILES):
        problems.append(f"{name}: images must map names of {sorted(DOCKERFILES)} to what they do")
    dependencies = metadata["dependencies"]
    if not isinstance(dependencies, dict) or "kfp" not in (dependencies.get("python") or []):
        problems.append(f"{name}: dependencies.python must list the run-time distributions, kfp included")
    problems += _check_last_verified(name, metadata["last_verified"])
    problems += _check_components(name, metadata)
    if not problems and len(metadata["components"]) == 1:
        summary = describe_folder(name, metadata)[0].doc.summary
        if metadata["description"] != summary:
            problems.append(f"{name}: description must be the docstring's first line: {summary!r}")
    functions = [entry.get("function") for entry in metadata["components"] if isinstance(entry, dict)]
    for variant in metadata.get("variants", []):
        try:
            _load_variant(variant)
        except (ImportError, AttributeError, KeyError, ValueError) as exc:
            problems.append(f"{name}: variant {variant!r} cannot be loaded: {exc}")
        if variant.get("component") not in functions:
            problems.append(f"{name}: variant {variant!r} names no component of this folder")
    return problems


# --- rendering ------------------------------------------------------------------------------------


CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line; pipes escaped (GFM tables need it in code spans
    too), ``<`` escaped outside code spans so ``<name>`` is not taken for an HTML tag."""
    text = " ".join(text.split()).replace("|", "\\|")
    pieces, position = [], 0
    for match in CODE_SPAN.finditer(text):
        pieces += [text[position : match.start()].replace("<", "\\<"), match.group(0)]
        position = match.end()
    pieces.append(text[position:].replace("<", "\\<"))
    return "".join(pieces) or "—"


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _image_reference(image: str) -> str:
    return f"`kfp-cicd-{image}` (`ImageRefs().{image}`, `{DOCKERFILES[image]}`)"


def _pipeline_signature(parameters: list[tuple[str, str]]) -> str:
    """``def example(...):``, one parameter per line when one line would be too long (no return
    annotation: kfp would read ``-> None`` as a pipeline output)."""
    one_line = f"def example({', '.join(f'{n}: {t}' for n, t in parameters)}):"
    if len(one_line) <= 100:
        return one_line
    return "\n".join(["def example(", *(f"    {n}: {t}," for n, t in parameters), "):"])


def usage_snippet(
    doc: ComponentDoc, builder_import: str = "", builder_call: str = "", pipeline_name: str = ""
) -> str:
    """A short pipeline using the component: required parameters from the pipeline's inputs, required
    input artifacts imported by URI (in the project's pipelines they are upstream tasks' outputs).

    Without ``builder_import``, a component of the suite is imported as its op
    (``from kfp_cicd.components import validate_data_op``); a builder (a variant) is called on an image.
    """
    pipeline_name = pipeline_name or f"{doc.function.replace('_', '-')}-example"
    parameters = doc.required_parameters + [(f"{name}_uri", "str") for name, _ in doc.required_artifacts]
    lines = ["from kfp import dsl", ""]
    if doc.op is not None and not builder_import:
        task = doc.op.name
        lines += [f"from {COMPONENTS_PACKAGE} import {task}"]
    else:
        task = doc.function
        builder_import = builder_import or f"from {doc.module} import {doc.builder}"
        builder_call = builder_call or f"{doc.builder}(ImageRefs().{doc.image})"
        lines += [builder_import, "from kfp_cicd.images import ImageRefs", "", f"{task} = {builder_call}"]
    lines += ["", "", f'@dsl.pipeline(name="{pipeline_name}")', _pipeline_signature(parameters)]
    arguments = [f"{name}={name}" for name, _ in doc.required_parameters]
    for name, artifact_class in doc.required_artifacts:
        lines.append(
            f"    {name} = dsl.importer(artifact_uri={name}_uri, artifact_class=dsl.{artifact_class})"
        )
        arguments.append(f"{name}={name}.output")
    lines.append(f"    {task}(")
    lines += [f"        {argument}," for argument in arguments]
    lines.append("    )")
    return "\n".join(lines)


def _render_component(doc: ComponentDoc, metadata: dict[str, Any], level: str) -> list[str]:
    lines = [f"{level} `{doc.function}`", "", doc.doc.summary, ""]
    if doc.doc.body:
        lines += [doc.doc.body, ""]
    lines += [
        f"**Image:** {_image_reference(doc.image)}. **Built by:** `{doc.module}.{doc.builder}(image)`.",
        "",
    ]
    if doc.op is not None:
        yaml_path = f"{COMPILED_COMPONENTS}/{doc.op.yaml_name}"
        lines += [
            f"**Import:** `from {COMPONENTS_PACKAGE} import {doc.op.name}` (images of this package "
            f"version; on your registry and tag: `ops(registry=..., tag=...).{doc.op.name}`). "
            f"**Compiled YAML:** [`{yaml_path}`](../../{yaml_path}), for "
            f'`kfp.components.load_component_from_file("{yaml_path}")` without installing the package.',
            "",
        ]
    lines += [f"{level}# Inputs", ""]
    lines += _table(
        ("name", "type", "default", "description"),
        [(f"`{p.name}`", f"`{p.type}`", p.default, _cell(p.description)) for p in doc.inputs],
    )
    lines += ["", f"{level}# Outputs", ""]
    if doc.outputs:
        lines += _table(
            ("name", "type", "description"),
            [(f"`{p.name}`", f"`{p.type}`", _cell(p.description)) for p in doc.outputs],
        )
    else:
        lines.append("None.")
    lines += ["", f"{level}# Usage", "", "```python", usage_snippet(doc), "```", ""]
    for variant in metadata.get("variants", []):
        if variant.get("component") == doc.function:
            lines += _render_variant(doc, variant, level)
    return lines


def _load_variant(variant: dict[str, Any]) -> Callable[..., Any]:
    module, _, attribute = variant["builder"].partition(":")
    if not attribute:
        raise ValueError("builder must be 'module:function'")
    return getattr(importlib.import_module(module), attribute)


def _render_variant(doc: ComponentDoc, variant: dict[str, Any], level: str) -> list[str]:
    builder = _load_variant(variant)
    module, _, name = variant["builder"].partition(":")
    summary = (inspect.getdoc(builder) or "").partition("\n")[0]
    signature = str(inspect.signature(builder)).replace("'", "")
    call = f"{name}(ImageRefs().{doc.image})"
    return [
        f"{level}# Variant: `{name}`",
        "",
        f"`{module}.{name}{signature}`: {summary}",
        "",
        "```python",
        usage_snippet(
            doc,
            f"from {module} import {name}",
            call,
            f"{doc.function.replace('_', '-')}-{name.replace('_', '-')}-example",
        ),
        "```",
        "",
    ]


def _render_dependencies(dependencies: dict[str, Any]) -> list[str]:
    lines = ["- **Dependencies**:"]
    for item in dependencies.get("kubeflow", []):
        lines.append(f"  - Kubeflow {item['name']} `{item['version']}`")
    lines.append("  - Python (main environment): " + ", ".join(f"`{d}`" for d in dependencies["python"]))
    if dependencies.get("tfdv_environment"):
        lines.append(
            "  - Python (TFDV environment, `requirements/tfdv.lock`): "
            + ", ".join(f"`{d}`" for d in dependencies["tfdv_environment"])
        )
    for service in dependencies.get("external_services", []):
        lines.append(f"  - External service: {service}")
    return lines


def render_metadata(metadata: dict[str, Any]) -> list[str]:
    """The README's Metadata section, from metadata.yaml."""
    verified = metadata["last_verified"]
    lines = [
        "## Metadata",
        "",
        f"- **Name**: {metadata['name']}",
        f"- **Stability**: {metadata['stability']}",
    ]
    lines += _render_dependencies(metadata["dependencies"])
    lines.append("- **Images**:")
    lines += [f"  - `{image}`: {use}" for image, use in metadata["images"].items()]
    tests = ", ".join(f"`{t}`" for t in verified["tests"])
    lines.append(f"- **Last verified**: {verified['date']} by {tests}")
    if metadata.get("tags"):
        lines.append("- **Tags**: " + ", ".join(metadata["tags"]))
    for key, value in (metadata.get("links") or {}).items():
        lines.append(f"- **{key.replace('_', ' ').capitalize()}**: {value}")
    return lines


def render_readme(name: str, root: Path | None = None) -> str:
    """The generated part of ``components/<name>/README.md``, markers included."""
    metadata = load_metadata(name, root)
    documents = describe_folder(name, metadata)
    lines = [START, NOTICE, "", f"# {name}", "", metadata["description"], ""]
    lines += [
        f"Folder layout (kubeflow/pipelines-components style): `component.py`, `metadata.yaml`, "
        f"this README, `tests/` (unit tests through `python_func`, `kfp.local` runs). "
        f"Stability: **{metadata['stability']}**.",
        "",
    ]
    for doc in documents:
        lines += _render_component(doc, metadata, "##")
    lines += render_metadata(metadata)
    lines.append(END)
    return "\n".join(lines) + "\n"


def updated_readme(current: str, generated: str) -> str:
    """``current`` with its marked part replaced by ``generated`` (prepended when there is none)."""
    start, end = current.find(START), current.find(END)
    if start == -1 or end == -1 or end < start:
        return generated + ("\n" + current.lstrip("\n") if current.strip() else "")
    return current[:start] + generated + current[end + len(END) :].removeprefix("\n")


# --- command line ---------------------------------------------------------------------------------


def stale_readmes(names: Sequence[str], root: Path | None = None) -> list[str]:
    """Folders whose README.md differs from what the generator writes."""
    root = root or components_dir()
    stale = []
    for name in names:
        path = root / name / "README.md"
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if updated_readme(current, render_readme(name, root)) != current:
            stale.append(name)
    return stale


def write_readmes(names: Sequence[str], root: Path | None = None) -> list[str]:
    """Rewrite the generated part of each folder's README.md; the folders whose file changed."""
    root = root or components_dir()
    changed = []
    for name in names:
        path = root / name / "README.md"
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        updated = updated_readme(current, render_readme(name, root))
        if updated != current:
            path.write_text(updated, encoding="utf-8")
            changed.append(name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kfp_cicd.cli.component_readmes [--check] [NAME ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m kfp_cicd.cli.component_readmes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("names", nargs="*", help="component folders (default: all)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing stale READMEs and invalid metadata.yaml files",
    )
    args = parser.parse_args(argv)
    names = args.names or component_folders()
    problems = [problem for name in names for problem in metadata_problems(name)]
    if problems:
        print("invalid metadata.yaml:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    if args.check:
        stale = stale_readmes(names)
        if stale:
            print(
                "stale README.md (run `python -m kfp_cicd.cli.component_readmes`): "
                + ", ".join(f"components/{n}/README.md" for n in stale),
                file=sys.stderr,
            )
            return 1
        print(f"{len(names)} component READMEs are up to date")
        return 0
    changed = write_readmes(names)
    print(
        f"rewrote {len(changed)} of {len(names)} component READMEs"
        + (f": {', '.join(changed)}" if changed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
