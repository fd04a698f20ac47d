"""A deterministic synthetic card-transaction fraud data set: the pipeline's default input.

The pipeline must run end to end without anyone's private data, so it ships a generator whose
output looks like a real fraud table: ~2 % positives, mixed numeric and categorical columns,
correlated features, and a label that depends on interactions of several features (a large spend
relative to the card's history *and* card-not-present, a foreign transaction *on* a new account,
night hours, failed logins, risky merchants, bursts of activity) plus unobserved noise. A good
model therefore reaches a ROC AUC of roughly 0.9 while no single column gives the answer away,
which makes evaluation gates meaningful. Everything is drawn from ``numpy.random.default_rng(seed)``
in vectorised form: the same seed gives the same frame, and a million rows take a few seconds.

For continuous-training demonstrations a :class:`DriftSpec` shifts later "days" of production data
in a controlled way: larger amounts, more online transactions, a higher fraud rate, growing with
the day index. The shift changes only the distributions' parameters, never the number or order of
random draws, so no drift (the default) gives exactly the frame it always gave for a seed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kfp_cicd.data.splits import stratified_holdout_mask
from kfp_cicd.data.tables import write_table
from kfp_cicd.errors import DataError

logger = logging.getLogger(__name__)

LABEL_COLUMN = "is_fraud"
MODEL_NAME = "fraud-detector"
#: What the demo (``kfp-cicd run`` without data, ``make run``) passes for the generated data set:
#: its label, a model name, the segments worth watching and fraud's error costs (a missed fraud
#: costs 30 false alarms). Every other data set starts from the pipelines' neutral defaults.
DEMO_PARAMETERS: dict[str, object] = {
    "label_column": LABEL_COLUMN,
    "model_name": MODEL_NAME,
    "slice_keys": "country,channel,amount",
    "cost_false_negative": 30.0,
    "cost_false_positive": 1.0,
}

NUMERIC_FEATURES: tuple[str, ...] = (
    "amount",
    "hour",
    "day_of_week",
    "account_age_days",
    "customer_age",
    "credit_limit",
    "credit_utilization",
    "card_present",
    "is_foreign",
    "txn_count_1h",
    "txn_count_24h",
    "amount_sum_24h",
    "avg_amount_30d",
    "amount_to_avg_ratio",
    "distance_from_home_km",
    "failed_logins_24h",
    "merchant_risk_score",
    "new_merchant",
)
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "merchant_category",
    "country",
    "channel",
    "device_type",
    "card_type",
    "email_domain_risk",
)

FORMATS: tuple[str, ...] = ("csv", "parquet")


def _labels(*names: str) -> np.ndarray:
    """Category names as an object array: indexing it yields pandas' string columns directly."""
    return np.array(names, dtype=object)


CHANNELS = _labels("online", "pos", "atm", "contactless")
CHANNEL_WEIGHTS = np.array([0.36, 0.34, 0.05, 0.25])
ONLINE, POS, ATM, CONTACTLESS = range(4)

# Category, share of non-ATM transactions, typical amount multiplier, base merchant risk,
# and the category's own contribution to the fraud log-odds.
_CATEGORY_TABLE: tuple[tuple[str, float, float, float, float], ...] = (
    ("grocery", 0.22, 0.6, 0.05, -0.4),
    ("restaurant", 0.15, 0.7, 0.08, -0.3),
    ("fuel", 0.10, 0.8, 0.10, 0.0),
    ("pharmacy", 0.05, 0.5, 0.05, -0.3),
    ("utilities", 0.05, 1.5, 0.03, -0.6),
    ("entertainment", 0.08, 0.9, 0.15, 0.1),
    ("online_retail", 0.14, 1.1, 0.25, 0.3),
    ("travel", 0.06, 3.0, 0.30, 0.4),
    ("electronics", 0.07, 2.5, 0.35, 0.7),
    ("jewelry", 0.02, 4.0, 0.40, 0.8),
    ("gambling", 0.03, 1.5, 0.55, 0.9),
    ("crypto", 0.03, 2.0, 0.60, 1.1),
)
CASH_WITHDRAWAL = "cash_withdrawal"
MERCHANT_CATEGORIES = _labels(*(row[0] for row in _CATEGORY_TABLE), CASH_WITHDRAWAL)
_CATEGORY_SHARE = np.array([row[1] for row in _CATEGORY_TABLE])
_CATEGORY_AMOUNT = np.array([row[2] for row in _CATEGORY_TABLE] + [1.2])
_CATEGORY_RISK = np.array([row[3] for row in _CATEGORY_TABLE] + [0.20])
_CATEGORY_LOGIT = np.array([row[4] for row in _CATEGORY_TABLE] + [0.2])

