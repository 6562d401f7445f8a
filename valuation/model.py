"""The value model: LightGBM on log value with conformal intervals and multiplicative SHAP factors.

One model serves patents and trademarks, with the asset kind as a feature: owner revenue, industry
and remaining life act alike on both, and trademarks (a minority of the appraisals) borrow strength
from the patents. Intervals are normalised conformal, calibrated on out-of-fold residuals per asset kind
and band of the predicted value (Mondrian): each asset's half width is its bin's quantile of
|residual| / sigma times the asset's own difficulty sigma(x), from a small second booster, so coverage
holds for each kind and along the value scale, and the interval is wide where assets like it are hard to
value; docs/valuation.md says more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from features.encoder import RECORD_ROWS, SpecEncoder, training_encoder
from features.errors import InvalidData
from features.spec import FeatureSpec
from features.values import plain
from valuation._common import Columns, text

# SpecEncoder lives in features.encoder; this name keeps models pickled before the move loadable (their
# pickles refer to valuation.model.SpecEncoder).
__all__ = ["DEFAULT_PARAMS", "DIFFICULTY_PARAMS", "SpecEncoder", "ValueModel"]

DEFAULT_PARAMS = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "verbose": -1,
    "n_jobs": 2,
}

# The difficulty model (sigma(x), fitted on the log absolute out-of-fold residual): few, large leaves, since
# a residual is a noisy measure of an asset's difficulty, and few trees, since it runs on every request.
DIFFICULTY_PARAMS = {
    "n_estimators": 30,
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "verbose": -1,
    "n_jobs": 2,
}
# Residuals below this (log scale: 0.1% of the value) are read as this: log(0) is -inf, and a near-exact
# hit says no more about an asset's difficulty than a small miss.
RESIDUAL_FLOOR = 1e-3
# The scores are calibrated per group and per band of the predicted value within it (Mondrian), so that
# coverage holds along the value scale too: where the point model is biased (at the ends of the scale)
# |residual| / sigma has another shape than in the middle. Each band holds at least MIN_BAND_ROWS rows.
VALUE_BANDS = 5
MIN_BAND_ROWS = 100


class ValueModel(RegressorMixin, BaseEstimator):
    """Value in CNY of an asset from the spec's features, with a conformal interval.

    Parameters
    ----------
    spec : the feature spec (target: a positive value in CNY).
    group : column whose values get intervals calibrated separately (the asset kind), or None.
    level : default interval level.
    n_folds : folds for the out-of-fold residuals that calibrate the intervals.
    params : LightGBM parameters (DEFAULT_PARAMS when None).
    random_state : seed of the folds and the booster.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        group: str | None = "asset_kind",
        level: float = 0.9,
        n_folds: int = 5,
        params: dict | None = None,
        random_state: int = 0,
    ):
        self.spec = spec
        self.group = group
        self.level = level
        self.n_folds = n_folds
        self.params = params
        self.random_state = random_state

    def _booster(self) -> LGBMRegressor:
        params = {**DEFAULT_PARAMS, **(self.params or {}), "random_state": self.random_state}
        constraints = self.spec.monotone_constraints()
        if any(constraints):
            params["monotone_constraints"] = constraints
        return LGBMRegressor(**params)

    def _difficulty_booster(self) -> LGBMRegressor:
        return LGBMRegressor(**DIFFICULTY_PARAMS, random_state=self.random_state)

    def fit(self, df: pd.DataFrame, y=None) -> ValueModel:
        self.encoder_ = training_encoder(self.spec, df, "valuation")
        X = self.encoder_.transform(df)
        log_y = np.log(df[self.spec.target].to_numpy(dtype="float64"))
        groups = self._groups(df)
        folds = self._folds(df)
        log_value = _out_of_fold(self._booster, X, log_y, folds)
        residuals = np.abs(log_y - log_value)
        # The constant-width scores (absolute log errors per group): the interval of models fitted before
        # adaptive ones, kept so that the two can be compared on any model (constant_half_width).
        self.scores_ = {g: np.sort(residuals[groups == g]) for g in np.unique(groups)}
        # Difficulty: a small booster on the log absolute residual, itself out of fold, so that no row's score
        # is divided by a sigma fitted on that row's own residual.
        log_residuals = np.log(np.maximum(residuals, RESIDUAL_FLOOR))
        log_sigma = _out_of_fold(self._difficulty_booster, X, log_residuals, folds)
        # How far to trust it: the slope of the log residuals on its out-of-fold predictions, in [0, 1]; near
        # 0 where it cannot tell assets apart, so that the interval falls back towards one width per bin.
        spread = np.var(log_sigma)
        slope = np.cov(log_sigma, log_residuals, bias=True)[0, 1] / spread if spread > 0 else 0.0
        self.difficulty_slope_ = float(np.clip(slope, 0.0, 1.0))
        self.difficulty_model_ = self._difficulty_booster().fit(X, log_residuals)
        # Conformity scores: |residual| / sigma, kept sorted per bin (group, value band) so any level can be
        # asked.
        normalised = residuals / np.exp(self.difficulty_slope_ * log_sigma)
        self.value_bands_ = {g: _band_edges(log_value[groups == g]) for g in np.unique(groups)}
        self.normalised_scores_ = {}
        for group in self.value_bands_:
            rows = groups == group
            bands = self._bands(group, log_value[rows])
            for band in np.unique(bands):
                self.normalised_scores_[group, int(band)] = np.sort(normalised[rows][bands == band])
        self.model_ = self._booster().fit(X, log_y)
        # Features no row of a group has (patent facts of trademarks): explanations fold them into the group.
        missing = X.isna().to_numpy()
        self.inapplicable_ = {
            g: tuple(X.columns[missing[groups == g].all(axis=0) & (X.columns != self.group)])
            for g in np.unique(groups)
        }
        self.feature_names_in_ = np.asarray(self.spec.feature_names, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _folds(self, df: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """(other rows, fold rows) of each out-of-fold split: shuffled, seeded, and every row of one asset
        (the spec's id) in one fold, so that an asset appraised twice does not calibrate its own interval."""
        if self.spec.id and self.spec.id in df:
            _, asset = np.unique(df[self.spec.id].astype(str).to_numpy(), return_inverse=True)
        else:
            asset = np.arange(len(df))
        fold_of_asset = np.random.default_rng(self.random_state).permutation(asset.max() + 1) % self.n_folds
        fold = fold_of_asset[asset]
        return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(self.n_folds)]

    def _groups(self, table: pd.DataFrame | Columns) -> np.ndarray:
        """Each row's interval group (its `group` value as text), from a table or its Columns."""
        if self.group and self.group in table:
            return (table if isinstance(table, Columns) else Columns(table)).get(self.group, text)
        return np.full(len(table), "all", dtype=object)

    def difficulty(self, X: np.ndarray) -> np.ndarray:
        """Each encoded row's difficulty sigma(x), the factor its interval's half width scales with; 1 for a
        model fitted before adaptive intervals (it has no difficulty model: one width per group)."""
        difficulty = getattr(self, "difficulty_model_", None)
        if difficulty is None:
            return np.ones(len(X))
        return np.exp(self.difficulty_slope_ * self._predict(X, difficulty.booster_))

    def _bands(self, group: str, log_values: np.ndarray) -> np.ndarray:
        """The band (0 = lowest) of each predicted log value within the group's; 0 for a group unseen in
        training, which has no bins and takes the scores of all."""
        edges = self.value_bands_.get(group)
        if edges is None:
            return np.zeros(log_values.size, dtype=int)
        return np.searchsorted(edges, log_values, "right")

    def half_width(
        self,
        groups: np.ndarray,
        level: float | None = None,
        sigmas: np.ndarray | None = None,
        log_values: np.ndarray | None = None,
    ) -> np.ndarray:
        """Log-scale half width of each row's interval at `level`: the conformal quantile of the normalised
        scores of its bin (its group and the band of its predicted log value, `log_values`) times its
        difficulty (`sigmas`, from `difficulty`). A model fitted before adaptive intervals gives its group's
        constant width, whatever the sigmas and values."""
        if getattr(self, "difficulty_model_", None) is None:
            return self.constant_half_width(groups, level)
        for name, given in (("difficulty sigma", sigmas), ("predicted log value", log_values)):
            if given is None or np.shape(given) != groups.shape:
                got = "none" if given is None else f"shape {np.shape(given)}"
                raise ValueError(f"half_width: expected each row's {name}, shape {groups.shape}; got {got}")
        level = self._level(level)
        quantiles = np.empty(groups.size)
        for group in set(groups):
            rows = np.flatnonzero(groups == group)
            bands = self._bands(group, log_values[rows])
            for band in np.unique(bands):
                quantile = _conformal_quantile(self.normalised_scores_, (group, int(band)), level)
                quantiles[rows[bands == band]] = quantile
        return quantiles * sigmas

    def constant_half_width(self, groups: np.ndarray, level: float | None = None) -> np.ndarray:
        """One half width per group at `level` (the group's quantile of absolute out-of-fold log errors): the
        interval of models fitted before adaptive ones, kept to compare with."""
        level = self._level(level)
        out = np.empty(groups.size)
        for group in set(groups):
            out[groups == group] = _conformal_quantile(self.scores_, group, level)
        return out

    def _level(self, level: float | None) -> float:
        level = self.level if level is None else level
        if not 0 < level < 1:
            raise ValueError(f"interval level must lie strictly between 0 and 1; got {level}")
        return level

    def predict_log(self, X: pd.DataFrame) -> np.ndarray:
        return self._predict(X.to_numpy(dtype="float64"))

    def _predict(self, X: np.ndarray, booster=None, **options) -> np.ndarray:
        """The value booster's (or the given booster's) prediction of encoded rows."""
        # Batches use the booster's threads; a request's few rows use one, since waking threads costs more
        # than it saves and, under concurrent requests, they wait for cores (7.9 ms against 0.3 ms for two
        # assets on a busy 2-core machine).
        threads = {} if len(X) > RECORD_ROWS else {"num_threads": 1}
        return (self.model_.booster_ if booster is None else booster).predict(X, **threads, **options)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Values in CNY (the median estimate: exp of the log-scale prediction)."""
        check_is_fitted(self, "model_")
        return np.exp(self.predict_log(self.encoder_.transform(df)))

    def predict_interval(self, df: pd.DataFrame, level: float | None = None) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        return pd.DataFrame(
            self.interval(self.encoder_.transform(df).to_numpy(dtype="float64"), self._groups(df), level),
            index=df.index,
        )

    def interval(
        self, X: np.ndarray, groups: np.ndarray, level: float | None = None
    ) -> dict[str, np.ndarray]:
        """Value and interval bounds in CNY of encoded rows (SpecEncoder) with their groups."""
        log_value = self._predict(X)
        half = self.half_width(groups, level, self.difficulty(X), log_value)
        return {
            "value_cny": np.exp(log_value),
            "value_low_cny": np.exp(log_value - half),
            "value_high_cny": np.exp(log_value + half),
        }

    def value_one(self, record: Mapping, level: float | None = None, explain: bool = True) -> dict:
        """One asset's value, interval and (optionally) multiplicative explanation, on the fast path:
        no DataFrame, one thread. Refused with InvalidData listing every bad field."""
        check_is_fitted(self, "model_")
        x, problems = self.encoder_.record_row(record)
        if problems:
            raise InvalidData(problems, "asset")
        booster = self.model_.booster_
        group = str(record.get(self.group, "all")) if self.group else "all"
        out = {"value_cny": None, "value_low_cny": None, "value_high_cny": None}
        if explain:
            contrib = booster.predict(x[None, :], pred_contrib=True, num_threads=1)[0]
            log_value = float(contrib.sum())
            out["factors"] = self._factors(contrib, record.get, group)
        else:
            log_value = float(booster.predict(x[None, :], num_threads=1)[0])
        groups, log_values = np.array([group], dtype=object), np.array([log_value])
        half = self.half_width(groups, level, self.difficulty(x[None, :]), log_values)[0]
        out.update(
            value_cny=math.exp(log_value),
            value_low_cny=math.exp(log_value - half),
            value_high_cny=math.exp(log_value + half),
        )
        return out

    def explain_rows(
        self, X: np.ndarray, groups: np.ndarray, records: Sequence[Mapping], top: int | None = None
    ) -> list[list[dict]]:
        """`explain` of encoded rows (SpecEncoder) with their groups, showing the values of the records
        they were encoded from: the factors `value_one` gives each record, from one pass over all rows."""
        contrib = self._predict(X, pred_contrib=True)
        return [self._factors(contrib[i], records[i].get, groups[i], top) for i in range(len(X))]

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions on the log scale (LightGBM's own), plus the base value:
        they add up to the log value, so their exponentials multiply to the value in CNY."""
        check_is_fitted(self, "model_")
        X = self.encoder_.transform(df).to_numpy(dtype="float64")
        contrib = self._predict(X, pred_contrib=True)
        return pd.DataFrame(contrib, columns=[*self.feature_names_in_, "base"], index=df.index)

    def explain(self, df: pd.DataFrame, top: int | None = None) -> list[list[dict]]:
        """Per row: the base value and each feature's multiplicative factor on the CNY value, largest
        effects first ("forward_citations = 12: x1.8"). The factors multiply exactly to the value."""
        contrib = self.contributions(df).to_numpy()
        groups = self._groups(df)
        return [
            self._factors(contrib[i], lambda name, i=i: df[name].iat[i], groups[i], top)
            for i in range(len(df))
        ]

    def _factors(self, contrib: np.ndarray, value_of, group: str, top: int | None = None) -> list[dict]:
        """Base first, then each feature's factor, largest effect first. A feature that no training row
        of the asset's group had (a patent's claims, for a trademark) is not a fact about this asset: its
        effect is the group's, and is folded into the group column's factor (the product stays exact)."""
        effects = dict(zip(self.feature_names_in_, contrib[:-1].tolist(), strict=True))
        folded = [f for f in getattr(self, "inapplicable_", {}).get(group, ()) if f in effects]
        if folded and self.group in effects:
            effects[self.group] += sum(effects.pop(f) for f in folded)
        names = sorted(effects, key=lambda f: -abs(effects[f]))[: top or None]
        # one exp over the row (numpy's exp of an array gives each element what it gives it alone)
        factors = np.exp(np.array([contrib[-1], *(effects[f] for f in names)])).tolist()
        return [{"feature": "base", "value": None, "factor": factors[0]}] + [
            {"feature": f, "value": plain(value_of(f)), "factor": factor}
            for f, factor in zip(names, factors[1:], strict=True)
        ]


def _out_of_fold(make, X: pd.DataFrame, target: np.ndarray, folds: list) -> np.ndarray:
    """Each row's prediction by a booster (`make()`) fitted on the other folds."""
    out = np.empty(len(target))
    for train, test in folds:
        out[test] = make().fit(X.iloc[train], target[train]).predict(X.iloc[test])
    return out


def _band_edges(log_values: np.ndarray) -> np.ndarray:
    """Edges of VALUE_BANDS equally filled bands of the values, fewer where a band would hold fewer than
    MIN_BAND_ROWS rows."""
    bands = max(1, min(VALUE_BANDS, log_values.size // MIN_BAND_ROWS))
    return np.quantile(log_values, np.arange(1, bands) / bands)


def _conformal_quantile(scores: Mapping, key, level: float) -> float:
    """The finite-sample conformal quantile at `level` of the sorted scores under `key`: the
    ceil((n + 1) level)-th smallest, or the largest where n scores cannot support the level. A key without
    scores (a group unseen in training) takes the scores of all keys."""
    sorted_scores = scores.get(key)
    if sorted_scores is None:
        sorted_scores = np.sort(np.concatenate(list(scores.values())))
    k = min(int(np.ceil((sorted_scores.size + 1) * level)), sorted_scores.size) - 1
    return float(sorted_scores[k])
