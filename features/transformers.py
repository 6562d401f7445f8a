"""scikit-learn transformers that turn point-in-time snapshots into model inputs.

Each takes a snapshot frame (see features.snapshot) and returns a numeric DataFrame whose columns
are stable between fit and transform. Categories seen at fit are kept in `categories_`; a category
never seen becomes missing rather than a new column, so the model's inputs never change shape.
The GB/T 42748 indicator each feature stands for is named in `PATENT_INDICATORS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.errors import InvalidData, Problem
from features.reference import STRATEGIC_EMERGING_IPC
from features.schema import (
    Industry,
    IpcSection,
    LegalStatus,
    PatentType,
    Table,
    TaxGrade,
    TrademarkStatus,
)

DAYS_PER_YEAR = 365.25
TERM_YEARS = {PatentType.INVENTION: 20, PatentType.UTILITY_MODEL: 10, PatentType.DESIGN: 15}

# GB/T 42748-2023 first-level dimension of each patent feature (legal, technical, economic).
PATENT_INDICATORS = {
    "is_valid": "legal",
    "is_pending": "legal",
    "independent_claims": "legal",
    "claims": "legal",
    "family_size": "legal",
    "family_countries": "legal",
    "invalidation_requests": "legal",
    "forward_citations": "technical",
    "citations_per_year": "technical",
    "backward_citations": "technical",
    "ipc_count": "technical",
    "n_inventors": "technical",
    "patent_type": "technical",
    "ipc_section": "technical",
    "age_years": "technical",
    "remaining_years": "economic",
    "remaining_share": "economic",
    "policy_fit": "economic",
    "transfers": "economic",
    "licences": "economic",
    "prior_pledges": "economic",
    "litigations": "economic",
    "in_use": "economic",
}


# Functions below take a Table (features.schema): a DataFrame (a portfolio) or a mapping of column name to a
# 1-D array (one request's records): the same formulas either way, without pandas' fixed cost per column on a
# single row.


def _years_between(start: ArrayLike, end: ArrayLike) -> np.ndarray:
    delta = np.asarray(end).astype("datetime64[D]") - np.asarray(start).astype("datetime64[D]")
    years = delta.astype("float64") / DAYS_PER_YEAR
    years[np.isnat(delta)] = np.nan
    return years


def column_floats(column: ArrayLike) -> np.ndarray:
    """A column as float64 with NaN for missing (None, pandas NA). A numpy-typed Series has no pandas NA, so
    it skips pandas' scan for missing values (a third of the cost of one row's enterprise features)."""
    if not isinstance(column, pd.Series):
        return np.asarray(column, dtype="float64")
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
        return column.to_numpy(dtype="float64")
    return column.to_numpy(dtype="float64", na_value=np.nan)


def numbers_or_nan(values: np.ndarray) -> np.ndarray:
    """An object array as float64, what is not a number (text, pandas NA) as NaN for the caller to report.
    Numbers and None take numpy's cast, without pandas' per-call cost on one application's few values."""
    try:
        return values.astype("float64")
    except (TypeError, ValueError):
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        return numbers.to_numpy(dtype="float64", na_value=np.nan)


def column_objects(column: ArrayLike) -> np.ndarray:
    return (
        column.to_numpy(dtype=object) if isinstance(column, pd.Series) else np.asarray(column, dtype=object)
    )


def require_columns(X: Table, needed: list[str], who: str) -> None:
    if not isinstance(X, pd.DataFrame | Mapping):
        raise TypeError(
            f"{who} expects a DataFrame snapshot or a mapping of its columns; got {type(X).__name__}"
        )
    missing = [c for c in needed if c not in X]
    if missing:
        raise InvalidData([Problem(c, "a column of the snapshot", "no such column") for c in missing], who)


def _codes(values: ArrayLike, categories: Sequence[str]) -> np.ndarray:
    """Category codes as floats; unseen or missing values become NaN (LightGBM treats them as missing)."""
    if not isinstance(values, pd.Series):
        return _lookup(values, {c: float(i) for i, c in enumerate(categories)})
    codes = pd.Index(categories, dtype="string").get_indexer(values.astype("string")).astype("float64")
    codes[codes < 0] = np.nan
    return codes


