"""The synthetic Ezhou book: several years of IP pledge loans to tech enterprises, calibrated to what is
published, with a default process a model can learn.

Every relation the generator assumes is a named parameter of `Assumptions`, and docs/synthetic-portfolio.md
states each with its reason and the published figure it is calibrated to. In short:

- Enterprises live on a quarterly calendar. Each has a lasting quality and a quarterly one (an AR(1)); they
  drive its financial statements and its credit-report records (overdue payments, court judgements,
  enforcements, penalties, tax grade), which are written as one credit report a quarter.
- Patents and trademarks are filed over the years; dated legal events happen to them (annuity lapse,
  invalidation, transfer, licence, litigation, renewal, opposition).
- Each quarter, an enterprise without a running loan applies with some probability; the bank takes its best
  rights in force as the pledge, has them appraised, and lends a share of the appraised value (the
  loan-to-value). The rights' values follow relief from royalty at the published royalty rates, times
  effects of the rights' own quality and noise.
- Each loan defaults within 12 months with a probability that is logistic in the drivers a credit officer
  names (bureau, court and tax records, leverage, debt, cash flow, liquidity, profitability, the pledge's
  value, strength and remaining life, the loan-to-value) with stated effect sizes; the intercept of each
  vintage is solved so that the vintage's default rate is the stated one. An enterprise that defaults takes
  no further loan and leaves the book two quarters later. A defaulted loan's pledge is disposed of by a
  route, and what it recovers is recorded.
- Point in time: an application sees the credit report of the quarter before it, and only events before its
  date. Loans whose 12 months have not passed at extraction have no outcome yet (they are the book's
  running loans, not training rows).

Vectorised numpy, deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from features.portfolio import Portfolio
from features.reference import INDUSTRY_IPC, INDUSTRY_NICE, STRATEGIC_EMERGING_IPC
from features.schema import (
    AppraisalSource,
    AssetKind,
    Enterprise,
    EventType,
    GuaranteeType,
    Industry,
    LegalStatus,
    PatentType,
    TrademarkStatus,
)

Progress = Callable[[str], None]
DAY = np.timedelta64(1, "D")
DEFAULT_ENTERPRISES = (
    26_000  # a book with at least 1,500 defaults to learn from (docs/synthetic-portfolio.md)
)
BURN_IN_QUARTERS = 12  # the credit report counts events of the last 3 years: simulate them before the book


@dataclass(frozen=True)
class Assumptions:
    """Every parameter of the generator, stored in the manifest (docs/synthetic-portfolio.md gives the
    reason or the published figure of each)."""

    # --- time
    first_filing: str = "2003-01-01"
    first_vintage: int = 2019  # the first year loans are originated
    last_vintage: int = 2026  # the last; loans of the last year(s) are still running at extraction
    extraction_date: str = "2026-11-30"  # when the tables were pulled; nothing after it is known
    # --- enterprises
    industry_shares: dict = field(
        default_factory=lambda: {
            "electronics": 0.2,
            "biomedicine": 0.12,
            "new_materials": 0.12,
            "advanced_manufacturing": 0.2,
            "software": 0.14,
            "energy_environment": 0.1,
            "agri_food": 0.07,
            "logistics": 0.05,
        }
    )
    log_revenue_mean: float = 18.6  # exp(18.6) = 120 M CNY: the median revenue at the book's start
    log_revenue_sd: float = 1.35
    revenue_growth_mean: float = 0.06  # yearly, per enterprise; spread revenue_growth_sd
    revenue_growth_sd: float = 0.08
    quality_lasting_share: float = 0.6  # share of the variance of quality that lasts (the rest an AR(1))
    quality_persistence: float = 0.85  # quarterly autocorrelation of the passing part
    entrant_share: float = 0.15  # enterprises founded during the book (the rest before it)
    # --- IP output
    patents_log_mean: float = 1.7  # mean patents per enterprise about exp(1.7) = 5.5 at average size
    patents_per_q: float = 0.45
    patents_per_log_revenue: float = 0.35
    patents_dispersion: float = 1.5  # negative binomial shape: a few enterprises hold many patents
    trademarks_log_mean: float = 0.6
    patent_type_shares: tuple = (0.4, 0.45, 0.15)  # invention, utility model, design
    patent_quality_from_owner: float = 0.5  # z = 0.5 q + N(0, patent_quality_noise)
    patent_quality_noise: float = 0.9
    well_known_share: float = 0.04  # of marks, rising with the mark's quality
    time_honoured_share: float = 0.025  # of marks of enterprises older than 15 years
    # --- yearly event rates at z = 0 (log-linear in z with the given slopes)
    citation_rate: float = 0.18
    citation_per_z: float = 0.7
    lapse_rate: float = 0.09
    lapse_per_z: float = -0.9
    licence_rate: float = 0.03
    transfer_rate: float = 0.02
    invalidation_request_rate: float = 0.012
    invalidation_success: float = 0.35
    litigation_rate: float = 0.02
    prior_pledge_rate: float = 0.01
    # --- true value: relief from royalty at the published rates (valuation.income's defaults, whose sources
    #     docs/valuation-methods.md gives), times the right's own effects
    patent_royalty: dict = field(
        default_factory=lambda: {
            "electronics": 0.045,
            "biomedicine": 0.05,
            "new_materials": 0.03,
            "advanced_manufacturing": 0.03,
            "software": 0.05,
            "energy_environment": 0.035,
            "agri_food": 0.02,
            "logistics": 0.02,
        }
    )
    trademark_royalty: dict = field(
        default_factory=lambda: {
            "electronics": 0.02,
            "biomedicine": 0.025,
            "new_materials": 0.01,
            "advanced_manufacturing": 0.01,
            "software": 0.02,
            "energy_environment": 0.015,
            "agri_food": 0.03,
            "logistics": 0.015,
        }
    )
    patent_type_royalty_factor: dict = field(
        default_factory=lambda: {"invention": 1.0, "utility_model": 0.5, "design": 0.4}
    )
    well_known_royalty_factor: float = 2.0
    time_honoured_royalty_factor: float = 1.5
    revenue_attribution: float = 0.6
    max_revenue_share_per_patent: float = 0.3
    patent_not_in_use_factor: float = 0.5
    pending_factor: float = 0.5
    economic_life_cap: dict = field(
        default_factory=lambda: {"invention": 10.0, "utility_model": 6.0, "design": 5.0, "trademark": 10.0}
    )
    royalty_growth: dict = field(
        default_factory=lambda: {
            "invention": -0.05,
            "utility_model": -0.10,
            "design": -0.10,
            "trademark": 0.0,
        }
    )
    discount_rate: float = 0.13
    tax_rate: float = 0.25
    high_tech_tax_rate: float = 0.15
    appraisal_premium: float = 1.15  # appraisers' reports run a little above a bare relief from royalty
    value_per_z: float = 0.4
    value_strategic: float = 0.15
    value_per_log_family_countries: float = 0.15
    value_licensed: float = 0.2  # a licence shows a market for the right
    value_litigated: float = 0.15  # rights worth suing over are worth more
    value_invalidation_requested: float = -0.35  # a challenge clouds the right
    value_mark_per_z: float = 0.35
    value_noise_df: float = 5.0  # Student-t noise: heavy tails
    value_noise_scale: float = 0.25
    # --- observations of value
    appraisal_noise: float = 0.15  # log-scale sd of an appraiser's error on pledged assets
    transaction_share: float = 0.04  # share of the other assets in use with a transaction price
    transaction_noise: float = 0.3
    # --- loans
    apply_logit: float = -0.4  # quarterly probability of applying, at average quality and size: 40%
    apply_per_q: float = 0.3
    apply_per_log_revenue: float = 0.3
    loan_to_value_mean: float = 0.42  # of the appraised bundle; Beta with loan_to_value_strength
    loan_to_value_strength: float = 9.0
    term_shares: dict = field(default_factory=lambda: {12: 0.55, 24: 0.3, 36: 0.15})
    trademark_share: float = 0.45  # applications that add a mark ("patent + trademark" bundles)
    n_banks: int = 6
    min_amount_cny: float = 100_000
    max_amount_cny: float = 500_000_000
    # the loan prime rate by year (1-year LPR, PBoC), the base the banks' rates are set on
    loan_prime_rate: dict = field(
        default_factory=lambda: {
            2019: 0.0415,
            2020: 0.0385,
            2021: 0.0385,
            2022: 0.0365,
            2023: 0.0345,
            2024: 0.0310,
            2025: 0.0300,
            2026: 0.0300,
        }
    )
    # --- defaults: the 12-month default rate of each vintage (1-4% a year, domain.md section 9) and the
    #     log-odds effect of each driver (docs/synthetic-portfolio.md gives the reason of each)
    default_rate_by_vintage: dict = field(
        default_factory=lambda: {
            2019: 0.024,
            2020: 0.038,
            2021: 0.028,
            2022: 0.033,
            2023: 0.030,
            2024: 0.031,
            2025: 0.030,
            2026: 0.030,
        }
    )
    pd_coefficients: dict = field(
        default_factory=lambda: {
            "log1p_overdue_count": 0.45,
            "overdue_days_per_30": 0.3,
            "log1p_court_judgements": 0.35,
            "log1p_enforcements": 0.6,
            "dishonest_debtor": 1.0,
            "log1p_admin_penalties": 0.2,
            "tax_A": -0.6,
            "tax_M": 0.2,
            "tax_C": 0.5,
            "tax_D": 0.9,
            "leverage": 1.6,
            "debt_to_revenue": 0.5,
            "cash_flow_margin": -2.5,
            "log_current_ratio": -0.4,
            "return_on_assets": -4.0,
            "log_loan_to_value": 0.5,
            "log_amount_to_revenue": 0.25,
            "ip_strength": -0.25,
            "remaining_years": -0.04,
            "latent_quality": -0.3,
            "quality_change_ahead": -0.8,
            "guarantee_company": -0.2,
            "high_tech": -0.3,
            "specialized_sme": -0.3,
        }
    )
    recovery_routes: dict = field(
        default_factory=lambda: {"licence": 0.3, "auction_transfer": 0.5, "pledge_to_equity": 0.2}
    )
    # what a pledge keeps of its value when its owner defaults: the rights earned through the owner's
    # products, and those sell less (wrong-way risk)
    default_value_retained: float = 0.4
    recovery_discounts: dict = field(  # share of the pledge's value lost by route (valuation.pledge's)
        default_factory=lambda: {"licence": 0.45, "auction_transfer": 0.55, "pledge_to_equity": 0.65}
    )


# --- small helpers ----------------------------------------------------------------------------------


def _dates(start: str | np.datetime64, days: np.ndarray) -> np.ndarray:
    return (np.datetime64(start, "D") + np.floor(days).astype("int64") * DAY).astype("datetime64[D]")


def _years(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (b - a).astype("timedelta64[D]").astype("float64") / 365.25


def _choice(
    rng: np.random.Generator,
    options: list,
    weights: dict | list,
    size: int,
    groups: np.ndarray | None = None,
    by_group: dict | None = None,
) -> np.ndarray:
    """Draw `options` with `weights`, or with per-group weights `by_group[group]` when given."""
    if by_group is None:
        p = np.asarray(weights, dtype=float)
        return np.asarray(options, dtype=object)[rng.choice(len(options), size=size, p=p / p.sum())]
    out = np.empty(size, dtype=object)
    for g, w in by_group.items():
        idx = np.flatnonzero(groups == g)
        keys = list(w)
        p = np.array([w[k] for k in keys], dtype=float)
        out[idx] = np.asarray(keys, dtype=object)[rng.choice(len(keys), size=idx.size, p=p / p.sum())]
    return out


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return (prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)).to_numpy(dtype=object)


def _lookup(mapping: dict, keys: np.ndarray) -> np.ndarray:
    return pd.Series(keys).map(mapping).to_numpy(dtype="float64")


def _rolling(events: np.ndarray, window: int, reduce: str = "sum") -> np.ndarray:
    """Each quarter's sum (or max) of the last `window` quarters, this one included (axis 1 is time)."""
    if reduce == "sum":
        c = np.cumsum(events, axis=1)
        out = c.copy()
        out[:, window:] -= c[:, :-window]
        return out
    out = events.copy()
    for lag in range(1, window):
        out[:, lag:] = np.maximum(out[:, lag:], events[:, :-lag])
    return out


