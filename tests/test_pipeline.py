"""application_features: one row per loan application, as of its date, ready for a scorer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.pipeline import LOAN_COLUMNS, application_features, feature_summary
from features.portfolio import Portfolio
from features.synth import synthesize


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    return synthesize(800, seed=5)


@pytest.fixture(scope="module")
def features(portfolio) -> pd.DataFrame:
    return application_features(portfolio)


def test_one_row_per_application_in_application_order(portfolio, features):
    assert len(features) == len(portfolio.applications) > 100
    assert features.index.name == "application_id"
    assert features.index.is_unique
    assert features.index.tolist() == portfolio.applications["application_id"].tolist()


def test_rows_follow_the_applications_table_not_a_sorted_order(portfolio, features):
    shuffled = portfolio.applications.sample(frac=1, random_state=0).reset_index(drop=True)
    out = application_features(dataclasses.replace(portfolio, applications=shuffled))
    assert out.index.tolist() == shuffled["application_id"].tolist()
    pd.testing.assert_frame_equal(out, features.loc[out.index])


def test_every_feature_is_numeric_and_finite_where_present(features):
    assert (features.dtypes == "float64").all()
    assert not np.isinf(features.to_numpy()).any()
    always = LOAN_COLUMNS + [
        "n_assets",
        "n_patents",
        "concentration_hhi",
        "largest_share",
        "shortest_remaining_years",
        "log_revenue",
        "leverage",
        "tax_grade_rank",
    ]
    assert features[always].notna().all().all()


def test_the_target_is_binary_where_the_outcome_is_known_and_missing_for_running_loans(portfolio, features):
    y = features["defaulted_12m"]
    known = y.notna()
    assert set(y[known].unique()) <= {0.0, 1.0} and 0 < y[known].sum() < known.sum()
    assert known.sum() == len(portfolio.outcomes) and (~known).any()  # the last vintage still runs
    truth = portfolio.outcomes.set_index("application_id")["defaulted_12m"].astype("float64")
    pd.testing.assert_series_equal(y, truth.reindex(features.index), check_names=False)


def test_an_application_without_an_outcome_has_a_missing_target(portfolio):
    outcomes = portfolio.outcomes.iloc[1:]
    out = application_features(dataclasses.replace(portfolio, outcomes=outcomes))
    first = portfolio.applications["application_id"].iloc[0]
    assert np.isnan(out.loc[first, "defaulted_12m"]) and out["defaulted_12m"].notna().sum() == len(outcomes)


def test_ratios_lie_in_plausible_ranges(features):
    assert features["leverage"].between(0, 1.5).all()
    assert features["net_margin"].between(-1, 1).all()
    assert features["gross_margin"].between(-0.5, 1).all()
    assert features["current_ratio"].dropna().between(0, 20).all()
    assert features["age_years"].between(0, 60).all()
    assert features["amount_to_revenue"].between(0, 5).all()
    assert features["tax_grade_rank"].isin([0.0, 1.0, 2.0, 3.0, 4.0]).all()


def test_loan_terms_are_copied_from_the_application(portfolio, features):
    apps = portfolio.applications.set_index("application_id")
    for column in LOAN_COLUMNS:
        np.testing.assert_array_equal(features[column].to_numpy(), apps[column].to_numpy(dtype="float64"))
    assert (features["guarantee_company"] == (apps["guarantee"] == "guarantee_company")).all()
    # the enterprise's latest credit report on or before the application date
    reports = apps.reset_index().merge(portfolio.enterprises, on="enterprise_id")
    reports = reports[reports["report_date"] <= reports["application_date"]]
    latest = reports.sort_values("report_date").groupby("application_id").tail(1).set_index("application_id")
    np.testing.assert_allclose(
        features["log_revenue"].to_numpy(), np.log1p(latest["revenue_cny"].reindex(features.index).to_numpy())
    )


def test_bundle_counts_match_the_pledges(portfolio, features):
    counts = portfolio.pledges.groupby(["application_id", "asset_kind"]).size().unstack(fill_value=0)
    counts = counts.reindex(features.index, fill_value=0)
    assert (features["n_patents"] == counts["patent"]).all()
    assert (features["n_trademarks"] == counts["trademark"]).all()
    assert (features["n_assets"] == features["n_patents"] + features["n_trademarks"]).all()
    # every bundle holds a patent, so a trademark makes it "patent + trademark"
    assert (features["has_patent_and_trademark"] == (counts["trademark"] > 0)).all()
    assert features["concentration_hhi"].between(1 / features["n_assets"] - 1e-12, 1).all()
    assert (features["shortest_remaining_years"] <= features["mean_remaining_years"]).all()
    assert (features["shortest_remaining_years"] > 0).all()  # pledged rights are in force when pledged


def test_value_weighted_bundle_features_from_the_appraisals(portfolio):
    values = portfolio.pledges.merge(portfolio.appraisals, on=["asset_kind", "asset_id"])
    out = application_features(
        portfolio,
        value_column="value_cny",
        asset_values=values[["application_id", "asset_kind", "asset_id", "value_cny"]],
    )
    expected = values.groupby("application_id")["value_cny"].sum().reindex(out.index)
    np.testing.assert_allclose(out["bundle_value_cny"].to_numpy(), expected.to_numpy())
    assert (out["largest_share"] == out["strongest_asset_value_cny"] / out["bundle_value_cny"]).all()
    assert out["concentration_hhi"].between(0, 1).all()


def test_application_features_are_deterministic(portfolio, features):
    pd.testing.assert_frame_equal(application_features(portfolio), features)


def test_feature_summary_describes_every_column(features):
    summary = feature_summary(features)
    assert list(summary.columns) == ["present", "mean", "p25", "median", "p75"]
    assert list(summary.index) == list(features.columns)
    assert summary["present"].between(0, 1).all()
    assert (summary["p25"] <= summary["median"]).all() and (summary["median"] <= summary["p75"]).all()
    assert summary.loc["defaulted_12m", "mean"] == pytest.approx(features["defaulted_12m"].mean())
    assert summary.loc["current_ratio", "present"] == pytest.approx(features["current_ratio"].notna().mean())


def test_a_portfolio_with_no_application_gives_no_rows():
    """BUG: with no applications, enterprise_snapshot hands merge_asof an object-typed empty key column
    and pandas refuses it against the str-typed enterprise ids (MergeError) instead of returning no rows."""
    one = synthesize(1, seed=1)  # one enterprise; its loans taken out
    empty = dataclasses.replace(
        one,
        applications=one.applications.iloc[:0],
        pledges=one.pledges.iloc[:0],
        outcomes=one.outcomes.iloc[:0],
    )
    assert len(empty.applications) == 0 and empty.enterprises["enterprise_id"].nunique() == 1
    out = application_features(empty)
    assert len(out) == 0 and "defaulted_12m" in out.columns
