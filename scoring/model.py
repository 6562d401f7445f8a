"""The IP + credit scoring model: monotone LightGBM boosters averaged, a calibrated 12-month PD, a
score, a grade, exact score-point explanations and reason codes.

Training (``ScoringModel.fit``):

1. the table is checked against the spec and every unusable value is refused at once (InvalidData);
2. each of the BOOSTER_SETTINGS is cross-fitted on ``calibration_folds`` stratified folds (4 by
   default) of the training rows: the folds' boosters grow in step and stop when their mean held-out
   AUC stops rising, and each predicts the rows it did not see, so every row gets an out-of-fold
   margin (log-odds);
3. one LightGBM per setting is trained on all rows, held to the spec's monotone directions, with the
   number of trees found in step 2; the model's margin is the mean of their margins, and so is each
   row's out-of-fold margin;
4. the out-of-fold margins are mapped to a calibrated PD by Platt scaling (PD = sigmoid(a * margin +
   b), a > 0) or isotonic regression; with ``calibration="auto"`` the one with the lower
   cross-validated log-loss on the out-of-fold margins is kept. The figures are recorded in
   ``calibration_report_``.

Cross-fitting keeps every row for the booster (a held-out calibration set costs small books a quarter
of their defaults) while the calibrator still learns from margins of rows the booster had not seen,
so it corrects the booster's over-confidence instead of learning it (as scikit-learn's
CalibratedClassifierCV with ensemble=False).

Explanations (``contributions``) are in score points and add up to the row's score exactly; see
``ScoringModel.contributions`` and docs/scoring-model.md for why. TreeSHAP is linear in the model, so
the mean of the boosters' contributions splits their mean margin exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import lightgbm
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from features.encoder import SpecEncoder
from features.errors import InvalidData, Problem
from features.schema import Table
from features.spec import FeatureSpec
from scoring.reasons import MAX_REASONS, Reason, reason_codes, reason_for, reasons_of_points, spec_reasons
from scoring.scale import DecisionPolicy, ScoreScale, grade

log = logging.getLogger(__name__)

# Defaults for small default rates (a few percent of a few thousand loans): shallow trees, a slow
# learning rate and row / column subsampling keep the booster from memorising the few defaults.
# BOOSTER_SETTINGS below override some of them for the second booster.
DEFAULT_PARAMS = {
    # An upper bound: the number of trees is chosen by early stopping on the cross-fitting folds.
    "n_estimators": 1000,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    # "intermediate" bounds each leaf by its actual neighbours rather than by a global bound, so
    # monotone features cost less accuracy than with "basic". Not "advanced": in LightGBM 4.7 it
    # broke the constraints on the synthetic application table (the margin rose by up to 0.03 as
    # current_ratio, constrained decreasing, rose; 3 of 3 seeds tried), as reported upstream in
    # lightgbm-org/LightGBM#5358 and #6155. tests/test_scoring_model.py checks the constraints hold.
    "monotone_constraints_method": "intermediate",
    "verbose": -1,
    # One thread: on tables of a few thousand loans, starting two OpenMP threads per tree costs more
    # than it saves (measured 0.2 s against 1.3-1.7 s for 700 rows on a busy 2-core machine).
    # Pass params={"n_jobs": 2} for large tables.
    "n_jobs": 1,
}
# The boosters the model averages, each over DEFAULT_PARAMS (a user's `params` override every one).
# Neither ranks best everywhere, and choosing one on the cross-fitting folds is itself noisy; their
# mean ranked at least as well as the better one in most runs (benchmarks/scoring.py: mean held-out
# AUC over 5 folds, 2 seeds each, against plain LightGBM): Polish 1-year 0.959 and 0.955 (regularised
# 0.955, 0.952; defaults 0.958, 0.953; plain 0.956, 0.955), German 0.780 and 0.773 (plain 0.777,
# 0.776), HMEQ 0.975 and 0.975 (plain 0.966, 0.966). docs/scoring-model.md section 10 has the figures.
BOOSTER_SETTINGS: dict[str, dict] = {
    "regularised": {},
    "lightgbm_defaults": {
        "learning_rate": 0.1,
        "num_leaves": 31,
        "subsample": 1.0,
        "subsample_freq": 0,
        "colsample_bytree": 1.0,
        "reg_lambda": 0.0,
    },
}
CALIBRATIONS = ("auto", "platt", "isotonic", "none")
# Rounds without a rise of the folds' mean held-out AUC after which the cross-fitting boosters stop.
# AUC, not log-loss: the calibrator sets the PD scale afterwards, so ranking is what the trees must
# learn, and log-loss stops them too early for it (Polish 1-year benchmark, seed 0, LightGBM's
# defaults: AUC 0.933 stopped on log-loss, 0.953 on AUC). 100 or 200 rounds ranked no better.
EARLY_STOPPING_ROUNDS = 50
# Fewest defaults (and fewest repaid loans) a training table must hold: below this neither the
# booster nor a calibrator has anything to learn from.
MIN_CLASS_ROWS = 10
# Folds of the cross-validation that picks the calibrator (fewer when the calibration set has
# fewer defaults than this).
CALIBRATION_FOLDS = 5
# More rows than this are a batch, predicted on the boosters' threads; fewer, on one thread.
BATCH_ROWS = 16
# |sum of raw points| below this is treated as zero when rescaling a row's points (the 0/0 case).
_ZERO_POINTS = 1e-9


# ================================================================ calibrators


class PlattCalibrator:
    """PD = sigmoid(a * margin + b) with a > 0, by maximum likelihood on Platt's smoothed targets
    (defaults count as (n1 + 1) / (n1 + 2), repaid loans as 1 / (n0 + 2)), which keeps a small
    calibration set from pushing PDs to 0 or 1. Affine on the logit scale, so score points stay exact."""

    name = "platt"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        margin, y = np.asarray(margin, dtype="float64"), np.asarray(y)
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        target = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            z = theta[0] * margin + theta[1]
            residual = expit(z) - target
            value = float(np.sum(np.logaddexp(0.0, z) - target * z))
            return value, np.array([np.dot(residual, margin), residual.sum()])

        # a > 0: the calibrated PD rises with the margin, so the booster's monotone directions hold.
        fitted = minimize(
            loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(1e-6, None), (None, None)]
        )
        self.a_, self.b_ = float(fitted.x[0]), float(fitted.x[1])
        return self

    @property
    def slope(self) -> float:
        return self.a_

    def logit(self, margin: np.ndarray) -> np.ndarray:
        return self.a_ * np.asarray(margin, dtype="float64") + self.b_

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return expit(self.logit(margin))

    def describe(self) -> dict:
        return {"a": self.a_, "b": self.b_}


class IsotonicCalibrator:
    """PD = a non-decreasing, piecewise-linear function of the margin (sklearn IsotonicRegression,
    clipped outside the calibration range and held within [pd_floor, 1 - pd_floor - TIE_BREAK]), plus
    TIE_BREAK x sigmoid(margin), which breaks its ties in the boosters' order. The isotonic fit is flat over
    whole steps of margins, and left flat it ranks the applications of a step as equal where the boosters do
    not (Polish 1-year, seed 2, first fold: held-out AUC 0.900 flat against 0.933 in the boosters' order,
    most of the loss in the step at the PD floor). The tie-break moves no PD by more than TIE_BREAK and,
    above the floor and below the cap, is never clipped away. Monotone but not affine: points are rescaled
    per row."""

    name = "isotonic"
    slope = 1.0
    TIE_BREAK = 1e-9

    def __init__(self, pd_floor: float = 0.0):
        self.pd_floor = pd_floor

    def fit(self, margin: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        top = 1.0 - self.pd_floor - self.TIE_BREAK
        self.isotonic_ = IsotonicRegression(y_min=self.pd_floor, y_max=top, out_of_bounds="clip")
        self.isotonic_.fit(np.asarray(margin, dtype="float64"), np.asarray(y, dtype="float64"))
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype="float64")
        return self.isotonic_.predict(margin) + self.TIE_BREAK * expit(margin)

    def describe(self) -> dict:
        return {"steps": int(self.isotonic_.X_thresholds_.size), "tie_break": self.TIE_BREAK}


class IdentityCalibrator:
    """No calibration: the booster's margin is taken as the PD log-odds (calibration="none")."""

    name = "none"
    slope = 1.0

    def fit(self, margin: np.ndarray, y: np.ndarray) -> IdentityCalibrator:
        return self

    def logit(self, margin: np.ndarray) -> np.ndarray:
        return np.asarray(margin, dtype="float64")

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return expit(self.logit(margin))

    def describe(self) -> dict:
        return {}


