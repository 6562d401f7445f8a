"""The IP + credit scoring model: a monotone LightGBM classifier, a calibrated 12-month PD, a score,
a grade, exact score-point explanations and reason codes.

Training (``ScoringModel.fit``):

1. the table is checked against the spec and every unusable value is refused at once (InvalidData);
2. LightGBM is trained on ``calibration_folds`` stratified folds (4 by default), each booster
   predicting the rows it did not see, so every row gets an out-of-fold margin (log-odds);
3. the final LightGBM is trained on all rows, held to the spec's monotone directions;
4. the out-of-fold margins are mapped to a calibrated PD by Platt scaling (PD = sigmoid(a * margin + b),
   a > 0) or isotonic regression; with ``calibration="auto"`` the one with the lower cross-validated
   log-loss on the out-of-fold margins is kept, and the choice and figures are recorded in
   ``calibration_report_``.

Cross-fitting keeps every row for the booster (a held-out calibration set costs small books a quarter
of their defaults) while the calibrator still learns from margins of rows the booster had not seen,
so it corrects the booster's over-confidence instead of learning it (as scikit-learn's
CalibratedClassifierCV with ensemble=False).

Explanations (``contributions``) are in score points and add up to the row's score exactly; see
``ScoringModel.contributions`` and docs/scoring-model.md for why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import lightgbm
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from features.errors import InvalidData, Problem
from features.spec import FeatureSpec
from scoring.reasons import MAX_REASONS, reason_codes
from scoring.scale import DecisionPolicy, ScoreScale, grade
from valuation.model import SpecEncoder

log = logging.getLogger(__name__)

# Defaults for small default rates (a few percent of a few thousand loans): shallow trees, a slow
# learning rate and row / column subsampling keep the booster from memorising the few defaults.
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
CALIBRATIONS = ("auto", "platt", "isotonic", "none")
# Rounds without improvement of the held-out fold's log-loss after which a fold's booster stops.
EARLY_STOPPING_ROUNDS = 50
# Fewest defaults (and fewest repaid loans) a training table must hold: below this neither the
# booster nor a calibrator has anything to learn from.
MIN_CLASS_ROWS = 10
# Folds of the cross-validation that picks the calibrator (fewer when the calibration set has
# fewer defaults than this).
CALIBRATION_FOLDS = 5
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
    clipped outside the calibration range). Monotone but not affine: points are rescaled per row."""

    name = "isotonic"
    slope = 1.0

    def fit(self, margin: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        self.isotonic_.fit(np.asarray(margin, dtype="float64"), np.asarray(y, dtype="float64"))
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return self.isotonic_.predict(np.asarray(margin, dtype="float64"))

    def describe(self) -> dict:
        return {"steps": int(self.isotonic_.X_thresholds_.size)}


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


_CALIBRATORS = {"platt": PlattCalibrator, "isotonic": IsotonicCalibrator}


def _cross_validated_calibration(
    margin: np.ndarray, y: np.ndarray, scale: ScoreScale, random_state: int
) -> tuple[str, dict]:
    """Platt or isotonic, whichever has the lower out-of-fold log-loss within the calibration set
    (Platt on a tie or when there are too few defaults to cross-validate). PDs are floored as the
    model floors them, so an isotonic 0 is not an infinite loss."""
    folds = min(CALIBRATION_FOLDS, int((y == 1).sum()), int((y == 0).sum()))
    if folds < 2:
        return "platt", {"folds": folds, "note": "too few defaults to cross-validate; Platt kept"}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    oof = {name: np.empty(y.size) for name in _CALIBRATORS}
    for fit_rows, test_rows in splitter.split(margin.reshape(-1, 1), y):
        for name, calibrator in _CALIBRATORS.items():
            fitted = calibrator().fit(margin[fit_rows], y[fit_rows])
            oof[name][test_rows] = scale.clip(fitted.predict(margin[test_rows]))
    figures = {
        name: {"log_loss": float(log_loss(y, p, labels=[0, 1])), "brier": float(brier_score_loss(y, p))}
        for name, p in oof.items()
    }
    choice = "isotonic" if figures["isotonic"]["log_loss"] < figures["platt"]["log_loss"] else "platt"
    return choice, {"folds": folds, "criterion": "log_loss", **figures}


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


class PDModelMixin:
    """Score, grade, explanations, reasons and decisions for a fitted PD model.

    A model supplies `spec`, `scale`, a fitted `encoder_` (SpecEncoder), `_prepare(df)` (the input it
    predicts from), `_pd(prepared)` (floored PDs) and `_points(prepared)` (PD, score, per-feature
    points and base; points + base = score).
    """

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
        return reason_codes(self.contributions(df), top=top, language=language)

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
        reason_codes (list of codes) and reasons (list of texts in `language`).
        Refuses the whole table if any row is unusable; `score_batch` scores the good rows instead.
        """
        policy = policy if policy is not None else DecisionPolicy()
        prepared = self._checked(df)
        pd_, score, points, base = self._points(prepared)
        frame = pd.DataFrame(points, columns=list(self.spec.feature_names), index=df.index)
        frame["base"] = base
        reasons = reason_codes(frame, top=top, language=language)
        out = pd.DataFrame(index=df.index)
        if self.spec.id is not None and self.spec.id in df.columns:
            out[self.spec.id] = df[self.spec.id].to_numpy()
        recommendation = policy.recommend(pd_)
        out["pd"] = pd_
        out["score"] = score
        out["grade"] = grade(pd_)
        out["recommendation"] = recommendation
        out["recommendation_label"] = [policy.label(r, language) for r in recommendation]
        out["reason_codes"] = [[r["code"] for r in row] for row in reasons]
        out["reasons"] = [[r["text"] for r in row] for row in reasons]
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
    params : LightGBM parameters overriding DEFAULT_PARAMS.
    calibration : "auto" (Platt or isotonic by cross-validated log-loss), "platt", "isotonic", or
        "none" (the booster's margin is the PD log-odds; no calibration set is held out).
    calibration_folds : folds of the cross-fitting that gives the calibrator out-of-fold margins.
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

    def _classifier(self) -> LGBMClassifier:
        params = {**DEFAULT_PARAMS, **(self.params or {}), "random_state": self.random_state}
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

        def booster(
            rows: np.ndarray, held: np.ndarray | None = None, trees: int | None = None
        ) -> LGBMClassifier:
            # Plain column names for LightGBM: a bank's column names may hold characters it refuses.
            classifier = self._classifier()
            if trees is not None:
                classifier.set_params(n_estimators=trees)
            stop = (
                {}
                if held is None
                else {
                    "eval_X": X[held],
                    "eval_y": target[held],
                    "callbacks": [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
                }
            )
            return classifier.fit(
                X[rows],
                target[rows],
                feature_name=[f"f{i}" for i in range(len(names))],
                categorical_feature=categorical,
                **stop,
            )

        # Cross-fitting: on each fold a booster learns from the other folds, stops early on this one, and
        # predicts it. Its out-of-fold margins train the calibrator and its best iterations set the number
        # of trees of the final booster, which learns from all rows (CalibratedClassifierCV's ensemble=False).
        all_rows = np.arange(len(df))
        oof_margin = np.empty(len(df))
        n_folds = self.calibration_folds
        best_trees = []
        if self.calibration != "none":
            folds = StratifiedKFold(n_folds, shuffle=True, random_state=self.random_state)
            for fit_rows, held_rows in folds.split(X, target):
                fold = booster(fit_rows, held_rows)
                best_trees.append(max(int(fold.best_iteration_ or fold.n_estimators), 1))
                oof_margin[held_rows] = fold.booster_.predict(
                    X[held_rows], raw_score=True, num_iteration=best_trees[-1]
                )
        model = booster(all_rows, trees=int(np.mean(best_trees)) if best_trees else None)
        self.model_ = model
        report = {
            "trees": int(model.n_estimators),
            "trees_per_fold": best_trees,
            "requested": self.calibration,
            "rows_fit": int(all_rows.size),
            "defaults_fit": int(target.sum()),
            "calibration_folds": 0 if self.calibration == "none" else n_folds,
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
            calibrator = _CALIBRATORS[method]().fit(margin, y_cal)
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
        # The expected margin over the booster's training rows: TreeSHAP's base value, the same on every row.
        self.base_margin_ = float(self._contrib(X[:1])[0, -1])
        self._set_fitted_names()
        log.info("scoring model fitted: %s", report)
        return self

    def decide_one(
        self,
        record: Mapping,
        policy: DecisionPolicy | None = None,
        top: int = MAX_REASONS,
        language: str = "zh",
    ) -> dict:
        """One application on the fast path (a record in, no DataFrame to encode): pd, score, grade,
        recommendation, reasons and the points of every feature (points + base_points = score).
        Refused with InvalidData listing every bad field."""
        check_is_fitted(self, "encoder_")
        x, problems = self.encoder_.record_row(record)
        if problems:
            raise InvalidData(problems, "application")
        pd_, score, points, base = self._points(x[None, :])
        names = list(self.spec.feature_names)
        reasons = reason_codes(pd.DataFrame(points, columns=names), top=top, language=language)[0]
        policy = policy if policy is not None else DecisionPolicy()
        recommendation = policy.recommend(pd_)[0]
        return {
            "pd": float(pd_[0]),
            "score": float(score[0]),
            "grade": grade(pd_)[0],
            "recommendation": recommendation,
            "recommendation_label": policy.label(recommendation, language),
            "reason_codes": [r["code"] for r in reasons],
            "reasons": reasons,
            "points": dict(zip(names, points[0].tolist(), strict=True)),
            "base_points": float(np.asarray(base).reshape(-1)[0]),
        }

    # ------------------------------------------------------------ predictions

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.model_.booster_.predict(X, raw_score=True, num_threads=1)

    def _contrib(self, X: np.ndarray) -> np.ndarray:
        return self.model_.booster_.predict(X, pred_contrib=True, num_threads=1)

    def _prepare(self, df: pd.DataFrame) -> np.ndarray:
        return self.encoder_.transform(df).to_numpy(dtype="float64")

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
        margin = self._margin(X)
        raw_pd = self.calibrator_.predict(margin)
        pd_ = self.scale.clip(raw_pd)
        score = self.scale.score(pd_)
        phi = self._contrib(X)
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
    pd, score, grade, reason_codes (codes joined by ';'), then recommendation (only when a policy is
    given), reasons (texts joined by '; ') and error (this row's problems, '' when scored). A table
    missing a feature column is refused as a whole (InvalidData).
    """
    check_is_fitted(model, "encoder_")
    problems = model.encoder_.row_problems(table)
    bad = np.zeros(len(table), dtype=bool)
    bad[[p.row for p in problems]] = True
    out = pd.DataFrame(index=table.index)
    spec = model.spec
    if spec.id is not None and spec.id in table.columns:
        out[spec.id] = table[spec.id].to_numpy()
    out["pd"] = np.nan
    out["score"] = np.nan
    out["grade"] = pd.Series([None] * len(table), index=table.index, dtype=object)
    out["reason_codes"] = ""
    if policy is not None:
        out["recommendation"] = pd.Series([None] * len(table), index=table.index, dtype=object)
    out["reasons"] = ""
    good = ~bad
    if good.any():
        decided = model.decide(table[good], policy=policy, top=top, language=language)
        out.loc[good, "pd"] = decided["pd"].to_numpy()
        out.loc[good, "score"] = decided["score"].to_numpy()
        out.loc[good, "grade"] = decided["grade"].to_numpy()
        out.loc[good, "reason_codes"] = [";".join(codes) for codes in decided["reason_codes"]]
        out.loc[good, "reasons"] = ["; ".join(texts) for texts in decided["reasons"]]
        if policy is not None:
            out.loc[good, "recommendation"] = decided["recommendation"].to_numpy()
    errors = [""] * len(table)
    for p in problems:
        message = f"{p.field}: expected {p.expected}; got {p.got!r}"
        errors[p.row] = f"{errors[p.row]}; {message}" if errors[p.row] else message
    out["error"] = errors
    return out, problems
