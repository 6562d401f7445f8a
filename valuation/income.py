"""Income-approach cross-check: relief from royalty, as Chinese asset-appraisal practice expects.

A value model learned from appraisals says what similar assets were valued at; an appraiser and a bank's
credit committee also want the income approach (收益法), the approach most used for patents in China
(domain.md section 6): what the owner saves by owning the right instead of licensing it, after tax,
discounted over the asset's remaining economic life. The two disagreeing by more than a factor of about
three is a reason to look at the file, not a verdict on either figure; `cross_check` flags it.

Formula (per asset; mid-year discounting; a partial final year counts pro rata)::

    L = remaining economic life in years, n = floor(L), f = L - n
    S = revenue attributable x royalty rate x (1 - tax rate)          first year's after-tax saving
    V = S x [ sum_{t=1..n} (1+g)^(t-1) / (1+r)^(t-0.5)  +  f x (1+g)^n / (1+r)^(n + f/2) ]

with r the discount rate and g the yearly growth (negative: decay) of the royalty base. Every parameter is
a named, documented field of `IncomeAssumptions`; docs/valuation-methods.md gives the reasons for each
default. The defaults are assumptions from licensing practice, not estimates from Ezhou data: a bank
overrides them with its appraisers' figures (`IncomeAssumptions().override(...)`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from features.errors import InvalidData, Problem
from features.schema import Industry
from features.values import plain
from valuation._common import (
    ASSET_TYPES,
    PATENT_TYPES,
    TRADEMARK,
    Columns,
    broadcast,
    decode_patent_type,
    floats_as_is,
    mapping_problems,
    positions,
    range_problems,
    raw,
    require_columns,
    scalar_problem,
    with_overrides,
)

INDUSTRIES: tuple[str, ...] = tuple(i.value for i in Industry)

# Royalty rates for patents, share of the revenue of products using the technology. Mid-points of the
# ranges Chinese appraisal texts commonly quote for licensed technology (UNIDO survey figures: chemicals
# 2-3.5%, machinery 1.5-3%, pharmaceuticals 2.5-4%, electrical 3-4.5%, precision electronics 4-5.5%,
# consumer goods 1-2.5%), moved up for biomedicine and software where licence deals run higher.
PATENT_ROYALTY_RATES: dict[str, float] = {
    Industry.ELECTRONICS: 0.045,
    Industry.BIOMEDICINE: 0.05,
    Industry.NEW_MATERIALS: 0.03,
    Industry.ADVANCED_MANUFACTURING: 0.03,
    Industry.SOFTWARE: 0.05,
    Industry.ENERGY_ENVIRONMENT: 0.035,
    Industry.AGRI_FOOD: 0.02,
    Industry.LOGISTICS: 0.02,
}
# Royalty rates for trademarks, share of revenue under the mark: brand licences run about 0.5-5%, highest
# for consumer goods (food) and lowest for industrial goods bought on specification.
TRADEMARK_ROYALTY_RATES: dict[str, float] = {
    Industry.ELECTRONICS: 0.02,
    Industry.BIOMEDICINE: 0.025,
    Industry.NEW_MATERIALS: 0.01,
    Industry.ADVANCED_MANUFACTURING: 0.01,
    Industry.SOFTWARE: 0.02,
    Industry.ENERGY_ENVIRONMENT: 0.015,
    Industry.AGRI_FOOD: 0.03,
    Industry.LOGISTICS: 0.015,
}


@dataclass(frozen=True)
class IncomeAssumptions:
    """Every parameter of the relief-from-royalty cross-check, with its default.

    Frozen so that a valuation records exactly what it assumed; change it with `override` (which merges
    mapping-valued fields, so one industry or one asset type can be changed alone) or
    `dataclasses.replace`. Keys: industries are `features.schema.Industry` values; asset types are
    invention, utility_model, design and trademark.

    Parameters
    ----------
    royalty_rate_patent : royalty rate per industry for an invention patent, share of the revenue of the
        products using it (2-5%; see `PATENT_ROYALTY_RATES`).
    royalty_rate_trademark : royalty rate per industry for a trademark, share of revenue under the mark.
    patent_type_royalty_factor : multiplier of the patent rate by patent type. Utility models (no
        substantive examination, 10-year term) and designs (appearance only) license for less than
        inventions: 1.0 / 0.5 / 0.4 (assumption).
    well_known_royalty_factor, time_honoured_royalty_factor : multipliers of the trademark rate for a
        well-known mark (驰名商标) and a time-honoured brand (中华老字号); the larger applies (assumption:
        2.0 and 1.5; famous marks command premium royalties).
    revenue_attribution : share of the owner's revenue earned by products that use its patents. 0.6
        mirrors the high-tech enterprise test (at least 60% of revenue from high-tech products).
    max_revenue_share_per_patent : cap on one patent's share of the owner's revenue. The owner's patented
        revenue is split equally over its patents in force; the cap stops a one-patent firm from
        attributing all its revenue to a single right (0.3, assumption).
    patent_not_in_use_factor : multiplier of the royalty base of a patent the owner's products do not use:
        relief from royalty has no own-use base, but the right still blocks competitors and can be
        licensed (0.5, assumption).
    trademark_revenue_share : share of the owner's revenue assumed to be sold under a mark in use whose
        revenue was not declared (0.4, the mean share in the synthetic portfolio; assumption).
    trademark_not_in_use_factor : multiplier for a mark not in use: no revenue under it, and three years'
        non-use exposes it to cancellation (Trademark Law art. 49), so 0.
    pending_factor : multiplier of the value of a pending patent: grant is not certain (0.5, assumption).
    economic_life_cap : cap on the remaining economic life per asset type, in years: technology ages
        before the legal term ends (invention 10, utility model 6, design 5). Trademarks: 10, the
        registration period, beyond which discounting makes little difference.
    assume_trademark_renewal : a registered mark's life is the cap, not its time to expiry, because
        renewal is cheap and routine (True).
    discount_rate : yearly discount rate for SME IP (0.13): a build-up of a risk-free rate near 2.3% (10-year
        Chinese government bond, 2024), an equity premium of about 6.5% for a beta near 1, a small-company
        premium of about 2% and an IP-specific premium of about 2%; Chinese patent appraisals use 12-18%.
    growth_rate : yearly growth of the royalty base per asset type; negative is decay. Patents lose
        relevance as technology moves on (invention -5%, utility model and design -10%); a mark in use
        keeps its revenue (0).
    tax_rate : enterprise income tax on the royalty saved (25%, Enterprise Income Tax Law art. 4).
    high_tech_tax_rate : the reduced rate of high-tech enterprises (15%, art. 28).
    """

    royalty_rate_patent: dict[str, float] = field(default_factory=lambda: dict(PATENT_ROYALTY_RATES))
    royalty_rate_trademark: dict[str, float] = field(default_factory=lambda: dict(TRADEMARK_ROYALTY_RATES))
    patent_type_royalty_factor: dict[str, float] = field(
        default_factory=lambda: {"invention": 1.0, "utility_model": 0.5, "design": 0.4}
    )
    well_known_royalty_factor: float = 2.0
    time_honoured_royalty_factor: float = 1.5
    revenue_attribution: float = 0.6
    max_revenue_share_per_patent: float = 0.3
    patent_not_in_use_factor: float = 0.5
    trademark_revenue_share: float = 0.4
    trademark_not_in_use_factor: float = 0.0
    pending_factor: float = 0.5
    economic_life_cap: dict[str, float] = field(
        default_factory=lambda: {"invention": 10.0, "utility_model": 6.0, "design": 5.0, "trademark": 10.0}
    )
    assume_trademark_renewal: bool = True
    discount_rate: float = 0.13
    growth_rate: dict[str, float] = field(
        default_factory=lambda: {
            "invention": -0.05,
            "utility_model": -0.10,
            "design": -0.10,
            "trademark": 0.0,
        }
    )
    tax_rate: float = 0.25
    high_tech_tax_rate: float = 0.15

    def __post_init__(self) -> None:
        # Keys given as Industry members are stored as their text value, so lookups by text work.
        for name in ("royalty_rate_patent", "royalty_rate_trademark"):
            object.__setattr__(self, name, {str(k): v for k, v in getattr(self, name).items()})
        problems = (
            mapping_problems("royalty_rate_patent", self.royalty_rate_patent, INDUSTRIES, lo=0, hi=1)
            + mapping_problems("royalty_rate_trademark", self.royalty_rate_trademark, INDUSTRIES, lo=0, hi=1)
            + mapping_problems(
                "patent_type_royalty_factor", self.patent_type_royalty_factor, PATENT_TYPES, lo=0
            )
            + mapping_problems("economic_life_cap", self.economic_life_cap, ASSET_TYPES, lo=0)
            + mapping_problems("growth_rate", self.growth_rate, ASSET_TYPES, lo=-0.99)
        )
        for name, lo, hi in (
            ("well_known_royalty_factor", 0, None),
            ("time_honoured_royalty_factor", 0, None),
            ("revenue_attribution", 0, 1),
            ("max_revenue_share_per_patent", 0, 1),
            ("patent_not_in_use_factor", 0, 1),
            ("trademark_revenue_share", 0, 1),
            ("trademark_not_in_use_factor", 0, 1),
            ("pending_factor", 0, 1),
            ("discount_rate", 0, 1),
            ("tax_rate", 0, 0.99),
            ("high_tech_tax_rate", 0, 0.99),
        ):
            problems += scalar_problem(name, getattr(self, name), lo=lo, hi=hi)
        if not isinstance(self.assume_trademark_renewal, bool):
            problems.append(
                Problem("assume_trademark_renewal", "True or False", self.assume_trademark_renewal)
            )
        if problems:
            raise InvalidData(problems, what="IncomeAssumptions")

    def override(self, **changes: Any) -> IncomeAssumptions:
        """A copy with `changes`; mapping fields are merged, e.g. `override(discount_rate=0.15,
        royalty_rate_patent={"software": 0.06})` keeps the other industries' rates."""
        return with_overrides(self, **changes)