# The calibrators `auto` chooses between.
_FITTED_CALIBRATIONS = ("platt", "isotonic")


def _calibrator(method: str, scale: ScoreScale) -> PlattCalibrator | IsotonicCalibrator:
    """An unfitted calibrator; an isotonic one keeps its PDs within the scale's floor and cap."""
    return IsotonicCalibrator(scale.pd_floor) if method == "isotonic" else PlattCalibrator()


def _cross_validated_calibration(
    margin: np.ndarray, y: np.ndarray, scale: ScoreScale, random_state: int
) -> tuple[str, dict]:
    """Platt or isotonic by out-of-fold log-loss within the calibration set, with the one-standard-error
    rule: isotonic, the more flexible map, only when it lowers the log-loss by more than the standard error
    of the per-row difference (Platt on a tie, or when there are too few defaults to cross-validate).
    Isotonic's lowest step puts every margin below the defaults it saw at the PD floor; on the Polish data
    `auto` without the rule picked it in 2 of 5 folds of one seed, and those folds' PDs ranked below every
    other fold's (pooled AUC 0.942 against 0.957 with Platt alone, the same folds ranking equally well one by
    one). PDs are floored as the model floors them, so an isotonic 0 is not an infinite loss."""
    folds = min(CALIBRATION_FOLDS, int((y == 1).sum()), int((y == 0).sum()))
    if folds < 2:
        return "platt", {"folds": folds, "note": "too few defaults to cross-validate; Platt kept"}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    oof = {name: np.empty(y.size) for name in _FITTED_CALIBRATIONS}
    for fit_rows, test_rows in splitter.split(margin.reshape(-1, 1), y):
        for name in _FITTED_CALIBRATIONS:
            fitted = _calibrator(name, scale).fit(margin[fit_rows], y[fit_rows])
            oof[name][test_rows] = scale.clip(fitted.predict(margin[test_rows]))
    figures = {
        name: {"log_loss": float(log_loss(y, p, labels=[0, 1])), "brier": float(brier_score_loss(y, p))}
        for name, p in oof.items()
    }
    row_loss = {name: -np.log(np.where(y == 1, p, 1.0 - p)) for name, p in oof.items()}
    gain = row_loss["platt"] - row_loss["isotonic"]  # what isotonic saves on each row
    standard_error = float(gain.std(ddof=1) / np.sqrt(gain.size))
    choice = "isotonic" if gain.mean() > standard_error else "platt"
    return choice, {
        "folds": folds,
        "criterion": "log_loss; isotonic only when it saves more than one standard error",
        "isotonic_saves": {"mean": float(gain.mean()), "standard_error": standard_error},
        **figures,
    }


