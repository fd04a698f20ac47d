#!/usr/bin/env python3
"""Build the project's images (``make images``) with whichever of docker, podman or buildah is present.

Runs with any Python 3.10+ (standard library only). Images are tagged exactly as ``kfp-cicd compile
--image-registry R --image-tag T`` references them (kfp_cicd/images.py). Each image carries the OCI
labels source/revision/version and a hash of its build inputs (``io.kfp-cicd.inputs-sha256``), so a
rebuild is skipped (``--reuse``) when an image with the same reference was built from the same inputs.

    python3 images/build.py [--registry R] [--tag T] [--only runtime,runtime-cuda,...] [--gpu | --cpu-only]
        [--reuse] [--build-arg K=V ...] [--volume HOST:CONTAINER[:ro] ...] [--push]

By default it builds every image a default compile references: the three CPU images and the CUDA
variant of the runtime image (``kfp-cicd-runtime:T-cuda``, for tasks that ask for a GPU). ``--cpu-only``
skips the CUDA variant (pipelines compiled with ``--gpus 0``); ``--gpu`` builds only it.

It prints one line per image: reference, seconds taken, size in MB (the last line is JSON with the same
figures, for benchmarks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kfp_cicd.images import DEFAULT_REGISTRY, DOCKERFILES, VARIANTS, ImageBuild, ImageRefs  # noqa: E402
from kfp_cicd.version import __version__  # noqa: E402

INPUTS_LABEL = "io.kfp-cicd.inputs-sha256"
TOOLS = ("docker", "podman", "buildah")
INSTALL_HINT = (
    "no image builder found: install one of docker, podman or buildah, e.g. "
    "`apt-get install -y buildah` (Debian/Ubuntu) or `dnf install -y buildah`, "
    "or set IMAGE_TOOL to its path"
)


class BuildError(RuntimeError):
    """An image could not be built or inspected; the message says which and why."""


@dataclass(frozen=True)
class Builder:
    """One container tool and how it is called; buildah/podman honour STORAGE_DRIVER etc. from env."""

    tool: str

    @property
    def name(self) -> str:
        return Path(self.tool).name

    def build_command(
        self,
        dockerfile: str,
        ref: str,
        build_args: dict[str, str],
        labels: dict[str, str],
        volumes: list[str],
    ) -> list[str]:
        command = [self.tool, "bud"] if self.name == "buildah" else [self.tool, "build"]
        if self.name == "buildah" and os.environ.get("BUILDAH_LAYERS"):  # step cache; costly with vfs
            command.append("--layers")
        isolation = os.environ.get("BUILDAH_ISOLATION", "chroot" if self.name == "buildah" else "")
        if isolation and self.name != "docker":  # chroot: builds inside an unprivileged container
            command += ["--isolation", isolation]
        command += ["-f", dockerfile, "-t", ref]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        if volumes and self.name == "docker":
            raise BuildError("--volume needs podman or buildah; docker build cannot mount volumes")
        for volume in volumes:
            command += ["--volume", volume]
        return [*command, str(ROOT)]

    def inspect(self, ref: str) -> dict | None:
        """The image's labels and size in bytes, or None when no image has this reference."""
        if self.name == "buildah":
            command = [self.tool, "inspect", "--type", "image", ref]
        else:
            command = [self.tool, "image", "inspect", ref]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            return None
        data = json.loads(result.stdout)
        data = data[0] if isinstance(data, list) else data
        if self.name == "buildah":
            labels = (data.get("OCIv1", {}).get("config") or {}).get("Labels") or {}
            return {"labels": labels, "size": self.buildah_size(ref)}
        labels = (data.get("Config") or {}).get("Labels") or {}
        return {"labels": labels, "size": int(data.get("Size") or 0)}

    def buildah_size(self, ref: str) -> int:
        """buildah reports sizes as text ("1.74 GB"); bytes, or 0 when it cannot say."""
        result = subprocess.run([self.tool, "images", "--json", ref], capture_output=True, text=True)
        if result.returncode != 0 or not result.stdout.strip():
            return 0
        return parse_size(str(json.loads(result.stdout)[0].get("size") or 0))

    def push(self, ref: str) -> None:
        subprocess.run([self.tool, "push", ref], check=True)


def parse_size(text: str) -> int:
    """Bytes of "1.74 GB", "312 MB", "12kB" or "4096" (decimal units, as buildah/podman print them)."""
    number, _, unit = text.strip().partition(" ")
    if not unit:
        digits = number.rstrip("kKMGTB")
        number, unit = digits, number[len(digits) :]
    scale = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit.upper()]
    return int(float(number) * scale)


def find_builder(preferred: str | None = None) -> Builder:
    """``$IMAGE_TOOL`` / ``preferred``, else the first of docker, podman, buildah on the PATH."""
    wanted = preferred or os.environ.get("IMAGE_TOOL")
    candidates = [wanted] if wanted else list(TOOLS)
    for candidate in candidates:
        path = shutil.which(candidate)
        if path and (Path(path).name != "docker" or docker_engine_answers(path)):
            return Builder(path)
    raise BuildError(INSTALL_HINT if not wanted else f"{wanted!r} not found; {INSTALL_HINT}")


def docker_engine_answers(path: str) -> bool:
    """docker is only usable with a running engine; otherwise try podman/buildah."""
    return subprocess.run([path, "info"], capture_output=True).returncode == 0


