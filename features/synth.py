"""The synthetic Ezhou portfolio: a small structural model of tech SMEs, their IP and their loans.

Every relation the generator assumes is a named parameter of `Assumptions` and is described in
docs/synthetic-portfolio.md. In short: an enterprise's latent quality `q ~ N(0, 1)` drives its
financials, credit records, IP output and default risk; each patent's latent quality `z` drives
its citations, licences, lapse hazard and true value; observed appraisals are true values times
noise; 12-month defaults follow a logistic model whose intercept is solved so that the yearly
default rate equals `default_rate`. Everything is vectorised numpy, deterministic for a seed.
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
    EventType,
    GuaranteeType,
    Industry,
    LegalStatus,
    PatentType,
    TrademarkStatus,
)

Progress = Callable[[str], None]
DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Assumptions:
    """Every parameter of the structural model, stored in the manifest."""

    # time
    first_filing: str = "2003-01-01"
    window_start: str = "2019-01-01"  # first loan application
    window_end: str = "2025-06-30"  # last loan application
    extraction_date: str = "2026-06-30"  # when the tables were pulled; outcomes seen up to here
    # enterprises
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
    log_revenue_mean: float = 16.2  # exp(16.2) = 10.9 million CNY median revenue
    log_revenue_per_q: float = 0.6
    # IP output
    patents_log_mean: float = 1.9  # mean patents per enterprise about exp(1.9) = 6.7 at q = 0
    patents_per_q: float = 0.45
    patents_dispersion: float = 1.5  # negative binomial shape: a few enterprises hold many patents
    trademarks_log_mean: float = 0.5
    patent_type_shares: tuple = (0.35, 0.5, 0.15)  # invention, utility model, design
    patent_quality_from_owner: float = 0.5  # z = 0.5 q + N(0, patent_quality_noise)
    patent_quality_noise: float = 0.9
    # yearly event rates at z = 0 (log-linear in z with the given slopes)
    citation_rate: float = 0.18
    citation_per_z: float = 0.7
    lapse_rate: float = 0.09
    lapse_per_z: float = -0.9
    licence_rate: float = 0.015
    transfer_rate: float = 0.02
    invalidation_request_rate: float = 0.004
    invalidation_success: float = 0.3
    litigation_rate: float = 0.004
    prior_pledge_rate: float = 0.01
    # true value, log CNY: base by type, then effects
    log_value_base: dict = field(
        default_factory=lambda: {"invention": 11.8, "utility_model": 10.8, "design": 10.5, "trademark": 12.2}
    )
    value_per_z: float = 0.55
    value_per_log_revenue: float = 0.35  # elasticity to the owner's revenue
    # A patent among many earns a smaller share of the owner's business: elasticity to the owner's
    # patent count, centred on a holding of `typical_owner_patents`.
    value_per_log_owner_patents: float = -0.5
    typical_owner_patents: float = 7.0
    value_remaining_life: float = 0.7  # elasticity to the remaining share of the term
    value_strategic: float = 0.3
    value_in_use: float = 0.35
    value_per_log_family_countries: float = 0.25
    value_pending: float = -0.7  # a pending right is worth about half
    value_industry: dict = field(
        default_factory=lambda: {
            "electronics": 0.2,
            "biomedicine": 0.3,
            "new_materials": 0.15,
            "advanced_manufacturing": 0.1,
            "software": 0.1,
            "energy_environment": 0.15,
            "agri_food": -0.2,
            "logistics": -0.1,
        }
    )
    value_well_known: float = 1.5
    value_time_honoured: float = 0.8
    value_noise_df: float = 4.0  # Student-t noise: heavy tails
    value_noise_scale: float = 0.35
    # observations of value
    appraisal_noise: float = 0.2  # log-scale sd of an appraiser's error on pledged assets
    transaction_share: float = 0.05  # share of other assets with a transaction price
    transaction_noise: float = 0.3
    # loans
    apply_share_logit: float = -0.3  # share of enterprises with a loan application
    amount_to_bundle_low: float = 0.5  # amount asked <= bundle true value x U(low, high)
    amount_to_bundle_high: float = 2.0
    default_rate: float = 0.025  # yearly default rate, within domain.md's 1-4%
    n_banks: int = 6
    pd_coefficients: dict = field(
        default_factory=lambda: {
            "latent_quality": -0.9,
            "leverage": 1.2,
            "log_overdue": 0.35,
            "overdue_days": 0.006,
            "log_court": 0.4,
            "dishonest": 1.5,
            "log_ltv": 0.3,
            "ip_strength": -0.3,
            "high_tech": -0.3,
            "specialized_sme": -0.2,
            "tax_D": 1.0,
            "tax_C": 0.6,
            "tax_M": 0.2,
            "tax_A": -0.3,
            "guarantee_company": -0.2,
            "term_years": 0.2,
        }
    )


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


def _events(
    rng,
    kind: str,
    asset_ids: np.ndarray,
    event_type: str,
    rate: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> pd.DataFrame:
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


def synthesize(
    n_enterprises: int = 5_000,
    seed: int = 7,
    assumptions: Assumptions | None = None,
    progress: Progress | None = None,
) -> Portfolio:
    """Generate the portfolio. `progress(step)` is called as each stage completes."""
    a = assumptions or Assumptions()
    rng = np.random.default_rng(seed)
    say = progress or (lambda _step: None)
    extraction = np.datetime64(a.extraction_date, "D")
    window_start, window_end = np.datetime64(a.window_start, "D"), np.datetime64(a.window_end, "D")
    window_days = (window_end - window_start).astype(int)

    ent = _enterprises(rng, a, n_enterprises)
    say("enterprises")
    pat = _patents(rng, a, ent, extraction)
    tm = _trademarks(rng, a, ent, extraction)
    say("patents and trademarks")
    events = _asset_events(rng, a, pat, tm, extraction)
    say("events")

    applies = rng.random(n_enterprises) < expit(a.apply_share_logit + 0.3 * ent["q"])
    app_date = _dates(window_start, rng.random(n_enterprises) * window_days)
    apps, pledges = _applications(rng, a, ent, pat, tm, applies, app_date)
    say("applications")
    # Every enterprise has a baseline credit report from before the window; applicants get a second
    # one shortly before applying (the generator's financials are static, so the two agree).
    baseline = window_start - (100 + rng.integers(0, 90, n_enterprises)) * DAY
    ent["founded_date"] = baseline - np.ceil(ent["age_years"] * 365.25).astype("int64") * DAY
    owners = apps["owner"].to_numpy()
    ent_rows = np.concatenate([np.arange(n_enterprises), owners])
    report_date = np.concatenate([baseline, app_date[owners] - rng.integers(0, 90, owners.size) * DAY])

    # Valuation date of each asset: the application that pledged it, or a date in the window.
    pat_val_date, tm_val_date = _valuation_dates(rng, a, pat, tm, pledges, apps, window_start, window_days)
    pat_value = _patent_values(rng, a, pat, ent, events, pat_val_date)
    tm_value = _trademark_values(rng, a, tm, ent, tm_val_date)
    say("true values")
    bundle_true = _bundle_true_values(apps, pledges, pat_value, tm_value)
    # Banks size IP pledge loans by the bundle as well as by the business: the amount asked is the
    # smaller of a revenue-based need and a multiple of the bundle's value.
    apps["amount_cny"] = np.clip(
        np.round(
            np.minimum(
                apps["amount_cny"].to_numpy(),
                bundle_true * rng.uniform(a.amount_to_bundle_low, a.amount_to_bundle_high, len(apps)),
            ),
            -4,
        ),
        100_000,
        20_000_000,
    )
    outcomes, pd_true = _outcomes(rng, a, ent, pat, apps, pledges, bundle_true)
    say("defaults")
    appraisals = _appraisals(rng, a, pat, tm, pledges, pat_value, tm_value, pat_val_date, tm_val_date)
    pledge_events = pd.DataFrame(
        {
            "asset_kind": pledges["asset_kind"],
            "asset_id": pledges["asset_id"],
            "event_type": EventType.PLEDGE.value,
            "event_date": pledges["application_date"].to_numpy().astype("datetime64[D]"),
        }
    )
    events = pd.concat([events, pledge_events], ignore_index=True)

    portfolio = Portfolio(
        enterprises=_enterprise_table(ent, ent_rows, report_date),
        patents=_patent_table(pat, extraction),
        trademarks=_trademark_table(tm, extraction),
        events=_event_table(events),
        applications=apps.drop(columns=["owner"]).reset_index(drop=True),
        pledges=pledges[["application_id", "asset_kind", "asset_id"]].reset_index(drop=True),
        outcomes=outcomes,
        appraisals=appraisals,
        truth={
            "enterprises": pd.DataFrame({"enterprise_id": ent["enterprise_id"], "latent_quality": ent["q"]}),
            "patents": pd.DataFrame(
                {
                    "patent_id": pat["patent_id"],
                    "latent_quality": pat["z"],
                    "valuation_date": pat_val_date,
                    "true_value_cny": pat_value,
                }
            ),
            "trademarks": pd.DataFrame(
                {
                    "trademark_id": tm["trademark_id"],
                    "latent_quality": tm["z"],
                    "valuation_date": tm_val_date,
                    "true_value_cny": tm_value,
                }
            ),
            "applications": pd.DataFrame(
                {"application_id": apps["application_id"].to_numpy(), "pd_true": pd_true}
            ),
        },
    )
    portfolio.manifest = {
        "generator": "ipcredit synthetic Ezhou portfolio",
        "seed": seed,
        "sizes": {name: len(df) for name, df in portfolio.tables().items()},
        "default_rate_observed": float(outcomes["defaulted_12m"].mean()) if len(outcomes) else None,
        "assumptions": asdict(a),
        "documentation": "docs/synthetic-portfolio.md",
    }
    say("tables")
    return portfolio


# --- stages -----------------------------------------------------------------------------------


def _enterprises(rng, a: Assumptions, n: int) -> dict[str, np.ndarray]:
    q = rng.standard_normal(n)
    industries = list(a.industry_shares)
    industry = _choice(rng, industries, list(a.industry_shares.values()), n)
    tech = np.isin(industry, ["electronics", "biomedicine", "software", "new_materials"]).astype(float)
    employees = np.maximum(1, np.round(np.exp(3.5 + 0.3 * q + 0.8 * rng.standard_normal(n)))).astype(int)
    revenue = np.exp(
        a.log_revenue_mean
        + a.log_revenue_per_q * q
        + 0.5 * np.log(employees / 33)
        + 0.6 * rng.standard_normal(n)
    )
    gross_margin = np.clip(0.28 + 0.05 * q + 0.1 * rng.standard_normal(n), -0.5, 0.9)
    net_margin = gross_margin - 0.2 + 0.04 * q + 0.05 * rng.standard_normal(n)
    total_assets = revenue * 1.2 * np.exp(0.4 * rng.standard_normal(n))
    leverage = expit(-0.2 - 0.5 * q + 0.6 * rng.standard_normal(n))
    overdue = rng.poisson(np.exp(-1.2 - 0.9 * q))
    overdue_days = np.where(
        overdue > 0, np.minimum(180, np.ceil(rng.gamma(1.5, 15 * np.exp(-0.4 * q)))), 0
    ).astype(int)
    tax_signal = q + 0.7 * rng.standard_normal(n)
    tax_grade = np.select([tax_signal > 0.8, tax_signal > -0.3, tax_signal > -1.6], ["A", "B", "C"], "D")
    age_years = 1 + rng.gamma(2.0, 4.0, n)
    tax_grade = np.where((age_years < 2) & (rng.random(n) < 0.7), "M", tax_grade)
    specialized = rng.random(n) < expit(-1.8 + 0.8 * q)
    current_ratio = np.exp(0.3 + 0.3 * q + 0.3 * rng.standard_normal(n))
    return {
        "enterprise_id": _ids("E", n, 7),
        "q": q,
        "industry": industry,
        "tech": tech,
        "age_years": age_years,
        "registered_capital_cny": np.round(np.exp(15 + rng.standard_normal(n)), -3),
        "employees": employees,
        "rd_staff": rng.binomial(employees, expit(-1.5 + 0.4 * q + 0.5 * tech)),
        "revenue_cny": np.round(revenue, 0),
        "revenue_growth": np.clip(0.08 + 0.08 * q + 0.2 * rng.standard_normal(n), -0.9, None),
        "gross_margin": gross_margin,
        "net_profit_cny": np.round(revenue * net_margin, 0),
        "total_assets_cny": np.round(total_assets, 0),
        "total_liabilities_cny": np.round(total_assets * leverage, 0),
        "leverage": leverage,
        "current_ratio": np.where(rng.random(n) < 0.05, np.nan, current_ratio),
        "operating_cash_flow_cny": np.round(revenue * (net_margin + 0.02 + 0.05 * rng.standard_normal(n)), 0),
        "rd_spend_cny": np.round(
            revenue * np.clip(0.06 + 0.02 * q + 0.03 * tech + 0.03 * rng.standard_normal(n), 0, None), 0
        ),
        "tax_grade": tax_grade,
        "tax_paid_cny": np.round(revenue * 0.03 * np.exp(0.3 * rng.standard_normal(n)), 0),
        "overdue_count_24m": overdue,
        "max_overdue_days_24m": overdue_days,
        "outstanding_loans_cny": np.round(
            revenue * leverage * np.exp(-1.2 + 0.6 * rng.standard_normal(n)), -3
        ),
        "guarantees_given_cny": np.where(
            rng.random(n) < 0.7, 0.0, np.round(revenue * np.exp(-1.5 + 0.8 * rng.standard_normal(n)), -3)
        ),
        "court_judgements": rng.poisson(np.exp(-2.3 - 0.7 * q)),
        "enforcement_count": rng.poisson(np.exp(-3.0 - 0.9 * q)),
        "dishonest_debtor": rng.random(n) < expit(-5.5 - 1.2 * q),
        "admin_penalties": rng.poisson(np.exp(-2.5 - 0.3 * q)),
        "high_tech": rng.random(n) < expit(-0.3 + 0.8 * q + 0.5 * tech),
        "specialized_sme": specialized,
        "little_giant": specialized & (rng.random(n) < 0.12),
        "tech_sme": rng.random(n) < expit(0.5 + 0.5 * q),
    }


def _patents(rng, a: Assumptions, ent: dict, extraction: np.datetime64) -> dict[str, np.ndarray]:
    mean = np.exp(a.patents_log_mean + a.patents_per_q * ent["q"] + 0.4 * ent["high_tech"])
    counts = rng.negative_binomial(a.patents_dispersion, a.patents_dispersion / (a.patents_dispersion + mean))
    owner = np.repeat(np.arange(counts.size), counts)
    n = owner.size
    z = a.patent_quality_from_owner * ent["q"][owner] + a.patent_quality_noise * rng.standard_normal(n)
    ptype = _choice(rng, [t.value for t in PatentType], list(a.patent_type_shares), n)
    first = np.datetime64(a.first_filing, "D")
    filing = _dates(first, rng.random(n) * ((extraction - first).astype(int) - 180))
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
    counts = rng.poisson(np.exp(a.trademarks_log_mean + 0.2 * ent["q"]))
    owner = np.repeat(np.arange(counts.size), counts)
    n = owner.size
    z = 0.5 * ent["q"][owner] + 0.9 * rng.standard_normal(n)
    first = np.datetime64(a.first_filing, "D")
    filing = _dates(first, rng.random(n) * ((extraction - first).astype(int) - 120))
    registration = (filing + np.floor(250 + rng.gamma(2.0, 80, n)).astype("int64") * DAY).astype(
        "datetime64[D]"
    )
    in_use = rng.random(n) < expit(1.0 + z)
    declared = in_use & (rng.random(n) < 0.7)
    share = np.clip(rng.beta(2, 3, n), 0.05, 1)
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
        "well_known": rng.random(n) < 0.004 * np.exp(0.8 * z),
        "time_honoured": rng.random(n) < 0.002,
        "in_use": in_use,
        "revenue_under_mark_cny": np.where(declared, np.round(ent["revenue_cny"][owner] * share, 0), np.nan),
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
    parts = [
        _events(
            rng,
            P,
            ids,
            EventType.CITATION_RECEIVED.value,
            a.citation_rate
            * np.exp(a.citation_per_z * z)
            * np.where(pat["patent_type"] == "invention", 1.5, 1),
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
    invalidated = pd.DataFrame(
        {
            "asset_kind": P,
            "asset_id": ruled_ids[keep],
            "event_type": EventType.INVALIDATED.value,
            "event_date": ruling[keep],
        }
    )
    parts.append(invalidated)
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
    parts += [
        pd.DataFrame(
            {
                "asset_kind": T,
                "asset_id": tm["trademark_id"][renewed],
                "event_type": EventType.RENEWAL.value,
                "event_date": renew_date[renewed],
            }
        ),
        _events(
            rng,
            T,
            tm["trademark_id"],
            EventType.LICENCE.value,
            0.03 * np.exp(0.6 * tz),
            reg,
            np.full(reg.size, extraction),
        ),
        _events(
            rng,
            T,
            tm["trademark_id"],
            EventType.TRANSFER.value,
            np.full(reg.size, 0.01),
            reg,
            np.full(reg.size, extraction),
        ),
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
    pat["invalidated_date"] = pd.Series(ruling[keep], index=ruled_ids[keep]).reindex(ids).to_numpy()
    tm["expiry_date"] = np.where(
        renewed,
        (pd.DatetimeIndex(renew_date) + pd.DateOffset(years=10)).to_numpy().astype("datetime64[D]"),
        renew_date,
    )
    events = pd.concat(parts, ignore_index=True)
    return events[events["event_date"] <= extraction]


def _alive_at(pat: dict, date: np.ndarray) -> np.ndarray:
    """A patent is in force at `date` when granted and neither lapsed, invalidated nor expired."""
    ended = np.fmin(
        np.fmin(pat["lapse_date"].astype("datetime64[D]"), pat["invalidated_date"].astype("datetime64[D]")),
        pat["expiry_date"],
    )
    return (pat["grant_date"] <= date) & ~(ended <= date)


def _applications(
    rng, a: Assumptions, ent: dict, pat: dict, tm: dict, applies: np.ndarray, app_date: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One application per applying enterprise that has a patent in force that day; 1-5 patents
    pledged, plus a trademark in about 40% of cases ("patent + trademark")."""
    owner_of_patent_date = app_date[pat["owner"]]
    pledgeable = _alive_at(pat, owner_of_patent_date) & applies[pat["owner"]]
    # Random order within owner, then the first k pledgeable patents of each owner are pledged.
    order = np.lexsort((rng.random(pat["owner"].size), ~pledgeable, pat["owner"]))
    owners_sorted = pat["owner"][order]
    rank = np.arange(order.size) - np.searchsorted(owners_sorted, owners_sorted)
    n_available = np.bincount(pat["owner"][pledgeable], minlength=applies.size)
    n_pledge = np.minimum(n_available, 1 + rng.binomial(4, 0.3, applies.size))
    chosen = order[rank < n_pledge[owners_sorted]]
    applicants = np.flatnonzero(n_pledge > 0)
    app_ids = pd.Series(_ids("A", applicants.size, 7), index=applicants)
    with_tm = rng.random(applies.size) < 0.4
    tm_owner_date = app_date[tm["owner"]]
    tm_ok = (
        (tm["registration_date"] <= tm_owner_date)
        & (tm["expiry_date"] > tm_owner_date)
        & with_tm[tm["owner"]]
        & (n_pledge[tm["owner"]] > 0)
    )
    tm_first = np.flatnonzero(tm_ok)
    tm_first = tm_first[np.unique(tm["owner"][tm_first], return_index=True)[1]]
    pledges = pd.concat(
        [
            pd.DataFrame(
                {
                    "application_id": app_ids[pat["owner"][chosen]].to_numpy(),
                    "asset_kind": "patent",
                    "asset_id": pat["patent_id"][chosen],
                    "asset_index": chosen,
                }
            ),
            pd.DataFrame(
                {
                    "application_id": app_ids[tm["owner"][tm_first]].to_numpy(),
                    "asset_kind": "trademark",
                    "asset_id": tm["trademark_id"][tm_first],
                    "asset_index": tm_first,
                }
            ),
        ],
        ignore_index=True,
    ).sort_values(["application_id", "asset_kind", "asset_id"], ignore_index=True)
    m = applicants.size
    q = ent["q"][applicants]
    revenue = ent["revenue_cny"][applicants]
    guarantee = _choice(rng, [g.value for g in GuaranteeType], [0.4, 0.3, 0.3], m)
    guarantee_share = np.where(guarantee == "guarantee_company", np.round(rng.uniform(0.5, 0.8, m), 2), 0.0)
    insurance = rng.random(m) < 0.25
    insurance_share = np.where(
        insurance, np.round(np.minimum(rng.uniform(0.2, 0.4, m), 1 - guarantee_share), 2), 0.0
    )
    apps = pd.DataFrame(
        {
            "application_id": app_ids.to_numpy(),
            "enterprise_id": ent["enterprise_id"][applicants],
            "bank_id": np.char.add("B0", (1 + rng.integers(0, a.n_banks, m)).astype(str)).astype(object),
            "application_date": app_date[applicants].astype("datetime64[ms]"),
            "amount_cny": np.clip(np.round(revenue * rng.uniform(0.05, 0.3, m), -4), 100_000, 20_000_000),
            "term_months": rng.choice([12, 24, 36], m, p=[0.6, 0.25, 0.15]),
            "annual_rate": np.round(
                np.clip(0.042 - 0.006 * q + 0.006 * rng.standard_normal(m), 0.025, 0.09), 4
            ),
            "guarantee": guarantee,
            "guarantee_share": guarantee_share,
            "insurance": insurance,
            "insurance_share": insurance_share,
            "owner": applicants,
        }
    )
    pledges = pledges.merge(apps[["application_id", "application_date"]], on="application_id", how="left")
    return apps, pledges