class CrossCheck(NamedTuple):
    """`flag`: the model and income values differ by more than the factor either way; `ratio`: model /
    income (inf when only the income value is 0, 1 when both are, NaN when either is missing)."""

    flag: np.ndarray
    ratio: np.ndarray


def income_value(
    revenue_attributable_cny: ArrayLike,
    royalty_rate: ArrayLike,
    remaining_years: ArrayLike,
    assumptions: IncomeAssumptions | None = None,
    *,
    tax_rate: ArrayLike | None = None,
    growth_rate: ArrayLike | None = None,
) -> np.ndarray:
    """Relief-from-royalty value in CNY: after-tax royalty savings discounted over the remaining life.

    Vectorised over assets; scalars broadcast. `remaining_years` is the remaining *economic* life (see
    `economic_life`); 0 gives 0. The royalty base of the first year is `revenue_attributable_cny` and
    grows by `growth_rate` a year (default 0: constant; the input helpers fill it per asset type from
    `assumptions.growth_rate`). `tax_rate` defaults to `assumptions.tax_rate`; pass per-asset rates
    for high-tech owners. Cash flows arrive mid-year; the partial final year f < 1 earns f of a year's
    saving, discounted to its own mid-point.

    >>> round(float(income_value(1_000_000, 0.05, 1.0, IncomeAssumptions(discount_rate=0.1))[0]), 2)
    35754.85
    """
    a = assumptions or IncomeAssumptions()
    given = (revenue_attributable_cny, royalty_rate, remaining_years, tax_rate, growth_rate)
    lengths = [np.size(v) for v in given if v is not None and np.ndim(v) > 0]
    n = max(lengths, default=1)
    revenue = broadcast(revenue_attributable_cny, n, "revenue_attributable_cny")
    royalty = broadcast(royalty_rate, n, "royalty_rate")
    life = broadcast(remaining_years, n, "remaining_years")
    tax = broadcast(a.tax_rate if tax_rate is None else tax_rate, n, "tax_rate")
    growth = broadcast(0.0 if growth_rate is None else growth_rate, n, "growth_rate")
    problems = (
        range_problems("revenue_attributable_cny", revenue, lo=0)
        + range_problems("royalty_rate", royalty, lo=0, hi=1)
        + range_problems("remaining_years", life, lo=0)
        + range_problems("tax_rate", tax, lo=0, hi=1, hi_open=True)
        + range_problems("growth_rate", growth, lo=-1, lo_open=True)
    )
    if problems:
        raise InvalidData(problems, what="income_value input")

    r = a.discount_rate
    full_years = np.floor(life)
    fraction = life - full_years
    q = (1.0 + growth) / (1.0 + r)
    # sum_{t=1..n} q^(t-1) = (1 - q^n) / (1 - q), or n when q = 1 (growth equal to the discount rate)
    same = np.abs(q - 1.0) <= 1e-12  # np.isclose(q, 1.0, rtol=0.0, atol=1e-12) for a finite q
    geometric = np.divide(1.0 - q**full_years, 1.0 - q, out=full_years.copy(), where=~same)
    whole = geometric / np.sqrt(1.0 + r)
    partial = fraction * (1.0 + growth) ** full_years / (1.0 + r) ** (full_years + fraction / 2.0)
    return revenue * royalty * (1.0 - tax) * (whole + partial)


