"""Training the scoring model and its challenger, with the held-out validation report.

Out of time where the table has a date (`application_date`, the vintage): the model learns from the earlier
vintages and is tested on the later ones, as a bank will use it: on loans made after those it learnt from.
The test vintages are the latest whole years that hold at least `test_size` of the rows. Without a date the
split is stratified on the target. Either way the held-out rows are never seen by either model, and the
report says which split, which vintages and how many defaults each side holds. Beside the LightGBM model and
the WOE scorecard challenger, a plain LightGBM classifier with default settings on the same features and
split shows that the model ranks at least as well on a bank's own data.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from features.spec import FeatureSpec
from features.values import plain
from scoring.model import ScoringModel, training_rows
from scoring.scale import grade
from scoring.scorecard import ScorecardModel
from scoring.sensitivity import responses
from scoring.validation import calibration_refused, grade_flags_by_chance, validation_report
from scoring.validation import metrics as pd_metrics

log = logging.getLogger(__name__)


DATE_COLUMN = "application_date"


@dataclass
class TrainedScoring:
    model: ScoringModel
    challenger: ScorecardModel | None
    metrics: dict
    report: dict  # scoring.validation.validation_report of both models on the held-out rows
    test: pd.DataFrame
    split: dict  # how the rows were split (`split_rows`)

    def sampling(self) -> str:
        """The split in words, for the model card."""
        return self.split["text"]


def split_rows(
    table: pd.DataFrame, target: str, test_size: float, seed: int, date_column: str = DATE_COLUMN
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(train, test, description): out of time when `date_column` is in the table and it spans at least
    two years, else stratified at random. The description names the vintages and counts rows and defaults
    on each side."""
    y = table[target].to_numpy(dtype=int)
    if date_column in table and (years := pd.to_datetime(table[date_column]).dt.year).nunique() >= 2:
        counts = years.value_counts().sort_index(ascending=False)
        share = counts.cumsum() / counts.sum()
        first_test = int(share.index[np.argmax(share.to_numpy() >= test_size)])
        first_test = max(first_test, int(counts.index.min()) + 1)  # something is left to learn from
        held_out = (years >= first_test).to_numpy()
        train, test = table[~held_out], table[held_out]
        kind = "out of time"
        train_years = f"{int(years[~held_out].min())}-{int(years[~held_out].max())}"
        test_years = f"{first_test}-{int(years.max())}"
        text = (
            f"out of time: trained on the vintages {train_years} ({len(train):,} loans, "
            f"{int(train[target].sum()):,} defaults), tested on {test_years} ({len(test):,} loans, "
            f"{int(test[target].sum()):,} defaults)"
        )
    else:
        train, test = train_test_split(table, test_size=test_size, random_state=seed, stratify=y)
        kind, train_years, test_years = "random", None, None
        text = (
            f"stratified at random with seed {seed} (the table has no {date_column} spanning two years): "
            f"{len(train):,} loans to train ({int(train[target].sum()):,} defaults), {len(test):,} held out "
            f"({int(test[target].sum()):,} defaults)"
        )
    description = {
        "kind": kind,
        "train_vintages": train_years,
        "test_vintages": test_years,
        "rows_train": len(train),
        "rows_test": len(test),
        "defaults_train": int(train[target].sum()),
        "defaults_test": int(test[target].sum()),
        "text": text,
    }
    return train, test, description


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
    """Fit the model (and the scorecard challenger) on the earlier vintages, or a stratified split where the
    table has no date (`split_rows`); validate on the rest."""
    training_rows(spec, table)  # every problem, at the table's own rows, before they are split
    train, test, split = split_rows(table, spec.target, test_size, seed)
    log.info("scoring split: %s", split["text"])
    model = ScoringModel(spec, params=params, random_state=seed).fit(train)
    fitted = {"lightgbm": model}
    if challenger:
        fitted["scorecard"] = ScorecardModel(spec, scale=model.scale, random_state=seed).fit(train)
    y_test = test[spec.target].to_numpy(dtype=int)
    entries, metrics = {}, {"rows_train": len(train), "rows_test": len(test), "split": split}
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
    report["split"] = split
    sample = test.sample(min(len(test), SENSITIVITY_ROWS), random_state=seed)
    report["sensitivity"] = [r.__dict__ for r in responses(model, sample)]
    found = weaknesses(report["models"]["lightgbm"], metrics, report["sensitivity"])
    metrics["grades"] = grade_flags_text(report["models"]["lightgbm"]["calibration_by_grade"])
    report["weaknesses"] = found
    metrics["weaknesses"] = "; ".join(found) if found else "none found"
    return TrainedScoring(model, fitted.get("scorecard"), plain(metrics), report, test, split)


SENSITIVITY_ROWS = 300  # held-out applications each declared driver is varied on (scoring.sensitivity)
FEW_DEFAULTS = 100  # held-out defaults below which the figures are too uncertain to lean on


CHANCE = 0.05  # a count of flagged grades that exactly right PDs would reach less often is a weakness


def grade_flags_text(grades: list[dict]) -> str:
    """The grades the Jeffreys test flags and how often exactly right PDs would flag as many, in words."""
    under = [g for g in grades if g["underestimated"]]
    tested = sum(1 for g in grades if g["n"])
    if not under:
        return f"none of {tested} populated grades flagged"
    flagged = ", ".join(f"{g['grade']} ({g['observed_rate']:.1%} against {g['mean_pd']:.1%})" for g in under)
    chance = grade_flags_by_chance(grades)
    verdict = "within chance" if chance >= CHANCE else "beyond chance"
    return (
        f"{len(under)} of {tested} populated grades flagged ({flagged}), as many as exactly right PDs would "
        f"flag {chance:.0%} of the time: {verdict}"
    )


def weaknesses(model_report: dict, metrics: dict, sensitivity: list[dict]) -> list[str]:
    """What the held-out data say against the model, in plain words: grades whose loans defaulted more than
    their PDs say (Jeffreys test at 5%), grades no loan falls in, calibration beyond chance, a ranking below
    plain LightGBM's, a declared driver the PD does not respond to, too few defaults to judge. Empty when
    none of these checks finds anything."""
    found = []
    grades = model_report["calibration_by_grade"]
    under = [g for g in grades if g["underestimated"]]
    if under and grade_flags_by_chance(grades) < CHANCE:
        found.append(
            "grades whose loans defaulted more than their PDs say (Jeffreys test at 5%, more flags than "
            "chance gives): " + grade_flags_text(grades)
        )
    empty = [g["grade"] for g in grades if not g["n"]]
    if empty:
        found.append(f"grades no held-out loan falls in: {', '.join(empty)}")
    m = model_report["metrics"]
    refused = calibration_refused(m["ece"], m.get("ece_chance", math.nan), m.get("ece_p_value", 0.0))
    if refused:
        found.append(refused)
    plain_auc = metrics["plain_lightgbm"]["auc"]
    if m["auc"] < plain_auc - 0.005:
        found.append(f"ranks below plain LightGBM (AUC {m['auc']:.3f} against {plain_auc:.3f})")
    deaf = [r["feature"] for r in sensitivity if r["moved"] <= 0.5 or r["against"] > 0]
    if deaf:
        found.append(f"drivers the PD does not follow on most applications: {', '.join(deaf)}")
    defaults = int(round(m["default_rate"] * m["n"]))
    if defaults < FEW_DEFAULTS:
        found.append(f"only {defaults} held-out defaults: every figure above is uncertain")
    return found
