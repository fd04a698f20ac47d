"""Checksums of a model directory: a corrupted or swapped artifact is refused before it loads.

``save_classifier`` writes ``checksums.json`` (sha256 of every file it wrote) into the model
directory; the registry stores the model's digest as a tag on the version; loaders verify the files
(and, where they know it, the registry's digest) before loading anything.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import sys
from pathlib import Path, PurePosixPath

from kfp_cicd.errors import KfpCicdError

CHECKSUM_FILE = "checksums.json"
_CHUNK = 1 << 20
_PYC_HEADER_BYTES = 16  # magic, flags, and mtime+size or source hash (PEP 552)


class ModelIntegrityError(KfpCicdError):
    """The model directory does not match its checksums (corrupted, truncated or swapped)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(model_dir: str | Path) -> dict[str, str]:
    """sha256 of every file under ``model_dir`` (relative POSIX paths), the checksum file excluded."""
    root = Path(model_dir)
    return {
        path.relative_to(root).as_posix(): _sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != CHECKSUM_FILE and "__pycache__" not in path.parts
    }


def combined_digest(digests: dict[str, str]) -> str:
    """One ``sha256:`` digest for the whole model, independent of file order."""
    lines = "".join(f"{name}\0{value}\n" for name, value in sorted(digests.items()))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def write_checksums(model_dir: str | Path) -> str:
    """Record the checksums of the files now in ``model_dir``; returns the model digest."""
    digests = file_digests(model_dir)
    digest = combined_digest(digests)
    payload = {"algorithm": "sha256", "model_digest": digest, "files": digests}
    (Path(model_dir) / CHECKSUM_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    return digest


def verify_model(model_dir: str | Path, expected_digest: str | None = None) -> str:
    """Check every recorded file; returns the model digest or raises ModelIntegrityError.

    Files added after saving (not recorded) are allowed: nothing loads them, except compiled
    bytecode beside a recorded source, which Python would run instead of the source; such a cache
    must be exactly that source compiled. A missing or different recorded file, a recorded path
    that leaves the directory (``..``, absolute, or a symlink pointing outside), or a digest other
    than ``expected_digest`` (e.g. the registry's) is refused with the names of the files concerned.
    """
    root = Path(model_dir)
    manifest_path = root / CHECKSUM_FILE
    if not manifest_path.is_file():
        raise ModelIntegrityError(
            f"{root} has no {CHECKSUM_FILE}: it was not saved by kfp-cicd or "
            "was copied incompletely; refusing to load it"
        )
    try:
        recorded = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"{manifest_path} is unreadable: {exc}") from exc
    if not isinstance(recorded, dict):
        raise ModelIntegrityError(f"{manifest_path} is unreadable: 'files' is not a mapping")
    _check_recorded_paths(root, recorded)
    missing = [name for name in recorded if not (root / name).is_file()]
    changed = [name for name in recorded if name not in missing and _sha256(root / name) != recorded[name]]
    if missing or changed:
        raise ModelIntegrityError(
            f"model at {root} does not match its checksums: "
            f"missing {missing}, changed {changed}; refusing to load it"
        )
    _check_bytecode_caches(root, recorded)
    digest = combined_digest(recorded)
    if expected_digest and digest != expected_digest:
        raise ModelIntegrityError(
            f"model at {root} has digest {digest} but {expected_digest} was "
            "registered: the artifact was swapped; refusing to load it"
        )
    return digest


def _check_recorded_paths(root: Path, recorded: dict[str, str]) -> None:
    """Every recorded file must lie inside ``root``: no absolute paths, ``..`` or escaping symlinks."""
    inside = root.resolve()
    escaping = []
    for name in recorded:
        path = PurePosixPath(name) if isinstance(name, str) else None
        lexically_outside = path is None or not path.parts or path.is_absolute() or ".." in path.parts
        if lexically_outside or (
            (root / name).exists() and not (root / name).resolve().is_relative_to(inside)
        ):
            escaping.append(name)
    if escaping:
        raise ModelIntegrityError(
            f"model at {root} records files outside its directory {escaping} (absolute "
            "paths, '..' or symlinks leaving it); refusing to load it"
        )


def _check_bytecode_caches(root: Path, recorded: dict[str, str]) -> None:
    """Refuse ``__pycache__`` bytecode this interpreter would run in place of a recorded source,
    unless it is exactly that source compiled (the cache Python writes when it loads the model).

    ``__pycache__`` is not recorded (loading writes it), and Python trusts a cache whose header
    matches the source's size and mtime, so a planted one would run code the checksums never saw.
    """
    forged = []
    for cache in sorted(root.rglob("__pycache__/*.pyc")):
        stem, _, rest = cache.name.partition(".")
        tag, _, opt = rest.removesuffix(".pyc").partition(".opt-")
        if tag != sys.implementation.cache_tag:
            continue  # another interpreter's cache: this one never reads it
        source = cache.parent.parent / f"{stem}.py"
        relative = source.relative_to(root).as_posix()
        if relative not in recorded:
            continue  # no recorded source: nothing imports it
        try:
            cached = marshal.loads(cache.read_bytes()[_PYC_HEADER_BYTES:])
            expected = compile(
                source.read_bytes(), str(source), "exec", dont_inherit=True, optimize=int(opt) if opt else 0
            )
        except (ValueError, EOFError, TypeError, SyntaxError) as exc:
            forged.append(f"{cache.relative_to(root).as_posix()} ({type(exc).__name__})")
            continue
        if cached != expected:
            forged.append(cache.relative_to(root).as_posix())
    if forged:
        raise ModelIntegrityError(
            f"model at {root} holds compiled bytecode {forged} that is not its "
            "recorded source compiled; Python would run it instead of the "
            "verified source. Delete the __pycache__ folder (or copy the model "
            "again from the registry); refusing to load it"
        )