def royalty_value(base, royalty, life, growth, tax, discount_rate) -> np.ndarray:
    """Relief from royalty: the after-tax royalty saved on `base`, growing by `growth` a year, discounted
    mid-year over `life` years (a partial last year pro rata). The formula of valuation.income.income_value,
    written here because features/ imports nothing above it (tests/test_synth.py holds the two equal)."""
    r = discount_rate
    n = np.floor(life)
    f = life - n
    q = (1.0 + growth) / (1.0 + r)
    same = np.abs(q - 1.0) <= 1e-12
    geometric = np.divide(1.0 - q**n, 1.0 - q, out=n.astype("float64").copy(), where=~same)
    partial = f * (1.0 + growth) ** n / (1.0 + r) ** (n + f / 2.0)
    return base * royalty * (1.0 - tax) * (geometric / np.sqrt(1.0 + r) + partial)


def _events(rng, kind: str, asset_ids: np.ndarray, event_type: str, rate, start, end) -> pd.DataFrame:
    """A Poisson process per asset between `start` and `end` at yearly `rate`."""
    exposure = np.clip(_years(start, end), 0, None)
    counts = rng.poisson(rate * exposure)
    idx = np.repeat(np.arange(asset_ids.size), counts)
    offsets = rng.random(idx.size) * exposure[idx] * 365.25
    return pd.DataFrame(
        {
            "asset_kind": kind,
            "asset_id": asset_ids[idx],
            "event_type": event_type,
            "event_date": (start[idx] + np.floor(offsets).astype("int64") * DAY).astype("datetime64[D]"),
        }
    )


@dataclass(frozen=True)
class Calendar:
    """The quarters the book is simulated on: the burn-in, then the history the reports show."""

    starts: np.ndarray  # first day of each quarter (datetime64[D]); index 0 is the burn-in's first
    book_start: int  # the first quarter whose report is written (a year before the first vintage)
    first_loan: int  # the first quarter loans are originated in
    extraction: np.datetime64

    @classmethod
    def of(cls, a: Assumptions) -> Calendar:
        extraction = np.datetime64(a.extraction_date, "D")
        history = np.datetime64(f"{a.first_vintage - 1}-01-01", "D")
        first = pd.Timestamp(history) - pd.DateOffset(months=3 * BURN_IN_QUARTERS)
        last = min(pd.Timestamp(extraction), pd.Timestamp(f"{a.last_vintage}-12-31"))
        starts = pd.date_range(first, last, freq="QS").to_numpy().astype("datetime64[D]")
        return cls(starts, BURN_IN_QUARTERS, BURN_IN_QUARTERS + 4, extraction)

    @property
    def ends(self) -> np.ndarray:
        """Last day of each quarter."""
        return (np.append(self.starts[1:], self.starts[-1] + 92 * DAY) - DAY).astype("datetime64[D]")

    def quarter_of(self, dates: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, dates.astype("datetime64[D]"), side="right") - 1


# --- the generator ----------------------------------------------------------------------------------


