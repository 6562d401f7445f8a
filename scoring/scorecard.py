"""The challenger: a WOE-binned logistic scorecard (optbinning), on the same scale as the champion.

Each feature is cut into optimal bins (optbinning `BinningProcess`; the spec's monotone directions
become monotone event-rate trends across the bins), each bin is replaced by its weight of evidence,
and a logistic regression on the WOEs gives the PD. optbinning's `Scorecard` turns the coefficients
into points per bin with `scaling_method="pdo_odds"` and the model's own ScoreScale (base points,
base odds, PDO), so a scorecard point and a LightGBM point mean the same thing and the bin points
of `table()` add up to the score of `score()` (for PDs inside the floor).

Explanations use the same idea as the champion's: each feature's points are -factor * coef * WOE,
measured from a base of offset - factor * intercept (the score when every WOE is 0, i.e. every bin
at the sample's average odds); feature points plus base equal the score exactly.

optbinning 1.0 under pandas 3.1 emits two pandas deprecation warnings (Pandas4Warning) from its own
code on every fit; docs/scoring-model.md names them. They do not change the result.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from optbinning import BinningProcess, Scorecard
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from features.spec import FeatureSpec, category_text
from scoring.model import PDModelMixin, exact_points, training_rows
from scoring.scale import ScoreScale

log = logging.getLogger(__name__)

# optbinning's names for the spec's monotone directions: the default rate rises / falls across the bins.
_TRENDS = {"increasing": "ascending", "decreasing": "descending"}
TABLE_COLUMNS = ["Variable", "Bin id", "Bin", "Count", "Event rate", "WoE", "Coefficient", "Points"]


class ScorecardModel(PDModelMixin, BaseEstimator):
    """WOE logistic scorecard with the same inputs, outputs and scale as ScoringModel.

    Parameters
    ----------
    spec : the feature spec (target 1 = default); monotone features get monotone bins.
    scale : the points-to-double-odds scale (stored with the model; also scales the bin points).
    random_state : seed of the logistic regression.
    min_bin_size : smallest share of the rows a bin may hold.
    C : inverse L2 strength of the logistic regression.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        scale: ScoreScale = ScoreScale(),  # noqa: B008 - frozen, so one shared default is safe
        random_state: int = 0,
        min_bin_size: float = 0.05,
        C: float = 1.0,
    ):
        self.spec = spec
        self.scale = scale
        self.random_state = random_state
        self.min_bin_size = min_bin_size
        self.C = C

    def _binning_process(self) -> BinningProcess:
        fit_params = {
            column.name: {"monotonic_trend": _TRENDS[column.monotone]}
            for column in self.spec.features
            if column.monotone is not None
        }
        return BinningProcess(
            variable_names=list(self.spec.feature_names),
            categorical_variables=list(self.spec.categorical),
            min_bin_size=self.min_bin_size,
            binning_fit_params=fit_params or None,
        )

    def fit(self, df: pd.DataFrame, y=None) -> ScorecardModel:
        """Train on a scoring table (`y` is ignored: the target is the spec's target column)."""
        if not isinstance(self.scale, ScoreScale):
            raise TypeError(f"scale must be a ScoreScale; got {type(self.scale).__name__}")
        encoder, target = training_rows(self.spec, df)
        self.encoder_ = encoder
        scorecard = Scorecard(
            binning_process=self._binning_process(),
            estimator=LogisticRegression(C=self.C, max_iter=1000, random_state=self.random_state),
            scaling_method="pdo_odds",
            scaling_method_params={
                "pdo": self.scale.pdo,
                "odds": self.scale.base_odds,
                "scorecard_points": self.scale.base_points,
            },
        )
        # A missing value gets its own bin's WOE, as any bin does: missing data are often telling
        # (HMEQ's missing debt-to-income ratios default more). optbinning's default would give it 0.
        self.scorecard_ = scorecard.fit(
            self._prepare(df), target, metric_missing="empirical", metric_special="empirical"
        )
        self.selected_ = list(scorecard.binning_process_.get_support(names=True))
        estimator = scorecard.estimator_
        self.coef_ = pd.Series(estimator.coef_.ravel(), index=self.selected_)
        self.intercept_ = float(np.ravel(estimator.intercept_)[0])
        # optbinning's WOE is ln(share of repaid / share of defaults): a safer bin has a higher WOE and a
        # fitted coefficient is normally negative. A positive one (collinear features) makes the feature's
        # points run against its own bins, monotone ones included: recorded and logged for review.
        self.reversed_features_ = [name for name, c in self.coef_.items() if c > 0]
        if self.reversed_features_:
            log.warning(
                "scorecard: positive coefficients on %s run against their WOE", self.reversed_features_
            )
        self._set_fitted_names()
        return self

    def _prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """The spec's columns as optbinning reads them: numbers as float, categories as text objects
        (optbinning 1.0 takes pandas 3 string columns for numbers; optbinning issue #399)."""
        out = {}
        for column in self.spec.features:
            if column.type == "categorical":
                out[column.name] = category_text(df[column.name]).to_numpy(dtype=object, na_value=np.nan)
            else:
                out[column.name] = pd.to_numeric(df[column.name]).to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(out, index=df.index)

    def _pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.scale.clip(self.scorecard_.predict_proba(X)[:, 1])

    def _points(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """PD, score, points per feature and base; see the module docstring."""
        woe = self.scorecard_.binning_process_.transform(
            X, metric="woe", metric_special="empirical", metric_missing="empirical"
        )
        logit_parts = woe[self.selected_].to_numpy(dtype="float64") * self.coef_.to_numpy()
        raw_pd = self.scorecard_.predict_proba(X)[:, 1]
        pd_ = self.scale.clip(raw_pd)
        score = self.scale.score(pd_)
        raw = np.zeros((len(X), len(self.spec.feature_names)))
        positions = [self.spec.feature_names.index(name) for name in self.selected_]
        raw[:, positions] = -self.scale.factor * logit_parts
        base = float(self.scale.score_from_logit(self.intercept_))
        # Rows the PD floor (or cap) binds are off the straight line: rescale those to the score.
        rescale = (raw_pd < self.scale.pd_floor) | (raw_pd > 1.0 - self.scale.pd_floor)
        return pd_, score, exact_points(raw, score - base, rescale), base

    def table(self) -> pd.DataFrame:
        """The scorecard: per feature and bin, its count, default rate, WOE, coefficient and points.

        Points are optbinning's pdo_odds points on this model's scale; a row's score is the sum of
        the points of its bins (one bin per feature), before the PD floor.
        """
        check_is_fitted(self, "scorecard_")
        return self.scorecard_.table(style="detailed")[TABLE_COLUMNS].reset_index(drop=True)