def economic_life(
    remaining_legal_years: ArrayLike,
    asset_type: ArrayLike,
    assumptions: IncomeAssumptions | None = None,
    *,
    registered: ArrayLike | None = None,
) -> np.ndarray:
    """Remaining economic life: the legal remaining term capped by the asset type's economic life.

    A registered trademark (`registered` true, default all) gets the full cap when
    `assume_trademark_renewal`, since a mark lives as long as it is renewed. Missing legal terms (a
    pending mark has no expiry yet) give 0 unless the renewal rule applies.
    """
    a = assumptions or IncomeAssumptions()
    n = max(np.size(remaining_legal_years), np.size(asset_type))
    types = broadcast(asset_type, n, "asset_type", dtype="object")
    legal = broadcast(remaining_legal_years, n, "remaining_legal_years")
    unknown = [i for i, t in enumerate(types) if t not in a.economic_life_cap]
    if unknown:
        raise InvalidData(
            [Problem("asset_type", f"one of {list(ASSET_TYPES)}", plain(types[i]), row=i) for i in unknown],
            what="economic_life input",
        )
    cap = np.array([a.economic_life_cap[t] for t in types], dtype="float64")
    term = np.maximum(legal, 0)
    life = np.minimum(np.where(np.isnan(term), 0.0, term), cap)
    if a.assume_trademark_renewal:
        reg = np.ones(n, dtype=bool) if registered is None else broadcast(registered, n, "registered") > 0
        life = np.where((types == TRADEMARK) & reg, cap, life)
    return life


