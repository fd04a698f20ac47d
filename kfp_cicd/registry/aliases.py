"""The aliases the suite moves (``candidate``, ``champion``, ``previous``): rules, promote, rollback.

An alias only ever points at a complete, READY version, and alias moves that belong together
(promote, rollback) converge when the step that made them is run again after dying half-way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException

from kfp_cicd.errors import RegistryError
from kfp_cicd.registry.client import (
    client_for,
    mlflow_call,
    registered_model,
    require_version,
    version_for_alias,
)

log = logging.getLogger(__name__)
CANDIDATE = "candidate"
CHAMPION = "champion"
PREVIOUS = "previous"
# Registered-model tag written before a rollback's two alias moves and removed after them, so a
# rollback interrupted between the moves is finished (not refused) when it is run again.
ROLLBACK_PENDING_TAG = "kfp_cicd_rollback_pending"
_ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")


def check_alias(alias: str) -> str:
    """``alias`` if MLflow accepts it as an alias name; otherwise RegistryError saying the rule."""
    if not _ALIAS_PATTERN.match(alias or "") or re.match(r"^v\d+$", alias):
        raise RegistryError(
            f"invalid alias {alias!r}: start with a letter; letters, digits, '_' "
            "and '-' only; 'v<number>' is reserved for versions"
        )
    return alias


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (which must exist: a dangling alias is never written)."""
    check_alias(alias)
    require_version(tracking_uri, model_name, version)
    client = client_for(tracking_uri)
    try:
        mlflow_call(
            tracking_uri,
            f"point alias {alias} of {model_name} at version {version}",
            lambda: client.set_registered_model_alias(model_name, alias, str(version)),
        )
    except MlflowException as exc:
        raise RegistryError(
            f"could not point alias {alias!r} of {model_name} at version {version}: {exc}"
        ) from exc


def promote(tracking_uri: str, model_name: str, version: str) -> str | None:
    """Make ``version`` the champion; the old champion becomes ``previous``. Returns the old champion.

    ``previous`` moves first and ``champion`` last: if the step dies between the two, both aliases
    point at the old champion (a real, READY version) and running ``promote`` again finishes the
    move (it reads the champion afresh and the ``previous`` move is repeated harmlessly).
    """
    require_version(tracking_uri, model_name, version)
    old = version_for_alias(tracking_uri, model_name, CHAMPION)
    if old == str(version):
        return old
    if old is not None:
        set_alias(tracking_uri, model_name, PREVIOUS, old)
    set_alias(tracking_uri, model_name, CHAMPION, version)
    log.info("%s: champion %s -> %s", model_name, old, version)
    return old


@dataclass(frozen=True)
class Rollback:
    """What a rollback did: ``restored`` is champion again, ``demoted`` is now ``previous``."""

    model_name: str
    restored: str
    demoted: str


def rollback(tracking_uri: str, model_name: str) -> Rollback:
    """Make the ``previous`` version the champion again; the demoted champion becomes ``previous``.

    Everything is checked before anything moves: the model, both aliases and the version behind
    ``previous`` must exist. Running it twice undoes the rollback.

    The two moves are bracketed by the registered-model tag ``kfp_cicd_rollback_pending``
    (``restored->demoted``), written before ``champion`` moves and removed after ``previous``
    moved. A rollback that died between the moves leaves both aliases on the restored version (a
    real version) and the tag; running ``rollback`` again finishes it instead of refusing
    "both aliases point at the same version" and losing the demoted version.
    """
    model = registered_model(tracking_uri, model_name)
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    champion, previous = aliases.get(CHAMPION), aliases.get(PREVIOUS)
    pending = _pending_rollback(model, champion)
    if pending is not None:
        restored, demoted = pending
        log.warning(
            "%s: finishing an interrupted rollback (champion %s -> %s)", model_name, demoted, restored
        )
        return _move_for_rollback(tracking_uri, model_name, restored=restored, demoted=demoted)
    if champion is None:
        raise RegistryError(
            f"{model_name} has no {CHAMPION!r} alias: nothing is serving, nothing to "
            f"roll back (aliases: {aliases or 'none'})"
        )
    if previous is None:
        raise RegistryError(
            f"{model_name} has no {PREVIOUS!r} alias: version {champion} is the first "
            "champion, there is no earlier one to restore"
        )
    if previous == champion:
        raise RegistryError(
            f"{model_name}: {CHAMPION!r} and {PREVIOUS!r} both point at version "
            f"{champion}; rolling back would change nothing"
        )
    require_version(tracking_uri, model_name, previous)
    return _move_for_rollback(tracking_uri, model_name, restored=previous, demoted=champion)


def _pending_rollback(model: RegisteredModel, champion: str | None) -> tuple[str, str] | None:
    """(restored, demoted) of an interrupted rollback, or None.

    The tag counts only while ``champion`` is still one of its two versions; otherwise something
    else (a deployment) moved the champion since, and the stale tag is ignored.
    """
    raw = (model.tags or {}).get(ROLLBACK_PENDING_TAG, "")
    restored, _, demoted = raw.partition("->")
    if restored and demoted and champion in (restored, demoted):
        return restored, demoted
    return None


def _move_for_rollback(tracking_uri: str, model_name: str, *, restored: str, demoted: str) -> Rollback:
    """Mark the rollback pending, move ``champion`` then ``previous``, record it, clear the mark."""
    client = client_for(tracking_uri)
    mlflow_call(
        tracking_uri,
        f"mark a rollback of {model_name} pending",
        lambda: client.set_registered_model_tag(model_name, ROLLBACK_PENDING_TAG, f"{restored}->{demoted}"),
    )
    set_alias(tracking_uri, model_name, CHAMPION, restored)
    set_alias(tracking_uri, model_name, PREVIOUS, demoted)
    _record_rollback(tracking_uri, model_name, restored=restored, demoted=demoted)
    mlflow_call(
        tracking_uri,
        f"clear the pending rollback mark of {model_name}",
        lambda: client.delete_registered_model_tag(model_name, ROLLBACK_PENDING_TAG),
    )
    log.info("%s: rolled back champion %s -> %s", model_name, demoted, restored)
    return Rollback(model_name, restored=restored, demoted=demoted)


def _record_rollback(tracking_uri: str, model_name: str, *, restored: str, demoted: str) -> None:
    """Tag both versions with the rollback (after the aliases moved: a tag failure only warns)."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    client = client_for(tracking_uri)
    try:
        for version, key, value in (
            (demoted, "rolled_back_at", when),
            (demoted, "rolled_back_to", restored),
            (restored, "restored_as_champion_at", when),
        ):
            mlflow_call(
                tracking_uri,
                f"tag {model_name} version {version} {key}",
                lambda version=version, key=key, value=value: client.set_model_version_tag(
                    model_name, version, key, value
                ),
            )
    except (MlflowException, RegistryError) as exc:
        log.warning("rollback done, but recording it in version tags failed: %s", exc)
