"""Fixtures of the opt-in image tests: the project's images built here with buildah, and a kfp.local
task handler that runs each compiled task inside its image instead of in this interpreter.

Opt in with ``KFP_CICD_IMAGE_TESTS=1`` (and ``-m images``/``-m slow`` as you like); the tests skip when
buildah or debootstrap is missing. Builds take many minutes on 2 cores, so an image is
rebuilt only when its build inputs changed (a hash label, see images/build.py);
``KFP_CICD_IMAGE_REUSE=1`` reuses whatever image carries the expected reference.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kfp_cicd.images import DOCKERFILES, ImageRefs
from kfp_cicd.version import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
OPT_IN_VARIABLE = "KFP_CICD_IMAGE_TESTS"
REUSE_VARIABLE = "KFP_CICD_IMAGE_REUSE"
FIGURES_VARIABLE = "KFP_CICD_IMAGE_FIGURES"
BASE_IMAGE = os.environ.get("KFP_CICD_BASE_IMAGE", "localhost/kfp-cicd-base:bookworm")
REGISTRY = "localhost"
CONTAINER_USER = "1000:1000"
WHEEL_DIR = Path("/opt/wheels")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def load_build_module():
    """images/build.py, the script ``make images`` runs (not a package module)."""
    spec = importlib.util.spec_from_file_location("kfp_cicd_images_build", REPO_ROOT / "images" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_module():
    """images/build.py as a module (fast tests use it without any container tool)."""
    return load_build_module()


@pytest.fixture(scope="session")
def buildah() -> str:
    """The buildah binary, once the tests are opted in and the tools exist; chroot isolation.

    The storage driver is storage.conf's (overlay here); buildah 1.28 ignores ``STORAGE_DRIVER``.
    """
    if os.environ.get(OPT_IN_VARIABLE) != "1":
        pytest.skip(f"image tests are opt-in: set {OPT_IN_VARIABLE}=1 (they build images for minutes)")
    missing = [tool for tool in ("buildah", "debootstrap") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: apt-get install -y buildah debootstrap")
    os.environ.setdefault("BUILDAH_ISOLATION", "chroot")
    return shutil.which("buildah")


@pytest.fixture(scope="session")
def base_image(buildah: str) -> str:
    """A Debian bookworm Python 3.11 base image made here (no registry to pull one from)."""
    subprocess.run(["sh", str(REPO_ROOT / "images" / "local-base.sh"), BASE_IMAGE], check=True)
    return BASE_IMAGE


@dataclass
class BuiltImages:
    """The references the images were built under and, per name, images/build.py's BuiltImage."""

    refs: ImageRefs
    built: dict


@pytest.fixture(scope="session")
def built_images(buildah: str, base_image: str, build_module) -> BuiltImages:
    """All images under ``localhost/…:<version>``, built as ``make images`` does, with this machine's
    local torch CPU wheel and CA bundle mounted into the build (no download.pytorch.org here)."""
    build = build_module
    refs = ImageRefs(REGISTRY, __version__)
    builder = build.Builder(buildah)
    build_args = {"BASE_IMAGE": base_image}
    volumes = []
    if WHEEL_DIR.is_dir():
        build_args |= {"PIP_FIND_LINKS": str(WHEEL_DIR), "TORCH_INDEX_URL": ""}
        volumes.append(f"{WHEEL_DIR}:{WHEEL_DIR}:ro")
    if CA_BUNDLE.is_file():
        build_args["PIP_CERT"] = str(CA_BUNDLE)
        volumes.append(f"{CA_BUNDLE}:{CA_BUNDLE}:ro")
    built = {}
    for name in DOCKERFILES:
        if os.environ.get(REUSE_VARIABLE) == "1" and builder.inspect(refs.ref(name)):
            info = builder.inspect(refs.ref(name))
            built[name] = build.BuiltImage(name, refs.ref(name), 0.0, info["size"], reused=True)
            continue
        built[name] = build.build_image(builder, name, refs, build_args, volumes, reuse=True)
    return BuiltImages(refs, built)