def tax_rates(high_tech: ArrayLike, n: int, assumptions: IncomeAssumptions | None = None) -> np.ndarray:
    """Per-owner income tax rate: 15% for high-tech enterprises (高新技术企业), 25% otherwise."""
    a = assumptions or IncomeAssumptions()
    flag = broadcast(high_tech, n, "high_tech") > 0
    return np.where(flag, a.high_tech_tax_rate, a.tax_rate)


def patents_in_force(owner_ids: ArrayLike, is_valid: ArrayLike) -> np.ndarray:
    """For each row, how many rows of the same owner are in force: the count the owner's patented revenue
    is split over. Give it every patent of each owner (not only the pledged ones), or the split is too
    coarse and each pledged patent gets too large a share."""
    owners = pd.Series(np.asarray(owner_ids, dtype=object))
    valid = pd.Series(np.asarray(is_valid, dtype="float64") > 0)
    return valid.groupby(owners, sort=False).transform("sum").to_numpy(dtype="float64")


def _flag(values: np.ndarray) -> np.ndarray:
    """A 0/1 feature column (as floats, missing NaN) as booleans; missing counts as not set."""
    return values > 0  # NaN compares False


_INDUSTRY_SET = frozenset(INDUSTRIES)
_PATENT_TYPE_SET = frozenset(PATENT_TYPES)


def _industry_text(industry: np.ndarray) -> tuple[list[str], list[Problem]]:
    """Industries as text (numpy's `astype(str)`, the keys of the royalty rates) and a problem for each
    row whose industry is not one of `INDUSTRIES`."""
    names = industry.astype(str).tolist()
    problems = [
        Problem("industry", f"one of {list(INDUSTRIES)}", plain(industry[i]), row=i)
        for i, name in enumerate(names)
        if name not in _INDUSTRY_SET
    ]
    return names, problems


INPUT_COLUMNS = [
    "asset_type",
    "revenue_attributable_cny",
    "royalty_rate",
    "remaining_years",
    "growth_rate",
    "tax_rate",
    "status_factor",
]
# The columns each kind's income inputs read (besides the owner's facts, valuation.data.INCOME_COLUMNS).
PATENT_FEATURES = ["patent_type", "is_valid", "is_pending", "remaining_years", "in_use"]
TRADEMARK_FEATURES = [
    "is_registered",
    "remaining_years",
    "well_known",
    "time_honoured",
    "in_use",
    "log_revenue_under_mark",
]