def synthesize(
    n_enterprises: int = DEFAULT_ENTERPRISES,
    seed: int = 7,
    assumptions: Assumptions | None = None,
    progress: Progress | None = None,
) -> Portfolio:
    """Generate the book. `progress(step)` is called as each stage completes."""
    a = assumptions or Assumptions()
    if a.first_vintage > a.last_vintage:
        raise ValueError(
            f"first_vintage must not follow last_vintage; got {a.first_vintage}-{a.last_vintage}"
        )
    rng = np.random.default_rng(seed)
    say = progress or (lambda _step: None)
    cal = Calendar.of(a)

    ent = _enterprises(rng, a, n_enterprises, cal)
    say("enterprises")
    pat = _patents(rng, a, ent, cal.extraction)
    tm = _trademarks(rng, a, ent, cal.extraction)
    say("patents and trademarks")
    events = _asset_events(rng, a, pat, tm, cal.extraction)
    say("events")
    declared_at = cal.quarter_of(np.array([cal.extraction]))[0] - 1  # the last report before extraction
    tm["revenue_under_mark_cny"] = np.where(
        tm["declared"],
        np.round(ent["revenue_cny"][tm["owner"], declared_at] * tm["revenue_share"], 0),
        np.nan,
    )
    loans = _loans(rng, a, ent, pat, cal)
    pledges, in_force = _pledges(rng, a, loans, pat, tm)
    say("applications")
    valued = _pledged_values(rng, a, ent, pat, tm, loans, pledges, in_force, events)
    traded = _traded_values(rng, a, ent, pat, tm, events, pledges, cal)
    say("true values")
    loans = _loan_terms(rng, a, ent, loans, valued)
    outcomes, loans, pledges, valued = _outcomes(rng, a, ent, pat, loans, pledges, valued, cal)
    say("defaults")
    pledge_events = pd.DataFrame(
        {
            "asset_kind": pledges["asset_kind"].to_numpy(),
            "asset_id": pledges["asset_id"].to_numpy(),
            "event_type": EventType.PLEDGE.value,
            "event_date": pledges["application_date"].to_numpy().astype("datetime64[D]"),
        }
    )
    events = pd.concat([events, pledge_events], ignore_index=True)
    appraisals = _appraisals(valued, traded)
    applications = _application_table(ent, loans)
    portfolio = Portfolio(
        enterprises=_enterprise_table(ent, cal),
        patents=_patent_table(pat, cal.extraction),
        trademarks=_trademark_table(tm, cal.extraction),
        events=_event_table(events),
        applications=applications,
        pledges=pledges[["application_id", "asset_kind", "asset_id"]].reset_index(drop=True),
        outcomes=outcomes,
        appraisals=appraisals,
        truth=_truth(ent, pat, tm, valued, traded, loans),
    )
    labelled = outcomes["defaulted_12m"]
    vintage = applications.set_index("application_id").loc[outcomes["application_id"], "application_date"]
    by_vintage = labelled.groupby(vintage.dt.year.to_numpy()).agg(["size", "mean"])
    portfolio.manifest = {
        "generator": "ipcredit synthetic Ezhou book",
        "seed": seed,
        "sizes": {name: len(df) for name, df in portfolio.tables().items()},
        "vintages": [a.first_vintage, a.last_vintage],
        "default_rate_observed": float(labelled.mean()) if len(labelled) else None,
        "defaults": int(labelled.sum()),
        "loans_with_outcome": int(len(labelled)),
        "loans_running": int(len(applications) - len(labelled)),
        "default_rate_by_vintage": {
            str(year): {"loans": int(row["size"]), "default_rate": float(row["mean"])}
            for year, row in by_vintage.iterrows()
        },
        "assumptions": asdict(a),
        "documentation": "docs/synthetic-portfolio.md",
    }
    say("tables")
    return portfolio


# --- enterprises --------------------------------------------------------------------------------------


