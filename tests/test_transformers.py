"""The snapshot transformers: scikit-learn conventions, stable columns, and features checked by hand.

Inputs are hand-built snapshot frames (what features.snapshot returns), so each feature's expected value
can be worked out on paper. scikit-learn's `parametrize_with_checks` is not used: these transformers
need named snapshot columns, which its generated arrays do not have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from features.errors import InvalidData
from features.reference import STRATEGIC_EMERGING_IPC
from features.transformers import (
    DAYS_PER_YEAR,
    BundleFeatures,
    EnterpriseFeatures,
    PatentFeatures,
    TrademarkFeatures,
    numbers_or_nan,
)

T = pd.Timestamp

# --- factories of snapshot rows ------------------------------------------------------------------------


def patent_row(**changes) -> dict:
    """An invention granted 2012-06-01 and in force until 2030, seen on 2020-06-01."""
    return {
        "patent_id": "P1",
        "patent_type": "invention",
        "filing_date": T("2010-01-01"),
        "grant_date": T("2012-06-01"),
        "expiry_date": T("2030-01-01"),
        "ipc_main": "H01M",
        "ipc_count": 2,
        "n_claims": 10,
        "n_independent_claims": 2,
        "backward_citations": 5,
        "family_size": 2,
        "family_countries": 2,
        "n_inventors": 3,
        "in_use": True,
        "forward_citations": 16,
        "transfers": 0,
        "licences": 1,
        "prior_pledges": 0,
        "invalidation_requests": 0,
        "litigations": 0,
        "status_as_of": "valid",
        "as_of": T("2020-06-01"),
    } | changes


def trademark_row(**changes) -> dict:
    """A mark registered 2010-05-01, renewed once, seen on 2020-06-01."""
    return {
        "trademark_id": "T1",
        "nice_class": 9,
        "n_goods_services": 8,
        "filing_date": T("2009-06-01"),
        "registration_date": T("2010-05-01"),
        "expiry_as_of": T("2030-05-01"),
        "well_known": False,
        "time_honoured": False,
        "in_use": True,
        "revenue_under_mark_cny": 1_000_000.0,
        "renewals": 1,
        "transfers": 0,
        "licences": 2,
        "prior_pledges": 0,
        "oppositions": 0,
        "invalidation_requests": 0,
        "status_as_of": "registered",
        "as_of": T("2020-06-01"),
    } | changes


def enterprise_row(**changes) -> dict:
    return {
        "enterprise_id": "E1",
        "industry": "electronics",
        "founded_date": T("2010-06-01"),
        "registered_capital_cny": 5e6,
        "employees": 40,
        "rd_staff": 10,
        "revenue_cny": 2e7,
        "revenue_growth": 0.1,
        "gross_margin": 0.3,
        "net_profit_cny": 2e6,
        "total_assets_cny": 2.5e7,
        "total_liabilities_cny": 1e7,
        "current_ratio": 1.5,
        "operating_cash_flow_cny": 1e6,
        "rd_spend_cny": 1.6e6,
        "tax_grade": "B",
        "tax_paid_cny": 6e5,
        "overdue_count_24m": 0,
        "max_overdue_days_24m": 0,
        "outstanding_loans_cny": 4e6,
        "guarantees_given_cny": 0.0,
        "court_judgements": 0,
        "enforcement_count": 0,
        "dishonest_debtor": False,
        "admin_penalties": 0,
        "high_tech": True,
        "specialized_sme": False,
        "little_giant": False,
        "tech_sme": True,
        "as_of": T("2020-06-01"),
    } | changes


def frame(*items: dict) -> pd.DataFrame:
    df = pd.DataFrame(list(items))
    for c in df.columns:
        if c.endswith("_date") or c in ("as_of", "expiry_as_of"):
            df[c] = pd.to_datetime(df[c])
    return df


PATENTS_FIT = frame(
    patent_row(),
    patent_row(patent_id="P2", patent_type="design", ipc_main=None, n_claims=0, n_independent_claims=0),
    patent_row(patent_id="P3", ipc_main="H04L", status_as_of="pending", grant_date=pd.NaT),
)
TRADEMARKS_FIT = frame(trademark_row(), trademark_row(trademark_id="T2", nice_class=35))
ENTERPRISES_FIT = frame(
    enterprise_row(), enterprise_row(enterprise_id="E2", industry="software", tax_grade="A")
)

# (transformer, fit data, new data with an unseen category, the column that becomes missing)
CASES = {
    "patent": (
        PatentFeatures,
        PATENTS_FIT,
        frame(patent_row(patent_type="utility_model", ipc_main="C08L"), patent_row()),
        ["patent_type", "ipc_section"],
    ),
    "trademark": (
        TrademarkFeatures,
        TRADEMARKS_FIT,
        frame(trademark_row(nice_class=42), trademark_row()),
        ["nice_class"],
    ),
    "enterprise": (
        EnterpriseFeatures,
        ENTERPRISES_FIT,
        frame(enterprise_row(industry="logistics"), enterprise_row()),
        ["industry"],
    ),
}
REQUIRED = [(name, column) for name, (cls, *_) in CASES.items() for column in cls.required]


@pytest.fixture(params=list(CASES))
def case(request):
    return CASES[request.param]


# --- scikit-learn conventions -------------------------------------------------------------------------


def test_fit_returns_self(case):
    cls, fit_data, *_ = case
    est = cls()
    assert est.fit(fit_data) is est


def test_init_only_stores_parameters_and_learned_state_ends_in_underscore(case):
    cls, fit_data, *_ = case
    est = cls()
    assert vars(est) == est.get_params()
    learned = set(vars(est.fit(fit_data))) - set(est.get_params())
    assert learned and all(name.endswith("_") for name in learned), learned


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(case):
    cls, fit_data, *_ = case
    fitted = cls().fit(fit_data)
    copy = clone(fitted)
    assert vars(copy) == copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(fit_data)


def test_clone_keeps_a_custom_strategic_ipc_set():
    est = PatentFeatures(strategic_ipc=frozenset({"B23K"}))
    copy = clone(est)
    assert copy.get_params() == {"strategic_ipc": frozenset({"B23K"})} and vars(copy) == copy.get_params()
    rows = frame(patent_row(ipc_main="B23K"), patent_row(ipc_main="H01M"))
    assert copy.fit(rows).transform(rows)["policy_fit"].tolist() == [1.0, 0.0]
    assert PatentFeatures().fit(rows).transform(rows)["policy_fit"].tolist() == [0.0, 1.0]
    assert "H01M" in STRATEGIC_EMERGING_IPC and "B23K" not in STRATEGIC_EMERGING_IPC


def test_transform_before_fit_raises_not_fitted(case):
    cls, fit_data, *_ = case
    with pytest.raises(NotFittedError):
        cls().transform(fit_data)
    with pytest.raises(NotFittedError):
        cls().get_feature_names_out()


def test_output_columns_are_the_same_for_fit_and_new_data(case):
    cls, fit_data, new_data, _ = case
    new_data = new_data.iloc[1:].set_axis(["new"])  # categories seen at fit; other rows, another index
    est = cls().fit(fit_data)
    seen, new = est.transform(fit_data), est.transform(new_data)
    assert list(seen.columns) == list(new.columns) == list(est.get_feature_names_out())
    assert list(new.index) == ["new"]
    assert (new.dtypes == "float64").all() and (seen.dtypes == "float64").all()


def test_categories_are_fixed_codes_and_unknown_values_become_missing(case):
    """Enumerated categories (patent type, IPC section, Nice class, industry) have fixed codes, so a
    category absent from the fitted rows keeps its code (one application scored alone gets the code it
    had in training); a value outside the enumeration becomes NaN, never a new column."""
    cls, fit_data, new_data, categorical = case
    est = cls().fit(fit_data)
    unseen = est.transform(new_data)
    fitted_on_new = cls().fit(new_data).transform(new_data)
    assert unseen.shape[1] == est.transform(fit_data).shape[1]
    for column in categorical:
        assert unseen[column].equals(fitted_on_new[column]), column  # the same codes whatever was fitted
        assert not np.isnan(unseen[column].iloc[0]), column
    broken = new_data.copy()
    for column in categorical:
        source = "ipc_main" if column == "ipc_section" else column
        broken[source] = broken[source].astype(object)
        broken.loc[broken.index[0], source] = "Z99Z" if column == "ipc_section" else "no-such-category"
    out = est.transform(broken)
    for column in categorical:
        assert np.isnan(out[column].iloc[0]), column


def test_fit_keeps_the_enumerated_categories():
    est = PatentFeatures().fit(PATENTS_FIT)
    assert est.categories_["patent_type"] == ["design", "invention", "utility_model"]
    assert est.categories_["ipc_section"] == list("ABCDEFGH")
    assert TrademarkFeatures().fit(TRADEMARKS_FIT).categories_["nice_class"] == [str(k) for k in range(1, 46)]


@pytest.mark.parametrize("name, column", REQUIRED, ids=[f"{n}-{c}" for n, c in REQUIRED])
def test_a_missing_required_column_is_refused_by_name(name, column):
    cls, fit_data, *_ = CASES[name]
    message = rf"{cls.__name__} refused, 1 problem\(s\):\n  - {column}: expected a column of the snapshot"
    with pytest.raises(InvalidData, match=message):
        cls().fit(fit_data.drop(columns=column))
    fitted = cls().fit(fit_data)
    with pytest.raises(InvalidData, match=message):
        fitted.transform(fit_data.drop(columns=column))


def test_a_non_dataframe_is_refused(case):
    cls, fit_data, *_ = case
    with pytest.raises(
        TypeError, match="expects a DataFrame snapshot or a mapping of its columns; got ndarray"
    ):
        cls().fit(fit_data.to_numpy())


# --- patent features -------------------------------------------------------------------------------------


def _years(a: str, b: str) -> float:
    return (T(b) - T(a)).days / DAYS_PER_YEAR


def test_patent_remaining_years_decrease_as_the_as_of_date_advances():
    dates = ["2012-06-01", "2015-01-01", "2020-01-01", "2029-12-31", "2030-01-01", "2031-01-01"]
    rows = frame(*[patent_row(as_of=T(d)) for d in dates])
    out = PatentFeatures().fit(rows).transform(rows)
    remaining = out["remaining_years"].to_numpy()
    assert remaining == pytest.approx([_years(d, "2030-01-01") for d in dates[:4]] + [0.0, 0.0])
    assert (np.diff(remaining[:5]) < 0).all()
    assert out["remaining_share"].iloc[2] == pytest.approx(_years("2020-01-01", "2030-01-01") / 20, rel=1e-3)
    assert out["age_years"].is_monotonic_increasing and out["remaining_share"].between(0, 1).all()


def test_citations_per_year():
    rows = frame(
        patent_row(forward_citations=16),  # 16 citations in the 8 years since grant
        patent_row(forward_citations=3, grant_date=T("2020-03-01")),  # granted 3 months ago: per 1 year
        patent_row(forward_citations=2, grant_date=pd.NaT, status_as_of="pending"),
        patent_row(forward_citations=0),
    )
    out = PatentFeatures().fit(rows).transform(rows)
    expected = [16 / _years("2012-06-01", "2020-06-01"), 3, 2, 0]
    assert out["citations_per_year"].tolist() == pytest.approx(expected)
    assert out["citations_per_year"].iloc[0] == pytest.approx(2.0, rel=1e-3)


def test_patent_status_and_counts_pass_through():
    rows = frame(
        patent_row(), patent_row(status_as_of="pending", grant_date=pd.NaT), patent_row(status_as_of="lapsed")
    )
    out = PatentFeatures().fit(rows).transform(rows)
    assert out["is_valid"].tolist() == [1.0, 0.0, 0.0]
    assert out["is_pending"].tolist() == [0.0, 1.0, 0.0]
    first = out[["claims", "forward_citations", "licences", "in_use"]].iloc[0]
    assert first.tolist() == [10.0, 16.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "transformer, row",
    [
        pytest.param(PatentFeatures, patent_row(status_as_of="lapsed"), id="patent-lapsed"),
        pytest.param(PatentFeatures, patent_row(status_as_of="invalidated"), id="patent-invalidated"),
        pytest.param(TrademarkFeatures, trademark_row(status_as_of="cancelled"), id="trademark-cancelled"),
        pytest.param(
            TrademarkFeatures, trademark_row(status_as_of="invalidated"), id="trademark-invalidated"
        ),
    ],
)
def test_remaining_years_are_zero_once_the_right_has_ended(transformer, row):
    """BUG (likely): remaining life is measured to the statutory expiry whatever the status as of the date,
    so a patent that lapsed or was invalidated (a mark cancelled or invalidated) before the as-of date keeps
    years of remaining life, while an expired one gets 0. BundleFeatures takes its shortest and mean remaining
    life from this column, so application_features cannot see a pledged right that has already ended."""
    rows = frame(row)
    assert transformer().fit(rows).transform(rows)["remaining_years"].tolist() == [0.0]


# --- trademark and enterprise features -----------------------------------------------------------------


def test_trademark_remaining_years_decrease_and_years_registered_increase():
    dates = ["2012-01-01", "2020-06-01", "2030-04-30", "2031-01-01"]
    rows = frame(*[trademark_row(as_of=T(d)) for d in dates])
    out = TrademarkFeatures().fit(rows).transform(rows)
    expected = [_years(d, "2030-05-01") for d in dates[:3]] + [0.0]
    assert out["remaining_years"].tolist() == pytest.approx(expected)
    assert out["years_registered"].tolist() == pytest.approx([_years("2010-05-01", d) for d in dates])


def test_trademark_features_by_hand():
    rows = frame(
        trademark_row(),
        trademark_row(
            status_as_of="pending",
            registration_date=pd.NaT,
            expiry_as_of=pd.NaT,
            revenue_under_mark_cny=np.nan,
        ),
    )
    out = TrademarkFeatures().fit(rows).transform(rows)
    assert out["is_registered"].tolist() == [1.0, 0.0]
    assert out["log_revenue_under_mark"].iloc[0] == pytest.approx(np.log1p(1e6))
    assert out.iloc[1][["years_registered", "remaining_years", "log_revenue_under_mark"]].isna().all()
    assert out[["renewals", "licences", "goods_services"]].iloc[0].tolist() == [1.0, 2.0, 8.0]


def test_enterprise_ratios_by_hand():
    rows = frame(
        enterprise_row(), enterprise_row(revenue_cny=0.0, total_assets_cny=0.0, employees=1, rd_staff=0)
    )
    out = EnterpriseFeatures().fit(rows).transform(rows)
    first = out.iloc[0]
    assert first["leverage"] == pytest.approx(0.4)
    assert first["net_margin"] == pytest.approx(0.1)
    assert first["return_on_assets"] == pytest.approx(0.08)
    assert first["rd_intensity"] == pytest.approx(0.08)
    assert first["rd_staff_share"] == pytest.approx(0.25)
    assert first["tax_grade_rank"] == 1.0
    assert first["age_years"] == pytest.approx(_years("2010-06-01", "2020-06-01"))
    # a zero denominator gives a missing ratio, never an infinite one
    second = out.iloc[1]
    ratios = ["net_margin", "leverage", "return_on_assets", "rd_intensity", "debt_to_revenue"]
    assert second[ratios].isna().all()
    assert not np.isinf(out.to_numpy()).any()


@pytest.mark.parametrize(
    "grade, rank", [("A", 0.0), ("B", 1.0), ("M", 2.0), ("C", 3.0), ("D", 4.0), ("X", None)]
)
def test_tax_grade_rank(grade, rank):
    rows = frame(enterprise_row(tax_grade=grade))
    value = EnterpriseFeatures().fit(rows).transform(rows)["tax_grade_rank"].iloc[0]
    assert np.isnan(value) if rank is None else value == rank


# --- bundle features -------------------------------------------------------------------------------------


def asset(
    application_id: str, kind: str, remaining: float, value: float, patent_type: str | None = None
) -> dict:
    return {
        "application_id": application_id,
        "asset_kind": kind,
        "patent_type": patent_type,
        "remaining_years": remaining,
        "value_cny": value,
    }


# Rows of one application need not be adjacent; output rows follow first appearance.
PLEDGED = pd.DataFrame(
    [
        asset("A1", "patent", 12.0, 600.0, "invention"),
        asset("A2", "patent", 10.0, 50.0, "design"),
        asset("A1", "patent", 4.0, 300.0, "utility_model"),
        asset("A3", "trademark", 5.0, 100.0),
        asset("A1", "trademark", 8.0, 100.0),
        asset("A4", "patent", 15.0, 1.0, "invention"),
        asset("A3", "trademark", 7.0, 100.0),
        asset("A4", "patent", 9.0, 3.0, "invention"),
    ]
)

# Worked by hand. A1: invention 600 + utility model 300 + trademark 100; A2: one design patent;
# A3: two trademarks of equal value; A4: two inventions worth 1 and 3.
EXPECTED_EQUAL_WEIGHTS = pd.DataFrame(
    {
        "n_assets": [3, 1, 2, 2],
        "n_patents": [2, 1, 0, 2],
        "n_trademarks": [1, 0, 2, 0],
        "n_inventions": [1, 0, 0, 2],
        "invention_share": [1 / 3, 0, 0, 1],  # inventions over all pledged assets, trademarks included
        "has_patent_and_trademark": [1, 0, 0, 0],
        "concentration_hhi": [3 * (1 / 3) ** 2, 1, 2 * 0.5**2, 2 * 0.5**2],
        "largest_share": [1 / 3, 1, 0.5, 0.5],
        "shortest_remaining_years": [4, 10, 5, 9],
        "mean_remaining_years": [8, 10, 6, 12],
    },
    index=pd.Index(["A1", "A2", "A3", "A4"], name="application_id"),
    dtype="float64",
)


def test_bundle_features_with_equal_weights():
    out = BundleFeatures().fit_transform(PLEDGED)
    pd.testing.assert_frame_equal(out, EXPECTED_EQUAL_WEIGHTS)


def test_bundle_features_with_value_weights():
    out = BundleFeatures(value_column="value_cny").fit_transform(PLEDGED)
    expected = EXPECTED_EQUAL_WEIGHTS.assign(
        concentration_hhi=[0.6**2 + 0.3**2 + 0.1**2, 1, 0.5, 0.25**2 + 0.75**2],
        largest_share=[0.6, 1, 0.5, 0.75],
        bundle_value_cny=[1000.0, 50, 200, 4],
        strongest_asset_value_cny=[600.0, 50, 100, 3],
    )
    pd.testing.assert_frame_equal(out, expected)
    assert out.loc["A1", "concentration_hhi"] == pytest.approx(0.46)


def test_a_one_asset_bundle_has_hhi_one():
    one = PLEDGED[PLEDGED["application_id"] == "A2"]
    for est in (BundleFeatures(), BundleFeatures(value_column="value_cny")):
        out = est.fit_transform(one)
        assert out[["concentration_hhi", "largest_share", "n_assets"]].iloc[0].tolist() == [1.0, 1.0, 1.0]


def test_bundle_output_columns_are_stable_and_learned_state_ends_in_underscore():
    est = BundleFeatures(value_column="value_cny")
    assert vars(est) == est.get_params() == {"value_column": "value_cny"}
    assert est.fit(PLEDGED) is est
    learned = set(vars(est)) - set(est.get_params())
    assert learned and all(n.endswith("_") for n in learned)
    assert (
        list(est.transform(PLEDGED.head(1)).columns)
        == list(est.transform(PLEDGED).columns)
        == list(est.get_feature_names_out())
    )
    copy = clone(est)
    assert vars(copy) == {"value_column": "value_cny"}
    with pytest.raises(NotFittedError):
        copy.transform(PLEDGED)


@pytest.mark.parametrize("column", ["application_id", "asset_kind", "remaining_years"])
def test_bundle_refuses_a_missing_column_by_name(column):
    with pytest.raises(InvalidData, match=rf"  - {column}: expected a column of the snapshot"):
        BundleFeatures().fit(PLEDGED.drop(columns=column))
    with pytest.raises(InvalidData, match=rf"  - {column}: expected a column of the snapshot"):
        BundleFeatures().fit(PLEDGED).transform(PLEDGED.drop(columns=column))


def test_bundle_refuses_a_missing_value_column_at_fit_and_transform():
    """BUG: fit checks the value column but transform does not, so new data without it raises a bare
    KeyError('value_cny') instead of InvalidData naming the column."""
    with pytest.raises(InvalidData, match=r"  - value_cny: expected a column of the snapshot"):
        BundleFeatures(value_column="value_cny").fit(PLEDGED.drop(columns="value_cny"))
    fitted = BundleFeatures(value_column="value_cny").fit(PLEDGED)
    with pytest.raises(InvalidData, match=r"  - value_cny: expected a column of the snapshot"):
        fitted.transform(PLEDGED.drop(columns="value_cny"))


def test_a_bundle_with_no_value_has_no_concentration():
    """BUG: when a bundle's values sum to 0 (every right ended) its shares are 0/0; largest_share is then
    missing but concentration_hhi is 0.0, a value the index can never take (it is at least 1/n), and one
    that reads as the best possible diversification."""
    in_a3 = PLEDGED["application_id"] == "A3"
    worthless = PLEDGED.assign(value_cny=np.where(in_a3, 0.0, PLEDGED["value_cny"]))
    out = BundleFeatures(value_column="value_cny").fit_transform(worthless)
    assert np.isnan(out.loc["A3", "largest_share"])
    assert np.isnan(out.loc["A3", "concentration_hhi"])


def _as_record_columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """A table as one request's records give it: each column an object array of plain values."""
    return {
        c: np.array(
            [None if pd.isna(v) else v.date() if isinstance(v, pd.Timestamp) else v for v in df[c]],
            dtype=object,
        )
        for c in df.columns
    }


