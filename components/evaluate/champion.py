"""The champion: the registry's current production model, fetched to be scored beside the candidate.

Champion and challenger are judged on the same holdout in the same task, so a difference in the
metrics is a difference in the models, not in the data or the code that measured them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kfp_cicd.model.integrity import verify_model
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import download_version, version_for_alias, version_tags
from kfp_cicd.registry.tags import MODEL_DIGEST_TAG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionModel:
    """A local, verified copy of the version behind ``champion``."""

    model_name: str
    version: str
    model_dir: Path

    @property
    def label(self) -> str:
        return f"champion {self.model_name} version {self.version}"


@dataclass(frozen=True)
class ChampionLookup:
    """The champion if there is one; otherwise why not (stated in the decision, never silent)."""

    champion: ChampionModel | None
    note: str


def fetch_champion(tracking_uri: str, model_name: str, work_dir: str | Path) -> ChampionLookup:
    """Download and verify the champion, or say why there is none to compare with.

    No registry configured and no champion yet (first release) are normal and explained; an alias
    that points at a version whose files fail their checksums is an error, not a free pass.
    """
    if not tracking_uri or not model_name:
        return ChampionLookup(
            None,
            "no MLflow tracking URI / model name given to the evaluation, so "
            "there is no registry to read a champion from",
        )
    check_model_name(model_name)
    version = version_for_alias(tracking_uri, model_name, CHAMPION)
    if version is None:
        return ChampionLookup(
            None,
            f"first release: no version of {model_name!r} carries the alias "
            f"{CHAMPION!r} at {tracking_uri}; judged on the other checks only",
        )
    expected = version_tags(tracking_uri, model_name, version).get(MODEL_DIGEST_TAG)
    local = download_version(tracking_uri, model_name, version, Path(work_dir) / f"champion-v{version}")
    verify_model(local, expected_digest=expected)
    log.info("fetched champion %s version %s", model_name, version)
    return ChampionLookup(
        ChampionModel(model_name, version, local),
        f"compared with {CHAMPION} {model_name} version {version} on the same holdout",
    )
