"""The data contract a release carries, and the champion's as the next run's reference.

A registered version stores, as artifacts of its MLflow run:

* ``statistics/train_stats.pb``: the TFDV statistics of the data it was trained on;
* ``data_contract/schema.pbtxt``: the schema its data was validated against (for the first
  release, inferred with the observed numeric ranges and category domains), with ``features.json``;
* ``data_contract/contract.json``: the drift/skew settings, the reference that data was checked
  against and any change that was accepted (:func:`contract_document`).

Their locations and sha256 digests are version tags (:mod:`kfp_cicd.registry.tags`). The next
training run's validation loads the champion's schema and statistics (:func:`find_reference`,
:func:`download_reference`) and checks the new data against them; a file whose digest differs from
its tag is refused, so a reference is exactly what was registered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from kfp_cicd.errors import RegistryError
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import version_for_alias, version_tags
from kfp_cicd.registry.tags import (
    CONTRACT_FOLDER,
    DATA_CONTRACT_TAG,
    SCHEMA_DIGEST_TAG,
    SCHEMA_URI_TAG,
    STATISTICS_FOLDER,
    TRAINING_STATISTICS_DIGEST_TAG,
    TRAINING_STATISTICS_TAG,
)

SCHEMA_FILE = "schema.pbtxt"
STATISTICS_FILE = "train_stats.pb"
CONTRACT_FILE = "contract.json"
CONTRACT_VERSION = 1


def file_digest(path: str | Path) -> str:
    """``"sha256:<hex>"`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Reference:
    """The champion's stored contract: where its schema and training statistics are.

    Attributes:
        model_name, version: the champion.
        schema_uri: its ``schema.pbtxt`` ("" for versions registered before schemas were stored).
        statistics_uri: its ``train_stats.pb`` ("" when none was stored).
        schema_digest, statistics_digest: the digests its tags record ("" when absent).
    """

    model_name: str
    version: str
    schema_uri: str
    statistics_uri: str
    schema_digest: str = ""
    statistics_digest: str = ""

    def describe(self) -> str:
        """``"champion fraud-ab12cd version 3"``."""
        return f"champion {self.model_name} version {self.version}"


@dataclass(frozen=True)
class LocalReference:
    """A downloaded reference: local files (``None`` for what the champion does not have)."""

    reference: Reference
    schema_path: Path | None
    statistics_path: Path | None


def find_reference(tracking_uri: str, model_name: str) -> Reference | None:
    """The champion's contract; ``None`` when ``model_name`` has no champion (a first release)."""
    version = version_for_alias(tracking_uri, model_name, CHAMPION)
    if version is None:
        return None
    tags = version_tags(tracking_uri, model_name, version)
    return Reference(
        model_name=model_name,
        version=version,
        schema_uri=tags.get(SCHEMA_URI_TAG, ""),
        statistics_uri=tags.get(TRAINING_STATISTICS_TAG, ""),
        schema_digest=tags.get(SCHEMA_DIGEST_TAG, ""),
        statistics_digest=tags.get(TRAINING_STATISTICS_DIGEST_TAG, ""),
    )


def download_reference(reference: Reference, tracking_uri: str, destination: str | Path) -> LocalReference:
    """Local copies of the reference's schema and statistics, each checked against its digest tag.

    Raises:
        RegistryError: a file cannot be downloaded, or its bytes differ from the digest the version
            was tagged with (the reference was changed after registration).
    """
    owner = reference.describe()
    local = {
        what: download_artifact(
            uri,
            tracking_uri,
            Path(destination) / what.replace(" ", "_"),
            what=what,
            owner=owner,
            digest=digest,
        )
        if uri
        else None
        for what, uri, digest in (
            ("schema", reference.schema_uri, reference.schema_digest),
            ("training statistics", reference.statistics_uri, reference.statistics_digest),
        )
    }
    return LocalReference(reference, local["schema"], local["training statistics"])


def download_artifact(
    uri: str, tracking_uri: str, destination: str | Path, *, what: str, owner: str, digest: str = ""
) -> Path:
    """A local copy of one run artifact of a registered version (any MLflow artifact location).

    ``what`` and ``owner`` name it in errors (``"training statistics"``, ``"champion m version 3"``);
    with ``digest`` (``"sha256:<hex>"``, from a version tag) the bytes must match it.

    Raises:
        RegistryError: it cannot be downloaded, or its digest differs from ``digest``.
    """
    import mlflow.artifacts

    Path(destination).mkdir(parents=True, exist_ok=True)
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(destination), tracking_uri=tracking_uri
            )
        )
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"could not download the {what} of {owner} from {uri}: {exc}. Check that the tracking "
            "server's artifact store is reachable with this task's credentials."
        ) from exc
    if digest and (actual := file_digest(local)) != digest:
        raise RegistryError(
            f"the {what} of {owner} at {uri} is not the file that was registered: its digest is "
            f"{actual}, the version's tag says {digest}. Someone changed the stored artifact; restore "
            "it, or register a new version whose contract is reviewed."
        )
    return local


def contract_document(
    *,
    settings: dict[str, Any],
    reference: dict[str, Any],
    accepted: dict[str, Any] | None,
    schema_acceptance: dict[str, str] | None,
) -> dict[str, Any]:
    """The ``contract.json`` a release stores beside its schema.

    Args:
        settings: the drift/skew and tolerance settings the data was checked with.
        reference: what the data was checked against (``kind``: ``champion``, ``schema_file`` or
            ``first_release``, and where from).
        accepted: changes accepted in the run (``changes``, ``reason``, the accepted anomalies);
            ``None`` when nothing was accepted.
        schema_acceptance: who accepted the schema file and when (``kfp-cicd schema accept``).
    """
    return {
        "contract_version": CONTRACT_VERSION,
        "settings": settings,
        "reference": reference,
        "accepted": accepted,
        "schema_acceptance": schema_acceptance,
    }


def read_contract(schema_dir: str | Path) -> dict[str, Any] | None:
    """``contract.json`` of a validated schema directory; ``None`` when it has none."""
    path = Path(schema_dir) / CONTRACT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def contract_artifacts(
    schema_dir: str | Path, statistics_dir: str | Path
) -> tuple[dict[str, Path], dict[str, str], dict[str, str]]:
    """What register stores for a version's contract: ``(artifact folders, artifact tags, digest tags)``.

    Raises:
        RegistryError: ``schema_dir`` lacks ``schema.pbtxt`` or ``statistics_dir`` lacks
            ``train_stats.pb`` (pass validate_data's schema and statistics outputs).
    """
    folders: dict[str, Path] = {}
    artifact_tags: dict[str, str] = {}
    digests: dict[str, str] = {}
    if statistics_dir:
        statistics = Path(statistics_dir) / STATISTICS_FILE
        if not statistics.is_file():
            raise RegistryError(
                f"{statistics_dir} holds no {STATISTICS_FILE}; pass validate_data's statistics output"
            )
        folders[STATISTICS_FOLDER] = Path(statistics_dir)
        artifact_tags[TRAINING_STATISTICS_TAG] = f"{STATISTICS_FOLDER}/{STATISTICS_FILE}"
        digests[TRAINING_STATISTICS_DIGEST_TAG] = file_digest(statistics)
    if schema_dir:
        schema = Path(schema_dir) / SCHEMA_FILE
        if not schema.is_file():
            raise RegistryError(f"{schema_dir} holds no {SCHEMA_FILE}; pass validate_data's schema output")
        folders[CONTRACT_FOLDER] = Path(schema_dir)
        artifact_tags[SCHEMA_URI_TAG] = f"{CONTRACT_FOLDER}/{SCHEMA_FILE}"
        digests[SCHEMA_DIGEST_TAG] = file_digest(schema)
        if (Path(schema_dir) / CONTRACT_FILE).is_file():
            artifact_tags[DATA_CONTRACT_TAG] = f"{CONTRACT_FOLDER}/{CONTRACT_FILE}"
    return folders, artifact_tags, digests
