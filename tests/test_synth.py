"""The synthetic book: deterministic, valid, stored faithfully, point in time, calibrated to what CNIPA
publishes, and holding the relations it claims.

Structural checks are written as functions that return the offending rows or a statistic, so each is
also run on a deliberately broken book (or a generator with the relation switched off) to show that it can
fail. The calibration figures are checked on the default book (`book`, heavy: about 8 s to generate).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from features.errors import InvalidData
from features.portfolio import TABLE_MODELS, Portfolio
from features.schema import columns
from features.synth import Assumptions, royalty_value, synthesize
from valuation.income import IncomeAssumptions, income_value

N, SEED = 1500, 3
A = Assumptions()
EXTRACTION = pd.Timestamp(A.extraction_date)
CNIPA = Path(__file__).resolve().parents[2] / "shared/data/cnipa_pledge_stats"


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    return synthesize(N, seed=SEED)


@pytest.fixture(scope="module")
def book() -> Portfolio:
    """The default book, as `ipcredit synth` and `ipcredit up` write it."""
    return synthesize()


def _with(**changes) -> Assumptions:
    return dataclasses.replace(A, **changes)


def _loans(p: Portfolio) -> pd.DataFrame:
    return p.applications.merge(p.outcomes, on="application_id", how="left")


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


def test_an_outcome_s_route_and_repayment_must_fit_its_default(portfolio):
    outcomes = portfolio.outcomes.copy()
    repaid = outcomes.index[~outcomes["defaulted_12m"]][0]
    outcomes.loc[repaid, "disposal_route"] = "licence"
    broken = dataclasses.replace(portfolio, outcomes=outcomes)
    with pytest.raises(InvalidData, match="a disposal route only for a defaulted loan"):
        broken.validate(today=EXTRACTION.date())


# --- save and load ------------------------------------------------------------------------------------


def _same_date_units(loaded: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    dates = [c for c in original.columns if pd.api.types.is_datetime64_any_dtype(original[c])]
    return loaded.astype({c: original[c].dtype for c in dates})


@pytest.fixture(scope="module")
def saved(portfolio, tmp_path_factory):
    folder = tmp_path_factory.mktemp("portfolio")
    portfolio.save(folder)
    return folder


def test_save_load_keeps_every_table_equal_dtypes_included(portfolio, saved):
    """A reloaded book must equal the one saved, so a model fitted on either sees the same frame."""
    loaded = Portfolio.load(saved, truth=True)
    for name, df in portfolio.tables().items():
        pd.testing.assert_frame_equal(getattr(loaded, name), df, obj=name)
    assert set(loaded.truth) == set(portfolio.truth)
    for name, df in portfolio.truth.items():
        pd.testing.assert_frame_equal(_same_date_units(loaded.truth[name], df), df, obj=f"truth/{name}")


def test_saved_folder_holds_parquet_tables_truth_and_manifest(portfolio, saved):
    assert sorted(p.name for p in saved.glob("*.parquet")) == sorted(f"{n}.parquet" for n in TABLE_MODELS)
    assert sorted(p.stem for p in (saved / "truth").glob("*.parquet")) == sorted(portfolio.truth)
    manifest = json.loads((saved / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED
    assert manifest["sizes"] == {name: len(df) for name, df in portfolio.tables().items()}
    assert manifest["assumptions"]["extraction_date"] == A.extraction_date
    assert manifest["vintages"] == [A.first_vintage, A.last_vintage]
    assert manifest["defaults"] == int(portfolio.outcomes["defaulted_12m"].sum())
    assert manifest["loans_running"] == len(portfolio.applications) - len(portfolio.outcomes)


def test_load_without_truth_leaves_truth_out(saved):
    assert Portfolio.load(saved).truth == {}


# --- a book over time ------------------------------------------------------------------------------------


def test_every_enterprise_reports_each_quarter_from_the_book_s_start(portfolio):
    reports = portfolio.enterprises.sort_values(["enterprise_id", "report_date"])
    ends = reports["report_date"]
    assert (ends + pd.Timedelta(days=1)).dt.is_quarter_start.all()  # each report closes a quarter
    assert ends.min() >= pd.Timestamp(f"{A.first_vintage - 1}-01-01")
    gaps = reports.groupby("enterprise_id")["report_date"].diff().dropna().dt.days
    assert gaps.between(89, 93).all()  # no quarter skipped
    # the figures move from quarter to quarter: the book is not one snapshot repeated
    assert reports.groupby("enterprise_id")["revenue_cny"].nunique().median() > 4


def test_an_application_sees_the_report_of_the_quarter_before_it(portfolio):
    apps = portfolio.applications.sort_values("application_date")
    reports = portfolio.enterprises.sort_values("report_date")
    seen = pd.merge_asof(
        apps,
        reports[["enterprise_id", "report_date"]],
        left_on="application_date",
        right_on="report_date",
        by="enterprise_id",
    )
    gap = (seen["application_date"] - seen["report_date"]).dt.days
    assert gap.notna().all() and gap.between(1, 92).all()


def test_loans_span_the_vintages_and_enterprises_borrow_again_but_never_twice_at_once(portfolio):
    apps = portfolio.applications.sort_values(["enterprise_id", "application_date"])
    years = apps["application_date"].dt.year
    assert set(years) == set(range(A.first_vintage, A.last_vintage + 1))
    assert apps["enterprise_id"].duplicated().mean() > 0.3  # repeat borrowers
    ends = apps["application_date"] + pd.to_timedelta(apps["term_months"] * 30.44, unit="D")
    next_start = apps.groupby("enterprise_id")["application_date"].shift(-1)
    assert (next_start.dropna() >= ends[next_start.notna()].dt.floor("D") - pd.Timedelta(days=1)).all()


def test_an_enterprise_that_defaults_takes_no_later_loan(portfolio):
    loans = _loans(portfolio)
    first_default = loans[loans["defaulted_12m"] == True].groupby("enterprise_id")["default_date"].min()  # noqa: E712
    later = loans["application_date"] > loans["enterprise_id"].map(first_default)
    assert first_default.size > 10 and not later.any()


def test_running_loans_have_no_outcome_yet(portfolio):
    loans = _loans(portfolio)
    known = loans["defaulted_12m"].notna()
    matured = loans["application_date"] + pd.Timedelta(days=365) <= EXTRACTION
    assert (known == matured).all()
    assert (~known).sum() > 0  # the last vintage is still running


def test_defaults_fall_within_12_months_and_recoveries_name_their_route(portfolio):
    loans = _loans(portfolio).dropna(subset=["defaulted_12m"])
    d = loans[loans["defaulted_12m"].astype(bool)]
    days = (d["default_date"] - d["application_date"]).dt.days
    assert days.between(60, 365).all() and (d["default_date"] <= EXTRACTION).all()
    assert d["disposal_route"].isin(["licence", "auction_transfer", "pledge_to_equity"]).all()
    recovered = d.dropna(subset=["recovery_cny"])
    assert len(recovered) > 0 and (recovered["recovery_cny"] <= recovered["amount_cny"]).all()
    assert (recovered["recovery_date"] >= recovered["default_date"]).all()
    repaid = loans[~loans["defaulted_12m"].astype(bool)]
    assert repaid[["default_date", "recovery_cny", "disposal_route"]].isna().all().all()
    assert repaid["repaid_date"].notna().any() and repaid["repaid_date"].dropna().le(EXTRACTION).all()


# --- calibrated to what is published -----------------------------------------------------------------


def _national_mean_per_project() -> float:
    stats = pd.read_csv(CNIPA / "cnipa_patent_trademark_pledge_national_annual.csv")
    row = stats[(stats["year"] == 2023) & (stats["period"] == "full year")].iloc[0]
    return row["pledge_amount_100m_cny"] * 1e8 / row["pledge_projects"]  # about 20.3 M CNY


@pytest.mark.heavy
def test_loan_amounts_are_calibrated_to_cnipa(book):
    amount = book.applications["amount_cny"]
    assert 2e6 <= amount.median() <= 5e6
    assert 0.65 <= (amount < 10e6).mean() <= 0.80  # CNIPA H1 2023: 72.5% of projects were under 10 M
    assert 0.5 <= amount.mean() / _national_mean_per_project() <= 1.5


@pytest.mark.heavy
def test_loans_are_mostly_20_to_60_percent_of_the_appraised_pledge(book):
    dated = book.appraisals.rename(columns={"appraisal_date": "application_date"})
    pledged = book.pledges.merge(book.applications, on="application_id").merge(
        dated, on=["asset_kind", "asset_id", "application_date"]
    )
    ltv = (
        book.applications.set_index("application_id")["amount_cny"]
        / pledged.groupby("application_id")["value_cny"].sum()
    )
    assert ((ltv >= 0.2) & (ltv <= 0.6)).mean() > 0.7


@pytest.mark.heavy
def test_each_vintage_defaults_at_1_to_4_percent_and_the_book_has_enough_defaults(book):
    loans = _loans(book).dropna(subset=["defaulted_12m"])
    by_vintage = loans.groupby(loans["application_date"].dt.year)["defaulted_12m"].mean()
    assert by_vintage.between(0.01, 0.04).all(), by_vintage
    assert loans["defaulted_12m"].sum() >= 1500  # the scoring training table's defaults


@pytest.mark.heavy
def test_the_book_holds_enough_rare_rights_to_learn_their_effect(book):
    pledged = book.pledges.merge(book.trademarks, left_on="asset_id", right_on="trademark_id")
    assert pledged["well_known"].sum() >= 200 and pledged["time_honoured"].sum() >= 100
    kinds = book.events.merge(book.pledges, on=["asset_kind", "asset_id"])["event_type"].value_counts()
    assert kinds["litigation"] >= 300 and kinds["invalidation_request"] >= 200 and kinds["invalidated"] >= 50


# --- values ------------------------------------------------------------------------------------------


def test_the_value_formula_is_the_income_approach_s():
    """The generator's relief from royalty is valuation.income's formula (features/ cannot import it)."""
    base, royalty = np.array([2e6, 5e6, 1e6]), np.array([0.045, 0.02, 0.03])
    life, growth, tax = np.array([7.3, 10.0, 0.4]), np.array([-0.05, 0.0, -0.1]), np.array([0.25, 0.15, 0.25])
    ours = royalty_value(base, royalty, life, growth, tax, 0.13)
    theirs = income_value(
        base, royalty, life, IncomeAssumptions(discount_rate=0.13), tax_rate=tax, growth_rate=growth
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def _appraisals_with_truth(p: Portfolio) -> pd.DataFrame:
    truth = pd.concat(
        [
            p.truth["patents"].rename(columns={"patent_id": "asset_id"}).assign(asset_kind="patent"),
            p.truth["trademarks"].rename(columns={"trademark_id": "asset_id"}).assign(asset_kind="trademark"),
        ]
    )
    return p.appraisals.merge(
        truth.rename(columns={"valuation_date": "appraisal_date"}),
        on=["asset_kind", "asset_id", "appraisal_date"],
        how="left",
        validate="one_to_one",
    )


def appraisal_rank_correlation(p: Portfolio) -> float:
    m = _appraisals_with_truth(p)
    return spearmanr(np.log(m["value_cny"]), np.log(m["true_value_cny"])).statistic


def value_quality_rank_correlation(p: Portfolio) -> float:
    t = p.truth["patents"]
    t = t[t["true_value_cny"] > 0]
    return spearmanr(t["latent_quality"], np.log(t["true_value_cny"])).statistic


def pd_driver_correlation(p: Portfolio) -> float:
    """Rank correlation of the true PD with the loan-to-value (drawn apart from the enterprise's quality, so
    it moves the PD only through its own effect)."""
    apps = p.applications.merge(p.truth["applications"], on="application_id")
    dated = p.appraisals.rename(columns={"appraisal_date": "application_date"})
    pledged = p.pledges.merge(apps, on="application_id").merge(
        dated, on=["asset_kind", "asset_id", "application_date"]
    )
    bundle = pledged.groupby("application_id")["value_cny"].sum()
    loans = apps.set_index("application_id")
    return spearmanr(loans["amount_cny"] / bundle.reindex(loans.index), loans["pd_true"]).statistic


def test_appraisals_track_true_values(portfolio):
    assert appraisal_rank_correlation(portfolio) > 0.8


def test_appraisal_errors_have_the_stated_spread(portfolio):
    m = _appraisals_with_truth(portfolio)
    log_error = np.log(m["value_cny"] / m["true_value_cny"])
    for source, sd in (("appraisal", A.appraisal_noise), ("transaction", A.transaction_noise)):
        err = log_error[m["source"] == source]
        assert len(err) > 50, source
        assert abs(err.mean()) < 0.1 and 0.75 * sd < err.std() < 1.25 * sd, (source, err.mean(), err.std())


def test_true_value_rises_with_latent_quality(portfolio):
    assert value_quality_rank_correlation(portfolio) > 0.15


def test_a_well_known_mark_is_worth_more_than_a_plain_one(portfolio):
    t = portfolio.truth["trademarks"].merge(portfolio.trademarks, on="trademark_id")
    t = t[t["true_value_cny"] > 0]
    by = np.log(t["true_value_cny"]).groupby(t["well_known"]).median()
    assert by[True] - by[False] > 0.4  # royalty x2, and better marks


def test_pd_rises_with_the_loan_to_value(portfolio):
    assert pd_driver_correlation(portfolio) > 0.1


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
            value_quality_rank_correlation, {"value_per_z": 0.0}, lambda r: r > 0.15, id="value-vs-quality"
        ),
        pytest.param(
            pd_driver_correlation,
            {"pd_coefficients": {**A.pd_coefficients, "log_loan_to_value": 0.0}},
            lambda r: r > 0.1,
            id="pd-vs-loan-to-value",
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
            if col.kind == "date" and col.past and col.name in df:
                found[f"{name}.{col.name}"] = int((df[col.name] > extraction).sum())
    return {k: v for k, v in found.items() if v}


def test_every_date_is_on_or_before_the_extraction_date(portfolio):
    assert dates_after_extraction(portfolio) == {}
    assert portfolio.events["event_date"].max() <= EXTRACTION


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
    m = pl.merge(
        portfolio.appraisals.rename(columns={"appraisal_date": "application_date"}),
        on=["asset_kind", "asset_id", "application_date"],
        how="left",
    )
    assert (m["source"] == "appraisal").all()


def test_every_application_pledges_one_to_five_patents_and_at_most_one_mark(portfolio):
    per_application = portfolio.pledges.groupby(["application_id", "asset_kind"]).size().unstack(fill_value=0)
    per_application = per_application.reindex(portfolio.applications["application_id"], fill_value=0)
    assert per_application["patent"].between(1, 5).all()
    assert per_application["trademark"].between(0, 1).all()
    assert 0.2 < (per_application["trademark"] == 1).mean() < 0.6  # "patent + trademark" bundles


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


def test_chosen_vintages_and_extraction_date_are_honoured():
    """Fewer vintages and an earlier extraction: loans only in those years, nothing dated after it, and the
    legal status as of it."""
    a = _with(first_vintage=2021, last_vintage=2023, extraction_date="2024-06-30")
    p = synthesize(600, seed=SEED, assumptions=a)
    assert set(p.applications["application_date"].dt.year) == {2021, 2022, 2023}
    assert dates_after_extraction(p) == {}
    expired = p.patents["legal_status"] == "expired"
    assert (p.patents.loc[expired, "expiry_date"] <= pd.Timestamp(a.extraction_date)).all()
    p.validate(today=dt.date(2024, 6, 30))


def test_vintages_in_the_wrong_order_are_refused():
    with pytest.raises(ValueError, match="first_vintage must not follow last_vintage"):
        synthesize(10, assumptions=_with(first_vintage=2024, last_vintage=2020))


@pytest.mark.parametrize("n, seed", [(0, 1), (1, 1), (3, 8)])
def test_tiny_books_can_be_generated(n, seed):
    p = synthesize(n, seed=seed)
    assert p.enterprises["enterprise_id"].nunique() <= n
    p.validate(today=EXTRACTION.date())
