"""The champion's baseline: the training statistics the production data is compared with.

register_model logs the validation's ``train_stats.pb`` in the version's MLflow run and tags the
version ``training_statistics_uri`` with its location. Versions registered without it (older
ones, or a training pipeline that does not pass the statistics on) still carry ``train_data``,
the location of the table they were trained on: the baseline is then computed from that table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kfp_cicd.errors import RegistryError
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import version_for_alias, version_tags
from kfp_cicd.registry.contract import download_artifact
from kfp_cicd.registry.tags import TRAINING_STATISTICS_TAG

TRAIN_DATA_TAG = "train_data"
FROM_STATISTICS, FROM_TRAIN_DATA = "training_statistics_uri", "train_data"


@dataclass(frozen=True)
class ChampionBaseline:
    """Where the champion's baseline comes from.

    Attributes:
        model_name, version: the champion.
        source: ``"training_statistics_uri"`` (stored statistics) or ``"train_data"`` (computed
            from the training table).
        location: the statistics' or the table's location, as the registry records it.
    """

    model_name: str
    version: str
    source: str
    location: str

    def describe(self) -> str:
        what = (
            "its training statistics"
            if self.source == FROM_STATISTICS
            else "statistics computed from its training data"
        )
        return f"champion {self.model_name} version {self.version}: {what} ({self.location})"


def find_champion_baseline(tracking_uri: str, model_name: str) -> ChampionBaseline | None:
    """The champion's baseline; None when the model has no champion (nothing serves yet).

    Raises:
        RegistryError: the champion records neither training statistics nor training data.
    """
    version = version_for_alias(tracking_uri, model_name, CHAMPION)
    if version is None:
        return None
    tags = version_tags(tracking_uri, model_name, version)
    if tags.get(TRAINING_STATISTICS_TAG):
        return ChampionBaseline(model_name, version, FROM_STATISTICS, tags[TRAINING_STATISTICS_TAG])
    if tags.get(TRAIN_DATA_TAG):
        return ChampionBaseline(model_name, version, FROM_TRAIN_DATA, tags[TRAIN_DATA_TAG])
    raise RegistryError(
        f"champion {model_name} version {version} has neither a {TRAINING_STATISTICS_TAG!r} nor a "
        f"{TRAIN_DATA_TAG!r} tag, so there is nothing to compare production data with. Register "
        "versions with register_model (it records both), or tag this version "
        f"{TRAINING_STATISTICS_TAG}=<location of its train_stats.pb>."
    )


def download_statistics(baseline: ChampionBaseline, tracking_uri: str, destination: Path) -> Path:
    """A local copy of the champion's stored ``train_stats.pb`` (any MLflow artifact location)."""
    return download_artifact(
        baseline.location,
        tracking_uri,
        destination,
        what="training statistics",
        owner=f"{baseline.model_name} version {baseline.version}",
    )
