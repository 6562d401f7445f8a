"""The value model: LightGBM on log value with conformal intervals and multiplicative SHAP factors.

One model serves patents and trademarks, with the asset kind as a feature: owner revenue, industry
and remaining life act alike on both, and trademarks (a minority of the appraisals) borrow strength
from the patents. Intervals are calibrated per asset kind (Mondrian split-conformal on
out-of-fold residuals), so coverage holds for each kind separately; docs/valuation.md says more.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from features.errors import InvalidData, Problem
from features.spec import FeatureSpec, category_of, category_text, levels_text
from valuation._common import Columns, text

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


# Tables of at most this many rows are encoded record by record (SpecEncoder.encode).
RECORD_ROWS = 16


class SpecEncoder:
    """Turns a flat table into the model matrix the spec describes, and refuses rows it cannot use.

    Learned at fit: category levels. From the spec: the features that must have a value (`required`),
    the bounds outside which a value is impossible (`min` / `max`) and a categorical feature's valid values
    (`levels`). Any other feature may be missing: LightGBM learns where missing values go. A category
    training did not see is refused, unless the spec lists it among the feature's levels: then it is
    encoded as missing, which LightGBM routes as it routes any category a split did not see (a trademark
    of a Nice class absent from the training sample is valued, not refused).
    """

    def __init__(self, spec: FeatureSpec):
        self.spec = spec

    def fit(self, df: pd.DataFrame) -> SpecEncoder:
        self.categories_ = {c: sorted(category_text(df[c]).dropna().unique()) for c in self.spec.categorical}
        self.levels_ = {f.name: f.levels for f in self.spec.features if f.levels is not None}
        self.required_ = {f.name for f in self.spec.features if f.required}
        self.bounds_ = {
            f.name: (f.min, f.max)
            for f in self.spec.features
            if f.type == "numeric" and (f.min is not None or f.max is not None)
        }
        return self

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, list[Problem]]:
        """The model matrix of a table and every unusable value in it (`row_problems`); refused rows are
        encoded as far as they can be and are not to be predicted. A few rows (one request's assets) go
        through `record_row`, in plain Python: pandas' fixed cost per column operation would dominate."""
        if len(df) > RECORD_ROWS:
            problems = self.row_problems(df)
            good = np.ones(len(df), dtype=bool)
            good[[p.row for p in problems]] = False
            X = np.full((len(df), len(self.spec.feature_names)), np.nan)
            X[good] = self.transform(df[good]).to_numpy(dtype="float64")
            return X, problems
        self._check_columns(df)
        names = list(df.columns)  # rows as dicts via one object array: to_dict costs a request ~3 ms
        return self.encode_records([dict(zip(names, r, strict=True)) for r in df.to_numpy(dtype=object)])

    def encode_records(self, records: Sequence[Mapping]) -> tuple[np.ndarray, list[Problem]]:
        """`encode` of records (a feature a record lacks is missing), each by `record_row`; the problems
        in the order `row_problems` lists them, ids as text."""
        rows = [self.record_row(r, i) for i, r in enumerate(records)]
        X = np.array([x for x, _ in rows]).reshape(len(records), len(self.spec.feature_names))
        order = {c: k for k, c in enumerate([*self.spec.numeric, *self.spec.categorical])}
        problems = sorted((p for _, found in rows for p in found), key=lambda p: (order[p.field], p.row))
        problems = [
            p if p.record_id is None else dataclasses.replace(p, record_id=str(p.record_id)) for p in problems
        ]
        return X, problems

    def _check_columns(self, df: pd.DataFrame) -> None:
        missing = [c for c in self.spec.feature_names if c not in df.columns]
        if missing:
            raise InvalidData(
                [Problem(c, "a column of the model's feature spec", "no such column") for c in missing],
                "input table",
            )

    def row_problems(self, df: pd.DataFrame) -> list[Problem]:
        """Every unusable value, by field, row and id; the rows named here are not valued."""
        self._check_columns(df)
        ids = df[self.spec.id].astype(str).to_numpy() if self.spec.id and self.spec.id in df else None
        problems = []

        def report(mask: np.ndarray, column: str, expected: str) -> None:
            for row in np.flatnonzero(mask):
                problems.append(
                    Problem(
                        column,
                        expected,
                        _plain(df[column].iat[row]),
                        int(row),
                        None if ids is None else ids[row],
                    )
                )

        for c in self.spec.numeric:
            values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            given = df[c].notna().to_numpy()
            report(given & np.isnan(values), c, "a number")
            report(given & np.isinf(values), c, "a finite number")
            if c in self.required_:
                report(~given, c, "a value (required by the feature spec)")
            low, high = self.bounds_.get(c, (None, None))
            if low is not None:
                report(given & (values < low), c, f">= {low:g}")
            if high is not None:
                report(given & (values > high), c, f"<= {high:g}")
        for c in self.spec.categorical:
            valid = self._valid_levels(c)
            known = category_text(df[c]).isin(valid).fillna(False).to_numpy(dtype=bool)
            report(df[c].notna().to_numpy() & ~known, c, self._expected_level(c))
            if c in self.required_:
                report(df[c].isna().to_numpy(), c, "a value (required by the feature spec)")
        return problems

    def record_row(self, record: Mapping, row: int = 0) -> tuple[np.ndarray, list[Problem]]:
        """One record as a model row, checked by the same rules as `row_problems` (a test holds the two
        to agreement); plain Python, so one asset is encoded in microseconds instead of milliseconds."""
        if not hasattr(self, "category_codes_"):  # built lazily: older pickles lack it
            self.category_codes_ = {
                c: {v: i for i, v in enumerate(cats)} for c, cats in self.categories_.items()
            }
        record_id = record.get(self.spec.id) if self.spec.id else None
        x = np.empty(len(self.spec.feature_names))
        problems = []
        for j, c in enumerate(self.spec.feature_names):
            value = record.get(c)
            missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            if missing:
                x[j] = np.nan
                if c in self.required_:
                    problems.append(
                        Problem(c, "a value (required by the feature spec)", value, row, record_id)
                    )
                continue
            if c in self.categories_:
                category = category_of(value)
                code = self.category_codes_[c].get(category)
                if code is None and category not in self._valid_levels(c):
                    problems.append(Problem(c, self._expected_level(c), _plain(value), row, record_id))
                x[j] = np.nan if code is None else code  # a level training did not see: missing
                continue
            if not isinstance(value, numbers.Real):
                problems.append(Problem(c, "a number", value, row, record_id))
            elif not math.isfinite(value):
                problems.append(Problem(c, "a finite number", _plain(value), row, record_id))
            elif (bound := self.bounds_.get(c, (None, None)))[0] is not None and value < bound[0]:
                problems.append(Problem(c, f">= {bound[0]:g}", _plain(value), row, record_id))
            elif bound[1] is not None and value > bound[1]:
                problems.append(Problem(c, f"<= {bound[1]:g}", _plain(value), row, record_id))
            x[j] = float(value) if isinstance(value, numbers.Real) else np.nan
        return x, problems

    def _valid_levels(self, column: str) -> Sequence[str]:
        """The values accepted in a categorical column: the spec's levels, else those seen in training."""
        return getattr(self, "levels_", {}).get(column) or self.categories_[column]  # older pickles: none

    def _expected_level(self, column: str) -> str:
        """What a refused category is told: the accepted values, and whether they are only those the model
        saw in training (a model whose spec lists no levels: retraining values the others)."""
        text = levels_text(self._valid_levels(column))
        if not getattr(self, "levels_", {}).get(column):
            text += " (the values this model saw in training; one trained on a spec that lists `levels` "
            text += "values the others)"
        return text

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in self.spec.feature_names:
            if c in self.categories_:
                codes = pd.Index(self.categories_[c], dtype="string").get_indexer(category_text(df[c]))
                out[c] = np.where(codes < 0, np.nan, codes).astype("float64")
            else:
                out[c] = pd.to_numeric(df[c]).to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(out, index=df.index)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def training_encoder(spec: FeatureSpec, df: pd.DataFrame) -> SpecEncoder:
    """The encoder learnt from a valuation table, or InvalidData listing every unusable value (rows are
    positions in `df`: check a whole table before splitting it, so that they are the user's rows)."""
    spec.check(df, task="valuation")
    encoder = SpecEncoder(spec).fit(df)
    problems = encoder.row_problems(df)
    if problems:
        raise InvalidData(problems, "training table")
    return encoder


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
        self.encoder_ = training_encoder(self.spec, df)
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
        effects = dict(zip(self.feature_names_in_, contrib[:-1], strict=True))
        folded = [f for f in getattr(self, "inapplicable_", {}).get(group, ()) if f in effects]
        if folded and self.group in effects:
            effects[self.group] += sum(effects.pop(f) for f in folded)
        names = sorted(effects, key=lambda f: -abs(effects[f]))[: top or None]
        return [{"feature": "base", "value": None, "factor": float(np.exp(contrib[-1]))}] + [
            {"feature": f, "value": _plain(value_of(f)), "factor": float(np.exp(effects[f]))} for f in names
        ]
