"""GB/T 42748-2023 indicator scores: legal, technical and economic sub-scores 0-100 and 1-5 stars.

The national standard 专利评估指引 (GB/T 42748-2023) organises patent value into legal, technical and
economic dimensions with weights per scenario (licensing, financing, tax, infringement, management).
Banks and the PBoC Taizhou model show patents as 1-5 stars; an evaluator reads the three sub-scores
beside the CNY value to see *why* a patent is worth what the model says. The standard names the
indicators but its weights are not public in detail, so the weights here are stated assumptions
(`SCENARIOS`, docs/valuation-methods.md), overridable per bank.

Each indicator is a `PatentFeatures` (or `TrademarkFeatures`) column scored 0-100 by a documented,
monotone transform:

- ``rank``: mid-rank percentile against the reference distribution learned at `fit` (a patent at the
  reference median scores about 50; ties share their mid-rank). For dense counts (claims, citations).
- ``log_cap``: 100 x log(1 + x) / log(1 + cap), capped at 100, with the cap learned at `fit` as a high
  quantile of the reference (at least 1). For sparse counts where most patents have 0 (licences,
  family size): a percentile would give 0 a middling score.
- ``linear_cap``: 100 x x / cap for a fixed cap (remaining life against 10 years).
- ``binary``: 100 if the flag is set (policy fit, in use).
- ``decay``: 100 x 0.5^x: each event (invalidation request, lawsuit) halves the score; the only
  decreasing transform.
- ``validity`` / ``patent_type``: fixed maps (in force 100, pending 50, otherwise 0; invention 100,
  utility model 60, design 40).

A dimension's score is the weighted mean of its indicators (missing indicators drop out and the weights
of the others are rescaled); the total is the weighted mean of the dimensions; stars come from fixed
bands of the total. A right that is neither in force nor pending (lapsed, expired, invalidated; for a
trademark, not registered) gets legal score 0, total 0 and one star whatever else it has: a pledgee
cannot realise a right that no longer exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.errors import InvalidData, Problem
from valuation._common import Columns, decode_patent_type, raw, require_columns

#: Upper edges of stars 1-4 on the 0-100 total: <40 one star, 40-55 two, 55-70 three, 70-85 four, >=85 five.
STAR_BANDS: tuple[float, ...] = (40.0, 55.0, 70.0, 85.0)
TRANSFORMS = ("rank", "log_cap", "linear_cap", "binary", "decay", "validity", "patent_type")
PATENT_TYPE_SCORES = {"invention": 100.0, "utility_model": 60.0, "design": 40.0}


@dataclass(frozen=True)
class Indicator:
    """One scored indicator: the feature column it reads, its dimension, its transform and the GB/T 42748
    third-level indicator it stands in for. `param` is the cap of `linear_cap`; `missing_score` replaces a
    missing value (None: the indicator drops out of its dimension's mean for that row)."""

    name: str
    column: str
    dimension: str
    transform: str
    gbt: str
    param: float | None = None
    missing_score: float | None = None


PATENT_INDICATORS: tuple[Indicator, ...] = (
    Indicator("validity", "is_valid", "legal", "validity", "validity / legal status"),
    Indicator("claims", "claims", "legal", "rank", "claim reasonableness (breadth of protection)"),
    Indicator(
        "independent_claims",
        "independent_claims",
        "legal",
        "rank",
        "claim type; difficulty of designing around",
    ),
    Indicator("family_size", "family_size", "legal", "log_cap", "patent family"),
    Indicator("family_countries", "family_countries", "legal", "log_cap", "patent family (jurisdictions)"),
    Indicator(
        "invalidation_requests",
        "invalidation_requests",
        "legal",
        "decay",
        "re-examination and invalidation history",
    ),
    Indicator(
        "litigations",
        "litigations",
        "legal",
        "decay",
        "litigation and arbitration (GB/T lists it as economic; scored here as legal risk)",
    ),
    Indicator("forward_citations", "forward_citations", "technical", "rank", "citations"),
    Indicator(
        "citations_per_year",
        "citations_per_year",
        "technical",
        "rank",
        "citations per year since grant (importance of the problem solved)",
    ),
    Indicator(
        "backward_citations",
        "backward_citations",
        "technical",
        "rank",
        "dependence on supporting technology (references to prior art)",
    ),
    Indicator("ipc_count", "ipc_count", "technical", "rank", "number of fields applicable; breadth of field"),
    Indicator("n_inventors", "n_inventors", "technical", "rank", "development effort (inventors named)"),
    Indicator(
        "patent_type",
        "patent_type",
        "technical",
        "patent_type",
        "originality (only inventions pass substantive examination)",
    ),
    Indicator(
        "remaining_years", "remaining_years", "economic", "linear_cap", "remaining economic life", param=10.0
    ),
    Indicator(
        "remaining_share", "remaining_share", "economic", "linear_cap", "technology life cycle", param=1.0
    ),
    Indicator("policy_fit", "policy_fit", "economic", "binary", "fit with industrial policy"),
    Indicator("in_use", "in_use", "economic", "binary", "sales revenue of the product (implemented)"),
    Indicator("licences", "licences", "economic", "log_cap", "transfers and licences"),
    Indicator("transfers", "transfers", "economic", "log_cap", "transfers and licences; control"),
    Indicator("prior_pledges", "prior_pledges", "economic", "log_cap", "financing and insurance history"),
)

TRADEMARK_INDICATORS: tuple[Indicator, ...] = (
    Indicator("registered", "is_registered", "legal", "binary", "registered (validity)"),
    Indicator(
        "years_registered",
        "years_registered",
        "legal",
        "linear_cap",
        "stability: five years after registration an invalidation on relative grounds is time-barred "
        "(Trademark Law art. 45)",
        param=5.0,
    ),
    Indicator("renewals", "renewals", "legal", "log_cap", "renewal history"),
    Indicator("oppositions", "oppositions", "legal", "decay", "opposition history"),
    Indicator("invalidation_requests", "invalidation_requests", "legal", "decay", "invalidation history"),
    Indicator("well_known", "well_known", "market", "binary", "well-known mark (驰名商标)"),
    Indicator("time_honoured", "time_honoured", "market", "binary", "time-honoured brand (中华老字号)"),
    Indicator("in_use", "in_use", "market", "binary", "mark in use"),
    Indicator(
        "revenue_under_mark",
        "log_revenue_under_mark",
        "market",
        "rank",
        "revenue under the mark (undeclared counts as 0: a pledgee cannot rely on it)",
        missing_score=0.0,
    ),
    Indicator("goods_services", "goods_services", "market", "rank", "breadth of goods and services"),
    Indicator("licences", "licences", "economic", "log_cap", "licences"),
    Indicator("transfers", "transfers", "economic", "log_cap", "transfers"),
    Indicator("prior_pledges", "prior_pledges", "economic", "log_cap", "financing history"),
    Indicator("remaining_years", "remaining_years", "economic", "linear_cap", "time to renewal", param=10.0),
)

# Indicator weights within their dimension (they need not sum to 1; each dimension is normalised).
_PATENT_INDICATOR_WEIGHTS = {
    "validity": 0.30,
    "claims": 0.15,
    "independent_claims": 0.10,
    "family_size": 0.10,
    "family_countries": 0.10,
    "invalidation_requests": 0.15,
    "litigations": 0.10,
    "forward_citations": 0.20,
    "citations_per_year": 0.25,
    "backward_citations": 0.05,
    "ipc_count": 0.15,
    "n_inventors": 0.10,
    "patent_type": 0.25,
    "remaining_years": 0.25,
    "remaining_share": 0.10,
    "policy_fit": 0.15,
    "in_use": 0.25,
    "licences": 0.10,
    "transfers": 0.05,
    "prior_pledges": 0.10,
}
_TRADEMARK_INDICATOR_WEIGHTS = {
    "registered": 0.20,
    "years_registered": 0.30,
    "renewals": 0.20,
    "oppositions": 0.15,
    "invalidation_requests": 0.15,
    "well_known": 0.10,
    "time_honoured": 0.05,
    "in_use": 0.35,
    "revenue_under_mark": 0.35,
    "goods_services": 0.15,
    "licences": 0.30,
    "transfers": 0.15,
    "prior_pledges": 0.15,
    "remaining_years": 0.40,
}

#: Dimension and indicator weights per GB/T 42748 scenario (assumptions: the standard's own weights are not
#: public in detail). Financing weighs legal stability most (the pledge must be enforceable and survive
#: the loan), then economic realisability, then technology.
SCENARIOS: dict[str, dict[str, dict[str, float]]] = {
    "financing": {
        "dimensions": {"legal": 0.40, "technical": 0.25, "economic": 0.35},
        "indicators": dict(_PATENT_INDICATOR_WEIGHTS),
    },
    "licensing": {
        "dimensions": {"legal": 0.30, "technical": 0.40, "economic": 0.30},
        "indicators": dict(_PATENT_INDICATOR_WEIGHTS),
    },
    "management": {
        "dimensions": {"legal": 1 / 3, "technical": 1 / 3, "economic": 1 / 3},
        "indicators": dict(_PATENT_INDICATOR_WEIGHTS),
    },
}
TRADEMARK_SCENARIOS: dict[str, dict[str, dict[str, float]]] = {
    "financing": {
        "dimensions": {"legal": 0.35, "market": 0.40, "economic": 0.25},
        "indicators": dict(_TRADEMARK_INDICATOR_WEIGHTS),
    },
    "management": {
        "dimensions": {"legal": 1 / 3, "market": 1 / 3, "economic": 1 / 3},
        "indicators": dict(_TRADEMARK_INDICATOR_WEIGHTS),
    },
}


def stars(total_score: Any, bands: Sequence[float] = STAR_BANDS) -> np.ndarray:
    """1-5 stars from fixed bands of the total score (a score on a band edge gets the higher star).
    A missing total gets one star: no evidence is not good evidence.

    >>> stars([0, 39.9, 40, 69.9, 85, 100]).tolist()
    [1, 1, 2, 3, 5, 5]
    """
    total = np.asarray(total_score, dtype="float64")
    out = np.searchsorted(np.asarray(bands, dtype="float64"), total, side="right") + 1
    return np.where(np.isnan(total), 1, out).astype("int64")


class _IndicatorScorerBase(TransformerMixin, BaseEstimator):
    """Shared fit/transform of the patent and trademark scorers; subclasses name their indicators,
    scenarios, the gate (the column that says the right exists) and the output columns."""

    _indicators: tuple[Indicator, ...] = ()
    _scenarios: dict[str, dict[str, dict[str, float]]] = {}
    _dimensions: tuple[str, ...] = ()
    # Constants of the class, set with its indicators: the indicators grouped by transform, in order of
    # first appearance, and the names of each dimension's indicators.
    _by_transform: tuple[tuple[str, tuple[Indicator, ...]], ...] = ()
    _dimension_indicators: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        groups: dict[str, list[Indicator]] = {}
        for ind in cls._indicators:
            groups.setdefault(ind.transform, []).append(ind)
        cls._by_transform = tuple((kind, tuple(inds)) for kind, inds in groups.items())
        cls._dimension_indicators = tuple(
            (dim, tuple(i.name for i in cls._indicators if i.dimension == dim)) for dim in cls._dimensions
        )

    # --- fitting ---------------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any = None) -> _IndicatorScorerBase:
        """Learn the reference distribution of each `rank` and `log_cap` indicator from X (the population
        the scores are relative to, e.g. the bank's or the region's patents) and resolve the weights."""
        self.weights_ = self._resolve_weights()
        self.star_bands_ = self._check_bands()
        columns = self._columns()
        require_columns(X, columns, type(self).__name__)
        if len(X) == 0:
            raise InvalidData(
                [Problem("X", "at least one row to learn reference quantiles from", 0)],
                what=type(self).__name__,
            )
        self._check_fit_params()
        levels = np.linspace(0.0, 1.0, int(self.n_quantiles))
        self.quantiles_: dict[str, np.ndarray] = {}
        self.caps_: dict[str, float] = {}
        reference = Columns(X)
        for ind in self._indicators:
            values = self._raw(reference, ind)
            values = values[np.isfinite(values)]
            if ind.transform == "rank":
                # With no reference value the grid is empty and every score is missing (drops out).
                self.quantiles_[ind.name] = np.quantile(values, levels) if values.size else np.array([])
            elif ind.transform == "log_cap":
                cap = float(np.quantile(values, self.cap_quantile)) if values.size else 1.0
                self.caps_[ind.name] = max(cap, 1.0)
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        return self

    def required_columns(self) -> list[str]:
        """The feature columns the scorer reads (its indicators and the in-force gate)."""
        return self._columns()

    def _columns(self) -> list[str]:
        cols = [ind.column for ind in self._indicators]
        return list(dict.fromkeys(cols + self._gate_columns()))

    def _gate_columns(self) -> list[str]:
        raise NotImplementedError

    def _check_fit_params(self) -> None:
        problems = []
        if not (isinstance(self.n_quantiles, int | np.integer) and 2 <= self.n_quantiles <= 100_000):
            problems.append(Problem("n_quantiles", "an integer in [2, 100000]", self.n_quantiles))
        if not (isinstance(self.cap_quantile, float | int) and 0.5 <= self.cap_quantile <= 1):
            problems.append(Problem("cap_quantile", "a number in [0.5, 1]", self.cap_quantile))
        if problems:
            raise InvalidData(problems, what=type(self).__name__)

    def _check_bands(self) -> np.ndarray:
        bands = np.asarray(self.star_bands, dtype="float64")
        if bands.shape != (4,) or not np.all(np.diff(bands) > 0) or bands[0] <= 0 or bands[-1] > 100:
            raise InvalidData(
                [Problem("star_bands", "4 increasing edges within (0, 100]", self.star_bands)],
                what=type(self).__name__,
            )
        return bands

    def _resolve_weights(self) -> dict[str, dict[str, float]]:
        """Scenario weights, overridden key by key by `weights`
        ({"dimensions": {...}, "indicators": {...}})."""
        who = type(self).__name__
        if self.scenario not in self._scenarios:
            raise InvalidData(
                [Problem("scenario", f"one of {sorted(self._scenarios)}", self.scenario)], what=who
            )
        base = self._scenarios[self.scenario]
        dims = dict(base["dimensions"])
        inds = dict(base["indicators"])
        problems: list[Problem] = []
        override = self.weights or {}
        if not isinstance(override, Mapping) or set(override) - {"dimensions", "indicators"}:
            raise InvalidData(
                [Problem("weights", "a mapping with keys 'dimensions' and/or 'indicators'", override)],
                what=who,
            )
        for key, target, known in (
            ("dimensions", dims, self._dimensions),
            ("indicators", inds, [i.name for i in self._indicators]),
        ):
            for name, w in dict(override.get(key, {})).items():
                if name not in known:
                    problems.append(Problem(f"weights.{key}", f"one of {list(known)}", name))
                elif not (
                    isinstance(w, int | float) and not isinstance(w, bool) and np.isfinite(w) and w >= 0
                ):
                    problems.append(Problem(f"weights.{key}[{name!r}]", "a finite weight >= 0", w))
                else:
                    target[name] = float(w)
        if sum(dims.values()) <= 0:
            problems.append(Problem("weights.dimensions", "at least one positive weight", dims))
        for dim in self._dimensions:
            if sum(inds[i.name] for i in self._indicators if i.dimension == dim) <= 0 and dims[dim] > 0:
                problems.append(
                    Problem(
                        f"weights.indicators ({dim})",
                        "a positive weight on some indicator of a weighted dimension",
                        0,
                    )
                )
        if problems:
            raise InvalidData(problems, what=who)
        return {"dimensions": dims, "indicators": inds}

    # --- scoring ---------------------------------------------------------------------------------------

    def _raw(self, X: Columns, ind: Indicator) -> np.ndarray:
        return X.get(ind.column)

    def _score(self, X: Columns, ind: Indicator) -> np.ndarray:
        """The score of an indicator whose transform has no generic rule (`_GENERIC_TRANSFORMS`)."""
        raise ValueError(f"transform {ind.transform!r} of indicator {ind.name!r} has no generic rule")

    def _scores_by_rule(self, kind: str, inds: Sequence[Indicator], x: np.ndarray) -> np.ndarray:
        """Scores 0-100 of indicators that share the generic transform `kind`, from their raw values `x`
        (one column per indicator); missing values score NaN, or the indicator's `missing_score`."""
        if kind == "rank":
            score = np.full_like(x, np.nan)
            empty = []
            for j, ind in enumerate(inds):
                grid = self.quantiles_[ind.name]
                if grid.size == 0:
                    empty.append(j)
                    continue
                left = np.searchsorted(grid, x[:, j], side="left")
                right = np.searchsorted(grid, x[:, j], side="right")
                score[:, j] = 100.0 * (left + right) / (2.0 * grid.size)
        elif kind == "log_cap":
            caps = np.log1p(np.array([self.caps_[ind.name] for ind in inds]))
            score = 100.0 * np.minimum(np.log1p(np.maximum(x, 0)) / caps, 1.0)
        elif kind == "linear_cap":
            score = 100.0 * np.clip(x / np.array([float(ind.param or 1.0) for ind in inds]), 0.0, 1.0)
        elif kind == "binary":
            score = np.where(x > 0, 100.0, 0.0)
        else:  # decay
            score = 100.0 * 0.5 ** np.maximum(x, 0)
        score = np.where(np.isnan(x), np.nan, score)
        for j, ind in enumerate(inds):
            if ind.missing_score is not None:
                score[:, j] = np.where(np.isnan(score[:, j]), ind.missing_score, score[:, j])
        if kind == "rank":
            # With no reference value the grid is empty and every score is missing, whatever else.
            score[:, empty] = np.nan
        return score

    def _alive(self, X: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(exists: in force or pending, pending) per row."""
        raise NotImplementedError

    def indicator_scores(self, X: pd.DataFrame) -> pd.DataFrame:
        """Every indicator's 0-100 score (before the validity gate), one column each: what an evaluator
        reads to see which indicator moved a sub-score."""
        return pd.DataFrame(self._indicator_scores(Columns(X)), index=X.index)

    def _indicator_scores(self, X: Columns) -> dict[str, np.ndarray]:
        check_is_fitted(self, "quantiles_")
        require_columns(X, list(self.feature_names_in_), type(self).__name__)
        scores = {}
        for kind, inds in self._by_transform:
            if kind in _GENERIC_TRANSFORMS:
                block = self._scores_by_rule(kind, inds, np.column_stack([self._raw(X, i) for i in inds]))
                scores.update((ind.name, block[:, j]) for j, ind in enumerate(inds))
            else:
                scores.update((ind.name, self._score(X, ind)) for ind in inds)
        return {ind.name: scores[ind.name] for ind in self._indicators}

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Sub-scores per dimension, `total_score` (0-100) and `stars` (1-5), one row per row of X."""
        return pd.DataFrame(self.transform_columns(Columns(X)), index=X.index)

    def transform_columns(self, X: Columns) -> dict[str, np.ndarray]:
        """`transform` as arrays, from the columns of a feature frame (`valuation._common.Columns`)."""
        scores = self._indicator_scores(X)
        w_ind, w_dim = self.weights_["indicators"], self.weights_["dimensions"]
        exists, _ = self._alive(X)
        out = {}
        for dim, names in self._dimension_indicators:
            weights = np.array([w_ind[n] for n in names])
            out[f"{dim}_score"] = _weighted_mean(np.column_stack([scores[n] for n in names]), weights)
        out["legal_score"] = np.where(exists, out["legal_score"], 0.0)
        dim_scores = np.column_stack([out[f"{d}_score"] for d in self._dimensions])
        total = _weighted_mean(dim_scores, np.array([w_dim[d] for d in self._dimensions]))
        out["total_score"] = np.where(exists, total, 0.0)
        out["stars"] = np.where(exists, stars(out["total_score"], self.star_bands_), 1)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "quantiles_")
        return np.asarray([f"{d}_score" for d in self._dimensions] + ["total_score", "stars"], dtype=object)


#: Transforms scored by `_IndicatorScorerBase._scores_by_rule`, all indicators of one transform at once.
_GENERIC_TRANSFORMS = ("rank", "log_cap", "linear_cap", "binary", "decay")


def _weighted_mean(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted mean over the non-missing scores; NaN where every weighted score is missing."""
    present = ~np.isnan(scores) & (weights > 0)
    w = np.where(present, weights, 0.0)
    total_w = w.sum(axis=1)
    filled = np.where(present, scores, 0.0)
    weighted = (filled * w).sum(axis=1)
    return np.divide(weighted, total_w, out=np.full(total_w.shape, np.nan), where=total_w > 0)


class IndicatorScorer(_IndicatorScorerBase):
    """GB/T 42748 legal, technical and economic scores (0-100), a total and 1-5 stars per patent, from a
    `PatentFeatures` frame.

    Parameters
    ----------
    scenario : GB/T 42748 scenario whose weights apply: "financing" (default), "licensing", "management".
    weights : overrides of the scenario's weights, {"dimensions": {"legal": w, ...}, "indicators":
        {"claims": w, ...}}; unnamed weights keep the scenario's value. Weights are relative.
    star_bands : the four total-score edges between 1|2|3|4|5 stars (default 40, 55, 70, 85).
    n_quantiles : size of the reference quantile grid learned per `rank` indicator (101: percentiles).
    cap_quantile : reference quantile used as the cap of `log_cap` indicators (0.99).
    patent_type_categories : `PatentFeatures.categories_["patent_type"]` when `patent_type` holds codes and
        the transformer was not fitted on all three types; text values need none.

    Fitted attributes: `quantiles_`, `caps_`, `weights_`, `star_bands_`, `feature_names_in_`,
    `n_features_in_`.
    """

    _indicators = PATENT_INDICATORS
    _scenarios = SCENARIOS
    _dimensions = ("legal", "technical", "economic")

    def __init__(
        self,
        scenario: str = "financing",
        weights: Mapping[str, Mapping[str, float]] | None = None,
        star_bands: Sequence[float] = STAR_BANDS,
        n_quantiles: int = 101,
        cap_quantile: float = 0.99,
        patent_type_categories: Sequence[str] | None = None,
    ):
        self.scenario = scenario
        self.weights = weights
        self.star_bands = star_bands
        self.n_quantiles = n_quantiles
        self.cap_quantile = cap_quantile
        self.patent_type_categories = patent_type_categories

    def _gate_columns(self) -> list[str]:
        return ["is_valid", "is_pending"]

    def _alive(self, X: Columns) -> tuple[np.ndarray, np.ndarray]:
        valid = X.get("is_valid") > 0  # missing (NaN) is not set
        pending = X.get("is_pending") > 0
        return valid | pending, pending & ~valid

    def _raw(self, X: Columns, ind: Indicator) -> np.ndarray:
        if ind.transform == "patent_type":
            types = decode_patent_type(X.get("patent_type", raw), self.patent_type_categories)
            return np.array(
                [PATENT_TYPE_SCORES.get(t, np.nan) if t is not None else np.nan for t in types],
                dtype="float64",
            )
        return super()._raw(X, ind)

    def _score(self, X: Columns, ind: Indicator) -> np.ndarray:
        if ind.transform == "patent_type":
            return self._raw(X, ind)
        if ind.transform == "validity":
            exists, pending = self._alive(X)
            return np.where(exists, np.where(pending, 50.0, 100.0), 0.0)
        return super()._score(X, ind)


class TrademarkScorer(_IndicatorScorerBase):
    """Legal, market and economic scores (0-100), a total and 1-5 stars per trademark, from a
    `TrademarkFeatures` frame. GB/T 42748 covers patents only; the trademark dimensions follow the same
    pattern with a market dimension (fame, use, revenue, breadth) in place of the technical one.

    Parameters as `IndicatorScorer` (scenarios "financing" and "management"); an unregistered mark (pending,
    expired, cancelled, invalidated) gets legal score 0, total 0 and one star.
    """

    _indicators = TRADEMARK_INDICATORS
    _scenarios = TRADEMARK_SCENARIOS
    _dimensions = ("legal", "market", "economic")

    def __init__(
        self,
        scenario: str = "financing",
        weights: Mapping[str, Mapping[str, float]] | None = None,
        star_bands: Sequence[float] = STAR_BANDS,
        n_quantiles: int = 101,
        cap_quantile: float = 0.99,
    ):
        self.scenario = scenario
        self.weights = weights
        self.star_bands = star_bands
        self.n_quantiles = n_quantiles
        self.cap_quantile = cap_quantile

    def _gate_columns(self) -> list[str]:
        return ["is_registered"]

    def _alive(self, X: Columns) -> tuple[np.ndarray, np.ndarray]:
        registered = X.get("is_registered") > 0  # missing (NaN) is not registered
        return registered, np.zeros(len(X), dtype=bool)
