"""The value model: LightGBM on log value with conformal intervals and multiplicative SHAP factors.

One model serves patents and trademarks, with the asset kind as a feature: owner revenue, industry
and remaining life act alike on both, and trademarks (a minority of the appraisals) borrow strength
from the patents. Intervals are calibrated per asset kind (Mondrian split-conformal on
out-of-fold residuals), so coverage holds for each kind separately; docs/valuation.md says more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from features.encoder import RECORD_ROWS, SpecEncoder, training_encoder
from features.errors import InvalidData
from features.spec import FeatureSpec
from features.values import plain
from valuation._common import Columns, text

# SpecEncoder lives in features.encoder; this name keeps models pickled before the move loadable (their
# pickles refer to valuation.model.SpecEncoder).
__all__ = ["DEFAULT_PARAMS", "SpecEncoder", "ValueModel"]

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

    def fit(self, df: pd.DataFrame, y=None) -> ValueModel:
        self.encoder_ = training_encoder(self.spec, df, "valuation")
        X = self.encoder_.transform(df)
        log_y = np.log(df[self.spec.target].to_numpy(dtype="float64"))
        groups = self._groups(df)
        oof = np.empty(len(df))
        folds = KFold(self.n_folds, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(X):
            oof[test] = self._booster().fit(X.iloc[train], log_y[train]).predict(X.iloc[test])
        # Conformity scores: absolute out-of-fold log errors, kept sorted per group so any level can be asked.
        residuals = np.abs(log_y - oof)
        self.scores_ = {g: np.sort(residuals[groups == g]) for g in np.unique(groups)}
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

    def _groups(self, table: pd.DataFrame | Columns) -> np.ndarray:
        """Each row's interval group (its `group` value as text), from a table or its Columns."""
        if self.group and self.group in table:
            return (table if isinstance(table, Columns) else Columns(table)).get(self.group, text)
        return np.full(len(table), "all", dtype=object)

    def half_width(self, groups: np.ndarray, level: float | None = None) -> np.ndarray:
        """Log-scale half width of the interval at `level` for each row's group (finite-sample quantile)."""
        level = self.level if level is None else level
        if not 0 < level < 1:
            raise ValueError(f"interval level must lie strictly between 0 and 1; got {level}")
        out = np.full(groups.size, np.nan)
        for g in np.unique(groups):
            scores = self.scores_.get(g)
            if scores is None:  # a group unseen in training uses all residuals
                scores = np.sort(np.concatenate(list(self.scores_.values())))
            k = min(int(np.ceil((scores.size + 1) * level)), scores.size) - 1
            out[groups == g] = scores[k]
        return out

    def predict_log(self, X: pd.DataFrame) -> np.ndarray:
        return self._predict(X.to_numpy(dtype="float64"))

    def _predict(self, X: np.ndarray, **options) -> np.ndarray:
        # Batches use the booster's threads; a request's few rows use one, since waking threads costs more
        # than it saves and, under concurrent requests, they wait for cores (7.9 ms against 0.3 ms for two
        # assets on a busy 2-core machine).
        threads = {} if len(X) > RECORD_ROWS else {"num_threads": 1}
        return self.model_.booster_.predict(X, **threads, **options)

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
        half = self.half_width(groups, level)
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
        half = self.half_width(np.array([group], dtype=object), level)[0]
        out = {"value_cny": None, "value_low_cny": None, "value_high_cny": None}
        if explain:
            contrib = booster.predict(x[None, :], pred_contrib=True, num_threads=1)[0]
            log_value = float(contrib.sum())
            out["factors"] = self._factors(contrib, record.get, group)
        else:
            log_value = float(booster.predict(x[None, :], num_threads=1)[0])
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