def copied_inputs(name: str) -> list[str]:
    """The build-context paths the image's Dockerfile COPYs (.dockerignore admits them), in order.

    The predictor copies the library only; the runtime and validation images also components/ and
    pipelines/ (docs/architecture.md).
    """
    sources: list[str] = []
    for line in (ROOT / DOCKERFILES[name]).read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(word.startswith("--from") for word in words):
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def inputs_hash(name: str, build_args: dict[str, str]) -> str:
    """sha256 over the image's Dockerfile, everything it copies, and the build arguments."""
    digest = hashlib.sha256()
    paths = [ROOT / DOCKERFILES[name]]
    for entry in copied_inputs(name):
        path = ROOT / entry
        paths += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in paths:
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(build_args, sort_keys=True).encode())
    return digest.hexdigest()


def code_revision() -> str:
    """The git commit of the checkout (``-dirty`` when it has changes), else ``unknown``."""
    try:
        revision = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision}-dirty" if dirty else revision


@dataclass
class BuiltImage:
    name: str
    ref: str
    seconds: float
    size_bytes: int
    reused: bool


def build_image(
    builder: Builder,
    name: str,
    refs: ImageRefs,
    build_args: dict[str, str],
    volumes: list[str],
    reuse: bool = False,
    variant: str = "",
) -> BuiltImage:
    """Build one image (or reuse an identical one); raises BuildError naming the image on failure.

    ``variant`` (e.g. ``cuda``) builds the same Dockerfile with the variant's build arguments
    (kfp_cicd/images.py) under the variant's reference; ``build_args`` given here win over them.
    """
    ref = refs.ref(name, variant)
    key = f"{name}-{variant}" if variant else name
    args = dict(VARIANTS[variant].build_args if variant else {}) | dict(build_args)
    args.setdefault("VERSION", refs.tag)
    source_hash = inputs_hash(name, {k: v for k, v in args.items() if k != "REVISION"})
    existing = builder.inspect(ref) if reuse else None
    if existing and existing["labels"].get(INPUTS_LABEL) == source_hash:
        return BuiltImage(key, ref, 0.0, existing["size"], reused=True)
    args.setdefault("REVISION", code_revision())
    command = builder.build_command(DOCKERFILES[name], ref, args, {INPUTS_LABEL: source_hash}, volumes)
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise BuildError(
            f"building {ref} from {DOCKERFILES[name]} failed (exit {result.returncode}); "
            f"the build output above says which step"
        )
    built = builder.inspect(ref)
    return BuiltImage(key, ref, seconds, built["size"] if built else 0, reused=False)


def parse_pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise BuildError(f"{what} {value!r} is not KEY=VALUE")
        pairs[key] = rest
    return pairs


def select_builds(
    refs: ImageRefs, only: str = "", gpu: bool = False, cpu_only: bool = False
) -> list[ImageBuild]:
    """The images to build: ``only`` (comma-separated keys, empty: all), less the CUDA variant
    (``cpu_only``) or only it (``gpu``). Raises BuildError naming an unknown image."""
    plan = {build.key: build for build in refs.builds()}
    names = [n.strip() for n in only.split(",") if n.strip()] or list(plan)
    unknown = [n for n in names if n not in plan]
    if unknown:
        raise BuildError(f"unknown image(s) {', '.join(unknown)}; the images are {', '.join(plan)}")
    if gpu or cpu_only:
        names = [n for n in names if bool(plan[n].variant) == gpu]
    return [plan[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registry", default=os.environ.get("IMAGE_REGISTRY") or DEFAULT_REGISTRY)
    parser.add_argument("--tag", default=os.environ.get("IMAGE_TAG") or __version__)
    every = [build.key for build in ImageRefs().builds()]
    parser.add_argument(
        "--only",
        default=os.environ.get("IMAGES") or ",".join(every),
        help="comma-separated image names (default: all: %(default)s)",
    )
    variant_choice = parser.add_mutually_exclusive_group()
    variant_choice.add_argument(
        "--gpu", action="store_true", help="build only the CUDA variant(s): kfp-cicd-runtime:TAG-cuda"
    )
    variant_choice.add_argument(
        "--cpu-only",
        action="store_true",
        help="skip the CUDA variant (for pipelines compiled with --gpus 0)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip an image whose reference exists and was built from the same inputs",
    )
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--volume",
        action="append",
        default=[],
        metavar="HOST:CONTAINER[:ro]",
        help="bind mount during RUN steps (podman/buildah), e.g. a local wheel directory",
    )
    parser.add_argument("--push", action="store_true", help="push each image after building it")
    args = parser.parse_args(argv)
    try:
        refs = ImageRefs(args.registry, args.tag)
        plan = select_builds(refs, args.only, gpu=args.gpu, cpu_only=args.cpu_only)
        builder = find_builder()
        build_args = parse_pairs(args.build_arg, "--build-arg")
        results = []
        for image in plan:
            built = build_image(builder, image.name, refs, build_args, args.volume, args.reuse, image.variant)
            print(
                f"{built.ref}: {'reused' if built.reused else f'built in {built.seconds:.0f} s'}, "
                f"{built.size_bytes / 1e6:.0f} MB",
                flush=True,
            )
            if args.push:
                builder.push(built.ref)
            results.append(built.__dict__ | {"tool": builder.name})
    except BuildError as exc:
        print(f"images/build.py: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