# ISO 3166 alpha-2 codes; "NA" (Namibia) is left out on purpose: CSV readers parse it as missing.
COUNTRIES = _labels("US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "IN", "BR", "MX", "NG")
COUNTRY_WEIGHTS = np.array([0.34, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04, 0.05, 0.04, 0.03, 0.02])

CARD_TYPES = _labels("credit", "debit", "prepaid")
CARD_TYPE_WEIGHTS = np.array([0.55, 0.40, 0.05])

EMAIL_RISKS = _labels("low", "medium", "high")
EMAIL_RISK_WEIGHTS = np.array([0.80, 0.15, 0.05])

ONLINE_DEVICES = _labels("mobile", "desktop", "tablet")
ONLINE_DEVICE_WEIGHTS = np.array([0.55, 0.35, 0.10])

# Relative transaction volume by hour of day: quiet at night, busy at midday and evening.
HOUR_WEIGHTS = np.array(
    [
        0.8,
        0.5,
        0.35,
        0.3,
        0.3,
        0.5,
        1.2,
        2.5,
        4.0,
        5.0,
        5.5,
        6.0,
        6.5,
        6.0,
        5.5,
        5.5,
        6.0,
        6.5,
        7.0,
        6.5,
        5.5,
        4.0,
        2.5,
        1.5,
    ]
)
DAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.05, 1.2, 1.3, 1.1])

# Share of the positives that carry no signal at all (mislabelled or undetectable cases).
_FEATURELESS_FRAUD_SHARE = 0.08
# Scale of the observable fraud log-odds and standard deviation of their unobserved part: tuned so
# that a gradient-boosted model reaches a holdout ROC AUC of about 0.9 (the ceiling is about 0.93).
_SIGNAL_STRENGTH = 2.0
_LATENT_NOISE_SD = 0.8
_CALIBRATION_SAMPLE = 200_000


@dataclass(frozen=True)
class DriftSpec:
    """A controlled shift of the production data, growing linearly with the day index.

    On day ``d`` (``d = 0`` is the training data's own distribution):

    * amounts are multiplied by ``1 + amount_shift * d`` (the card's 30-day average is not, so the
      amount-to-average ratio grows too: spending habits change);
    * the weight of the online channel is multiplied by ``1 + online_shift * d`` (the channel mix
      moves towards card-not-present transactions, and devices with it);
    * the expected fraud rate is multiplied by ``1 + fraud_rate_shift * d`` (capped below 0.5).

    Attributes:
        amount_shift: relative amount increase per day.
        online_shift: relative increase of the online channel's weight per day.
        fraud_rate_shift: relative increase of the fraud rate per day.
        day: the day index ``d`` (non-negative).
    """

    amount_shift: float = 0.0
    online_shift: float = 0.0
    fraud_rate_shift: float = 0.0
    day: int = 0

    def __post_init__(self) -> None:
        for name in ("amount_shift", "online_shift", "fraud_rate_shift"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise DataError(f"DriftSpec.{name} must be a finite non-negative number, got {value!r}")
        if isinstance(self.day, bool) or not isinstance(self.day, (int, np.integer)) or self.day < 0:
            raise DataError(f"DriftSpec.day must be a non-negative integer, got {self.day!r}")

    @classmethod
    def uniform(cls, strength: float, day: int) -> DriftSpec:
        """The same relative shift per day for amounts, the online share and the fraud rate."""
        return cls(amount_shift=strength, online_shift=strength, fraud_rate_shift=strength, day=day)

    @property
    def is_active(self) -> bool:
        """Whether this spec changes anything at all."""
        return self.day > 0 and (self.amount_shift > 0 or self.online_shift > 0 or self.fraud_rate_shift > 0)

    @property
    def amount_factor(self) -> float:
        return 1.0 + self.amount_shift * self.day

    def channel_weights(self) -> np.ndarray:
        """The channel weights of this day (unnormalised, like :data:`CHANNEL_WEIGHTS`)."""
        weights = CHANNEL_WEIGHTS.copy()
        weights[ONLINE] *= 1.0 + self.online_shift * self.day
        return weights

    def fraud_rate(self, base_rate: float) -> float:
        """The expected fraud rate of this day, kept below 0.5."""
        return min(base_rate * (1.0 + self.fraud_rate_shift * self.day), _MAX_DRIFTED_FRAUD_RATE)


_MAX_DRIFTED_FRAUD_RATE = 0.45


@dataclass(frozen=True)
class DatasetFiles:
    """Where :func:`generate_dataset` wrote the training and the holdout table."""

    train: Path
    holdout: Path


def generate_transactions(
    n_rows: int, *, seed: int = 0, fraud_rate: float = 0.02, drift: DriftSpec | None = None
) -> pd.DataFrame:
    """Draw ``n_rows`` card transactions with an ``is_fraud`` label, reproducibly from ``seed``.

    ``fraud_rate`` is the expected share of positives (the realised share varies binomially).
    ``drift`` shifts amounts, channel mix and fraud rate as a later day of production data (see
    :class:`DriftSpec`); without it (or with a spec that shifts nothing) the frame is exactly the
    one this seed always gave. Integer columns are int64, real columns float64, categorical
    columns strings; no nulls.
    """
    _check_generation_args(n_rows, seed, fraud_rate)
    if drift is not None and not isinstance(drift, DriftSpec):
        raise DataError(f"drift must be a DriftSpec (e.g. DriftSpec.uniform(0.1, day=3)), got {drift!r}")
    drift = drift if drift is not None and drift.is_active else None
    rng = np.random.default_rng(seed)
    columns = _draw_features(rng, n_rows, drift)
    rate = drift.fraud_rate(fraud_rate) if drift else fraud_rate
    columns[LABEL_COLUMN] = _draw_labels(rng, columns, rate)
    order = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, LABEL_COLUMN)
    return pd.DataFrame({name: columns[name] for name in order})


