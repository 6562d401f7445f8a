"""Bundle and pledge value: hand-computed bundles, the ordering pledge <= liquidation <= bundle, bank
overrides, and bad rows refused by row.

Defaults used by hand: concentration threshold 0.4 and maximum haircut 20%; disposal time 1 year; pledge
rates invention 25%, utility model 15%, trademark 50%; routes: patents auctioned (discount invention 55%,
utility model 65%), trademarks licensed (40%).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData
from valuation.pledge import (
    ROUTES,
    BundleAssumptions,
    BundleValuation,
    PledgeAssumptions,
    asset_types,
    bundle_value,
    liquidation_value,
    pledge_value,
)


def asset(
    kind: str = "patent",
    ptype: str | None = "invention",
    value: float = 1_000_000.0,
    remaining: float = 10.0,
    asset_id: str | None = None,
) -> dict:
    row = {"asset_kind": kind, "patent_type": ptype, "value_cny": value, "remaining_years": remaining}
    if asset_id is not None:
        row["asset_id"] = asset_id
    return row


def bundle(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def random_bundle(rng: np.random.Generator) -> pd.DataFrame:
    n = int(rng.integers(1, 7))
    kinds = rng.choice(["invention", "utility_model", "design", "trademark"], n)
    return bundle(
        *[
            asset(
                "trademark" if k == "trademark" else "patent",
                None if k == "trademark" else str(k),
                float(rng.lognormal(12, 1.5)),
                float(rng.uniform(0, 15)),
            )
            for k in kinds
        ]
    )


# --- hand-computed bundles ------------------------------------------------------------------------


def test_single_asset_takes_the_full_concentration_haircut():
    result = bundle_value(bundle(asset(asset_id="CNP1")), loan_term_months=12)
    assert isinstance(result, BundleValuation)
    assert result.total_value_cny == 1_000_000
    assert result.largest_share == 1.0
    assert result.concentration_haircut == pytest.approx(0.20)
    assert result.bundle_value_cny == pytest.approx(800_000)  # 1M x (1 - 20%)
    assert result.liquidation_value_cny == pytest.approx(360_000)  # 800k x (1 - 55%)
    assert result.pledge_value_cny == pytest.approx(200_000)  # 800k x 25%, below the liquidation value
    assert result.liquidation_by_route == pytest.approx(
        {"licence": 400_000, "auction_transfer": 360_000, "pledge_to_equity": 320_000}
    )
    assert result.assets["asset_id"].tolist() == ["CNP1"]
    assert result.assets["route"].tolist() == ["auction_transfer"]
    assert result.life_adjustment_cny == 0.0
    assert result.term_within_cap
    summary = result.summary()
    assert summary["pledge_value_cny"] == pytest.approx(200_000)
    assert summary["pledge_assumptions"]["pledge_rates"]["invention"] == 0.25
    assert summary["assets"][0]["asset_id"] == "CNP1"
    json.dumps(summary)  # storable as it is


def test_equal_two_asset_bundle():
    result = bundle_value(
        bundle(
            asset(ptype="utility_model", value=500_000, remaining=8),
            asset(ptype="utility_model", value=500_000, remaining=8),
        ),
        12,
    )
    haircut = 0.2 * (0.5 - 0.4) / (1 - 0.4)  # 1/30
    assert result.concentration_haircut == pytest.approx(haircut)
    assert result.bundle_value_cny == pytest.approx(966_666.67, abs=0.01)
    assert result.liquidation_value_cny == pytest.approx(338_333.33, abs=0.01)  # x (1 - 65%)
    assert result.pledge_value_cny == pytest.approx(145_000.00, abs=0.01)  # 966,666.67 x 15%
    assert result.assets["share"].tolist() == [0.5, 0.5]


def test_three_equal_assets_are_not_cut_for_concentration():
    result = bundle_value(bundle(*[asset(value=1e5)] * 3), 12)
    assert result.concentration_haircut == 0.0
    assert result.bundle_value_cny == pytest.approx(3e5)


def test_patent_and_trademark_bundle():
    result = bundle_value(
        bundle(asset(value=600_000, remaining=10), asset("trademark", None, value=400_000, remaining=2)), 12
    )
    # largest share 0.6: haircut 0.2 x 0.2 / 0.6 = 1/15; the mark expires in 2 years but is renewable
    assert result.concentration_haircut == pytest.approx(1 / 15)
    contributions = result.assets["contribution_cny"].to_numpy()
    np.testing.assert_allclose(contributions, [560_000, 373_333.33], atol=0.01)
    # invention auctioned: 560,000 x 45% = 252,000; mark licensed: 373,333.33 x 60% = 224,000
    assert result.liquidation_value_cny == pytest.approx(476_000)
    # 560,000 x 25% + 373,333.33 x 50% (each below its liquidation value)
    assert result.pledge_value_cny == pytest.approx(326_666.67, abs=0.01)
    assert result.assets["route"].tolist() == ["auction_transfer", "licence"]
    assert result.shortest_remaining_years == 2.0


def test_an_asset_expiring_before_the_loan_and_disposal_end_is_discounted():
    # 24-month loan + 1 year disposal = 3 years of exposure; the utility model covers 1 of them
    rows = bundle(
        asset(value=500_000, remaining=10), asset(ptype="utility_model", value=500_000, remaining=1)
    )
    result = bundle_value(rows, 24)
    assert result.exposure_years == 3.0
    np.testing.assert_allclose(result.assets["coverage"], [1.0, 1 / 3])
    assert result.life_adjustment_cny == pytest.approx(500_000 * 2 / 3)
    haircut = 0.2 * 0.1 / 0.6
    assert result.bundle_value_cny == pytest.approx((500_000 + 500_000 / 3) * (1 - haircut))
    softer = bundle_value(rows, 24, BundleAssumptions(max_life_haircut=0.5))
    assert softer.bundle_value_cny > result.bundle_value_cny
    shorter = bundle_value(rows, 6)
    assert shorter.bundle_value_cny > result.bundle_value_cny


def test_a_mark_without_renewal_is_discounted_like_a_patent():
    rows = bundle(asset("trademark", None, value=1e6, remaining=0.5))
    no_renewal = BundleAssumptions(trademark_renewal_assumed=False)
    assert bundle_value(rows, 6, no_renewal).assets["coverage"].iloc[0] == pytest.approx(0.5 / 1.5)
    assert bundle_value(rows, 6).assets["coverage"].iloc[0] == 1.0


# --- ordering and configuration ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(
    "choice, base",
    [
        ("assigned", "liquidation"),
        ("best", "liquidation"),
        ("expected", "appraised"),
        ("assigned", "appraised"),
    ],
)
def test_pledge_never_exceeds_liquidation_never_exceeds_bundle_value(seed, choice, base):
    rng = np.random.default_rng(seed)
    p = PledgeAssumptions(route_choice=choice, pledge_base=base)
    result = bundle_value(random_bundle(rng), int(rng.integers(1, 61)), pledge_assumptions=p)
    assert 0 <= result.pledge_value_cny <= result.liquidation_value_cny + 1e-9
    assert result.liquidation_value_cny <= result.bundle_value_cny + 1e-9
    assert result.bundle_value_cny <= result.total_value_cny + 1e-9
    assert all(v <= result.bundle_value_cny + 1e-9 for v in result.liquidation_by_route.values())
    per_asset = result.assets
    assert np.all(per_asset["pledge_value_cny"] <= per_asset["liquidation_value_cny"] + 1e-9)
    assert per_asset["pledge_value_cny"].sum() == pytest.approx(result.pledge_value_cny)


def test_a_bank_override_of_the_pledge_rates_changes_the_pledge_value():
    rows = bundle(asset(value=600_000, remaining=10), asset("trademark", None, value=400_000, remaining=2))
    bank = PledgeAssumptions().override(pledge_rates={"invention": 0.30})
    result = bundle_value(rows, 12, pledge_assumptions=bank)
    assert bank.pledge_rates["trademark"] == 0.50  # the rest kept
    assert result.pledge_value_cny == pytest.approx(560_000 * 0.30 + 373_333.33 * 0.50, abs=0.01)
    assert result.pledge_assumptions is bank
    assert result.liquidation_value_cny == pytest.approx(476_000)  # liquidation unchanged


def test_route_choices_and_discount_overrides():
    rows = bundle(asset(value=1e6))
    best = bundle_value(rows, 12, pledge_assumptions=PledgeAssumptions(route_choice="best"))
    assert best.liquidation_value_cny == pytest.approx(800_000 * 0.50)
    assert best.assets["route"].tolist() == ["licence"]
    expected = bundle_value(rows, 12, pledge_assumptions=PledgeAssumptions(route_choice="expected"))
    mean_discount = 0.3 * 0.50 + 0.5 * 0.55 + 0.2 * 0.60
    assert expected.liquidation_value_cny == pytest.approx(800_000 * (1 - mean_discount))
    cheaper = PledgeAssumptions().override(liquidation_discounts={"auction_transfer": {"invention": 0.3}})
    assert cheaper.liquidation_discounts["auction_transfer"]["trademark"] == 0.50
    assert cheaper.liquidation_discounts["licence"] == PledgeAssumptions().liquidation_discounts["licence"]
    assert bundle_value(rows, 12, pledge_assumptions=cheaper).liquidation_value_cny == pytest.approx(560_000)


def test_appraised_base_multiplies_the_value_and_is_capped_by_liquidation():
    p = PledgeAssumptions(pledge_base="appraised")
    assert pledge_value([100.0], ["invention"], assumptions=p).tolist() == pytest.approx([25.0])
    # trademark: 50% of value, but an auction only recovers 50%: equal; a pledge-to-equity recovers 40%
    assert pledge_value([100.0], ["trademark"], "pledge_to_equity", p).tolist() == pytest.approx([40.0])


def test_vectorised_helpers():
    values = np.array([100.0, 100.0, 100.0, 100.0])
    types = asset_types(
        ["patent", "patent", "patent", "trademark"], ["invention", "utility_model", "design", None]
    )
    assert types.tolist() == ["invention", "utility_model", "design", "trademark"]
    np.testing.assert_allclose(liquidation_value(values, types, "licence"), [50.0, 40.0, 40.0, 60.0])
    np.testing.assert_allclose(liquidation_value(values, types), [45.0, 35.0, 35.0, 60.0])
    np.testing.assert_allclose(pledge_value(values, types), [25.0, 15.0, 10.0, 50.0])
    once_more = PledgeAssumptions(pledge_base="liquidation")  # the earlier base: the rate times liquidation
    np.testing.assert_allclose(pledge_value(values, types, assumptions=once_more), [11.25, 5.25, 3.5, 30.0])
    for route in ROUTES:
        assert np.all(liquidation_value(values, types, route) <= values)
    with pytest.raises(InvalidData, match="route"):
        liquidation_value(values, types, "fire_sale")
    with pytest.raises(InvalidData, match="value: expected a finite value >= 0"):
        liquidation_value([-1.0], ["invention"])


def test_loan_term_beyond_the_policy_cap_is_reported():
    result = bundle_value(bundle(asset()), 48)
    assert not result.term_within_cap
    longer = PledgeAssumptions(max_term_months=60)
    assert bundle_value(bundle(asset()), 48, pledge_assumptions=longer).term_within_cap


# --- refusals -------------------------------------------------------------------------------------


def test_bad_rows_are_each_reported_by_row():
    rows = bundle(
        asset(remaining=np.nan, asset_id="A0"),
        asset(value=-5.0, asset_id="A1"),
        asset("copyright", None, asset_id="A2"),
        asset(ptype=None, asset_id="A3"),
        asset("trademark", "invention", asset_id="A4"),
        asset(asset_id="A5"),
    )
    with pytest.raises(InvalidData) as err:
        bundle_value(rows, 12)
    got = {(p.field, p.row, p.record_id) for p in err.value.problems}
    assert got == {
        ("remaining_years", 0, "A0"),
        ("value_cny", 1, "A1"),
        ("asset_kind", 2, "A2"),
        ("patent_type", 3, "A3"),
        ("patent_type", 4, "A4"),
    }
    assert "value_cny: expected a finite number >= 0; got -5.0 (row 1, id A1)" in str(err.value)


def test_an_asset_listed_twice_is_refused_rather_than_counted_twice():
    rows = bundle(asset(asset_id="P1"), asset("trademark", None, asset_id="T1"), asset(asset_id="P1"))
    with pytest.raises(InvalidData) as err:
        bundle_value(rows, 12)
    (problem,) = err.value.problems
    assert (problem.field, problem.row, problem.record_id) == ("asset_id", 2, "P1")
    assert "also row 0" in problem.expected
    # without ids, rows are not compared: two equal patents may be two different rights
    assert bundle_value(bundle(asset(), asset()), 12).total_value_cny == 2_000_000.0


@pytest.mark.parametrize(
    "status, field",
    [
        ({"status_as_of": "lapsed"}, "status_as_of"),
        ({"status_as_of": "expired"}, "status_as_of"),
        ({"status_as_of": "invalidated"}, "status_as_of"),
        ({"is_valid": 0.0, "is_pending": 0.0}, "is_valid"),
    ],
)
def test_a_patent_whose_right_has_ended_cannot_be_pledged(status, field):
    rows = bundle(asset(asset_id="P0"), {**asset(asset_id="P1"), **status})
    with pytest.raises(InvalidData) as err:
        bundle_value(rows, 12)
    (problem,) = err.value.problems
    assert (problem.field, problem.row, problem.record_id) == (field, 1, "P1")
    assert "ended" in problem.expected


@pytest.mark.parametrize(
    "kind, ptype, status",
    [
        ("patent", "invention", {"status_as_of": "valid", "is_valid": 1.0, "is_pending": 0.0}),
        ("patent", "invention", {"is_valid": None, "is_pending": None}),  # unknown: not refused
        ("trademark", None, {"status_as_of": "registered", "is_registered": 1.0}),
    ],
)
def test_rights_in_force_or_of_unknown_status_are_pledged(kind, ptype, status):
    plain = bundle_value(bundle(asset(kind, ptype)), 12)
    given = bundle_value(bundle({**asset(kind, ptype), **status}), 12)
    assert given.summary() == plain.summary() and given.pledge_value_cny > 0


@pytest.mark.parametrize(
    "kind, ptype, status, field",
    [
        (
            "patent",
            "invention",
            {"status_as_of": "pending", "is_valid": 0.0, "is_pending": 1.0},
            "status_as_of",
        ),
        ("patent", "invention", {"is_valid": 0.0, "is_pending": 1.0}, "is_pending"),
        ("trademark", None, {"status_as_of": "pending", "is_registered": 0.0}, "status_as_of"),
    ],
)
def test_a_pending_application_cannot_be_pledged(kind, ptype, status, field):
    """CNIPA registers pledges of granted patents and registered marks only: an application is valued (at
    the pending factor) but is no collateral."""
    with pytest.raises(InvalidData) as err:
        bundle_value(bundle(asset(asset_id="P0"), {**asset(kind, ptype, asset_id="P1"), **status}), 12)
    (problem,) = err.value.problems
    assert (problem.field, problem.row, problem.record_id) == (field, 1, "P1")
    assert "a pending application cannot be pledged" in problem.expected


def test_a_mark_not_registered_cannot_be_pledged():
    for status in ({"is_registered": 0.0}, {"status_as_of": "cancelled"}):
        with pytest.raises(InvalidData) as err:
            bundle_value(bundle({**asset("trademark", None), **status}), 12)
        assert err.value.problems[0].field == next(iter(status))


def test_empty_bundle_missing_columns_and_bad_term_are_refused():
    with pytest.raises(InvalidData, match="an empty bundle"):
        bundle_value(pd.DataFrame(columns=["asset_kind", "patent_type", "value_cny", "remaining_years"]), 12)
    with pytest.raises(InvalidData, match="remaining_years: expected a column of asset_values"):
        bundle_value(bundle(asset()).drop(columns="remaining_years"), 12)
    with pytest.raises(InvalidData, match="loan_term_months"):
        bundle_value(bundle(asset()), 0)
    with pytest.raises(InvalidData, match="a DataFrame or a mapping of column to values"):
        bundle_value([asset()], 12)  # type: ignore[arg-type]
    with pytest.raises(InvalidData, match="columns of one length"):
        bundle_value({**bundle(asset()).to_dict(orient="list"), "value_cny": [1.0, 2.0]}, 12)


def test_a_mapping_of_columns_is_valued_as_the_same_table():
    table = bundle(
        asset(asset_id="P1"),
        asset("trademark", None, 3e5, asset_id="T1"),
        asset(remaining=1.0, asset_id="P2"),
    )
    from_table = bundle_value(table, 24)
    from_columns = bundle_value({c: table[c].to_numpy() for c in table.columns}, 24)
    assert from_columns.summary() == from_table.summary()


def test_assumptions_refuse_bad_values():
    with pytest.raises(InvalidData) as err:
        PledgeAssumptions(
            pledge_rates={"invention": 1.5, "utility_model": 0.15, "design": 0.1, "trademark": 0.5},
            route_choice="cheapest",
            pledge_base="book",
        )
    fields = {p.field for p in err.value.problems}
    assert fields == {"pledge_rates['invention']", "route_choice", "pledge_base"}
    with pytest.raises(InvalidData, match="route_by_asset"):
        PledgeAssumptions().override(route_by_asset={"trademark": "sale"})
    with pytest.raises(InvalidData, match="concentration_threshold"):
        BundleAssumptions(concentration_threshold=1.0)
    with pytest.raises(AttributeError):
        BundleAssumptions().disposal_years = 2.0  # type: ignore[misc]


def test_a_patent_and_a_mark_may_share_a_number_and_an_unreadable_flag_is_refused():
    same_number = bundle(asset(asset_id="1001"), asset("trademark", None, asset_id="1001"))
    assert bundle_value(same_number, 12).total_value_cny == 2_000_000.0
    with pytest.raises(InvalidData) as err:
        bundle_value(bundle({**asset(asset_id="P1"), "is_valid": "no"}), 12)
    (problem,) = err.value.problems
    assert (problem.field, problem.expected, problem.got) == ("is_valid", "0 or 1 (or missing)", "no")


def test_an_expired_patent_cannot_be_pledged_and_a_mark_due_for_renewal_can():
    assets = {
        "asset_id": ["P1", "P2", "T1"],
        "asset_kind": ["patent", "patent", "trademark"],
        "patent_type": ["invention", "utility_model", None],
        "value_cny": [1e6, 5e5, 3e5],
        "remaining_years": [0.0, 4.0, 0.0],
        "status_as_of": ["valid", "valid", "registered"],  # as a request states them
    }
    with pytest.raises(InvalidData) as refused:
        bundle_value(assets, 12)
    assert [(p.field, p.row, p.record_id) for p in refused.value.problems] == [("remaining_years", 0, "P1")]
    assert "an expired patent cannot be pledged" in str(refused.value)
    kept = {k: v[1:] for k, v in assets.items()}
    assert bundle_value(kept, 12).pledge_value_cny > 0
    # a portfolio's pledges (no status given) are taken as recorded, as training takes them
    recorded = {k: v for k, v in assets.items() if k != "status_as_of"}
    assert bundle_value(recorded, 12).pledge_value_cny > 0
