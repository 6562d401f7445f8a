"""Lending policy: credit line, expected loss, loss sharing, interest subsidy and NPL tolerance, each against
hand-computed figures; bad rows refused by row.

Defaults used by hand: unsecured share of the amount asked AAA 50%, A 30%, BB 10%, C 0; bank limit 20 million;
disposal costs 10% of the liquidation value; LGD 45% on the uncovered part, 0 on the covered part, floor 10%;
PD floor 0.03%; fund 40% of the loss left after guarantor and insurer; subsidy 50% of the first year's
interest, at most 100,000 CNY per enterprise.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData
from underwriting.policy import (
    GRADE_NAMES,
    SHARING_PRESETS,
    LendingPolicy,
    credit_line,
    expected_loss,
    exposure_at_default,
    from_bundles,
    interest_subsidy,
    loss_split,
    npl_tolerance,
)
from valuation.pledge import bundle_value

M = 1_000_000.0


# --- policy ---------------------------------------------------------------------------------------------


def test_policy_defaults_and_override_merge_one_grade():
    p = LendingPolicy()
    assert set(p.unsecured_share) == set(GRADE_NAMES)
    assert p.unsecured_share["CCC"] == p.unsecured_share["CC"] == p.unsecured_share["C"] == 0
    q = p.override(unsecured_share={"AAA": 0.6}, bank_limit_cny=5 * M)
    assert q.unsecured_share["AAA"] == 0.6 and q.unsecured_share["AA"] == 0.4
    assert q.bank_limit_cny == 5 * M and p.bank_limit_cny == 20 * M


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"unsecured_share": {"C": 0.1}}, "unsecured_share['C']"),
        ({"unsecured_share": {"AAA": 1.5}}, "unsecured_share['AAA']"),
        ({"unsecured_base": "assets"}, "unsecured_base"),
        ({"bank_limit_cny": -1.0}, "bank_limit_cny"),
        ({"lgd_floor": 1.2}, "lgd_floor"),
        ({"fund_share": 0.7, "scheme_insurer_share": 0.4}, "fund_share + scheme_insurer_share"),
        ({"subsidy_months": 13}, "subsidy_months"),
        ({"no_such_field": 1}, "no_such_field"),
    ],
)
def test_policy_refuses_bad_parameters(changes, field):
    with pytest.raises(InvalidData, match=re.escape(field)):
        LendingPolicy().override(**changes)


# --- credit line --------------------------------------------------------------------------------------------


def test_credit_line_is_the_least_of_asked_pledge_plus_unsecured_and_limit():
    asked = [2 * M, 10 * M, 30 * M, 10 * M, 10 * M]
    pledge = [3 * M, 1 * M, 25 * M, 1 * M, 12 * M]
    grade = ["AAA", "A", "AAA", "C", "BB"]
    line = credit_line(asked, pledge, grade)
    # asked binds; pledge 1 + 30% x 10 = 4; limit 20 binds; C: pledge only; pledge 12 + 1 > asked 10
    np.testing.assert_allclose(line, [2 * M, 4 * M, 20 * M, 1 * M, 10 * M])


def test_credit_line_bank_limit_is_per_policy():
    line = credit_line(30 * M, 25 * M, "AAA", policy=LendingPolicy(bank_limit_cny=8 * M))
    np.testing.assert_allclose(line, [8 * M])


def test_credit_line_on_revenue_base():
    policy = LendingPolicy(unsecured_base="revenue").override(unsecured_share={"A": 0.05})
    line = credit_line([10 * M, 10 * M], [1 * M, 1 * M], ["A", "C"], revenue=[40 * M, 40 * M], policy=policy)
    np.testing.assert_allclose(line, [1 * M + 0.05 * 40 * M, 1 * M])


def test_credit_line_revenue_must_match_the_base():
    with pytest.raises(InvalidData, match="revenue: expected the enterprise's revenue"):
        credit_line(M, M, "A", policy=LendingPolicy(unsecured_base="revenue"))
    with pytest.raises(InvalidData, match="unsecured_base is 'amount_asked'"):
        credit_line(M, M, "A", revenue=5 * M)


def test_credit_line_refuses_bad_rows_all_at_once():
    with pytest.raises(InvalidData) as e:
        credit_line([M, -5.0, M], [M, M, float("nan")], ["AAA", "A", "D"])
    text = str(e.value)
    assert "3 problem(s)" in text
    assert "amount_asked: expected a finite number >= 0; got -5.0 (row 1)" in text
    assert "pledge_value" in text and "(row 2)" in text
    assert "grade: expected one of" in text and "got 'D' (row 2)" in text


def test_credit_line_refuses_mismatched_lengths():
    with pytest.raises(InvalidData, match="pledge_value: expected a scalar or 3 values"):
        credit_line([M, M, M], [M, M], "A")


# --- expected loss ----------------------------------------------------------------------------------------


def test_expected_loss_by_hand():
    pd_ = [0.02, 0.01, 0.0, 0.05]
    ead = [1 * M, 1 * M, 1 * M, 0.0]
    liquidation = [0.5 * M, 2 * M, 0.0, 1 * M]
    out = expected_loss(pd_, ead, liquidation)
    # 1: recovery 0.45 M covers 45%; LGD 0.45 x 0.55 = 0.2475; EL = 0.02 x 0.2475 x 1 M = 4,950
    # 2: fully covered -> LGD floor 10%; EL = 0.01 x 0.10 x 1 M = 1,000
    # 3: PD 0 floored at 0.03%, unsecured LGD 45%: EL = 0.0003 x 0.45 x 1 M = 135
    # 4: no exposure, no loss
    np.testing.assert_allclose(out["recovery"], [0.45 * M, 1.8 * M, 0.0, 0.9 * M])
    np.testing.assert_allclose(out["lgd"], [0.2475, 0.10, 0.45, 0.10])
    np.testing.assert_allclose(out["el"], [4950.0, 1000.0, 135.0, 0.0])
    np.testing.assert_allclose(out["pd"], [0.02, 0.01, 0.0003, 0.05])
    assert list(out.columns) == ["pd", "ead", "recovery", "lgd", "el"]


def test_expected_loss_with_a_secured_lgd_and_series_index():
    policy = LendingPolicy(lgd_secured=0.25, disposal_cost_rate=0.0)
    ead = pd.Series([1 * M], index=["loan-7"])
    out = expected_loss(0.1, ead, 0.6 * M, policy)
    # (0.25 x 0.6 M + 0.45 x 0.4 M) / 1 M = 0.33
    assert out.index.tolist() == ["loan-7"]
    assert out.loc["loan-7", "lgd"] == pytest.approx(0.33)
    assert out.loc["loan-7", "el"] == pytest.approx(0.1 * 0.33 * M)


def test_ead_is_the_line_drawn_in_full_by_default():
    np.testing.assert_allclose(exposure_at_default([2 * M]), [2 * M])
    np.testing.assert_allclose(exposure_at_default([2 * M], LendingPolicy(ead_share_of_line=0.8)), [1.6 * M])


def test_expected_loss_refuses_bad_rows():
    with pytest.raises(InvalidData) as e:
        expected_loss([0.1, 1.2], [M, -1.0], [0.0, 0.0])
    assert "pd: expected a number in [0, 1]; got 1.2 (row 1)" in str(e.value)
    assert "ead: expected a finite number >= 0; got -1.0 (row 1)" in str(e.value)


def test_pledge_and_liquidation_values_come_from_valuation_pledge():
    assets = pd.DataFrame(
        [
            {"asset_kind": "patent", "patent_type": "invention", "value_cny": 4 * M, "remaining_years": 12.0},
            {"asset_kind": "trademark", "patent_type": None, "value_cny": 2 * M, "remaining_years": 8.0},
        ]
    )
    valuation = bundle_value(assets, 24)
    own = from_bundles([valuation])
    assert own.loc[0, "pledge_value"] == pytest.approx(valuation.pledge_value_cny)
    assert own.loc[0, "liquidation_value"] == pytest.approx(valuation.liquidation_value_cny)
    by_licence = from_bundles([valuation], route="licence")
    assert by_licence.loc[0, "liquidation_value"] == pytest.approx(valuation.liquidation_by_route["licence"])
    with pytest.raises(InvalidData, match="route"):
        from_bundles([valuation], route="fire_sale")


# --- loss sharing -----------------------------------------------------------------------------------------


def test_loss_split_by_hand_default_ezhou():
    out = loss_split([1000.0, 1000.0], guarantee_share=[0.5, 0.0], insurance_share=[0.2, 0.0])
    # row 0: guarantor 500, insurer 200, rest 300: fund 40% = 120, bank 180
    # row 1: fund 400, bank 600
    np.testing.assert_allclose(out["el_guarantor"], [500.0, 0.0])
    np.testing.assert_allclose(out["el_insurer"], [200.0, 0.0])
    np.testing.assert_allclose(out["el_fund"], [120.0, 400.0])
    np.testing.assert_allclose(out["el_bank"], [180.0, 600.0])
    assert "el_appraiser" not in out.columns


@pytest.mark.parametrize(
    "scheme, bank, fund, insurer, appraiser",
    [
        ("zhongshan", 26.0, 54.0, 16.0, 4.0),
        ("zhuhai", 60.0, 40.0, 0.0, None),
        ("shenzhen", 50.0, 50.0, 0.0, None),
        ("ezhou", 60.0, 40.0, 0.0, None),
    ],
)
def test_loss_split_presets(scheme, bank, fund, insurer, appraiser):
    out = loss_split(100.0, 0.0, 0.0, LendingPolicy().with_sharing(scheme))
    assert out.loc[0, "el_bank"] == pytest.approx(bank)
    assert out.loc[0, "el_fund"] == pytest.approx(fund)
    assert out.loc[0, "el_insurer"] == pytest.approx(insurer)
    if appraiser is None:
        assert "el_appraiser" not in out.columns
    else:
        assert out.loc[0, "el_appraiser"] == pytest.approx(appraiser)


@pytest.mark.parametrize("scheme", sorted(SHARING_PRESETS))
def test_loss_shares_add_up_to_el(scheme):
    rng = np.random.default_rng(7)
    el = rng.lognormal(8, 2, 500)
    g = rng.uniform(0, 0.6, 500)
    s = rng.uniform(0, 0.4, 500)
    out = loss_split(el, g, s, LendingPolicy().with_sharing(scheme))
    np.testing.assert_allclose(out.sum(axis=1), el, rtol=1e-12)
    assert (out.to_numpy() >= 0).all()


def test_loss_split_refuses_shares_outside_0_1_or_above_1_together():
    with pytest.raises(InvalidData) as e:
        loss_split([100.0, 100.0, -1.0], [0.7, 1.5, 0.0], [0.4, 0.0, 0.0])
    text = str(e.value)
    assert "guarantee_share + insurance_share: expected a total <= 1; got 1.1 (row 0)" in text
    assert "guarantee_share: expected a number in [0, 1]; got 1.5 (row 1)" in text
    assert "el: expected a finite number >= 0; got -1.0 (row 2)" in text


def test_unknown_sharing_scheme_is_refused():
    with pytest.raises(InvalidData, match="scheme: expected one of"):
        LendingPolicy().with_sharing("guangzhou")


# --- interest subsidy -------------------------------------------------------------------------------------


def test_subsidy_is_half_the_interest_up_to_the_cap():
    sub = interest_subsidy([1 * M, 10 * M], [0.04, 0.04], [12, 36])
    # 1 M x 4% = 40,000 interest -> 20,000; 10 M x 4% = 400,000 -> 200,000 capped at 100,000
    np.testing.assert_allclose(sub, [20_000.0, 100_000.0])


def test_six_month_loan_gets_six_months_of_interest():
    np.testing.assert_allclose(interest_subsidy(2 * M, 0.036, 6), [2 * M * 0.036 * 6 / 12 * 0.5])


def test_subsidy_cap_is_shared_by_an_enterprise_across_its_loans_in_order():
    # E1: 60,000 then 60,000 uncapped -> 60,000 then 40,000; E2: its own cap
    amount = [3 * M, 3 * M, 3 * M]
    sub = interest_subsidy(amount, 0.04, 12, enterprise_id=["E1", "E1", "E2"])
    np.testing.assert_allclose(sub, [60_000.0, 40_000.0, 60_000.0])


def test_subsidy_honours_what_was_already_granted_this_year():
    sub = interest_subsidy(
        [1 * M, 1 * M, 1 * M],
        0.04,
        12,
        enterprise_id=["E1", "E2", "E3"],
        already_granted={"E1": 90_000.0, "E2": 150_000.0},
    )
    np.testing.assert_allclose(sub, [10_000.0, 0.0, 20_000.0])


def test_subsidy_refuses_bad_rows():
    with pytest.raises(InvalidData) as e:
        interest_subsidy([M, -M, M], [0.04, 0.04, 3.5], [12, 12, 6.5])
    text = str(e.value)
    assert "amount: expected a finite number >= 0; got -1000000.0 (row 1)" in text
    assert "annual_rate: expected an annual rate as a fraction" in text and "got 3.5 (row 2)" in text
    assert "term_months: expected a whole number of months >= 1; got 6.5 (row 2)" in text
    with pytest.raises(InvalidData, match="already_granted: expected enterprise_id"):
        interest_subsidy(M, 0.04, 12, already_granted={"E1": 1.0})
    with pytest.raises(InvalidData, match="already_granted: expected a finite amount >= 0 CNY; got -5.0"):
        interest_subsidy(M, 0.04, 12, enterprise_id="E1", already_granted={"E1": -5.0})


# --- NPL tolerance ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip, bank, ok",
    [
        (0.02, 0.015, True),
        (0.045, 0.015, True),
        (0.0451, 0.015, False),
        (0.10, 0.01, False),
        (0.0, 0.05, True),
    ],
)
def test_npl_tolerance(ip, bank, ok):
    assert npl_tolerance(ip, bank) is ok


def test_npl_tolerance_vectorised_and_configurable():
    np.testing.assert_array_equal(npl_tolerance([0.02, 0.05], [0.01, 0.01], tolerance=0.02), [True, False])
    with pytest.raises(InvalidData, match=r"ip_npl_rate: expected a number in \[0, 1\]; got 2.0 \(row 0\)"):
        npl_tolerance(2.0, 0.01)