def _valuation_dates(rng, a, pat, tm, pledges, apps, window_start, window_days):
    def dates(ids: np.ndarray, kind: str, earliest: np.ndarray) -> np.ndarray:
        random_date = _dates(window_start, rng.random(ids.size) * window_days)
        random_date = np.maximum(random_date, earliest)  # never value an asset before it exists
        pledged = pledges[pledges["asset_kind"] == kind]
        at = pd.Series(pledged["application_date"].to_numpy(), index=pledged["asset_id"].to_numpy())
        at = at[~at.index.duplicated()].reindex(ids).to_numpy().astype("datetime64[D]")
        return np.where(np.isnat(at), random_date, at).astype("datetime64[D]")

    return (
        dates(pat["patent_id"], "patent", pat["filing_date"]),
        dates(tm["trademark_id"], "trademark", tm["filing_date"]),
    )


def _noise(rng, a: Assumptions, n: int) -> np.ndarray:
    return a.value_noise_scale * rng.standard_t(a.value_noise_df, n)


def _patent_values(rng, a, pat, ent, events, when) -> np.ndarray:
    owner = pat["owner"]
    remaining = np.clip(_years(when, pat["expiry_date"]) / pat["term_years"], 0.02, 1)
    log_v = (
        np.vectorize(a.log_value_base.get, otypes=[float])(pat["patent_type"])
        + a.value_per_z * pat["z"]
        + a.value_per_log_revenue * np.log(ent["revenue_cny"][owner] / 1e7)
        + a.value_per_log_owner_patents * np.log(np.bincount(owner)[owner] / a.typical_owner_patents)
        + a.value_remaining_life * np.log(remaining)
        + a.value_strategic * pat["strategic"]
        + a.value_in_use * pat["in_use"]
        + a.value_per_log_family_countries * np.log(pat["family_countries"])
        + np.vectorize(a.value_industry.get, otypes=[float])(ent["industry"][owner])
        + a.value_pending * (pat["grant_date"] > when)
        + _noise(rng, a, owner.size)
    )
    in_force_or_pending = _alive_at(pat, when) | (pat["grant_date"] > when)
    return np.where(in_force_or_pending, np.round(np.exp(log_v), 0), 0.0)