def _lookup(values: ArrayLike, table: Mapping[str, float]) -> np.ndarray:
    """Each value's number in `table` by its text; missing or unknown values are NaN."""
    if isinstance(values, pd.Series):
        return values.astype(str).map(table).to_numpy(dtype="float64", na_value=np.nan)
    return np.array([table.get(str(v), np.nan) for v in column_objects(values)], dtype="float64")


class _SnapshotTransformer(TransformerMixin, BaseEstimator):
    """Shared fit/transform plumbing: learn categories at fit, build the same columns at transform."""

    required: list[str] = []
    categorical: list[str] = []
    known_categories: dict[str, tuple[str, ...]] = {}

    def fit(self, X: pd.DataFrame, y=None):
        self._learn(X)
        self.feature_names_out_ = np.asarray(self._build(X.head(1)).columns, dtype=object)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None) -> pd.DataFrame:
        """fit then transform, building the table once (one request's rows are fitted and built together)."""
        self._learn(X)
        out = self._build(X)
        self.feature_names_out_ = np.asarray(out.columns, dtype=object)
        return out

    def _learn(self, X: pd.DataFrame) -> None:
        require_columns(X, self.required, type(self).__name__)
        # Categories the data model enumerates are fixed, so a code means the same whatever rows were fitted
        # (one application scored alone gets the code it had in training); others are learned.
        self.categories_ = {
            c: list(self.known_categories[c])
            if c in self.known_categories
            else sorted(X[c].dropna().astype(str).unique())
            for c in self.categorical
        }
        self.n_features_in_ = X.shape[1]

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_out_")
        require_columns(X, self.required, type(self).__name__)
        return self._build(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_

    def _build(self, X: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError


class PatentFeatures(_SnapshotTransformer):
    """Per-patent proxies of the GB/T 42748 legal, technical and economic indicators.

    Parameters
    ----------
    strategic_ipc : IPC subclasses counted as strategic emerging industries (policy fit); the
        curated default is `features.reference.STRATEGIC_EMERGING_IPC`.
    """

    required = [
        "patent_type",
        "filing_date",
        "grant_date",
        "expiry_date",
        "ipc_main",
        "ipc_count",
        "n_claims",
        "n_independent_claims",
        "backward_citations",
        "family_size",
        "family_countries",
        "n_inventors",
        "in_use",
        "forward_citations",
        "transfers",
        "licences",
        "prior_pledges",
        "invalidation_requests",
        "litigations",
        "status_as_of",
        "as_of",
    ]
    categorical = ["patent_type", "ipc_section"]
    known_categories = {
        "patent_type": tuple(sorted(t.value for t in PatentType)),
        "ipc_section": tuple(s.value for s in IpcSection),
    }

    def __init__(self, strategic_ipc: frozenset[str] | None = None):
        self.strategic_ipc = strategic_ipc

    def fit(self, X: pd.DataFrame, y=None):
        require_columns(X, self.required, type(self).__name__)
        return super().fit(X.assign(ipc_section=X["ipc_main"].str[0]), y)

    def _build(self, X: pd.DataFrame) -> pd.DataFrame:
        strategic = self.strategic_ipc if self.strategic_ipc is not None else STRATEGIC_EMERGING_IPC
        age = _years_between(X["filing_date"], X["as_of"])
        since_grant = _years_between(X["grant_date"], X["as_of"])
        status = X["status_as_of"].to_numpy()
        in_force = np.isin(status, [LegalStatus.VALID, LegalStatus.PENDING])
        # A right that has lapsed or been invalidated has no life left, whatever its legal term said.
        remaining = np.where(in_force, np.clip(_years_between(X["as_of"], X["expiry_date"]), 0, None), 0.0)
        term = _years_between(X["filing_date"], X["expiry_date"])
        cites = X["forward_citations"].to_numpy(dtype="float64")
        return pd.DataFrame(
            {
                "patent_type": _codes(X["patent_type"], self.categories_["patent_type"]),
                "ipc_section": _codes(X["ipc_main"].str[0], self.categories_["ipc_section"]),
                "is_valid": (status == LegalStatus.VALID).astype("float64"),
                "is_pending": (status == LegalStatus.PENDING).astype("float64"),
                "age_years": age,
                "remaining_years": remaining,
                "remaining_share": np.clip(remaining / term, 0, 1),
                "claims": X["n_claims"].to_numpy(dtype="float64"),
                "independent_claims": X["n_independent_claims"].to_numpy(dtype="float64"),
                "backward_citations": X["backward_citations"].to_numpy(dtype="float64"),
                "forward_citations": cites,
                "citations_per_year": cites / np.maximum(np.nan_to_num(since_grant, nan=0.0), 1.0),
                "family_size": X["family_size"].to_numpy(dtype="float64"),
                "family_countries": X["family_countries"].to_numpy(dtype="float64"),
                "ipc_count": X["ipc_count"].to_numpy(dtype="float64"),
                "n_inventors": X["n_inventors"].to_numpy(dtype="float64"),
                "policy_fit": X["ipc_main"].isin(list(strategic)).to_numpy(dtype="float64"),
                "in_use": X["in_use"].to_numpy(dtype="float64"),
                "transfers": X["transfers"].to_numpy(dtype="float64"),
                "licences": X["licences"].to_numpy(dtype="float64"),
                "prior_pledges": X["prior_pledges"].to_numpy(dtype="float64"),
                "invalidation_requests": X["invalidation_requests"].to_numpy(dtype="float64"),
                "litigations": X["litigations"].to_numpy(dtype="float64"),
            },
            index=X.index,
        )


class TrademarkFeatures(_SnapshotTransformer):
    """Per-trademark features: class, breadth, age, renewals, standing, use and market events."""

    required = [
        "nice_class",
        "n_goods_services",
        "filing_date",
        "registration_date",
        "expiry_as_of",
        "well_known",
        "time_honoured",
        "in_use",
        "revenue_under_mark_cny",
        "renewals",
        "transfers",
        "licences",
        "prior_pledges",
        "oppositions",
        "invalidation_requests",
        "status_as_of",
        "as_of",
    ]
    categorical = ["nice_class"]
    known_categories = {"nice_class": tuple(str(k) for k in range(1, 46))}

    def _build(self, X: pd.DataFrame) -> pd.DataFrame:
        revenue = X["revenue_under_mark_cny"].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(
            {
                "nice_class": _codes(X["nice_class"], self.categories_["nice_class"]),
                "is_registered": (X["status_as_of"].to_numpy() == TrademarkStatus.REGISTERED).astype(
                    "float64"
                ),
                "goods_services": X["n_goods_services"].to_numpy(dtype="float64"),
                "years_registered": _years_between(X["registration_date"], X["as_of"]),
                "remaining_years": np.where(
                    np.isin(
                        X["status_as_of"].to_numpy(), [TrademarkStatus.REGISTERED, TrademarkStatus.PENDING]
                    ),
                    np.clip(_years_between(X["as_of"], X["expiry_as_of"]), 0, None),
                    0.0,
                ),
                "renewals": X["renewals"].to_numpy(dtype="float64"),
                "well_known": X["well_known"].to_numpy(dtype="float64"),
                "time_honoured": X["time_honoured"].to_numpy(dtype="float64"),
                "in_use": X["in_use"].to_numpy(dtype="float64"),
                "log_revenue_under_mark": np.log1p(revenue),
                "transfers": X["transfers"].to_numpy(dtype="float64"),
                "licences": X["licences"].to_numpy(dtype="float64"),
                "prior_pledges": X["prior_pledges"].to_numpy(dtype="float64"),
                "oppositions": X["oppositions"].to_numpy(dtype="float64"),
                "invalidation_requests": X["invalidation_requests"].to_numpy(dtype="float64"),
            },
            index=X.index,
        )


# Tax credit grades as an ordinal risk rank: A best; M (new taxpayer) between B and C.
TAX_GRADE_RANK = {TaxGrade.A: 0.0, TaxGrade.B: 1.0, TaxGrade.M: 2.0, TaxGrade.C: 3.0, TaxGrade.D: 4.0}

# Direction of each enterprise feature's effect on default risk, where credit practice knows it.
ENTERPRISE_MONOTONE = {
    "leverage": "increasing",
    "overdue_count_24m": "increasing",
    "max_overdue_days_24m": "increasing",
    "court_judgements": "increasing",
    "enforcement_count": "increasing",
    "dishonest_debtor": "increasing",
    "admin_penalties": "increasing",
    "tax_grade_rank": "increasing",
    "net_margin": "decreasing",
    "return_on_assets": "decreasing",
    "current_ratio": "decreasing",
    "debt_to_revenue": "increasing",
    "cash_flow_margin": "decreasing",
}


class EnterpriseFeatures(_SnapshotTransformer):
    """Enterprise credit features: size, profitability, leverage, liquidity, R&D, tax, bureau and court
    records, qualifications. Ratios with a zero denominator are missing, not infinite."""

    required = [
        "industry",
        "founded_date",
        "registered_capital_cny",
        "employees",
        "rd_staff",
        "revenue_cny",
        "revenue_growth",
        "gross_margin",
        "net_profit_cny",
        "total_assets_cny",
        "total_liabilities_cny",
        "current_ratio",
        "operating_cash_flow_cny",
        "rd_spend_cny",
        "tax_grade",
        "tax_paid_cny",
        "overdue_count_24m",
        "max_overdue_days_24m",
        "outstanding_loans_cny",
        "guarantees_given_cny",
        "court_judgements",
        "enforcement_count",
        "dishonest_debtor",
        "admin_penalties",
        "high_tech",
        "specialized_sme",
        "little_giant",
        "tech_sme",
        "as_of",
    ]
    categorical = ["industry"]
    known_categories = {"industry": tuple(sorted(i.value for i in Industry))}

    def _build(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.columns_of(X), index=X.index)

    def columns_of(self, X: Table) -> dict[str, np.ndarray]:
        """The features as arrays, from a snapshot table or a mapping of its columns (needs no fit: every
        category here is enumerated by the data model)."""

        def num(c: str) -> np.ndarray:
            return column_floats(X[c])

        def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(b > 0, a / b, np.nan)

        revenue, assets = num("revenue_cny"), num("total_assets_cny")
        return {
            "industry": _codes(X["industry"], self.known_categories["industry"]),
            "age_years": _years_between(X["founded_date"], X["as_of"]),
            "log_revenue": np.log1p(revenue),
            "log_total_assets": np.log1p(assets),
            "log_registered_capital": np.log1p(num("registered_capital_cny")),
            "employees": num("employees"),
            "revenue_growth": num("revenue_growth"),
            "gross_margin": num("gross_margin"),
            "net_margin": ratio(num("net_profit_cny"), revenue),
            "return_on_assets": ratio(num("net_profit_cny"), assets),
            "leverage": ratio(num("total_liabilities_cny"), assets),
            "current_ratio": num("current_ratio"),
            "cash_flow_margin": ratio(num("operating_cash_flow_cny"), revenue),
            "rd_intensity": ratio(num("rd_spend_cny"), revenue),
            "rd_staff_share": ratio(num("rd_staff"), num("employees")),
            "tax_grade_rank": _lookup(X["tax_grade"], {k.value: v for k, v in TAX_GRADE_RANK.items()}),
            "tax_to_revenue": ratio(num("tax_paid_cny"), revenue),
            "overdue_count_24m": num("overdue_count_24m"),
            "max_overdue_days_24m": num("max_overdue_days_24m"),
            "debt_to_revenue": ratio(num("outstanding_loans_cny"), revenue),
            "guarantees_to_revenue": ratio(num("guarantees_given_cny"), revenue),
            "court_judgements": num("court_judgements"),
            "enforcement_count": num("enforcement_count"),
            "dishonest_debtor": num("dishonest_debtor"),
            "admin_penalties": num("admin_penalties"),
            "high_tech": num("high_tech"),
            "specialized_sme": num("specialized_sme"),
            "little_giant": num("little_giant"),
            "tech_sme": num("tech_sme"),
        }


class BundleFeatures(TransformerMixin, BaseEstimator):
    """Aggregates over the assets pledged together in one application (one output row each).

    Input: one row per pledged asset with `application_id`, `asset_kind`, `remaining_years` and,
    optionally, a value column (the valuation's output) used for the concentration and the
    strongest asset. Without values every asset weighs the same.

    Parameters
    ----------
    value_column : name of the per-asset value column, or None.
    """

    def __init__(self, value_column: str | None = None):
        self.value_column = value_column

    def fit(self, X: pd.DataFrame, y=None):
        self.check_columns(X)
        self.feature_names_out_ = np.asarray(self.transform_unchecked(X.head(1)).columns, dtype=object)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None) -> pd.DataFrame:
        """fit then transform, building the table once."""
        self.check_columns(X)
        out = self.transform_unchecked(X)
        self.feature_names_out_ = np.asarray(out.columns, dtype=object)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_out_")
        self.check_columns(X)
        return self.transform_unchecked(X)

    def check_columns(self, X: Table) -> None:
        needed = ["application_id", "asset_kind", "remaining_years"]
        require_columns(X, needed + ([self.value_column] if self.value_column else []), "BundleFeatures")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_

    def transform_unchecked(self, X: pd.DataFrame) -> pd.DataFrame:
        applications, out = self.columns_of(X)
        return pd.DataFrame(out, index=pd.Index(applications, name="application_id"))

    def columns_of(self, X: Table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(application ids in order of first appearance, each feature as an array in that order), from a
        table of pledged assets or a mapping of its columns. numpy over factorised ids rather than a pandas
        groupby: the same sums for a portfolio, and one request's bundle in microseconds."""
        codes, applications = pd.factorize(column_objects(X["application_id"]))
        n, rows = len(applications), len(codes)

        def total(values: np.ndarray) -> np.ndarray:  # per application, missing values skipped
            return np.bincount(codes, weights=np.nan_to_num(values, nan=0.0), minlength=n)

        def present(values: np.ndarray) -> np.ndarray:
            return np.bincount(codes, weights=~np.isnan(values), minlength=n)

        def extreme(values: np.ndarray, ufunc: np.ufunc, start: float) -> np.ndarray:
            out = np.full(n, start)
            ufunc.at(out, codes, values)  # fmin / fmax skip NaN
            return np.where(present(values) > 0, out, np.nan)

        weight = column_floats(X[self.value_column]) if self.value_column else np.ones(rows)
        is_patent = (column_objects(X["asset_kind"]) == "patent").astype("float64")
        is_invention = (
            (column_objects(X["patent_type"]) == PatentType.INVENTION).astype("float64")
            if "patent_type" in X
            else np.zeros(rows)
        )
        remaining = column_floats(X["remaining_years"])
        size = np.bincount(codes, minlength=n).astype("float64")
        patents, inventions = total(is_patent), total(is_invention)
        value = total(weight)
        with np.errstate(divide="ignore", invalid="ignore"):
            share_sq = (weight / value[codes]) ** 2
            largest = extreme(weight, np.fmax, -np.inf)
            out = {
                "n_assets": size,
                "n_patents": patents,
                "n_trademarks": size - patents,
                "n_inventions": inventions,
                "invention_share": inventions / size,
                "has_patent_and_trademark": ((patents > 0) & (patents < size)).astype("float64"),
                # a bundle with no value is missing, not a perfect-looking 0
                "concentration_hhi": np.where(present(share_sq) > 0, total(share_sq), np.nan),
                "largest_share": largest / value,
                "shortest_remaining_years": extreme(remaining, np.fmin, np.inf),
                "mean_remaining_years": total(remaining) / present(remaining),
            }
        if self.value_column:
            out["bundle_value_cny"] = value
            out["strongest_asset_value_cny"] = largest
        return applications, out
