"""The synthetic portfolio: deterministic, valid, stored faithfully, and holding the relations it claims.

Structural checks are written as functions that return the offending rows or a statistic, so each is
also run on a deliberately broken portfolio (or a generator with the relation switched off) to show
that it can fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from features.errors import InvalidData
from features.portfolio import TABLE_MODELS, Portfolio
from features.schema import columns
from features.synth import Assumptions, synthesize

N, SEED = 600, 3
A = Assumptions()
EXTRACTION = pd.Timestamp(A.extraction_date)
WINDOW = (pd.Timestamp(A.window_start), pd.Timestamp(A.window_end))


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    return synthesize(N, seed=SEED)


@pytest.fixture(scope="module")
def large() -> Portfolio:
    # about 6,500 applications and 170 defaults: enough to measure a 1-4% rate
    return synthesize(20_000, seed=11)


def _with(**changes) -> Assumptions:
    return dataclasses.replace(A, **changes)


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_equal_tables(portfolio):
    again = synthesize(N, seed=SEED)
    for name, df in portfolio.tables().items():
        pd.testing.assert_frame_equal(df, getattr(again, name), obj=name)
    for name, df in portfolio.truth.items():
        pd.testing.assert_frame_equal(df, again.truth[name], obj=f"truth/{name}")
    assert again.manifest == portfolio.manifest


def test_different_seed_gives_different_tables(portfolio):
    other = synthesize(N, seed=SEED + 1)
    for name, df in portfolio.tables().items():
        assert not df.equals(getattr(other, name)), f"{name} identical for seeds {SEED} and {SEED + 1}"


# --- validity -------------------------------------------------------------------------------------


def test_portfolio_validates(portfolio):
    portfolio.validate(today=EXTRACTION.date())


def test_portfolio_has_every_table_and_truth(portfolio):
    assert set(portfolio.tables()) == set(TABLE_MODELS)
    assert set(portfolio.truth) == {"enterprises", "patents", "trademarks", "applications"}
    for name, df in portfolio.tables().items():
        assert len(df) > 0, name


def test_validate_catches_a_broken_link(portfolio):
    pledges = portfolio.pledges.copy()
    pledges.loc[0, "asset_id"] = "CNP99999999"
    broken = dataclasses.replace(portfolio, pledges=pledges)
    with pytest.raises(InvalidData, match=r"pledges\.asset_id: expected an existing patent or trademark id"):
        broken.validate(today=EXTRACTION.date())


def test_validate_catches_a_date_after_today(portfolio):
    with pytest.raises(InvalidData, match=r"expected a date not after today \(2024-12-31\)"):
        portfolio.validate(today=dt.date(2024, 12, 31))


# --- save and load ------------------------------------------------------------------------------------


def _same_date_units(loaded: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    dates = [c for c in original.columns if pd.api.types.is_datetime64_any_dtype(original[c])]
    return loaded.astype({c: original[c].dtype for c in dates})


@pytest.fixture(scope="module")
def saved(portfolio, tmp_path_factory):
    folder = tmp_path_factory.mktemp("portfolio")
    portfolio.save(folder)
    return folder


def test_save_load_keeps_every_value(portfolio, saved):
    loaded = Portfolio.load(saved, truth=True)
    for name, df in portfolio.tables().items():
        pd.testing.assert_frame_equal(_same_date_units(getattr(loaded, name), df), df, obj=name)
    assert set(loaded.truth) == set(portfolio.truth)
    for name, df in portfolio.truth.items():
        pd.testing.assert_frame_equal(_same_date_units(loaded.truth[name], df), df, obj=f"truth/{name}")


def test_save_load_keeps_every_table_equal_dtypes_included(portfolio, saved):
    """A reloaded portfolio must equal the one saved, so a model fitted on either sees the same frame."""
    loaded = Portfolio.load(saved, truth=True)
    for name, df in portfolio.tables().items():
        pd.testing.assert_frame_equal(getattr(loaded, name), df, obj=name)


def test_saved_folder_holds_parquet_tables_truth_and_manifest(portfolio, saved):
    assert sorted(p.name for p in saved.glob("*.parquet")) == sorted(f"{n}.parquet" for n in TABLE_MODELS)
    assert sorted(p.stem for p in (saved / "truth").glob("*.parquet")) == sorted(portfolio.truth)
    manifest = json.loads((saved / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED
    assert manifest["sizes"] == {name: len(df) for name, df in portfolio.tables().items()}
    assert (
        portfolio.enterprises["enterprise_id"].nunique() == N
    )  # a baseline report each, plus applicants' own
    assert manifest["assumptions"]["extraction_date"] == A.extraction_date
    assert manifest["assumptions"]["default_rate"] == A.default_rate


def test_load_without_truth_leaves_truth_out(saved):
    assert Portfolio.load(saved).truth == {}


# --- defaults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.01, A.default_rate, 0.04])
def test_intercept_is_solved_to_the_stated_default_rate(rate):
    p = synthesize(N, seed=SEED, assumptions=_with(default_rate=rate))
    assert p.truth["applications"]["pd_true"].mean() == pytest.approx(rate, abs=1e-6)


def test_defaults_are_drawn_from_the_true_pd(portfolio):
    pd_true = portfolio.truth["applications"].set_index("application_id")["pd_true"]
    y = portfolio.outcomes.set_index("application_id")["defaulted_12m"]
    assert y.any() and not y.all()
    assert pd_true[y[y].index].mean() > 2 * pd_true[y[~y].index].mean()


@pytest.mark.heavy
def test_observed_default_rate_is_within_1_to_4_percent(large):
    rate = large.outcomes["defaulted_12m"].mean()
    assert 0.01 <= rate <= 0.04
    se = np.sqrt(A.default_rate * (1 - A.default_rate) / len(large.outcomes))
    assert abs(rate - A.default_rate) < 4 * se
    assert large.manifest["default_rate_observed"] == pytest.approx(rate)


def _quality_of_applicants(p: Portfolio) -> pd.DataFrame:
    q = p.truth["enterprises"].set_index("enterprise_id")["latent_quality"]
    apps = p.applications.merge(p.outcomes, on="application_id")
    apps = apps.merge(p.truth["applications"], on="application_id")
    return apps.assign(q=apps["enterprise_id"].map(q).to_numpy())


def test_true_pd_falls_with_latent_quality(portfolio):
    apps = _quality_of_applicants(portfolio)
    assert spearmanr(apps["q"], apps["pd_true"]).statistic < -0.7


@pytest.mark.heavy
def test_better_enterprises_default_less(large):
    apps = _quality_of_applicants(large)
    quartile = pd.qcut(apps["q"], 4, labels=False)
    rates = apps.groupby(quartile)["defaulted_12m"].mean()  # lowest quality first
    assert rates.iloc[0] > rates.iloc[1] > max(rates.iloc[2], rates.iloc[3]), rates
    assert rates.iloc[0] > 4 * rates.iloc[3], rates


def test_default_dates_fall_within_12_months_of_application(portfolio):
    out = portfolio.outcomes.merge(portfolio.applications, on="application_id")
    d = out[out["defaulted_12m"]]
    days = (d["default_date"] - d["application_date"]).dt.days
    assert days.between(90, 365).all() and (d["default_date"] <= EXTRACTION).all()
    assert out.loc[~out["defaulted_12m"], ["default_date", "recovery_cny"]].isna().all().all()
    assert (d["recovery_cny"] <= d["amount_cny"]).all()


# --- values ------------------------------------------------------------------------------------------


def _appraisals_with_truth(p: Portfolio) -> pd.DataFrame:
    truth = pd.concat(
        [
            p.truth["patents"].rename(columns={"patent_id": "asset_id"}).assign(asset_kind="patent"),
            p.truth["trademarks"].rename(columns={"trademark_id": "asset_id"}).assign(asset_kind="trademark"),
        ]
    )
    return p.appraisals.merge(truth, on=["asset_kind", "asset_id"], how="left", validate="one_to_one")


def appraisal_rank_correlation(p: Portfolio) -> float:
    m = _appraisals_with_truth(p)
    return spearmanr(np.log(m["value_cny"]), np.log(m["true_value_cny"])).statistic


def value_quality_rank_correlation(p: Portfolio) -> float:
    t = p.truth["patents"]
    t = t[t["true_value_cny"] > 0]
    return spearmanr(t["latent_quality"], np.log(t["true_value_cny"])).statistic


def pd_quality_rank_correlation(p: Portfolio) -> float:
    apps = _quality_of_applicants(p)
    return spearmanr(apps["q"], apps["pd_true"]).statistic


def test_appraisals_track_true_values(portfolio):
    assert appraisal_rank_correlation(portfolio) > 0.8


def test_appraisal_errors_have_the_stated_spread(portfolio):
    m = _appraisals_with_truth(portfolio)
    assert (m["appraisal_date"] == m["valuation_date"]).all()
    log_error = np.log(m["value_cny"] / m["true_value_cny"])
    for source, sd in (("appraisal", A.appraisal_noise), ("transaction", A.transaction_noise)):
        err = log_error[m["source"] == source]
        assert len(err) > 50, source
        assert abs(err.mean()) < 0.1 and 0.75 * sd < err.std() < 1.25 * sd, (source, err.mean(), err.std())


def test_true_value_rises_with_latent_quality(portfolio):
    assert value_quality_rank_correlation(portfolio) > 0.35
    t = portfolio.truth["patents"]
    t = t[t["true_value_cny"] > 0]
    by_quintile = np.log(t["true_value_cny"]).groupby(pd.qcut(t["latent_quality"], 5, labels=False)).mean()
    assert by_quintile.is_monotonic_increasing, by_quintile


def test_true_value_is_zero_exactly_when_the_right_has_ended(portfolio):
    t = portfolio.truth["patents"].merge(portfolio.patents, on="patent_id")
    ev = portfolio.events
    ended = ev[ev["event_type"].isin(["lapse", "invalidated"])].groupby("asset_id")["event_date"].min()
    end = pd.concat([t.set_index("patent_id")["expiry_date"], ended], axis=1).min(axis=1)
    dead = end.reindex(t["patent_id"]).to_numpy() <= t["valuation_date"].to_numpy()
    assert ((t["true_value_cny"] == 0).to_numpy() == dead).all()


@pytest.mark.parametrize(
    "check, changes, holds",
    [
        pytest.param(
            appraisal_rank_correlation,
            {"appraisal_noise": 2.0, "transaction_noise": 2.0},
            lambda r: r > 0.8,
            id="appraisals-vs-truth",
        ),
        pytest.param(
            value_quality_rank_correlation, {"value_per_z": 0.0}, lambda r: r > 0.35, id="value-vs-quality"
        ),
        pytest.param(
            pd_quality_rank_correlation,
            {"pd_coefficients": {**A.pd_coefficients, "latent_quality": 2.0}},
            lambda r: r < -0.7,
            id="pd-vs-quality",
        ),
    ],
)
def test_relation_checks_fail_when_the_relation_is_switched_off(check, changes, holds):
    broken = synthesize(N, seed=SEED, assumptions=_with(**changes))
    assert not holds(check(broken))


# --- dates and pledges -----------------------------------------------------------------------------------


def dates_after_extraction(p: Portfolio) -> dict[str, int]:
    """Dated facts (event, grant, report, default, appraisal dates...) later than the extraction date;
    expiry dates, which lie in the future by nature, are left out."""
    extraction = pd.Timestamp(p.manifest["assumptions"]["extraction_date"])
    found = {}
    for name, df in p.tables().items():
        for col in columns(TABLE_MODELS[name]):
            if col.kind == "date" and col.past:
                found[f"{name}.{col.name}"] = int((df[col.name] > extraction).sum())
    return {k: v for k, v in found.items() if v}


def test_every_date_is_on_or_before_the_extraction_date(portfolio):
    assert dates_after_extraction(portfolio) == {}
    assert portfolio.events["event_date"].max() <= EXTRACTION


def test_applications_fall_in_the_window(portfolio):
    assert portfolio.applications["application_date"].between(*WINDOW).all()
    latest = portfolio.enterprises.sort_values("report_date").drop_duplicates("enterprise_id", keep="last")
    ent = latest.set_index("enterprise_id")
    app = portfolio.applications.set_index("enterprise_id")["application_date"]
    gap = (app - ent.loc[app.index, "report_date"]).dt.days
    assert gap.between(0, 89).all()  # the credit snapshot is taken in the 90 days before applying


def pledges_not_in_force(p: Portfolio) -> pd.DataFrame:
    """Pledged assets that were not in force on the application date."""
    pl = p.pledges.merge(p.applications[["application_id", "application_date"]], on="application_id")
    ev = p.events[p.events["event_type"].isin(["lapse", "invalidated", "cancellation"])]
    ended = ev.merge(pl, on=["asset_kind", "asset_id"])
    ended = ended[ended["event_date"] <= ended["application_date"]]
    pat = pl[pl["asset_kind"] == "patent"].merge(p.patents, left_on="asset_id", right_on="patent_id")
    not_granted = pat[~(pat["grant_date"] <= pat["application_date"])]
    expired = pat[pat["expiry_date"] <= pat["application_date"]]
    tm = pl[pl["asset_kind"] == "trademark"].merge(p.trademarks, left_on="asset_id", right_on="trademark_id")
    not_registered = tm[~(tm["registration_date"] <= tm["application_date"])]
    cols = ["application_id", "asset_kind", "asset_id"]
    return pd.concat([ended[cols], not_granted[cols], expired[cols], not_registered[cols]], ignore_index=True)


def pledges_of_another_enterprise(p: Portfolio) -> pd.DataFrame:
    owners = pd.concat(
        [
            p.patents[["patent_id", "enterprise_id"]].set_axis(["asset_id", "owner"], axis=1),
            p.trademarks[["trademark_id", "enterprise_id"]].set_axis(["asset_id", "owner"], axis=1),
        ]
    )
    pl = p.pledges.merge(p.applications[["application_id", "enterprise_id"]], on="application_id")
    pl = pl.merge(owners, on="asset_id", how="left")
    return pl[pl["owner"] != pl["enterprise_id"]]


def test_pledged_assets_are_in_force_on_the_application_date(portfolio):
    assert len(pledges_not_in_force(portfolio)) == 0


def test_pledged_assets_belong_to_the_applying_enterprise(portfolio):
    assert len(pledges_of_another_enterprise(portfolio)) == 0


def test_every_pledge_is_appraised_on_the_application_date(portfolio):
    pl = portfolio.pledges.merge(portfolio.applications, on="application_id")
    m = pl.merge(portfolio.appraisals, on=["asset_kind", "asset_id"], how="left")
    assert (m["source"] == "appraisal").all()
    assert (m["appraisal_date"] == m["application_date"]).all()


def test_every_application_pledges_one_to_five_patents(portfolio):
    per_application = portfolio.pledges.groupby(["application_id", "asset_kind"]).size().unstack(fill_value=0)
    per_application = per_application.reindex(portfolio.applications["application_id"], fill_value=0)
    assert per_application["patent"].between(1, 5).all()
    assert per_application["trademark"].between(0, 1).all()


def test_date_and_pledge_checks_catch_a_broken_portfolio(portfolio):
    pledge = portfolio.pledges[portfolio.pledges["asset_kind"] == "patent"].iloc[0]
    apps = portfolio.applications.set_index("application_id")
    applied = apps.loc[pledge["application_id"], "application_date"]
    lapse = pd.DataFrame(
        {
            "asset_kind": ["patent"],
            "asset_id": [pledge["asset_id"]],
            "event_type": ["lapse"],
            "event_date": [applied - pd.Timedelta(days=1)],
        }
    ).astype(portfolio.events.dtypes)
    late = lapse.assign(event_type="licence", event_date=EXTRACTION + pd.Timedelta(days=1)).astype(
        portfolio.events.dtypes
    )
    events = pd.concat([portfolio.events, lapse, late], ignore_index=True)
    applicant = apps.loc[pledge["application_id"], "enterprise_id"]
    stranger = portfolio.patents.loc[portfolio.patents["enterprise_id"] != applicant, "patent_id"].iloc[0]
    pledges = portfolio.pledges.copy()
    pledges.loc[pledges.index[-1], ["asset_kind", "asset_id"]] = ["patent", stranger]
    broken = dataclasses.replace(portfolio, events=events, pledges=pledges)
    assert pledge["asset_id"] in set(pledges_not_in_force(broken)["asset_id"])
    assert stranger in set(pledges_of_another_enterprise(broken)["asset_id"])
    assert dates_after_extraction(broken) == {"events.event_date": 1}


# --- assumptions are honoured ------------------------------------------------------------------------


def test_a_custom_extraction_date_is_honoured():
    """Moving the extraction date moves what the tables can have seen: nothing after it, and the
    legal status as of it."""
    a = _with(extraction_date="2024-12-31", window_end="2023-12-31")
    p = synthesize(N, seed=SEED, assumptions=a)
    assert dates_after_extraction(p) == {}
    expired = p.patents["legal_status"] == "expired"
    assert (p.patents.loc[expired, "expiry_date"] <= pd.Timestamp(a.extraction_date)).all()
    p.validate(today=dt.date(2024, 12, 31))


@pytest.mark.parametrize("n, seed", [(0, 1), (1, 1), (1, 8)])
def test_tiny_portfolios_can_be_generated(n, seed):
    """n=0 and n=1 have no application or no trademark for these seeds; the generator must still work."""
    p = synthesize(n, seed=seed)
    assert p.enterprises["enterprise_id"].nunique() == n
    p.validate(today=EXTRACTION.date())