def split_train_holdout(
    df: pd.DataFrame,
    *,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    label_column: str = LABEL_COLUMN,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into (train, holdout), stratified on the label so both keep its class mix.

    Each class contributes ``round(holdout_fraction * class size)`` rows to the holdout, chosen by
    ``default_rng(seed)``; rows keep their original order within each part and get a fresh index.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise DataError(f"holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
    if label_column not in df.columns:
        raise DataError(
            f"cannot stratify: label column '{label_column}' is missing; columns are {list(df.columns)}"
        )
    labels = df[label_column]
    if labels.isna().any():
        raise DataError(f"cannot stratify: label column '{label_column}' has missing values")
    in_holdout = stratified_holdout_mask(labels.to_numpy(), holdout_fraction, seed)
    train, holdout = df[~in_holdout], df[in_holdout]
    if train.empty or holdout.empty:
        raise DataError(
            f"cannot split {len(df)} rows with holdout_fraction={holdout_fraction}: "
            "one part would be empty; use more rows"
        )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def generate_dataset(
    out_dir: str | Path,
    *,
    rows: int,
    seed: int = 0,
    fmt: str = "csv",
    holdout_fraction: float = 0.2,
    fraud_rate: float = 0.02,
) -> DatasetFiles:
    """Generate ``rows`` transactions, split them, and write ``train.<fmt>`` and ``holdout.<fmt>``.

    ``out_dir`` is created if needed; existing files of the same name are replaced.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown data format '{fmt}'; use one of {', '.join(FORMATS)}")
    frame = generate_transactions(rows, seed=seed, fraud_rate=fraud_rate)
    train, holdout = split_train_holdout(frame, holdout_fraction=holdout_fraction, seed=seed)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files = DatasetFiles(train=directory / f"train.{fmt}", holdout=directory / f"holdout.{fmt}")
    write_table(train, str(files.train))
    write_table(holdout, str(files.holdout))
    logger.info(
        "wrote synthetic transactions (seed %d): %d train rows (%.2f%% fraud) to %s, "
        "%d holdout rows (%.2f%% fraud) to %s",
        seed,
        len(train),
        100 * train[LABEL_COLUMN].mean(),
        files.train,
        len(holdout),
        100 * holdout[LABEL_COLUMN].mean(),
        files.holdout,
    )
    return files


def day_drift(strength: float, day: int) -> DriftSpec:
    """The shift of production day ``day`` (1-based): day 1 matches the training data, and each
    later day moves ``strength`` further (day ``d`` is :class:`DriftSpec` day ``d - 1``)."""
    if isinstance(day, bool) or not isinstance(day, (int, np.integer)) or day < 1:
        raise DataError(f"production days are numbered from 1, got {day!r}")
    return DriftSpec.uniform(strength, day=day - 1)


def generate_days(
    out_dir: str | Path,
    *,
    days: int,
    rows_per_day: int,
    drift: float = 0.0,
    seed: int = 0,
    fmt: str = "csv",
    fraud_rate: float = 0.02,
) -> list[Path]:
    """Write ``day1.<fmt>`` … ``day<days>.<fmt>``: later windows of production data, labelled.

    Day ``d`` is an independent draw (seed ``seed + d``) shifted by :func:`day_drift`; with
    ``drift=0`` every day has the training data's distribution. The label column is kept (the
    delayed ground truth a retraining run learns from); drift checks ignore it.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown data format '{fmt}'; use one of {', '.join(FORMATS)}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise DataError(f"days must be a positive integer, got {days!r}")
    if (
        isinstance(drift, bool)
        or not isinstance(drift, (int, float))
        or not math.isfinite(drift)
        or drift < 0
    ):
        raise DataError(f"drift must be a finite non-negative number (e.g. 0.1), got {drift!r}")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for day in range(1, days + 1):
        spec = day_drift(drift, day)
        frame = generate_transactions(rows_per_day, seed=seed + day, fraud_rate=fraud_rate, drift=spec)
        path = directory / f"day{day}.{fmt}"
        write_table(frame, str(path))
        logger.info(
            "wrote production day %d (drift %.3g x %d): %d rows, %.2f%% fraud, to %s",
            day,
            drift,
            spec.day,
            len(frame),
            100 * frame[LABEL_COLUMN].mean(),
            path,
        )
        written.append(path)
    return written


def _check_generation_args(n_rows: int, seed: int, fraud_rate: float) -> None:
    """Refuse arguments that would give an empty, degenerate or unreproducible data set."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise DataError(f"n_rows must be a positive integer, got {n_rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(fraud_rate, (int, float)) or not 0.0 < fraud_rate < 0.5:
        raise DataError(f"fraud_rate must be between 0 and 0.5 (exclusive), got {fraud_rate!r}")


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """Indices ``0..len(weights)-1`` drawn ``n`` times with the given relative weights."""
    return rng.choice(weights.size, size=n, p=weights / weights.sum())


def _draw_features(rng: np.random.Generator, n: int, drift: DriftSpec | None = None) -> dict[str, np.ndarray]:
    """All feature columns; the order of the draws is part of the seed's contract.

    ``drift`` changes distribution parameters only (channel weights, an amount factor), never the
    number or order of draws.
    """
    columns: dict[str, np.ndarray] = {}
    channel = _pick(rng, drift.channel_weights() if drift else CHANNEL_WEIGHTS, n)
    online = channel == ONLINE
    columns.update(_draw_customer(rng, n))
    columns.update(_draw_merchant(rng, channel))
    columns.update(_draw_location(rng, online))
    columns.update(_draw_time(rng, n))
    columns.update(_draw_amounts(rng, columns, channel, drift.amount_factor if drift else None))
    columns.update(_draw_activity(rng, columns, online))
    columns["channel"] = CHANNELS[channel]
    columns["card_present"] = (~online).astype(np.int64)
    columns["device_type"] = _draw_device(rng, channel)
    columns["email_domain_risk"] = EMAIL_RISKS[_pick(rng, EMAIL_RISK_WEIGHTS, n)]
    return columns


def _draw_customer(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Card holder attributes: age, account age (bounded by adult life), card type and limit."""
    age = np.clip(np.round(rng.normal(43.0, 14.0, n)), 18, 90).astype(np.int64)
    established = rng.exponential(1100.0, n)
    recent = rng.uniform(0.0, 60.0, n)
    account_age = np.where(rng.random(n) < 0.08, recent, established)
    account_age = np.minimum(account_age, (age - 18) * 365 + 30).astype(np.int64)
    card_type = _pick(rng, CARD_TYPE_WEIGHTS, n)
    limit = np.exp(rng.normal(np.log(5000.0) + 0.012 * (age - 43), 0.6, n))
    limit = np.where(card_type == 2, limit * 0.2, limit)  # prepaid cards hold little
    limit = np.clip(np.round(limit / 100.0) * 100.0, 200.0, 50_000.0)
    return {
        "customer_age": age,
        "account_age_days": account_age,
        "card_type": CARD_TYPES[card_type],
        "credit_limit": limit.astype(np.float64),
        "credit_utilization": np.round(rng.beta(2.0, 5.0, n), 3),
    }


def _draw_merchant(rng: np.random.Generator, channel: np.ndarray) -> dict[str, np.ndarray]:
    """Merchant category (cash withdrawal at ATMs), its risk score and whether it is new."""
    n = channel.size
    category = _pick(rng, _CATEGORY_SHARE, n)
    category = np.where(channel == ATM, MERCHANT_CATEGORIES.size - 1, category)
    risk = _CATEGORY_RISK[category] + rng.normal(0.0, 0.12, n)
    new_rate = np.where(channel == ONLINE, 0.22, 0.10)
    return {
        "merchant_category": MERCHANT_CATEGORIES[category],
        "merchant_risk_score": np.round(np.clip(risk, 0.0, 1.0), 3),
        "new_merchant": (rng.random(n) < new_rate).astype(np.int64),
        "_category": category,
    }


def _draw_location(rng: np.random.Generator, online: np.ndarray) -> dict[str, np.ndarray]:
    """Transaction country, whether it is abroad, and the distance from the card holder's home."""
    n = online.size
    home = _pick(rng, COUNTRY_WEIGHTS, n)
    foreign = rng.random(n) < np.where(online, 0.10, 0.05)
    shift = rng.integers(1, COUNTRIES.size, n)
    country = np.where(foreign, (home + shift) % COUNTRIES.size, home)
    local_km = np.exp(rng.normal(np.log(8.0), 1.2, n))
    abroad_km = 300.0 + np.exp(rng.normal(np.log(2500.0), 0.7, n))
    return {
        "country": COUNTRIES[country],
        "is_foreign": foreign.astype(np.int64),
        "distance_from_home_km": np.round(np.where(foreign, abroad_km, local_km), 1),
    }


def _draw_time(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Hour of day and day of week (0 = Monday), with realistic daily and weekly rhythm."""
    return {
        "hour": _pick(rng, HOUR_WEIGHTS, n).astype(np.int64),
        "day_of_week": _pick(rng, DAY_WEIGHTS, n).astype(np.int64),
    }


def _draw_amounts(
    rng: np.random.Generator,
    columns: dict[str, np.ndarray],
    channel: np.ndarray,
    amount_factor: float | None = None,
) -> dict[str, np.ndarray]:
    """The card's 30-day average, this amount (category-dependent, sometimes a spike) and ratio.

    ``amount_factor`` (drift) scales this amount, not the card's history.
    """
    n = channel.size
    scale = np.log(45.0) + 0.35 * np.log(columns["credit_limit"] / 5000.0)
    average = np.round(np.exp(rng.normal(scale, 0.5, n)), 2)
    average = np.maximum(average, 1.0)
    spike = np.where(rng.random(n) < 0.04, rng.uniform(2.0, 12.0, n), 1.0)
    relative = np.exp(rng.normal(-0.15, 0.7, n)) * spike * _CATEGORY_AMOUNT[columns["_category"]]
    if amount_factor is not None:
        relative = relative * amount_factor
    amount = np.maximum(np.round(average * relative, 2), 0.5)
    return {
        "avg_amount_30d": average,
        "amount": amount,
        "amount_to_avg_ratio": np.round(amount / average, 4),
    }


def _draw_activity(
    rng: np.random.Generator, columns: dict[str, np.ndarray], online: np.ndarray
) -> dict[str, np.ndarray]:
    """Velocity counts (with occasional bursts), the 24-hour spend and failed logins."""
    n = online.size
    burst = np.where(rng.random(n) < 0.03, rng.poisson(4.0, n), 0)
    count_24h = 1 + rng.poisson(3.0, n) + burst
    count_1h = 1 + rng.binomial(count_24h - 1 - burst, 0.08) + burst
    others = rng.gamma(np.maximum(count_24h - 1, 1), 1.0) * (count_24h > 1)
    spend = columns["amount"] + others * columns["avg_amount_30d"]
    attack = rng.random(n) < np.where(online, 0.03, 0.005)
    logins = np.where(attack, rng.poisson(3.5, n), rng.poisson(0.1, n))
    return {
        "txn_count_1h": count_1h.astype(np.int64),
        "txn_count_24h": count_24h.astype(np.int64),
        "amount_sum_24h": np.round(spend, 2),
        "failed_logins_24h": logins.astype(np.int64),
    }


def _draw_device(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """Device used: a phone, computer or tablet online; a wallet phone or terminal in person."""
    n = channel.size
    online_device = ONLINE_DEVICES[_pick(rng, ONLINE_DEVICE_WEIGHTS, n)]
    wallet = (channel == CONTACTLESS) & (rng.random(n) < 0.4)
    in_person = np.where(wallet, "mobile", "terminal")
    return np.where(channel == ONLINE, online_device, in_person).astype(object)


def _fraud_log_odds(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The observable part of the fraud log-odds: interactions of several features, no intercept.

    Patterns: an unusually large spend where the card is not present, foreign use of a new
    account, night activity (worse online), credential stuffing (failed logins online), bursts of
    transactions, risky merchants and e-mail domains, prepaid cards and near-maxed cards.
    """
    online = columns["channel"] == "online"
    not_present = online | (columns["channel"] == "contactless")
    hour = columns["hour"]
    night = ((hour <= 4) | (hour >= 23)).astype(np.float64)
    big_spend = _sigmoid(3.0 * (np.log(columns["amount_to_avg_ratio"]) - np.log(3.0)))
    new_account = columns["account_age_days"] < 45
    foreign = columns["is_foreign"] == 1
    email = columns["email_domain_risk"]
    email_risk = np.where(email == "high", 1.0, np.where(email == "medium", 0.4, 0.0))
    return (
        2.0 * big_spend * np.where(online, 1.0, np.where(not_present, 0.5, 0.15))
        + 0.8 * night * (1.0 + 0.6 * online)
        + 2.0 * (foreign & new_account)
        + 0.4 * foreign
        + 0.3 * new_account
        + 0.7 * np.minimum(columns["failed_logins_24h"], 5) * online
        + _CATEGORY_LOGIT[columns["_category"]]
        + 1.2 * (columns["merchant_risk_score"] - 0.2)
        + 1.1 * (columns["txn_count_1h"] >= 4)
        + email_risk * np.where(online, 1.0, 0.3)
        + 0.6 * columns["new_merchant"] * (columns["amount_to_avg_ratio"] > 2.0)
        + 0.6 * (columns["card_type"] == "prepaid")
        + 0.5 * (columns["credit_utilization"] > 0.8)
        + 0.3 * (columns["customer_age"] >= 75)
    )


def _draw_labels(rng: np.random.Generator, columns: dict[str, np.ndarray], fraud_rate: float) -> np.ndarray:
    """Bernoulli labels whose expected mean is ``fraud_rate``; removes the helper columns."""
    n = columns["amount"].size
    logits = _SIGNAL_STRENGTH * _fraud_log_odds(columns) + rng.normal(0.0, _LATENT_NOISE_SD, n)
    del columns["_category"]
    probability = _sigmoid(logits + _intercept_for_rate(logits, fraud_rate))
    probability = (1.0 - _FEATURELESS_FRAUD_SHARE) * probability
    probability += _FEATURELESS_FRAUD_SHARE * fraud_rate
    return (rng.random(n) < probability).astype(np.int64)


def _intercept_for_rate(logits: np.ndarray, rate: float) -> float:
    """The intercept ``b`` with ``mean(sigmoid(logits + b)) == rate``, found by bisection.

    Large inputs are thinned to an evenly strided sample of at most ~200k values: the mean is
    then accurate to far better than the binomial noise of the labels, at a fraction of the cost.
    """
    logits = logits[:: max(1, logits.size // _CALIBRATION_SAMPLE)]
    low, high = -40.0, 40.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if _sigmoid(logits + middle).mean() < rate:
            low = middle
        else:
            high = middle
        if high - low < 1e-4:
            break
    return 0.5 * (low + high)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings for large negative inputs."""
    return np.exp(-np.logaddexp(0.0, -values))