# ================================================================ cross-fitting


@dataclass(frozen=True, eq=False)
class CrossFit:
    """One setting cross-fitted on the training rows: out-of-fold margins and held-out figures."""

    margin: np.ndarray  # every row's margin from the booster that did not see it
    trees: int  # the round at which the folds' mean held-out AUC peaked
    auc_per_fold: list[float]
    log_loss: float  # mean held-out log-loss of the raw margins at `trees` (before calibration)

    @property
    def auc(self) -> float:
        return float(np.mean(self.auc_per_fold))

    def describe(self) -> dict:
        return {
            "auc": self.auc,
            "auc_per_fold": self.auc_per_fold,
            "log_loss": self.log_loss,
            "trees": self.trees,
        }


def cross_fit(
    classifier: LGBMClassifier,
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    categorical: list[int],
) -> CrossFit:
    """Grow one booster per fold in step (lightgbm.cv), up to the classifier's n_estimators, until the
    mean held-out AUC has not risen for EARLY_STOPPING_ROUNDS rounds; each predicts its held-out rows
    at the best round. The boosters are the classifier's own (same parameters, same seed); as in
    lightgbm.cv, the feature bins are built once from all the rows' values (never their targets)."""
    params = classifier.get_params()
    rounds = params.pop("n_estimators")
    for sklearn_only in ("class_weight", "importance_type"):
        params.pop(sklearn_only)
    params["objective"] = params["objective"] or "binary"
    params["metric"] = ["auc", "binary_logloss"]
    data = lightgbm.Dataset(
        X, y, feature_name=[f"f{i}" for i in range(X.shape[1])], categorical_feature=categorical
    )
    result = lightgbm.cv(
        params,
        data,
        num_boost_round=rounds,
        folds=folds,
        callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False)],
        return_cvbooster=True,
    )
    boosters = result["cvbooster"]
    trees = int(boosters.best_iteration)
    margin = np.empty(y.size)
    auc_per_fold = []
    for (_, held), booster in zip(folds, boosters.boosters, strict=True):
        margin[held] = booster.predict(X[held], raw_score=True, num_iteration=trees)
        auc_per_fold.append(float(roc_auc_score(y[held], margin[held])))
    return CrossFit(margin, trees, auc_per_fold, float(result["valid binary_logloss-mean"][trees - 1]))