def test_enterprise_features_of_records_equal_those_of_the_table():
    """columns_of on a mapping of record values (the service's path) gives the table's features."""
    rows = frame(
        enterprise_row(),
        enterprise_row(enterprise_id="E2", tax_grade="M", industry="unknown", employees=None),
    )
    table = EnterpriseFeatures().fit_transform(rows)
    records = EnterpriseFeatures().columns_of(_as_record_columns(rows))
    pd.testing.assert_frame_equal(pd.DataFrame(records), table.reset_index(drop=True))
    assert np.isnan(records["industry"][1]) and records["tax_grade_rank"][1] == 2.0


def test_bundle_features_of_records_equal_those_of_the_table():
    applications, columns = BundleFeatures(value_column="value_cny").columns_of(_as_record_columns(PLEDGED))
    table = BundleFeatures(value_column="value_cny").fit_transform(PLEDGED)
    assert list(applications) == list(table.index)
    pd.testing.assert_frame_equal(pd.DataFrame(columns, index=table.index), table)


def test_numbers_or_nan_reads_numbers_and_marks_the_rest_missing():
    np.testing.assert_array_equal(numbers_or_nan(np.array([1, 2.5, None], dtype=object)), [1.0, 2.5, np.nan])
    out = numbers_or_nan(np.array([3.0, "many", pd.NA, "4"], dtype=object))
    np.testing.assert_array_equal(out, [3.0, np.nan, np.nan, 4.0])
    assert out.dtype == np.float64