def _trademark_values(rng, a, tm, ent, when) -> np.ndarray:
    revenue = np.where(
        np.isnan(tm["revenue_under_mark_cny"]),
        ent["revenue_cny"][tm["owner"]] * tm["revenue_share"],
        tm["revenue_under_mark_cny"],
    )
    years_registered = np.clip(_years(tm["registration_date"], when), 0, None)
    log_v = (
        a.log_value_base["trademark"]
        + 0.5 * tm["z"]
        + 0.5 * np.log(np.maximum(revenue, 1e4) / 1e7)
        + a.value_well_known * tm["well_known"]
        + a.value_time_honoured * tm["time_honoured"]
        + 0.3 * tm["in_use"]
        + 0.15 * np.log1p(years_registered)
        + 0.02 * tm["n_goods_services"]
        + a.value_pending * (tm["registration_date"] > when)
        + _noise(rng, a, tm["z"].size)
    )
    alive = tm["expiry_date"] > when
    return np.where(alive, np.round(np.exp(log_v), 0), 0.0)


def _bundle_true_values(apps, pledges, pat_value, tm_value) -> np.ndarray:
    """The sum of the true values of each application's pledged assets."""
    is_pat = (pledges["asset_kind"] == "patent").to_numpy()
    idx = pledges["asset_index"].to_numpy()
    value = np.concatenate([pat_value, tm_value])[np.where(is_pat, idx, idx + pat_value.size)]
    app_pos = pd.Index(apps["application_id"]).get_indexer(pledges["application_id"])
    return np.bincount(app_pos, weights=value, minlength=len(apps))


