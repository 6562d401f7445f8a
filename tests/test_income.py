"""Relief-from-royalty income approach: hand-computed values, monotonicity, parameters and the cross-check.

The hand examples use a 10% discount rate so the discount factors can be checked on paper:
1.1^0.5 = 1.048809, 1.1^1.5 = 1.153690, 1.1^2.25 = 1.239095, 1.1^2.5 = 1.269059.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData
from features.schema import Industry
from valuation._common import decode_patent_type
from valuation.income import (
    CrossCheck,
    IncomeAssumptions,
    cross_check,
    economic_life,
    income_value,
    patent_income_inputs,
    patents_in_force,
    tax_rates,
    trademark_income_inputs,
    value_from_inputs,
)

TEN = IncomeAssumptions(discount_rate=0.10)  # tax 25%


# --- factories ------------------------------------------------------------------------------------


def patent_row(**changes) -> dict:
    """A valid invention in use with 12 years left (PatentFeatures columns used by the income helpers)."""
    row = {
        "patent_type": "invention",
        "is_valid": 1.0,
        "is_pending": 0.0,
        "remaining_years": 12.0,
        "in_use": 1.0,
    }
    row.update(changes)
    return row


def trademark_row(**changes) -> dict:
    row = {
        "is_registered": 1.0,
        "remaining_years": 3.0,
        "well_known": 0.0,
        "time_honoured": 0.0,
        "in_use": 1.0,
        "log_revenue_under_mark": np.log1p(2_000_000.0),
    }
    row.update(changes)
    return row


# --- income_value ---------------------------------------------------------------------------------


def test_hand_computed_annuity_to_the_cent():
    # saving = 1,000,000 x 5% x (1 - 25%) = 37,500 a year, mid-year discounting at 10%:
    # 37,500 / 1.048809 + 37,500 / 1.153690 + 37,500 / 1.269059 = 35,754.85 + 32,504.41 + 29,549.46
    value = income_value(1_000_000, 0.05, 3.0, TEN)
    assert value.shape == (1,)
    assert value[0] == pytest.approx(97_808.71, abs=0.005)


def test_partial_final_year_counts_pro_rata_at_its_own_mid_point():
    # 2.5 years: two full years, then half a year's saving discounted to year 2.25
    # 35,754.85 + 32,504.41 + 0.5 x 37,500 / 1.239095 = 83,390.26
    assert income_value(1_000_000, 0.05, 2.5, TEN)[0] == pytest.approx(83_390.26, abs=0.005)


def test_decay_path_shrinks_later_savings():
    # 10% decay: 37,500, 33,750, 30,375 discounted as above
    value = income_value(1_000_000, 0.05, 3.0, TEN, growth_rate=-0.10)[0]
    assert value == pytest.approx(88_943.88, abs=0.005)


def test_growth_equal_to_discount_rate_uses_the_limit_of_the_geometric_sum():
    # (1+g)/(1+r) = 1: every year is worth saving / 1.1^0.5
    value = income_value(1_000_000, 0.05, 4.0, TEN, growth_rate=0.10)[0]
    assert value == pytest.approx(4 * 37_500 / 1.1**0.5, abs=1e-6)


@pytest.mark.parametrize("revenue, royalty, life", [(1e6, 0.05, 0.0), (0.0, 0.05, 5.0), (1e6, 0.0, 5.0)])
def test_nothing_to_save_gives_zero(revenue, royalty, life):
    assert income_value(revenue, royalty, life)[0] == 0.0


def test_monotone_in_royalty_rate_and_remaining_life():
    rates = np.linspace(0.0, 0.1, 11)
    lives = np.linspace(0.0, 20.0, 41)
    by_rate = income_value(1e6, rates, 5.0)
    by_life = income_value(1e6, 0.04, lives)
    assert np.all(np.diff(by_rate) > 0)
    assert np.all(np.diff(by_life) > 0)


def test_vectorised_rows_equal_one_by_one():
    rng = np.random.default_rng(0)
    revenue, royalty, life = rng.uniform(0, 1e7, 50), rng.uniform(0, 0.1, 50), rng.uniform(0, 15, 50)
    growth, tax = rng.uniform(-0.2, 0.05, 50), rng.choice([0.15, 0.25], 50)
    together = income_value(revenue, royalty, life, tax_rate=tax, growth_rate=growth)
    alone = [
        income_value(revenue[i], royalty[i], life[i], tax_rate=tax[i], growth_rate=growth[i])[0]
        for i in range(50)
    ]
    np.testing.assert_allclose(together, alone, rtol=1e-12)


def test_tax_rate_effect_and_high_tech_rate():
    standard = income_value(1e6, 0.05, 3.0, TEN)[0]
    high_tech = income_value(1e6, 0.05, 3.0, TEN, tax_rate=0.15)[0]
    assert high_tech == pytest.approx(standard * 0.85 / 0.75)
    assert tax_rates([True, False, 1, 0], 4).tolist() == [0.15, 0.25, 0.15, 0.25]
    assert income_value(1e6, 0.05, 3.0, TEN.override(tax_rate=0.0))[0] == pytest.approx(standard / 0.75)


def test_overriding_a_parameter_changes_the_result():
    base = income_value(1e6, 0.05, 5.0)[0]
    dearer_money = income_value(1e6, 0.05, 5.0, IncomeAssumptions().override(discount_rate=0.18))[0]
    assert dearer_money < base


def test_bad_inputs_are_all_listed_with_their_rows():
    with pytest.raises(InvalidData) as err:
        income_value([1e6, -5.0, 1e6, 1e6], [0.05, 0.05, 1.5, 0.05], [3.0, 3.0, 3.0, np.nan])
    problems = {(p.field, p.row) for p in err.value.problems}
    assert problems == {("revenue_attributable_cny", 1), ("royalty_rate", 2), ("remaining_years", 3)}
    with pytest.raises(InvalidData, match="remaining_years: expected a scalar or 3 values"):
        income_value([1.0, 2.0, 3.0], 0.05, [1.0, 2.0])


# --- assumptions ----------------------------------------------------------------------------------


def test_assumptions_are_frozen_and_refuse_bad_values():
    a = IncomeAssumptions()
    with pytest.raises(AttributeError):
        a.discount_rate = 0.2  # type: ignore[misc]
    with pytest.raises(InvalidData, match="discount_rate") as err:
        IncomeAssumptions(discount_rate=-0.1, tax_rate=1.2)
    assert {p.field for p in err.value.problems} == {"discount_rate", "tax_rate"}
    missing = r"royalty_rate_patent\['logistics'\]: expected a value for every key"
    with pytest.raises(InvalidData, match=missing):
        IncomeAssumptions(royalty_rate_patent={i: 0.03 for i in Industry if i != Industry.LOGISTICS})
    with pytest.raises(InvalidData, match="unknown parameter"):
        a.override(discount=0.2)


def test_override_merges_one_industry_and_keeps_the_rest():
    a = IncomeAssumptions().override(royalty_rate_patent={"software": 0.07})
    assert a.royalty_rate_patent["software"] == 0.07
    assert a.royalty_rate_patent["electronics"] == IncomeAssumptions().royalty_rate_patent["electronics"]
    frame = pd.DataFrame([patent_row(), patent_row()])
    industries = ["software", "electronics"]
    before = value_from_inputs(patent_income_inputs(frame, 1e7, industries, 4))
    after = value_from_inputs(patent_income_inputs(frame, 1e7, industries, 4, assumptions=a), a)
    assert after[0] > before[0]
    assert after[1] == before[1]


# --- economic life and input helpers --------------------------------------------------------------


def test_economic_life_caps_the_legal_term_per_type_and_renews_marks():
    life = economic_life(
        [12.0, 3.0, 8.0, 7.0, 2.0, np.nan],
        ["invention", "invention", "utility_model", "design", "trademark", "trademark"],
    )
    assert life.tolist() == [10.0, 3.0, 6.0, 5.0, 10.0, 10.0]
    no_renewal = IncomeAssumptions(assume_trademark_renewal=False)
    assert economic_life([2.0, np.nan], "trademark", no_renewal).tolist() == [2.0, 0.0]
    with pytest.raises(InvalidData, match="asset_type: expected one of"):
        economic_life([1.0], ["copyright"])


def test_patent_inputs_by_hand():
    frame = pd.DataFrame(
        [
            patent_row(),  # base
            patent_row(in_use=0.0),  # half the base
            patent_row(patent_type="utility_model", remaining_years=9.0),  # half the rate, life cap 6
            patent_row(is_valid=0.0, is_pending=1.0),  # pending: half the value
            patent_row(is_valid=0.0),  # lapsed: nothing
        ],
        index=["P1", "P2", "P3", "P4", "P5"],
    )
    inputs = patent_income_inputs(frame, 10_000_000, "electronics", 4, high_tech=True)
    # 10M x 60% / 4 patents in force = 1.5M
    assert inputs["revenue_attributable_cny"].tolist() == pytest.approx([1.5e6, 0.75e6, 1.5e6, 1.5e6, 1.5e6])
    assert inputs["royalty_rate"].tolist() == pytest.approx([0.045, 0.045, 0.0225, 0.045, 0.045])
    assert inputs["remaining_years"].tolist() == [10.0, 10.0, 6.0, 10.0, 0.0]
    assert inputs["status_factor"].tolist() == [1.0, 1.0, 1.0, 0.5, 0.0]
    assert inputs["growth_rate"].tolist() == [-0.05, -0.05, -0.10, -0.05, -0.05]
    assert inputs["tax_rate"].tolist() == [0.15] * 5
    values = value_from_inputs(inputs)
    assert values[1] == pytest.approx(values[0] / 2)
    assert values[3] == pytest.approx(values[0] / 2)
    assert values[4] == 0.0
    expected = income_value(1.5e6, 0.045, 10.0, tax_rate=0.15, growth_rate=-0.05)[0]
    assert values[0] == pytest.approx(expected)


def test_one_patent_firm_is_capped():
    inputs = patent_income_inputs(pd.DataFrame([patent_row()]), 10_000_000, "software", 1)
    assert inputs["revenue_attributable_cny"].iloc[0] == pytest.approx(3_000_000)  # 30% cap, not 60%


def test_patent_inputs_refuse_bad_rows():
    frame = pd.DataFrame([patent_row(), patent_row(patent_type="copyright")], index=["P1", "P2"])
    with pytest.raises(InvalidData) as err:
        patent_income_inputs(frame, [1e6, -1.0], ["software", "mining"], 3)
    got = {(p.field, p.row) for p in err.value.problems}
    assert got == {("owner_revenue_cny", 1), ("industry", 1), ("patent_type", 1)}
    with pytest.raises(InvalidData, match="in_use: expected a column of the feature frame"):
        patent_income_inputs(frame.drop(columns="in_use"), 1e6, "software", 3)


def test_patent_type_codes_are_decoded_with_the_fitted_categories():
    assert decode_patent_type(np.array([0.0, 1.0, 2.0, np.nan])).tolist() == [
        "design",
        "invention",
        "utility_model",
        None,
    ]
    assert decode_patent_type(np.array([0.0, 1.0]), ["invention", "utility_model"]).tolist() == [
        "invention",
        "utility_model",
    ]
    assert decode_patent_type(pd.Series(["design", None])).tolist() == ["design", None]


def test_patents_in_force_counts_valid_rows_per_owner():
    assert patents_in_force(["A", "A", "B", "A"], [1, 0, 1, 1]).tolist() == [2.0, 2.0, 1.0, 2.0]


def test_trademark_inputs_by_hand():
    frame = pd.DataFrame(
        [
            trademark_row(),  # declared 2M under the mark
            trademark_row(log_revenue_under_mark=np.nan),  # in use, undeclared: 40% of owner
            trademark_row(log_revenue_under_mark=np.nan, in_use=0.0),  # unused: nothing
            trademark_row(well_known=1.0, time_honoured=1.0),  # larger factor (2.0) applies
            trademark_row(is_registered=0.0, remaining_years=np.nan),  # not registered
        ]
    )
    inputs = trademark_income_inputs(frame, 10_000_000, "agri_food")
    assert inputs["revenue_attributable_cny"].tolist() == pytest.approx([2e6, 4e6, 0.0, 2e6, 2e6])
    assert inputs["royalty_rate"].tolist() == pytest.approx([0.03, 0.03, 0.03, 0.06, 0.03])
    assert inputs["remaining_years"].tolist() == [10.0, 10.0, 10.0, 10.0, 0.0]  # renewal assumed
    values = value_from_inputs(inputs)
    assert values[2] == 0.0 and values[4] == 0.0
    assert values[3] == pytest.approx(2 * values[0])


# --- cross-check ----------------------------------------------------------------------------------


def test_cross_check_flags_differences_beyond_the_factor_either_way():
    model = [100.0, 400.0, 20.0, 0.0, 0.0, np.nan, 300.0]
    income = [100.0, 100.0, 100.0, 0.0, 50.0, 100.0, 100.0]
    result = cross_check(model, income, factor=3.0)
    assert isinstance(result, CrossCheck)
    assert result.flag.tolist() == [False, True, True, False, True, False, False]
    np.testing.assert_allclose(result.ratio, [1.0, 4.0, 0.2, 1.0, 0.0, np.nan, 3.0])
    assert cross_check([1.0], [0.0]).ratio[0] == np.inf
    assert cross_check([1.0], [0.0]).flag[0]


def test_cross_check_refuses_negative_values_and_a_factor_of_one():
    with pytest.raises(InvalidData) as err:
        cross_check([1.0, -2.0], [-1.0, 1.0])
    assert {(p.field, p.row) for p in err.value.problems} == {("model_value", 1), ("income_value", 0)}
    with pytest.raises(InvalidData, match="factor"):
        cross_check([1.0], [1.0], factor=1.0)


# --- on the synthetic portfolio -------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    from features.pipeline import patent_features, trademark_features
    from features.synth import synthesize

    portfolio = synthesize(300, seed=4)
    owners = (
        portfolio.enterprises.sort_values("report_date")
        .drop_duplicates("enterprise_id", keep="last")
        .set_index("enterprise_id")
    )
    truth_p, truth_t = portfolio.truth["patents"], portfolio.truth["trademarks"]
    pat_rows = truth_p[["patent_id"]].assign(as_of=truth_p["valuation_date"])
    tm_rows = truth_t[["trademark_id"]].assign(as_of=truth_t["valuation_date"])
    pat, pat_transformer = patent_features(portfolio, pat_rows)
    tm, _ = trademark_features(portfolio, tm_rows)
    pat_owner = portfolio.patents.set_index("patent_id").loc[truth_p["patent_id"], "enterprise_id"]
    tm_owner = portfolio.trademarks.set_index("trademark_id").loc[truth_t["trademark_id"], "enterprise_id"]
    return {
        "owners": owners,
        "pat": pat,
        "pat_owner": pat_owner.to_numpy(),
        "pat_truth": truth_p["true_value_cny"].to_numpy(),
        "categories": pat_transformer.categories_["patent_type"],
        "tm": tm,
        "tm_owner": tm_owner.to_numpy(),
        "tm_truth": truth_t["true_value_cny"].to_numpy(),
    }


def test_income_values_on_the_synthetic_portfolio_follow_the_true_values(synthetic):
    from scipy.stats import spearmanr

    s, owners = synthetic, synthetic["owners"]
    pat, who = s["pat"], s["pat_owner"]
    inputs = patent_income_inputs(
        pat,
        owners.loc[who, "revenue_cny"].to_numpy(),
        owners.loc[who, "industry"].to_numpy(),
        patents_in_force(who, pat["is_valid"]),
        high_tech=owners.loc[who, "high_tech"].to_numpy(),
        patent_type_categories=s["categories"],
    )
    values = value_from_inputs(inputs)
    alive = (pat["is_valid"] + pat["is_pending"]).to_numpy() > 0
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert np.all(values[~alive] == 0)
    assert spearmanr(values[alive], s["pat_truth"][alive]).statistic > 0.4

    tm, who = s["tm"], s["tm_owner"]
    tm_values = value_from_inputs(
        trademark_income_inputs(
            tm, owners.loc[who, "revenue_cny"].to_numpy(), owners.loc[who, "industry"].to_numpy()
        )
    )
    registered = tm["is_registered"].to_numpy() > 0
    assert np.all(tm_values[~registered] == 0)
    assert spearmanr(tm_values[registered], s["tm_truth"][registered]).statistic > 0.4