def patent_income_inputs(
    features: pd.DataFrame,
    owner_revenue_cny: ArrayLike,
    industry: ArrayLike,
    patents_in_force: ArrayLike,
    *,
    high_tech: ArrayLike = False,
    assumptions: IncomeAssumptions | None = None,
    patent_type_categories: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Relief-from-royalty inputs for patents, one row per row of a `PatentFeatures` frame.

    revenue attributable = owner revenue x revenue_attribution / max(patents in force, 1), capped at
    max_revenue_share_per_patent x owner revenue, times patent_not_in_use_factor where `in_use` is 0;
    royalty rate = industry rate x patent-type factor; life = `economic_life`; status_factor is 1 in
    force, pending_factor pending and 0 otherwise (lapsed, expired, invalidated rights save no royalty).
    Owner revenue, industry, patents in force and high_tech are per row or scalars.
    `patent_type_categories`: the fitted `PatentFeatures.categories_["patent_type"]` (see
    `valuation._common.decode_patent_type`).
    """
    inputs = patent_inputs(
        Columns(features),
        owner_revenue_cny,
        industry,
        patents_in_force,
        high_tech=high_tech,
        assumptions=assumptions,
        patent_type_categories=patent_type_categories,
    )
    return pd.DataFrame(inputs, index=features.index)


def patent_inputs(
    features: Columns,
    owner_revenue_cny: ArrayLike,
    industry: ArrayLike,
    patents_in_force: ArrayLike,
    *,
    high_tech: ArrayLike = False,
    assumptions: IncomeAssumptions | None = None,
    patent_type_categories: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """`patent_income_inputs` as arrays (the `INPUT_COLUMNS`), from the columns of a feature frame."""
    require_columns(features, PATENT_FEATURES, "patent_income_inputs")
    a = assumptions or IncomeAssumptions()
    n = len(features)
    revenue = broadcast(owner_revenue_cny, n, "owner_revenue_cny")
    ind = broadcast(industry, n, "industry", dtype="object")
    count = broadcast(patents_in_force, n, "patents_in_force")
    given_type = features.get("patent_type", raw)
    ptype = decode_patent_type(given_type, patent_type_categories)
    ids = features.labels
    problems = range_problems("owner_revenue_cny", revenue, lo=0, ids=ids) + range_problems(
        "patents_in_force", count, lo=0, ids=ids
    )
    industries, industry_problems = _industry_text(ind)
    problems += industry_problems + [
        Problem(
            "patent_type",
            f"one of {list(PATENT_TYPES)}",
            plain(given_type[i]),
            row=i,
            record_id=ids[i],
        )
        for i, t in enumerate(ptype.astype(str).tolist())
        if t not in _PATENT_TYPE_SET
    ]
    if problems:
        raise InvalidData(problems, what="patent_income_inputs input")

    share = np.minimum(a.revenue_attribution / np.maximum(count, 1.0), a.max_revenue_share_per_patent)
    in_use = features.get("in_use", floats_as_is) > 0
    base = revenue * share * np.where(in_use, 1.0, a.patent_not_in_use_factor)
    rate = _lookup(a.royalty_rate_patent, industries) * _lookup(a.patent_type_royalty_factor, ptype)
    valid = features.get("is_valid", floats_as_is) > 0
    pending = features.get("is_pending", floats_as_is) > 0
    status = np.where(valid, 1.0, np.where(pending, a.pending_factor, 0.0))
    legal = features.get("remaining_years")
    life = np.where(status > 0, economic_life(legal, ptype, a), 0.0)
    return {
        "asset_type": ptype.astype(str),
        "revenue_attributable_cny": base,
        "royalty_rate": rate,
        "remaining_years": life,
        "growth_rate": _lookup(a.growth_rate, ptype),
        "tax_rate": tax_rates(high_tech, n, a),
        "status_factor": status,
    }


def trademark_income_inputs(
    features: pd.DataFrame,
    owner_revenue_cny: ArrayLike,
    industry: ArrayLike,
    *,
    high_tech: ArrayLike = False,
    assumptions: IncomeAssumptions | None = None,
) -> pd.DataFrame:
    """Relief-from-royalty inputs for trademarks, one row per row of a `TrademarkFeatures` frame.

    The royalty base is the declared revenue under the mark (`log_revenue_under_mark` undone); a mark in
    use with no declared revenue gets trademark_revenue_share of the owner's revenue; a mark not in use
    gets trademark_not_in_use_factor of that. Rate = industry rate x the larger of the well-known and
    time-honoured factors (1 for neither). Only registered marks save a royalty (status_factor 0 else).
    """
    inputs = trademark_inputs(
        Columns(features), owner_revenue_cny, industry, high_tech=high_tech, assumptions=assumptions
    )
    return pd.DataFrame(inputs, index=features.index)


def trademark_inputs(
    features: Columns,
    owner_revenue_cny: ArrayLike,
    industry: ArrayLike,
    *,
    high_tech: ArrayLike = False,
    assumptions: IncomeAssumptions | None = None,
) -> dict[str, np.ndarray]:
    """`trademark_income_inputs` as arrays (the `INPUT_COLUMNS`), from the columns of a feature frame."""
    require_columns(features, TRADEMARK_FEATURES, "trademark_income_inputs")
    a = assumptions or IncomeAssumptions()
    n = len(features)
    revenue = broadcast(owner_revenue_cny, n, "owner_revenue_cny")
    ind = broadcast(industry, n, "industry", dtype="object")
    industries, industry_problems = _industry_text(ind)
    problems = range_problems("owner_revenue_cny", revenue, lo=0, ids=features.labels) + industry_problems
    if problems:
        raise InvalidData(problems, what="trademark_income_inputs input")

    declared = np.expm1(features.get("log_revenue_under_mark"))
    in_use = features.get("in_use", floats_as_is) > 0
    assumed = revenue * a.trademark_revenue_share * np.where(in_use, 1.0, a.trademark_not_in_use_factor)
    base = np.where(np.isnan(declared), assumed, declared)
    famous = np.maximum.reduce(
        [
            np.ones(n),
            np.where(_flag(features.get("well_known")), a.well_known_royalty_factor, 1.0),
            np.where(_flag(features.get("time_honoured")), a.time_honoured_royalty_factor, 1.0),
        ]
    )
    rate = np.minimum(_lookup(a.royalty_rate_trademark, industries) * famous, 1.0)
    registered = features.get("is_registered", floats_as_is) > 0
    types = np.full(n, TRADEMARK, dtype=object)
    legal = features.get("remaining_years")
    life = np.where(registered, economic_life(legal, types, a, registered=registered), 0.0)
    return {
        "asset_type": types.astype(str),
        "revenue_attributable_cny": base,
        "royalty_rate": rate,
        "remaining_years": life,
        "growth_rate": np.full(n, a.growth_rate[TRADEMARK]),
        "tax_rate": tax_rates(high_tech, n, a),
        "status_factor": registered.astype("float64"),
    }


def _lookup(mapping: Mapping[str, float], keys: Iterable[Any]) -> np.ndarray:
    return np.array([mapping[k] for k in keys])


def value_from_inputs(inputs: pd.DataFrame, assumptions: IncomeAssumptions | None = None) -> np.ndarray:
    """Income value of each row of `patent_income_inputs` / `trademark_income_inputs`, times its
    status factor."""
    require_columns(inputs, INPUT_COLUMNS, "value_from_inputs")
    return inputs_value({c: inputs[c] for c in INPUT_COLUMNS[1:]}, assumptions)


def inputs_value(inputs: Mapping[str, ArrayLike], assumptions: IncomeAssumptions | None = None) -> np.ndarray:
    """`value_from_inputs` of inputs given as arrays (`patent_inputs`, `trademark_inputs`) or as the
    columns of their frame."""
    value = income_value(
        inputs["revenue_attributable_cny"],
        inputs["royalty_rate"],
        inputs["remaining_years"],
        assumptions,
        tax_rate=inputs["tax_rate"],
        growth_rate=inputs["growth_rate"],
    )
    status = inputs["status_factor"]
    return value * (status.to_numpy(dtype="float64") if isinstance(status, pd.Series) else status)


def cross_check(model_value: ArrayLike, income_value: ArrayLike, factor: float = 3.0) -> CrossCheck:
    """Flag assets whose model value and income value differ by more than `factor` either way.

    The ratio is model / income. A value of 0 on one side only is always flagged (ratio 0 or inf); both
    0 agree (ratio 1). Missing values give ratio NaN and no flag: nothing to compare, which the caller
    shows as "no cross-check" rather than as agreement. Negative values are refused.
    """
    problems = scalar_problem("factor", factor, lo=1, lo_open=True)
    if problems:
        raise InvalidData(problems, what="cross_check input")
    n = max(np.size(model_value), np.size(income_value))
    model = broadcast(model_value, n, "model_value")
    income = broadcast(income_value, n, "income_value")
    problems = [
        Problem(name, "a value >= 0 (or missing)", plain(v[i]), row=i)
        for name, v in (("model_value", model), ("income_value", income))
        for i in positions(~np.isnan(v) & ~(v >= 0))
    ]
    if problems:
        raise InvalidData(problems, what="cross_check input")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((model == 0) & (income == 0), 1.0, model / income)
    flag = (ratio > factor) | (ratio < 1.0 / factor)
    return CrossCheck(flag=flag, ratio=ratio)