def _outcomes(rng, a, ent, pat, apps, pledges, bundle_value):
    own = apps["owner"].to_numpy()
    c = a.pd_coefficients
    is_pat = (pledges["asset_kind"] == "patent").to_numpy()
    idx = pledges["asset_index"].to_numpy()
    app_pos = pd.Index(apps["application_id"]).get_indexer(pledges["application_id"])
    strength = np.bincount(app_pos[is_pat], weights=pat["z"][idx[is_pat]], minlength=len(apps)) / np.maximum(
        np.bincount(app_pos[is_pat], minlength=len(apps)), 1
    )
    tax = ent["tax_grade"][own]
    linear = (
        c["latent_quality"] * ent["q"][own]
        + c["leverage"] * (ent["leverage"][own] - 0.5)
        + c["log_overdue"] * np.log1p(ent["overdue_count_24m"][own])
        + c["overdue_days"] * ent["max_overdue_days_24m"][own]
        + c["log_court"] * np.log1p(ent["court_judgements"][own] + ent["enforcement_count"][own])
        + c["dishonest"] * ent["dishonest_debtor"][own]
        + c["log_ltv"] * np.log(apps["amount_cny"].to_numpy() / np.maximum(bundle_value, 1e4))
        + c["ip_strength"] * strength
        + c["high_tech"] * ent["high_tech"][own]
        + c["specialized_sme"] * ent["specialized_sme"][own]
        + sum(c[f"tax_{g}"] * (tax == g) for g in ("D", "C", "M", "A"))
        + c["guarantee_company"] * (apps["guarantee"].to_numpy() == "guarantee_company")
        + c["term_years"] * (apps["term_months"].to_numpy() / 12 - 1)
    )
    # The intercept is solved so the expected default rate equals the stated yearly rate.
    alpha = brentq(lambda x: expit(x + linear).mean() - a.default_rate, -20, 10) if len(apps) else 0.0
    pd_true = expit(alpha + linear)
    defaulted = rng.random(len(apps)) < pd_true
    app_date = apps["application_date"].to_numpy().astype("datetime64[D]")
    default_date = app_date + rng.integers(90, 365, len(apps)) * DAY
    recovery = np.minimum(apps["amount_cny"].to_numpy(), bundle_value * rng.beta(2, 6, len(apps)))
    outcomes = pd.DataFrame(
        {
            "application_id": apps["application_id"].to_numpy(),
            "defaulted_12m": defaulted,
            "default_date": pd.Series(
                np.where(defaulted, default_date, np.datetime64("NaT")).astype("datetime64[ms]")
            ),
            "recovery_cny": np.where(defaulted, np.round(recovery, 0), np.nan),
        }
    )
    return outcomes, pd_true