# ================================================================ exact points


def exact_points(raw: np.ndarray, target: np.ndarray, rescale: np.ndarray) -> np.ndarray:
    """Row-wise points whose sum is `target` on the rows marked `rescale`; other rows are kept.

    A rescaled row is multiplied by target / sum(raw): each feature keeps its share of the row's
    movement and, when the ratio is positive (always so for a monotone calibrator), its sign. When
    sum(raw) is zero (the row's margin is the base margin) the target, then zero or next to it, is
    shared equally.
    """
    out = np.array(raw, dtype="float64", copy=True)
    rows = np.flatnonzero(rescale)
    if rows.size == 0 or out.shape[1] == 0:
        return out
    total = out[rows].sum(axis=1)
    zero = np.abs(total) <= _ZERO_POINTS
    ratio = np.divide(target[rows], total, out=np.zeros(rows.size), where=~zero)
    out[rows] *= ratio[:, None]
    out[rows[zero]] = (target[rows[zero]] / out.shape[1])[:, None]
    return out


# ================================================================ shared behaviour of PD models


@dataclass(frozen=True, eq=False)
class Scored:
    """`decide_rows`' answer, row for row; a row refused (named in `problems`) has NaN and None."""

    pd: np.ndarray
    score: np.ndarray
    grade: np.ndarray
    recommendation: np.ndarray  # approve / review / decline
    declined_by: list[list[str]]  # the decline rules (their features) that set a decline whatever the PD
    points: np.ndarray  # rows x features, in score points: base + a row's points = its score
    base: float
    reasons: list[list[dict]]  # per row: code, feature, points of the features that lowered the score most
    problems: list[Problem]


def _length(rows: Table) -> int:
    return len(rows) if isinstance(rows, pd.DataFrame) else len(next(iter(rows.values()), ()))