def _enterprises(rng, a: Assumptions, n: int, cal: Calendar) -> dict[str, np.ndarray]:
    """Static facts of each enterprise and its quarterly figures, as (n, quarters) matrices."""
    T = cal.starts.size
    industries = list(a.industry_shares)
    industry = _choice(rng, industries, list(a.industry_shares.values()), n)
    tech = np.isin(industry, ["electronics", "biomedicine", "software", "new_materials"]).astype(float)
    size = a.log_revenue_mean + a.log_revenue_sd * rng.standard_normal(n)  # log revenue at the book's start
    size_c = (size - a.log_revenue_mean) / a.log_revenue_sd
    # quality: a lasting part and a quarterly AR(1) part, N(0, 1) at every quarter
    lasting = rng.standard_normal(n)
    rho = a.quality_persistence
    passing = np.empty((n, T))
    passing[:, 0] = rng.standard_normal(n)
    shocks = rng.standard_normal((n, T))
    for k in range(1, T):
        passing[:, k] = rho * passing[:, k - 1] + np.sqrt(1 - rho**2) * shocks[:, k]
    w = np.sqrt(a.quality_lasting_share)
    q = w * lasting[:, None] + np.sqrt(1 - w**2) * passing

    history = cal.starts[cal.book_start]
    entrant = rng.random(n) < a.entrant_share
    age_at_history = 1 + rng.gamma(2.0, 4.0, n)
    span = (np.datetime64(f"{a.last_vintage}-01-01", "D") - history).astype(int)
    founded = np.where(
        entrant,
        _dates(history, rng.random(n) * max(span, 1)),
        history - np.ceil(age_at_history * 365.25).astype("int64") * DAY,
    ).astype("datetime64[D]")

    years = (np.arange(T) - cal.book_start)[None, :] / 4.0
    growth = a.revenue_growth_mean + a.revenue_growth_sd * rng.standard_normal(n)
    noise = lambda scale: scale * rng.standard_normal((n, T))  # noqa: E731 - a quarter's own noise
    revenue = np.exp(size[:, None] + growth[:, None] * years + 0.25 * q + noise(0.06))
    gross_margin = np.clip(
        (0.28 + 0.07 * rng.standard_normal(n))[:, None] + 0.03 * q + noise(0.02), -0.5, 0.9
    )
    net_margin = gross_margin - 0.2 + 0.03 * q + noise(0.03)
    turnover = 1.2 * np.exp(0.35 * rng.standard_normal(n))
    total_assets = revenue * turnover[:, None] * np.exp(noise(0.04))
    leverage = expit((-0.2 + 0.5 * rng.standard_normal(n))[:, None] - 0.3 * q + noise(0.15))
    current_ratio = np.exp((0.3 + 0.25 * rng.standard_normal(n))[:, None] + 0.15 * q + noise(0.08))
    current_ratio[rng.random(n) < 0.05] = np.nan  # some statements lack it
    debt_level = -1.6 + 0.6 * rng.standard_normal(n)
    outstanding = revenue * np.exp(debt_level[:, None] - 0.2 * q + noise(0.15))
    cash_flow = revenue * (net_margin + 0.02 + noise(0.03))
    employees = np.maximum(
        1, np.round(np.exp(3.6 + 0.7 * size_c + 0.3 * lasting + 0.4 * rng.standard_normal(n)))
    )
    rd_share = np.clip(0.06 + 0.02 * lasting + 0.03 * tech + 0.02 * rng.standard_normal(n), 0, None)

    # credit-report records: events each quarter, counted over the report's window
    overdue = rng.poisson(np.exp(-2.6 - 0.7 * q))
    days = np.where(overdue > 0, np.minimum(180, np.ceil(rng.gamma(1.5, 15 * np.exp(-0.4 * q)))), 0)
    court = rng.poisson(np.exp(-3.6 - 0.5 * q))
    enforcement = rng.poisson(np.exp(-4.3 - 0.7 * q))
    penalties = rng.poisson(np.exp(-3.5 - 0.3 * q))
    enforcement_24m = _rolling(enforcement, 8)
    tax_signal = 0.7 * q + 0.7 * np.repeat(rng.standard_normal((n, (T + 3) // 4)), 4, axis=1)[:, :T]
    tax = np.select([tax_signal > 0.8, tax_signal > -0.4, tax_signal > -1.7], ["A", "B", "C"], "D").astype(
        object
    )
    report_dates = cal.ends
    young = _years(founded[:, None], report_dates[None, :]) < 2
    tax[young & (rng.random(n) < 0.7)[:, None]] = "M"
    specialized = rng.random(n) < expit(-1.8 + 0.8 * lasting)
    return {
        "enterprise_id": _ids("E", n, 7),
        "n": n,
        "industry": industry,
        "tech": tech,
        "size": size,
        "lasting": lasting,
        "q": q,
        "founded_date": founded,
        "exit_quarter": np.full(n, T, dtype=np.int64),  # set when the enterprise defaults
        "registered_capital_cny": np.round(np.exp(15.5 + 0.6 * size_c + rng.standard_normal(n)), -3),
        "employees": employees.astype(int),
        "rd_staff": rng.binomial(employees.astype(int), expit(-1.5 + 0.4 * lasting + 0.5 * tech)),
        "revenue_cny": revenue,
        "revenue_growth": np.clip(revenue / np.roll(revenue, 4, axis=1) - 1, -0.9, None),
        "gross_margin": gross_margin,
        "net_profit_cny": revenue * net_margin,
        "total_assets_cny": total_assets,
        "total_liabilities_cny": total_assets * leverage,
        "leverage": leverage,
        "current_ratio": current_ratio,
        "operating_cash_flow_cny": cash_flow,
        "rd_spend_cny": revenue * rd_share[:, None],
        "tax_grade": tax,
        "tax_paid_cny": revenue * (0.03 * np.exp(0.3 * rng.standard_normal(n)))[:, None],
        "overdue_count_24m": _rolling(overdue, 8),
        "max_overdue_days_24m": _rolling(days, 8, "max"),
        "outstanding_loans_cny": outstanding,
        "guarantees_given_cny": revenue
        * np.where(rng.random(n) < 0.7, 0.0, np.exp(-1.5 + 0.8 * rng.standard_normal(n)))[:, None],
        "court_judgements": _rolling(court, 12),
        "enforcement_count": _rolling(enforcement, 12),
        "dishonest_debtor": (enforcement_24m > 0) & (rng.random(n) < 0.4)[:, None],
        "admin_penalties": _rolling(penalties, 12),
        "high_tech": rng.random(n) < expit(-0.3 + 0.8 * lasting + 0.5 * tech),
        "specialized_sme": specialized,
        "little_giant": specialized & (rng.random(n) < 0.12),
        "tech_sme": rng.random(n) < expit(0.5 + 0.5 * lasting),
    }


def _report(ent: dict, column: str, owner: np.ndarray, quarter: np.ndarray) -> np.ndarray:
    """A quarterly figure of each (enterprise, quarter) pair; a static one of the enterprise."""
    values = ent[column]
    return values[owner, quarter] if values.ndim == 2 else values[owner]


# --- patents and trademarks ---------------------------------------------------------------------------


def _patents(rng, a: Assumptions, ent: dict, extraction: np.datetime64) -> dict[str, np.ndarray]:
    size_c = (ent["size"] - a.log_revenue_mean) / a.log_revenue_sd
    mean = np.exp(
        a.patents_log_mean
        + a.patents_per_q * ent["lasting"]
        + 0.4 * ent["high_tech"]
        + a.patents_per_log_revenue * a.log_revenue_sd * size_c
    )
    counts = rng.negative_binomial(a.patents_dispersion, a.patents_dispersion / (a.patents_dispersion + mean))
    owner = np.repeat(np.arange(counts.size), counts)
    n = owner.size
    z = a.patent_quality_from_owner * ent["lasting"][owner] + a.patent_quality_noise * rng.standard_normal(n)
    ptype = _choice(rng, [t.value for t in PatentType], list(a.patent_type_shares), n)
    first = np.maximum(np.datetime64(a.first_filing, "D"), ent["founded_date"][owner])
    window = np.maximum((extraction - first).astype(int) - 180, 1)
    filing = (first + (rng.random(n) * window).astype("int64") * DAY).astype("datetime64[D]")
    is_inv, is_design = ptype == "invention", ptype == "design"
    term_years = np.where(is_inv, 20, np.where(is_design & (filing >= np.datetime64("2021-06-01")), 15, 10))
    expiry = (filing + np.round(term_years * 365.25).astype("int64") * DAY).astype("datetime64[D]")
    pendency_days = np.where(is_inv, 500 + rng.gamma(3.0, 200, n), 150 + rng.gamma(2.0, 60, n))
    grant = (filing + np.floor(pendency_days).astype("int64") * DAY).astype("datetime64[D]")
    industry = ent["industry"][owner]
    ipc = _choice(rng, [], [], n, industry, {Industry(k).value: v for k, v in INDUSTRY_IPC.items()})
    ipc = np.where(is_design, None, ipc)
    claims_mean = np.where(is_inv, 8.0, 6.0) * np.exp(0.15 * z)
    n_claims = np.where(is_design, 0, 1 + rng.poisson(claims_mean))
    n_indep = np.where(is_design, 0, np.minimum(n_claims, 1 + rng.poisson(0.4 * np.exp(0.2 * z))))
    family = 1 + np.where(is_inv, rng.poisson(np.exp(-1.5 + 0.6 * z)), 0)
    return {
        "patent_id": _ids("CNP", n, 8),
        "owner": owner,
        "owner_ids": ent["enterprise_id"][owner],
        "z": z,
        "patent_type": ptype,
        "filing_date": filing,
        "grant_date": grant,
        "expiry_date": expiry,
        "term_years": term_years,
        "ipc_main": ipc,
        "ipc_count": np.where(is_design, 0, 1 + rng.poisson(np.exp(-0.5 + 0.3 * z))),
        "n_claims": n_claims,
        "n_independent_claims": n_indep,
        "backward_citations": rng.poisson(np.where(is_design, 0.5, 4.0) * np.exp(0.1 * z)),
        "family_size": family,
        "family_countries": 1 + rng.binomial(family - 1, 0.6),
        "n_inventors": 1 + rng.poisson(2.0, n),
        "in_use": rng.random(n) < expit(0.2 + 0.8 * z),
        "strategic": pd.Index(ipc).isin(list(STRATEGIC_EMERGING_IPC)),
    }


def _trademarks(rng, a: Assumptions, ent: dict, extraction: np.datetime64) -> dict[str, np.ndarray]:
    size_c = (ent["size"] - a.log_revenue_mean) / a.log_revenue_sd
    counts = rng.poisson(np.exp(a.trademarks_log_mean + 0.2 * ent["lasting"] + 0.2 * size_c))
    owner = np.repeat(np.arange(counts.size), counts)
    n = owner.size
    z = 0.5 * ent["lasting"][owner] + 0.9 * rng.standard_normal(n)
    first = np.maximum(np.datetime64(a.first_filing, "D"), ent["founded_date"][owner])
    window = np.maximum((extraction - first).astype(int) - 120, 1)
    filing = (first + (rng.random(n) * window).astype("int64") * DAY).astype("datetime64[D]")
    registration = (filing + np.floor(250 + rng.gamma(2.0, 80, n)).astype("int64") * DAY).astype(
        "datetime64[D]"
    )
    in_use = rng.random(n) < expit(1.0 + z)
    declared = in_use & (rng.random(n) < 0.7)
    share = np.clip(rng.beta(2, 3, n), 0.05, 1)
    old_owner = _years(ent["founded_date"][owner], np.full(n, extraction)) > 15
    old_share = float(old_owner.mean()) if n else 0.0  # time-honoured brands belong to old enterprises
    return {
        "trademark_id": _ids("TM", n, 8),
        "owner": owner,
        "owner_ids": ent["enterprise_id"][owner],
        "z": z,
        "nice_class": _choice(
            rng, [], [], n, ent["industry"][owner], {Industry(k).value: v for k, v in INDUSTRY_NICE.items()}
        ).astype(int),
        "n_goods_services": np.minimum(1 + rng.poisson(7, n), 60),
        "filing_date": filing,
        "registration_date": registration,
        "well_known": rng.random(n) < np.minimum(a.well_known_share * np.exp(0.8 * z - 0.32), 0.5),
        "time_honoured": old_owner & (rng.random(n) < a.time_honoured_share / max(old_share, 1e-9)),
        "in_use": in_use,
        "declared": declared,
        "revenue_share": share,
    }


def _asset_events(rng, a: Assumptions, pat: dict, tm: dict, extraction: np.datetime64) -> pd.DataFrame:
    z, grant = pat["z"], pat["grant_date"]
    end_of_life = np.minimum(pat["expiry_date"], extraction)
    # Lapse for unpaid annuity: an exponential time from grant, likelier for weak patents.
    lapse_after = rng.exponential(1 / (a.lapse_rate * np.exp(a.lapse_per_z * z)))
    lapse_date = (grant + np.floor(lapse_after * 365.25).astype("int64") * DAY).astype("datetime64[D]")
    lapsed = lapse_date < end_of_life
    alive_until = np.where(lapsed, lapse_date, end_of_life)
    P = AssetKind.PATENT.value
    ids = pat["patent_id"]
    is_inv = pat["patent_type"] == "invention"
    parts = [
        _events(
            rng,
            P,
            ids,
            EventType.CITATION_RECEIVED.value,
            a.citation_rate * np.exp(a.citation_per_z * z) * np.where(is_inv, 1.5, 1),
            grant,
            extraction,
        ),
        _events(rng, P, ids, EventType.LICENCE.value, a.licence_rate * np.exp(0.8 * z), grant, alive_until),
        _events(rng, P, ids, EventType.TRANSFER.value, a.transfer_rate * np.exp(0.5 * z), grant, alive_until),
        _events(
            rng, P, ids, EventType.LITIGATION.value, a.litigation_rate * np.exp(0.9 * z), grant, alive_until
        ),
        _events(
            rng, P, ids, EventType.PLEDGE.value, np.full(ids.size, a.prior_pledge_rate), grant, alive_until
        ),
    ]
    requests = _events(
        rng,
        P,
        ids,
        EventType.INVALIDATION_REQUEST.value,
        a.invalidation_request_rate * np.exp(0.8 * z),
        grant,
        alive_until,
    )
    parts.append(requests)
    # A request succeeds with a fixed probability about a year later; the patent ends then.
    first_request = requests.drop_duplicates("asset_id")
    win = rng.random(len(first_request)) < a.invalidation_success
    ruling = (first_request["event_date"].to_numpy() + 365 * DAY)[win]
    ruled_ids = first_request["asset_id"].to_numpy()[win]
    keep = ruling < np.datetime64(extraction)
    parts.append(
        pd.DataFrame(
            {
                "asset_kind": P,
                "asset_id": ruled_ids[keep],
                "event_type": EventType.INVALIDATED.value,
                "event_date": ruling[keep],
            }
        )
    )
    parts.append(
        pd.DataFrame(
            {
                "asset_kind": P,
                "asset_id": ids[lapsed],
                "event_type": EventType.LAPSE.value,
                "event_date": lapse_date[lapsed],
            }
        )
    )
    # Trademark renewals every 10 years after registration while the owner keeps the mark.
    T = AssetKind.TRADEMARK.value
    tz, reg = tm["z"], tm["registration_date"]
    renew_date = (pd.DatetimeIndex(reg) + pd.DateOffset(years=10)).to_numpy().astype("datetime64[D]")
    renewed = (renew_date <= extraction) & (rng.random(reg.size) < expit(1.0 + tz))
    ends = np.full(reg.size, extraction)
    parts += [
        pd.DataFrame(
            {
                "asset_kind": T,
                "asset_id": tm["trademark_id"][renewed],
                "event_type": EventType.RENEWAL.value,
                "event_date": renew_date[renewed],
            }
        ),
        _events(rng, T, tm["trademark_id"], EventType.LICENCE.value, 0.03 * np.exp(0.6 * tz), reg, ends),
        _events(rng, T, tm["trademark_id"], EventType.TRANSFER.value, np.full(reg.size, 0.01), reg, ends),
        _events(
            rng,
            T,
            tm["trademark_id"],
            EventType.OPPOSITION.value,
            np.full(reg.size, 0.01),
            tm["filing_date"],
            reg,
        ),
    ]
    pat["lapse_date"] = np.where(lapsed, lapse_date, np.datetime64("NaT"))
    pat["invalidated_date"] = (
        pd.Series(ruling[keep], index=ruled_ids[keep]).reindex(ids).to_numpy().astype("datetime64[D]")
    )
    tm["expiry_date"] = np.where(
        renewed,
        (pd.DatetimeIndex(renew_date) + pd.DateOffset(years=10)).to_numpy().astype("datetime64[D]"),
        renew_date,
    )
    events = pd.concat(parts, ignore_index=True)
    return events[events["event_date"] <= extraction]


def _alive_at(pat: dict, idx: np.ndarray, date: np.ndarray) -> np.ndarray:
    """Patents `idx` in force at `date`: granted and neither lapsed, invalidated nor expired."""
    ended = np.fmin(
        np.fmin(pat["lapse_date"][idx].astype("datetime64[D]"), pat["invalidated_date"][idx]),
        pat["expiry_date"][idx],
    )
    return (pat["grant_date"][idx] <= date) & ~(ended <= date)


def _pending_at(pat: dict, idx: np.ndarray, date: np.ndarray) -> np.ndarray:
    return (pat["filing_date"][idx] <= date) & (pat["grant_date"][idx] > date)


def _pairs(owner_of_rows: np.ndarray, asset_owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (row, asset) pair where the asset belongs to the row's enterprise: the rows' positions and
    the assets' indices (the assets are sorted by owner, as generated)."""
    counts = np.bincount(asset_owner, minlength=owner_of_rows.max(initial=0) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    per_row = counts[owner_of_rows]
    rows = np.repeat(np.arange(owner_of_rows.size), per_row)
    within = np.arange(rows.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    return rows, starts[owner_of_rows][rows] + within


def _event_before(events: pd.DataFrame, event_type: str, ids: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Whether each (asset id, date) had an event of the type strictly before the date."""
    of_type = events[events["event_type"] == event_type]
    if of_type.empty:
        return np.zeros(ids.size, dtype=bool)
    first = of_type.groupby("asset_id")["event_date"].min()
    when = pd.Series(ids, dtype=object).map(first).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    return when < dates


# --- loans --------------------------------------------------------------------------------------------


def _loans(rng, a: Assumptions, ent: dict, pat: dict, cal: Calendar) -> dict[str, np.ndarray]:
    """Applications quarter by quarter: an enterprise founded, with a patent granted, and no loan running
    applies with a probability rising with its quality and size. The report it is decided on is the last
    quarter's."""
    n = ent["n"]
    first_grant = np.full(n, np.datetime64("2100-01-01"), dtype="datetime64[D]")
    np.minimum.at(first_grant, pat["owner"], pat["grant_date"])
    size_c = (ent["size"] - a.log_revenue_mean) / a.log_revenue_sd
    # half the enterprises have a loan running when the book starts (its first vintage is not a rush)
    running = rng.random(n) < 0.5
    busy_until = np.where(
        running, cal.starts[cal.first_loan] + rng.integers(0, 730, n) * DAY, np.datetime64("1900-01-01")
    ).astype("datetime64[D]")
    terms = np.array(list(a.term_shares), dtype=int)
    term_p = np.array(list(a.term_shares.values()), dtype=float)
    owners, quarters, dates, months = [], [], [], []
    for k in range(cal.first_loan, cal.starts.size):
        start = cal.starts[k]
        if start > cal.extraction:
            break
        report = k - 1
        eligible = (ent["founded_date"] <= cal.ends[report]) & (first_grant < start) & (busy_until < start)
        p = expit(a.apply_logit + a.apply_per_q * ent["q"][:, report] + a.apply_per_log_revenue * size_c)
        who = np.flatnonzero(eligible & (rng.random(n) < p))
        # any day of the quarter but its last, which is the quarter's own report date
        days = np.minimum(
            rng.integers(0, (cal.ends[k] - start).astype(int), who.size), (cal.extraction - start).astype(int)
        )
        day = (start + days * DAY).astype("datetime64[D]")
        term = rng.choice(terms, who.size, p=term_p / term_p.sum())
        busy_until[who] = (day + np.round(term * 30.44).astype("int64") * DAY).astype("datetime64[D]")
        owners.append(who)
        quarters.append(np.full(who.size, k))
        dates.append(day)
        months.append(term)
    return {
        "owner": np.concatenate(owners),
        "quarter": np.concatenate(quarters),
        "date": np.concatenate(dates).astype("datetime64[D]"),
        "term_months": np.concatenate(months),
    }


def _pledges(rng, a, loans, pat, tm) -> tuple[pd.DataFrame, np.ndarray]:
    """Each loan's pledge: its enterprise's best patents in force that day (the bank takes the strongest,
    1-5 of them), and in `trademark_share` of loans a registered mark in use. A loan whose enterprise has
    no patent in force that day is not made."""
    rows, idx = _pairs(loans["owner"], pat["owner"])
    date = loans["date"][rows]
    alive = _alive_at(pat, idx, date)
    in_force = np.bincount(rows[alive], minlength=loans["owner"].size)
    want = 1 + rng.binomial(4, 0.3, loans["owner"].size)
    # best first: the right's quality seen through the appraiser's eyes, with some luck
    merit = pat["z"][idx] + 0.5 * rng.gumbel(size=idx.size) + 0.8 * (pat["patent_type"][idx] == "invention")
    order = np.lexsort((-merit, ~alive, rows))
    rank = np.arange(order.size) - np.searchsorted(rows[order], rows[order])
    chosen = order[alive[order] & (rank < want[rows[order]])]
    patent_rows, patent_idx = rows[chosen], idx[chosen]

    t_rows, t_idx = _pairs(loans["owner"], tm["owner"]) if tm["owner"].size else (np.array([], int),) * 2
    t_date = loans["date"][t_rows]
    usable = (
        (tm["registration_date"][t_idx] <= t_date)
        & (tm["expiry_date"][t_idx] > t_date)
        & tm["in_use"][t_idx]
        & (rng.random(loans["owner"].size) < a.trademark_share)[t_rows]
    )
    t_merit = np.where(usable, tm["z"][t_idx] + 0.3 * rng.gumbel(size=t_idx.size), -np.inf)
    best = pd.Series(t_merit).groupby(t_rows).idxmax() if t_rows.size else pd.Series(dtype=int)
    best = best[t_merit[best.to_numpy()] > -np.inf] if best.size else best
    mark_rows, mark_idx = best.index.to_numpy(dtype=int), t_idx[best.to_numpy(dtype=int)]

    pledges = pd.DataFrame(
        {
            "loan": np.concatenate([patent_rows, mark_rows]),
            "asset_kind": np.concatenate(
                [np.full(patent_rows.size, "patent"), np.full(mark_rows.size, "trademark")]
            ),
            "asset_index": np.concatenate([patent_idx, mark_idx]),
            "asset_id": np.concatenate([pat["patent_id"][patent_idx], tm["trademark_id"][mark_idx]]),
        }
    )
    pledges = pledges[in_force[pledges["loan"].to_numpy()] > 0]
    pledges["application_date"] = loans["date"][pledges["loan"].to_numpy()]
    # with each loan's count of its enterprise's patents in force that day (the income approach splits the
    # revenue over them)
    return pledges.sort_values(["loan", "asset_kind", "asset_id"], ignore_index=True), in_force


def _patent_royalty_values(a, ent, pat, idx, owner_quarter, date, in_force, events) -> np.ndarray:
    """True values of patents `idx` at `date` (relief from royalty times the right's effects)."""
    owner = pat["owner"][idx]
    revenue = ent["revenue_cny"][owner, owner_quarter]
    in_use = pat["in_use"][idx]
    base = np.minimum(
        revenue * a.revenue_attribution / np.maximum(in_force, 1), revenue * a.max_revenue_share_per_patent
    ) * np.where(in_use, 1.0, a.patent_not_in_use_factor)
    ptype = pat["patent_type"][idx]
    industry = ent["industry"][owner]
    royalty = _lookup(a.patent_royalty, industry) * _lookup(a.patent_type_royalty_factor, ptype)
    legal = np.clip(_years(date, pat["expiry_date"][idx]), 0, None)
    life = np.minimum(legal, _lookup(a.economic_life_cap, ptype))
    tax = np.where(ent["high_tech"][owner], a.high_tech_tax_rate, a.tax_rate)
    income = royalty_value(base, royalty, life, _lookup(a.royalty_growth, ptype), tax, a.discount_rate)
    ids = pat["patent_id"][idx]
    effects = (
        a.value_per_z * pat["z"][idx]
        + a.value_strategic * (pat["strategic"][idx] - 0.5)
        + a.value_per_log_family_countries * np.log(pat["family_countries"][idx])
        + a.value_licensed * _event_before(events, EventType.LICENCE.value, ids, date)
        + a.value_litigated * _event_before(events, EventType.LITIGATION.value, ids, date)
        + a.value_invalidation_requested
        * _event_before(events, EventType.INVALIDATION_REQUEST.value, ids, date)
    )
    pending = _pending_at(pat, idx, date)
    alive = _alive_at(pat, idx, date)
    value = a.appraisal_premium * income * np.exp(effects) * np.where(pending, a.pending_factor, 1.0)
    return np.where(alive | pending, value, 0.0)


def _trademark_royalty_values(a, ent, tm, idx, owner_quarter, date) -> np.ndarray:
    owner = tm["owner"][idx]
    revenue = ent["revenue_cny"][owner, owner_quarter] * tm["revenue_share"][idx]
    industry = ent["industry"][owner]
    factor = np.maximum(
        np.where(tm["well_known"][idx], a.well_known_royalty_factor, 1.0),
        np.where(tm["time_honoured"][idx], a.time_honoured_royalty_factor, 1.0),
    )
    royalty = _lookup(a.trademark_royalty, industry) * factor
    tax = np.where(ent["high_tech"][owner], a.high_tech_tax_rate, a.tax_rate)
    life = np.full(idx.size, a.economic_life_cap["trademark"])
    income = royalty_value(revenue, royalty, life, a.royalty_growth["trademark"], tax, a.discount_rate)
    value = a.appraisal_premium * income * np.exp(a.value_mark_per_z * tm["z"][idx])
    registered = (tm["registration_date"][idx] <= date) & (tm["expiry_date"][idx] > date)
    pending = tm["registration_date"][idx] > date
    value = np.where(tm["in_use"][idx], value, 0.05 * value)  # an unused mark: defensive value only
    return np.where(registered, value, np.where(pending, a.pending_factor * value, 0.0))


def _noise(rng, a: Assumptions, n: int) -> np.ndarray:
    return np.exp(a.value_noise_scale * rng.standard_t(a.value_noise_df, n))


def _pledged_values(rng, a, ent, pat, tm, loans, pledges, in_force, events) -> pd.DataFrame:
    """True and appraised values of each pledged asset on its loan's date."""
    loan = pledges["loan"].to_numpy()
    idx = pledges["asset_index"].to_numpy()
    date = loans["date"][loan]
    report = loans["quarter"][loan] - 1
    true = np.zeros(len(pledges))
    is_pat = (pledges["asset_kind"] == "patent").to_numpy()
    true[is_pat] = _patent_royalty_values(
        a, ent, pat, idx[is_pat], report[is_pat], date[is_pat], in_force[loan][is_pat], events
    )
    true[~is_pat] = _trademark_royalty_values(a, ent, tm, idx[~is_pat], report[~is_pat], date[~is_pat])
    true = np.round(true * _noise(rng, a, true.size), 0)
    appraised = np.round(true * np.exp(a.appraisal_noise * rng.standard_normal(true.size)), -2)
    return pledges.assign(true_value_cny=true, appraised_cny=np.maximum(appraised, 100.0))


def _traded_values(rng, a, ent, pat, tm, events, pledges, cal) -> pd.DataFrame:
    """A transaction price for a share of the rights in use that were never pledged, at a random date of
    the book when the right was in force."""
    frames = []
    lo = cal.starts[cal.first_loan]
    span = max((cal.extraction - lo).astype(int), 1)
    for kind, assets, ids in (("patent", pat, pat["patent_id"]), ("trademark", tm, tm["trademark_id"])):
        pledged = pd.Index(ids).isin(pledges.loc[pledges["asset_kind"] == kind, "asset_id"])
        pick = np.flatnonzero(~pledged & assets["in_use"] & (rng.random(ids.size) < a.transaction_share))
        date = _dates(lo, rng.random(pick.size) * span)
        start = assets["filing_date"][pick]
        date = np.maximum(date, start + 30 * DAY).astype("datetime64[D]")
        keep = date <= cal.extraction
        pick, date = pick[keep], date[keep]
        owner = assets["owner"][pick]
        quarter = np.maximum(cal.quarter_of(date) - 1, 0)
        alive_owner = ent["founded_date"][owner] <= cal.ends[quarter]
        pick, date, owner, quarter = (
            pick[alive_owner],
            date[alive_owner],
            owner[alive_owner],
            quarter[alive_owner],
        )
        if kind == "patent":
            rows, other = _pairs(owner, pat["owner"])
            in_force = np.bincount(rows[_alive_at(pat, other, date[rows])], minlength=pick.size)
            true = _patent_royalty_values(a, ent, pat, pick, quarter, date, in_force, events)
        else:
            true = _trademark_royalty_values(a, ent, tm, pick, quarter, date)
        true = np.round(true * _noise(rng, a, true.size), 0)
        observed = np.round(true * np.exp(a.transaction_noise * rng.standard_normal(true.size)), -2)
        frames.append(
            pd.DataFrame(
                {
                    "asset_kind": kind,
                    "asset_id": ids[pick],
                    "asset_index": pick,
                    "valuation_date": date,
                    "true_value_cny": true,
                    "observed_cny": np.maximum(observed, 100.0),
                }
            )[true > 0]
        )
    return pd.concat(frames, ignore_index=True)


def _loan_terms(rng, a, ent, loans, valued) -> dict:
    """The loan each bank makes: a share of the appraised bundle (the loan-to-value), its term, rate,
    guarantee and insurance. Loans whose enterprise had no patent in force are dropped here."""
    n = loans["owner"].size
    loan = valued["loan"].to_numpy()
    appraised = np.bincount(loan, weights=valued["appraised_cny"].to_numpy(), minlength=n)
    true_bundle = np.bincount(loan, weights=valued["true_value_cny"].to_numpy(), minlength=n)
    made = np.bincount(loan, minlength=n) > 0
    m = a.loan_to_value_mean
    ltv = rng.beta(m * a.loan_to_value_strength, (1 - m) * a.loan_to_value_strength, n)
    amount = np.clip(np.round(ltv * appraised, -4), a.min_amount_cny, a.max_amount_cny)
    owner, report = loans["owner"], loans["quarter"] - 1
    q = ent["q"][owner, report]
    guarantee = _choice(rng, [g.value for g in GuaranteeType], [0.4, 0.3, 0.3], n)
    guarantee_share = np.where(guarantee == "guarantee_company", np.round(rng.uniform(0.5, 0.8, n), 2), 0.0)
    insurance = rng.random(n) < 0.25
    insurance_share = np.where(
        insurance, np.round(np.minimum(rng.uniform(0.2, 0.4, n), 1 - guarantee_share), 2), 0.0
    )
    year = loans["date"].astype("datetime64[Y]").astype(int) + 1970
    lpr = _lookup(a.loan_prime_rate, year)
    lpr = np.where(np.isnan(lpr), np.nanmean(list(a.loan_prime_rate.values())), lpr)
    # the bank prices what it sees of the risk (and the pledge): a spread over the LPR
    rate = np.round(np.clip(lpr + 0.012 - 0.004 * q + 0.003 * rng.standard_normal(n), 0.02, 0.09), 4)
    out = {
        **loans,
        "amount_cny": amount,
        "appraised_bundle_cny": appraised,
        "true_bundle_cny": true_bundle,
        "term_months": loans["term_months"],
        "annual_rate": rate,
        "guarantee": guarantee,
        "guarantee_share": guarantee_share,
        "insurance": insurance,
        "insurance_share": insurance_share,
        "bank": 1 + rng.integers(0, a.n_banks, n),
    }
    return {
        k: (v[made] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v) for k, v in out.items()
    } | {"made": np.flatnonzero(made)}


def _drivers(a, ent, pat, loans, pledges) -> dict[str, np.ndarray]:
    """The default drivers of each loan, as its credit officer would read them at application: the last
    quarter's report, the pledge's strength and life, and the loan-to-value."""
    owner, report = loans["owner"], loans["quarter"] - 1
    r = lambda c: _report(ent, c, owner, report)  # noqa: E731
    n = owner.size
    revenue = np.maximum(r("revenue_cny"), 1.0)
    is_pat = (pledges["asset_kind"] == "patent").to_numpy()
    loan_of = pledges["position"].to_numpy()
    idx = pledges["asset_index"].to_numpy()
    strength = np.bincount(loan_of[is_pat], weights=pat["z"][idx[is_pat]], minlength=n) / np.maximum(
        np.bincount(loan_of[is_pat], minlength=n), 1
    )
    remaining = np.clip(_years(loans["date"][loan_of[is_pat]], pat["expiry_date"][idx[is_pat]]), 0, None)
    # the right that expires first: the bundle's cover ends with it (0 for a bundle of marks alone)
    shortest_remaining = np.full(n, np.inf)
    np.minimum.at(shortest_remaining, loan_of[is_pat], remaining)
    shortest_remaining[np.isinf(shortest_remaining)] = 0.0
    tax = r("tax_grade")
    return {
        "log1p_overdue_count": np.log1p(r("overdue_count_24m")),
        "overdue_days_per_30": r("max_overdue_days_24m") / 30.0,
        "log1p_court_judgements": np.log1p(r("court_judgements")),
        "log1p_enforcements": np.log1p(r("enforcement_count")),
        "dishonest_debtor": r("dishonest_debtor").astype(float),
        "log1p_admin_penalties": np.log1p(r("admin_penalties")),
        "tax_A": (tax == "A").astype(float),
        "tax_M": (tax == "M").astype(float),
        "tax_C": (tax == "C").astype(float),
        "tax_D": (tax == "D").astype(float),
        "leverage": r("leverage"),
        "debt_to_revenue": np.minimum(r("outstanding_loans_cny") / revenue, 5.0),
        "cash_flow_margin": np.clip(r("operating_cash_flow_cny") / revenue, -1, 1),
        "log_current_ratio": np.nan_to_num(np.log(r("current_ratio")), nan=0.0),
        "return_on_assets": np.clip(r("net_profit_cny") / np.maximum(r("total_assets_cny"), 1.0), -1, 1),
        "log_loan_to_value": np.log(loans["amount_cny"] / np.maximum(loans["appraised_bundle_cny"], 1e4)),
        "log_amount_to_revenue": np.log(loans["amount_cny"] / revenue),
        "ip_strength": strength,
        "remaining_years": shortest_remaining,
        "latent_quality": ent["q"][owner, report],
        # the year after the application, which no credit officer sees
        "quality_change_ahead": ent["q"][owner, np.minimum(report + 4, ent["q"].shape[1] - 1)]
        - ent["q"][owner, report],
        "guarantee_company": (loans["guarantee"] == "guarantee_company").astype(float),
        "high_tech": ent["high_tech"][owner].astype(float),
        "specialized_sme": ent["specialized_sme"][owner].astype(float),
    }


def _outcomes(rng, a, ent, pat, loans, pledges, valued, cal):
    """Defaults within 12 months, the intercept of each vintage solved to its stated rate; loans after an
    enterprise's first default are not made (it left the book); recoveries by disposal route."""
    made = loans["made"]
    position = pd.Series(np.arange(made.size), index=made)
    keep = pledges["loan"].isin(made).to_numpy()
    pledges, valued = pledges[keep].copy(), valued[keep].copy()
    pledges["position"] = position[pledges["loan"].to_numpy()].to_numpy()
    valued["position"] = pledges["position"].to_numpy()
    x = _drivers(a, ent, pat, loans, pledges)
    c = a.pd_coefficients
    linear = sum(c[name] * x[name] for name in c)
    year = loans["date"].astype("datetime64[Y]").astype(int) + 1970
    owner = loans["owner"]
    # Vintage by vintage: an enterprise that has defaulted takes no later loan (a loan runs at least 12
    # months and defaults within them, so every earlier default precedes it); each vintage's intercept is
    # solved on the loans actually made, so that its default rate is the stated one.
    pd_true = np.zeros(year.size)
    defaulted = np.zeros(year.size, dtype=bool)
    stays = np.ones(year.size, dtype=bool)
    has_defaulted = np.zeros(ent["n"], dtype=bool)
    fallback = float(np.mean(list(a.default_rate_by_vintage.values())))
    for v in np.unique(year):
        at = np.flatnonzero(year == v)
        at_stay = at[~has_defaulted[owner[at]]]
        stays[at] = False
        stays[at_stay] = True
        rate = a.default_rate_by_vintage.get(int(v), fallback)
        alpha = brentq(lambda s, rows=at_stay, rate=rate: expit(s + linear[rows]).mean() - rate, -30, 10)
        pd_true[at_stay] = expit(alpha + linear[at_stay])
        defaulted[at_stay] = rng.random(at_stay.size) < pd_true[at_stay]
        has_defaulted[owner[at_stay[defaulted[at_stay]]]] = True
    default_date = (loans["date"] + rng.integers(60, 365, year.size) * DAY).astype("datetime64[D]")
    first_default = (
        pd.Series(np.where(defaulted & stays, default_date, np.datetime64("NaT"))).groupby(owner).min()
    )
    first_default = first_default.reindex(np.arange(ent["n"])).to_numpy().astype("datetime64[D]")
    gone = ~np.isnat(first_default)
    ent["exit_quarter"][gone] = cal.quarter_of(first_default[gone]) + 2  # it leaves the book two quarters on
    loans = {
        k: (v[stays] if isinstance(v, np.ndarray) and v.shape[:1] == (year.size,) else v)
        for k, v in loans.items()
    }
    pd_true, defaulted, default_date = pd_true[stays], defaulted[stays], default_date[stays]
    renumber = np.full(year.size, -1)
    renumber[np.flatnonzero(stays)] = np.arange(stays.sum())
    keep = stays[pledges["position"].to_numpy()]
    pledges, valued = pledges[keep].copy(), valued[keep].copy()
    pledges["position"] = renumber[pledges["position"].to_numpy()]
    valued["position"] = pledges["position"].to_numpy()

    m = defaulted.size
    loans["application_id"] = _ids("A", m, 7)
    pledges["application_id"] = loans["application_id"][pledges["position"].to_numpy()]
    valued["application_id"] = pledges["application_id"].to_numpy()
    loans["pd_true"] = pd_true
    observed = loans["date"] + 365 * DAY <= cal.extraction  # its 12 months are over: the outcome is known
    routes = list(a.recovery_routes)
    route = _choice(rng, routes, list(a.recovery_routes.values()), m)
    pledge_recovery = (
        loans["true_bundle_cny"]
        * a.default_value_retained
        * (1 - _lookup(a.recovery_discounts, route))
        * np.exp(0.3 * rng.standard_normal(m))
    )
    ead = loans["amount_cny"]
    from_pledge = np.minimum(ead, pledge_recovery)
    from_guarantor = loans["guarantee_share"] * (ead - from_pledge)
    recovery_date = (default_date + rng.integers(180, 720, m) * DAY).astype("datetime64[D]")
    recovered = defaulted & (recovery_date <= cal.extraction)
    maturity = (loans["date"] + np.round(loans["term_months"] * 30.44).astype("int64") * DAY).astype(
        "datetime64[D]"
    )
    repaid = ~defaulted & (maturity <= cal.extraction)
    nat = np.datetime64("NaT")
    outcomes = pd.DataFrame(
        {
            "application_id": loans["application_id"],
            "defaulted_12m": defaulted,
            "default_date": np.where(defaulted, default_date, nat).astype("datetime64[ms]"),
            "recovery_cny": np.where(recovered, np.round(from_pledge + from_guarantor, 0), np.nan),
            "disposal_route": pd.Series(np.where(defaulted, route, None), dtype="str"),
            "recovery_date": np.where(recovered, recovery_date, nat).astype("datetime64[ms]"),
            "repaid_date": np.where(repaid, maturity, nat).astype("datetime64[ms]"),
        }
    )[observed].reset_index(drop=True)
    return outcomes, loans, pledges, valued


# --- output tables ------------------------------------------------------------------------------------


def _timestamps(values: np.ndarray) -> np.ndarray:
    """Millisecond timestamps: the unit Parquet keeps, so a saved table loads back unchanged."""
    return np.asarray(values).astype("datetime64[ms]")


ENTERPRISE_COLUMNS = list(Enterprise.model_fields)  # a credit report, field for field
_ROUNDED = {  # CNY figures to the yuan (capital to the thousand), as statements print them
    "revenue_cny": 0,
    "net_profit_cny": 0,
    "total_assets_cny": 0,
    "total_liabilities_cny": 0,
    "operating_cash_flow_cny": 0,
    "rd_spend_cny": 0,
    "tax_paid_cny": 0,
    "outstanding_loans_cny": -3,
    "guarantees_given_cny": -3,
}


def _enterprise_table(ent: dict, cal: Calendar) -> pd.DataFrame:
    """One credit report a quarter per enterprise, from a year before the first vintage: from its founding
    to two quarters after a default (it then leaves the book)."""
    T = cal.starts.size
    quarters = np.arange(T)
    exists = (
        (quarters[None, :] >= cal.book_start)
        & (ent["founded_date"][:, None] <= cal.ends[None, :])
        & (quarters[None, :] < ent["exit_quarter"][:, None])
        & (cal.ends[None, :] <= cal.extraction)
    )
    owner, quarter = np.nonzero(exists)
    out = {}
    for c in ENTERPRISE_COLUMNS:
        if c == "report_date":
            out[c] = _timestamps(cal.ends[quarter])
        elif c == "founded_date":
            out[c] = _timestamps(ent[c][owner])
        else:
            values = _report(ent, c, owner, quarter)
            out[c] = np.round(values, _ROUNDED[c]) if c in _ROUNDED else values
    df = pd.DataFrame(out)
    for c in (
        "overdue_count_24m",
        "max_overdue_days_24m",
        "court_judgements",
        "enforcement_count",
        "admin_penalties",
    ):
        df[c] = df[c].astype("int64")
    df["dishonest_debtor"] = df["dishonest_debtor"].astype(bool)
    return df


def _application_table(ent: dict, loans: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "application_id": loans["application_id"],
            "enterprise_id": ent["enterprise_id"][loans["owner"]],
            "bank_id": np.char.add("B0", loans["bank"].astype(str)).astype(object),
            "application_date": loans["date"].astype("datetime64[ms]"),
            "amount_cny": loans["amount_cny"],
            "term_months": loans["term_months"].astype("int64"),
            "annual_rate": loans["annual_rate"],
            "guarantee": loans["guarantee"],
            "guarantee_share": loans["guarantee_share"],
            "insurance": loans["insurance"],
            "insurance_share": loans["insurance_share"],
        }
    )


def _appraisals(valued: pd.DataFrame, traded: pd.DataFrame) -> pd.DataFrame:
    pledged = valued[valued["true_value_cny"] > 0]
    out = pd.concat(
        [
            pd.DataFrame(
                {
                    "asset_kind": pledged["asset_kind"].to_numpy(),
                    "asset_id": pledged["asset_id"].to_numpy(),
                    "appraisal_date": pledged["application_date"].to_numpy().astype("datetime64[ms]"),
                    "value_cny": pledged["appraised_cny"].to_numpy(),
                    "source": AppraisalSource.APPRAISAL.value,
                }
            ),
            pd.DataFrame(
                {
                    "asset_kind": traded["asset_kind"].to_numpy(),
                    "asset_id": traded["asset_id"].to_numpy(),
                    "appraisal_date": traded["valuation_date"].to_numpy().astype("datetime64[ms]"),
                    "value_cny": traded["observed_cny"].to_numpy(),
                    "source": AppraisalSource.TRANSACTION.value,
                }
            ),
        ],
        ignore_index=True,
    )
    # one appraisal per right and day (a right pledged twice on one day is not)
    return out.drop_duplicates(["asset_kind", "asset_id", "appraisal_date"], ignore_index=True)


def _truth(ent, pat, tm, valued, traded, loans) -> dict[str, pd.DataFrame]:
    """What no bank observes: latent qualities, every valuation's true value, each loan's true PD."""
    both = pd.concat(
        [
            valued.rename(columns={"application_date": "valuation_date"})[
                ["asset_kind", "asset_id", "asset_index", "valuation_date", "true_value_cny"]
            ],
            traded[["asset_kind", "asset_id", "asset_index", "valuation_date", "true_value_cny"]],
        ],
        ignore_index=True,
    ).drop_duplicates(["asset_kind", "asset_id", "valuation_date"])
    out = {
        "enterprises": pd.DataFrame({"enterprise_id": ent["enterprise_id"], "latent_quality": ent["lasting"]})
    }
    for kind, assets, key in (("patent", pat, "patent_id"), ("trademark", tm, "trademark_id")):
        rows = both[both["asset_kind"] == kind]
        out[f"{kind}s"] = pd.DataFrame(
            {
                key: rows["asset_id"].to_numpy(),
                "latent_quality": assets["z"][rows["asset_index"].to_numpy(dtype=int)],
                "valuation_date": rows["valuation_date"].to_numpy().astype("datetime64[D]"),
                "true_value_cny": rows["true_value_cny"].to_numpy(),
            }
        ).sort_values([key, "valuation_date"], ignore_index=True)
    out["applications"] = pd.DataFrame(
        {"application_id": loans["application_id"], "pd_true": loans["pd_true"]}
    )
    return out


def _patent_table(pat: dict, extraction: np.datetime64) -> pd.DataFrame:
    extraction_status = np.select(
        [
            ~np.isnat(pat["invalidated_date"]),
            ~np.isnat(pat["lapse_date"]),
            pat["expiry_date"] <= extraction,
        ],
        [LegalStatus.INVALIDATED.value, LegalStatus.LAPSED.value, LegalStatus.EXPIRED.value],
        LegalStatus.VALID.value,
    )
    pending = pat["grant_date"] > extraction
    extraction_status = np.where(pending, LegalStatus.PENDING.value, extraction_status)
    return pd.DataFrame(
        {
            "patent_id": pat["patent_id"],
            "enterprise_id": pat["owner_ids"],
            "patent_type": pat["patent_type"],
            "filing_date": _timestamps(pat["filing_date"]),
            "grant_date": _timestamps(np.where(pending, np.datetime64("NaT"), pat["grant_date"])),
            "expiry_date": _timestamps(pat["expiry_date"]),
            "legal_status": extraction_status,
            "ipc_main": pat["ipc_main"],
            "ipc_count": pat["ipc_count"],
            "n_claims": pat["n_claims"],
            "n_independent_claims": pat["n_independent_claims"],
            "backward_citations": pat["backward_citations"],
            "family_size": pat["family_size"],
            "family_countries": pat["family_countries"],
            "n_inventors": pat["n_inventors"],
            "in_use": pat["in_use"],
        }
    )


def _trademark_table(tm: dict, extraction: np.datetime64) -> pd.DataFrame:
    pending = tm["registration_date"] > extraction
    status = np.where(
        pending,
        TrademarkStatus.PENDING.value,
        np.where(
            tm["expiry_date"] <= extraction, TrademarkStatus.EXPIRED.value, TrademarkStatus.REGISTERED.value
        ),
    )
    return pd.DataFrame(
        {
            "trademark_id": tm["trademark_id"],
            "enterprise_id": tm["owner_ids"],
            "nice_class": tm["nice_class"],
            "n_goods_services": tm["n_goods_services"],
            "filing_date": _timestamps(tm["filing_date"]),
            "registration_date": _timestamps(
                np.where(pending, np.datetime64("NaT"), tm["registration_date"])
            ),
            "status": status,
            "well_known": tm["well_known"],
            "time_honoured": tm["time_honoured"],
            "in_use": tm["in_use"],
            "revenue_under_mark_cny": tm["revenue_under_mark_cny"],
        }
    )


def _event_table(events: pd.DataFrame) -> pd.DataFrame:
    events = events.sort_values(["asset_kind", "asset_id", "event_date", "event_type"], ignore_index=True)
    events["event_date"] = _timestamps(events["event_date"].to_numpy())
    for c in ("asset_kind", "event_type"):
        events[c] = events[c].astype("category")
    return events
