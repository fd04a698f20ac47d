"""The version tags the steps write into the registry and read back, and MLflow's limit on them.

register_model writes them, deployments (``model_digest``), the monitoring pipeline
(``training_statistics_uri``, ``retraining_reason``) and the champion lookup read them.
"""

from __future__ import annotations

MODEL_DIGEST_TAG = "model_digest"  # checksums.json digest; deployments verify against it
# Where the version's training statistics (TFDV train_stats.pb) are stored: the baseline the
# monitoring pipeline compares production data with.
TRAINING_STATISTICS_TAG = "training_statistics_uri"
STATISTICS_FOLDER = "statistics"  # run artifact folder of the validation statistics
# The data contract a version carries (kfp_cicd.registry.contract): the schema the next run validates
# against, with the drift/skew settings and digests that say the files are the ones registered.
CONTRACT_FOLDER = "data_contract"  # run artifact folder: schema.pbtxt, features.json, contract.json
SCHEMA_URI_TAG = "schema_uri"  # location of the version's schema.pbtxt
SCHEMA_DIGEST_TAG = "schema_digest"  # sha256 of that schema.pbtxt
TRAINING_STATISTICS_DIGEST_TAG = "training_statistics_digest"  # sha256 of train_stats.pb
DATA_CONTRACT_TAG = "data_contract_uri"  # location of contract.json (settings, reference, acceptance)
TRIGGER_REASON_TAG = "retraining_reason"  # why a retraining run trained this version
MAX_TAG_LENGTH = 5000  # MLflow's limit on a model version tag value and description


def clip(text: str, limit: int = MAX_TAG_LENGTH) -> str:
    """``text`` cut to MLflow's length limit, saying so at the end when it was cut."""
    marker = " …[truncated]"
    return text if len(text) <= limit else text[: limit - len(marker)] + marker