def _appraisals(rng, a, pat, tm, pledges, pat_value, tm_value, pat_when, tm_when) -> pd.DataFrame:
    frames = []
    for kind, ids, value, when in (
        ("patent", pat["patent_id"], pat_value, pat_when),
        ("trademark", tm["trademark_id"], tm_value, tm_when),
    ):
        pledged = pd.Index(ids).isin(pledges.loc[pledges["asset_kind"] == kind, "asset_id"])
        traded = ~pledged & (rng.random(ids.size) < a.transaction_share)
        for mask, source, noise in (
            (pledged, AppraisalSource.APPRAISAL.value, a.appraisal_noise),
            (traded, AppraisalSource.TRANSACTION.value, a.transaction_noise),
        ):
            mask = mask & (value > 0)
            frames.append(
                pd.DataFrame(
                    {
                        "asset_kind": kind,
                        "asset_id": ids[mask],
                        "appraisal_date": when[mask].astype("datetime64[ms]"),
                        "value_cny": np.round(
                            value[mask] * np.exp(noise * rng.standard_normal(mask.sum())), -2
                        ),
                        "source": source,
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    out["value_cny"] = out["value_cny"].clip(lower=100.0)
    return out


# --- output tables ----------------------------------------------------------------------------


def _timestamps(values: np.ndarray) -> np.ndarray:
    """Millisecond timestamps: the unit Parquet keeps, so a saved table loads back unchanged."""
    return np.asarray(values).astype("datetime64[ms]")


def _enterprise_table(ent: dict, rows: np.ndarray, report_date: np.ndarray) -> pd.DataFrame:
    """One row per credit report: `rows` picks the enterprise of each report."""
    columns = [
        "enterprise_id",
        "report_date",
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
    ]
    df = pd.DataFrame({c: report_date if c == "report_date" else ent[c][rows] for c in columns})
    for c in ("report_date", "founded_date"):
        df[c] = _timestamps(df[c].to_numpy())
    return df.sort_values(["enterprise_id", "report_date"], ignore_index=True)


def _patent_table(pat: dict, extraction: np.datetime64) -> pd.DataFrame:
    extraction_status = np.select(
        [
            ~np.isnat(pat["invalidated_date"].astype("datetime64[D]")),
            ~np.isnat(pat["lapse_date"]),
            pat["expiry_date"] <= extraction,
            np.isnat(pat["grant_date"]),
        ],
        [
            LegalStatus.INVALIDATED.value,
            LegalStatus.LAPSED.value,
            LegalStatus.EXPIRED.value,
            LegalStatus.PENDING.value,
        ],
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