class PDModelMixin:
    """Score, grade, explanations, reasons and decisions for a fitted PD model.

    A model supplies `spec`, `scale`, a fitted `encoder_` (SpecEncoder), `_prepare(df)` (the input it
    predicts from), `_pd(prepared)` (floored PDs) and `_points(prepared)` (PD, score, per-feature
    points and base; points + base = score).
    """

    @property
    def own_reasons(self) -> dict[str, Reason]:
        """The reason codes and texts the model's spec gives its features (scoring.reasons.reason_for);
        read once per spec (a frozen object), not on every reason of every request."""
        cached = self.__dict__.get("_own_reasons")
        if cached is None or cached[0] is not self.spec:  # none yet, or set_params gave another spec
            cached = self.__dict__["_own_reasons"] = (self.spec, spec_reasons(self.spec))
        return cached[1]

    def _checked(self, df: pd.DataFrame, what: str = "table to score"):
        check_is_fitted(self, "encoder_")
        problems = self.encoder_.row_problems(df)
        if problems:
            raise InvalidData(problems, what)
        return self._prepare(df)

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated 12-month PD per row, held within the scale's [pd_floor, 1 - pd_floor]."""
        return self._pd(self._checked(df))

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """scikit-learn style: columns P(repaid), P(default)."""
        pd_ = self.predict_pd(df)
        return np.column_stack([1.0 - pd_, pd_])

    def score(self, df: pd.DataFrame) -> np.ndarray:
        """Credit score per row (the scale's points-to-double-odds score of the PD; higher is safer).
        Not scikit-learn's `score(X, y)` metric."""
        return self.scale.score(self.predict_pd(df))

    def grade(self, df: pd.DataFrame) -> np.ndarray:
        """AAA..C grade per row."""
        return grade(self.predict_pd(df))

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score points per feature plus a "base" column; each row sums to the row's score."""
        _, _, points, base = self._points(self._checked(df))
        out = pd.DataFrame(points, columns=list(self.spec.feature_names), index=df.index)
        out["base"] = base
        return out

    def reason_codes(
        self, df: pd.DataFrame, top: int = MAX_REASONS, language: str = "zh"
    ) -> list[list[dict]]:
        """Per row, the up to `top` features that lowered the score most (scoring.reasons)."""
        return reason_codes(
            self.contributions(df), top=top, language=language, own=self.own_reasons, values=df
        )

    def decide_rows(
        self, rows: Table, policy: DecisionPolicy | None = None, top: int = MAX_REASONS
    ) -> Scored:
        """PD, score, grade, recommendation, the decline rules that set it, the points of every feature and
        the reasons of each row of `rows` (a DataFrame or a mapping of column to values, row for row: one
        application's row or a batch's), from one pass over the model. A row with an unusable value is not
        scored (NaN, None) and is named in `problems`; the other rows are."""
        check_is_fitted(self, "encoder_")
        policy = policy if policy is not None else DecisionPolicy()
        prepared, problems = self._prepare_rows(rows)
        n = _length(rows)
        good = np.ones(n, dtype=bool)
        good[[p.row for p in problems]] = False
        names = list(self.spec.feature_names)
        pd_, score = np.full(n, np.nan), np.full(n, np.nan)
        points, base = np.full((n, len(names)), np.nan), np.nan
        if good.any():
            pd_[good], score[good], points[good], base = self._points(prepared)
        reasons: list[list[dict]] = [[] for _ in range(n)]
        # the values of the scored rows: a reason is listed only where its value is on its text's side
        values = rows if good.all() else {name: np.asarray(rows[name])[good] for name in names}
        found = reasons_of_points(points[good], names, top, own=self.own_reasons, values=values)
        for i, row in zip(np.flatnonzero(good), found, strict=True):
            reasons[i] = row
        flags = {f: np.asarray(rows[f])[good] for f in policy.rule_features if f in rows}
        recommendation = np.full(n, None, dtype=object)
        declined_by: list[list[str]] = [[] for _ in range(n)]
        if good.any():
            recommendation[good], flagged = policy.recommend_with_flags(pd_[good], flags)
            for i, found in zip(np.flatnonzero(good), flagged, strict=True):
                declined_by[i] = found
        return Scored(
            pd_, score, grade(pd_), recommendation, declined_by, points, float(base), reasons, problems
        )

    def _prepare_rows(self, rows: Table) -> tuple[object, list[Problem]]:
        """The model's input of the usable rows of `rows`, and the problems of the others."""
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(dict(rows))
        problems = self.encoder_.row_problems(frame)
        bad = {p.row for p in problems}
        return self._prepare(frame.iloc[[i for i in range(len(frame)) if i not in bad]]), problems

    def decide(
        self,
        df: pd.DataFrame,
        policy: DecisionPolicy | None = None,
        top: int = MAX_REASONS,
        language: str = "zh",
    ) -> pd.DataFrame:
        """PD, score, grade, recommendation and reasons per row, from one pass over the booster.

        Columns: the spec's id (when the table has it), pd, score, grade, recommendation
        (approve / review / decline), recommendation_label (批准 / 复核 / 拒绝 in Chinese),
        reason_codes (list of codes), reasons (list of texts in `language`) and declined_by (the policy's
        decline rules (flags set, limits reached) on the row: declined whatever the PD).
        Refuses the whole table if any row is unusable; `score_batch` scores the good rows instead.
        """
        policy = policy if policy is not None else DecisionPolicy()
        scored = self.decide_rows(df, policy, top)
        if scored.problems:
            raise InvalidData(scored.problems, "table to score")
        out = pd.DataFrame(index=df.index)
        if self.spec.id is not None and self.spec.id in df.columns:
            out[self.spec.id] = df[self.spec.id].to_numpy()
        out["pd"] = scored.pd
        out["score"] = scored.score
        out["grade"] = scored.grade
        out["recommendation"] = scored.recommendation
        out["recommendation_label"] = [policy.label(r, language) for r in scored.recommendation]
        out["reason_codes"] = [[r["code"] for r in row] for row in scored.reasons]
        own = self.own_reasons
        texts = [[reason_for(r["feature"], own).text(language) for r in row] for row in scored.reasons]
        out["reasons"] = texts
        out["declined_by"] = scored.declined_by
        return out

    def score_table(
        self,
        df: pd.DataFrame,
        policy: DecisionPolicy | None = DecisionPolicy(),  # noqa: B008 - frozen, so one shared default is safe
        top: int = MAX_REASONS,
        language: str = "zh",
    ) -> tuple[pd.DataFrame, list[Problem]]:
        """`score_batch` of this model, with a recommendation column by default (the serving entry point)."""
        return score_batch(self, df, policy=policy, top=top, language=language)

    def _set_fitted_names(self) -> None:
        self.feature_names_in_ = np.asarray(self.spec.feature_names, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([0, 1])


def training_rows(spec: FeatureSpec, df: pd.DataFrame) -> tuple[SpecEncoder, np.ndarray]:
    """Check a scoring table, learn its encoder and return it with the 0/1 target, or refuse it
    with every problem found (bad values, or too few defaults or repaid loans to learn from)."""
    spec.check(df, task="scoring")
    spec_reasons(spec)  # a reason code the built-in table gives another feature is refused here
    encoder = SpecEncoder(spec).fit(df)
    problems = encoder.row_problems(df)
    y = df[spec.target].to_numpy(dtype="float64").astype("int64")
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if min(n1, n0) < MIN_CLASS_ROWS:
        problems.append(
            Problem(
                spec.target,
                f"at least {MIN_CLASS_ROWS} defaults (1) and {MIN_CLASS_ROWS} repaid loans (0)",
                f"{n1} defaults and {n0} repaid loans",
            )
        )
    if problems:
        raise InvalidData(problems, "training table")
    return encoder, y


# ================================================================ the champion model


class ScoringModel(PDModelMixin, BaseEstimator):
    """12-month PD of an IP-pledge loan application from the spec's features.

    Parameters
    ----------
    spec : the feature spec (target 1 = default within 12 months, 0 = repaid); its monotone
        directions become LightGBM monotone constraints.
    params : LightGBM parameters overriding DEFAULT_PARAMS and every one of BOOSTER_SETTINGS.
    calibration : "auto" (Platt or isotonic by cross-validated log-loss), "platt", "isotonic", or
        "none" (the boosters' mean margin is the PD log-odds; no cross-fitting, so the number of
        trees is not chosen: each booster has n_estimators trees).
    calibration_folds : folds of the cross-fitting that chooses each booster's number of trees and
        gives the calibrator out-of-fold margins.
    scale : the points-to-double-odds scale (stored with the model).
    random_state : seed of the split, the cross-validation and the booster.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        params: dict | None = None,
        calibration: str = "auto",
        calibration_folds: int = 4,
        scale: ScoreScale = ScoreScale(),  # noqa: B008 - frozen, so one shared default is safe
        random_state: int = 0,
    ):
        self.spec = spec
        self.params = params
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.scale = scale
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {list(CALIBRATIONS)}; got {self.calibration!r}")
        if self.calibration != "none" and not (
            isinstance(self.calibration_folds, int) and self.calibration_folds >= 2
        ):
            raise ValueError(
                f"calibration_folds must be an integer of at least 2; got {self.calibration_folds!r}"
            )
        if not isinstance(self.scale, ScoreScale):
            raise TypeError(f"scale must be a ScoreScale; got {type(self.scale).__name__}")
        class_weight = (self.params or {}).get("class_weight")
        if class_weight is not None:
            raise ValueError(
                f"params must not set class_weight (the calibrator sets the PD level); got {class_weight!r}"
            )

    def _classifier(self, setting: Mapping | None = None) -> LGBMClassifier:
        params = {
            **DEFAULT_PARAMS,
            **(setting or {}),
            **(self.params or {}),
            "random_state": self.random_state,
        }
        constraints = self.spec.monotone_constraints()
        if any(constraints):
            params["monotone_constraints"] = constraints
        else:
            # Without constraints the method is meaningless, and LightGBM 4.x crashes (segfault) when
            # "advanced" or "intermediate" meets a categorical feature (lightgbm-org/LightGBM#6841).
            params.pop("monotone_constraints_method", None)
        return LGBMClassifier(**params)

    def fit(self, df: pd.DataFrame, y=None) -> ScoringModel:
        """Train on a scoring table (`y` is ignored: the target is the spec's target column)."""
        self._check_params()
        encoder, target = training_rows(self.spec, df)
        X = encoder.transform(df).to_numpy(dtype="float64")
        names = self.spec.feature_names
        categorical = [i for i, name in enumerate(names) if name in set(self.spec.categorical)]
        report: dict = {"requested": self.calibration}
        boosters = {name: self._classifier(setting) for name, setting in BOOSTER_SETTINGS.items()}
        if self.calibration != "none":
            # Cross-fitting: every booster is cross-validated on the same folds of the training rows, which
            # sets its number of trees; the mean of their out-of-fold margins trains the calibrator, and the
            # final boosters learn from all rows (CalibratedClassifierCV's ensemble=False).
            split = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
            folds = list(split.split(X, target))
            crossed = {
                name: cross_fit(booster, X, target, folds, categorical) for name, booster in boosters.items()
            }
            oof_margin = np.mean([result.margin for result in crossed.values()], axis=0)
            for name, booster in boosters.items():
                booster.set_params(n_estimators=crossed[name].trees)
            report["cross_fitting"] = {
                "criterion": "mean held-out AUC over the folds (each booster stops where it peaks)",
                "boosters": {name: result.describe() for name, result in crossed.items()},
                "auc_per_fold": [float(roc_auc_score(target[held], oof_margin[held])) for _, held in folds],
            }
        for booster in boosters.values():
            # Plain column names for LightGBM: a bank's column names may hold characters it refuses.
            booster.fit(
                X, target, feature_name=[f"f{i}" for i in range(len(names))], categorical_feature=categorical
            )
        self.boosters_ = boosters
        report |= {
            "trees": {name: int(booster.n_estimators) for name, booster in boosters.items()},
            "rows_fit": len(df),
            "defaults_fit": int(target.sum()),
            "calibration_folds": 0 if self.calibration == "none" else self.calibration_folds,
        }
        if self.calibration == "none":
            calibrator = IdentityCalibrator()
        else:
            margin, y_cal = oof_margin, target
            method = self.calibration
            if method == "auto":
                method, report["cross_validation"] = _cross_validated_calibration(
                    margin, y_cal, self.scale, self.random_state
                )
            calibrator = _calibrator(method, self.scale).fit(margin, y_cal)
            pd_cal = self.scale.clip(calibrator.predict(margin))
            report["calibration_set"] = {
                "log_loss": float(log_loss(y_cal, pd_cal, labels=[0, 1])),
                "brier": float(brier_score_loss(y_cal, pd_cal)),
                "mean_pd": float(pd_cal.mean()),
                "default_rate": float(y_cal.mean()),
            }
        report["method"] = calibrator.name
        report["parameters"] = calibrator.describe()
        self.calibrator_ = calibrator
        self.calibration_report_ = report
        self.encoder_ = encoder
        # The expected margin over the boosters' training rows: TreeSHAP's base value, the same on every row.
        self.base_margin_ = float(self._contrib(X[:1])[0, -1])
        self._set_fitted_names()
        log.info("scoring model fitted: %s", report)
        return self

    # ------------------------------------------------------------ predictions

    def _boosters(self) -> list:
        """The fitted boosters (a model pickled before the ensemble holds one, as `model_`)."""
        models = self.boosters_.values() if hasattr(self, "boosters_") else [self.model_]
        return [m.booster_ for m in models]

    @staticmethod
    def _threads(X: np.ndarray) -> dict:
        # Batches use the boosters' threads; one application uses one, since waking threads costs more than
        # it saves and, under concurrent requests, they wait for cores.
        return {} if len(X) > BATCH_ROWS else {"num_threads": 1}

    def _margin(self, X: np.ndarray) -> np.ndarray:
        """The boosters' mean margin (log-odds before calibration)."""
        threads = self._threads(X)
        return np.mean([b.predict(X, raw_score=True, **threads) for b in self._boosters()], axis=0)

    def _contrib(self, X: np.ndarray) -> np.ndarray:
        """The boosters' mean TreeSHAP contributions (base last): they add up to the mean margin."""
        threads = self._threads(X)
        return np.mean([b.predict(X, pred_contrib=True, **threads) for b in self._boosters()], axis=0)

    def _prepare(self, df: pd.DataFrame) -> np.ndarray:
        return self.encoder_.transform(df).to_numpy(dtype="float64")

    def _prepare_rows(self, rows: Table) -> tuple[np.ndarray, list[Problem]]:
        # One application's row is encoded as a record (microseconds), a batch's as a table.
        encode = self.encoder_.encode if isinstance(rows, pd.DataFrame) else self.encoder_.encode_columns
        X, problems = encode(rows)
        bad = {p.row for p in problems}
        return (X if not bad else X[[i for i in range(len(X)) if i not in bad]]), problems

    def _pd(self, X: np.ndarray) -> np.ndarray:
        return self.scale.clip(self.calibrator_.predict(self._margin(X)))

    def _points(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """PD, score, per-feature points and the base, with points + base = score on every row.

        TreeSHAP (LightGBM pred_contrib) splits the margin exactly: margin = phi_0 + sum_j phi_j.
        - Platt (and none): the calibrated logit is a * margin + b, so score = offset - factor * logit
          = [offset - factor * (a * phi_0 + b)] + sum_j (-factor * a * phi_j): base plus points, exact.
        - Isotonic: PD is monotone in the margin but not affine. Raw points -factor * phi_j are
          rescaled per row so that they sum to score - base, where base is the score of the base
          margin phi_0 through the same calibrator (exact_points: shares and signs are kept).
        - The PD floor (and cap) bends the line for the rows it binds; those rows are rescaled too.
        """
        phi = self._contrib(X)
        margin = phi.sum(axis=1)  # TreeSHAP is exact: no second pass of the boosters for the margin
        raw_pd = self.calibrator_.predict(margin)
        pd_ = self.scale.clip(raw_pd)
        score = self.scale.score(pd_)
        calibrator = self.calibrator_
        raw = -self.scale.factor * calibrator.slope * phi[:, :-1]
        base_margin = np.array([self.base_margin_])
        if calibrator.name == "isotonic":
            base = float(self.scale.score(self.scale.clip(calibrator.predict(base_margin)))[0])
            rescale = np.ones(len(X), dtype=bool)
        else:
            base = float(self.scale.score_from_logit(calibrator.logit(base_margin))[0])
            rescale = (raw_pd < self.scale.pd_floor) | (raw_pd > 1.0 - self.scale.pd_floor)
        points = exact_points(raw, score - base, rescale)
        return pd_, score, points, base


# ================================================================ batch scoring


def score_batch(
    model: PDModelMixin,
    table: pd.DataFrame,
    *,
    policy: DecisionPolicy | None = None,
    top: int = MAX_REASONS,
    language: str = "zh",
) -> tuple[pd.DataFrame, list[Problem]]:
    """Score every usable row; rows with bad values get no score and are listed in the problems.

    One output row per input row, in input order. Columns: the spec's id (when the table has it),
    pd, score, grade, reason_codes (codes joined by ';'), then recommendation and declined_by (the
    policy's decline rules that applied, joined by ';'; both only when a policy is given), reasons
    (texts joined by '; ') and error (this row's problems, '' when scored). A table
    missing a feature column is refused as a whole (InvalidData).
    """
    check_is_fitted(model, "encoder_")
    scored = model.decide_rows(table, policy, top)
    spec = model.spec
    out = pd.DataFrame(index=table.index)
    if spec.id is not None and spec.id in table.columns:
        out[spec.id] = table[spec.id].to_numpy()
    out["pd"] = scored.pd
    out["score"] = scored.score
    out["grade"] = pd.Series(scored.grade, index=table.index, dtype=object)
    out["reason_codes"] = [";".join(r["code"] for r in row) for row in scored.reasons]
    if policy is not None:
        out["recommendation"] = pd.Series(scored.recommendation, index=table.index, dtype=object)
        out["declined_by"] = [";".join(flags) for flags in scored.declined_by]
    own = model.own_reasons
    out["reasons"] = [
        "; ".join(reason_for(r["feature"], own).text(language) for r in row) for row in scored.reasons
    ]
    errors = [""] * len(table)
    for p in scored.problems:
        message = f"{p.field}: expected {p.expected}; got {p.got!r}"
        errors[p.row] = f"{errors[p.row]}; {message}" if errors[p.row] else message
    out["error"] = errors
    return out, scored.problems
