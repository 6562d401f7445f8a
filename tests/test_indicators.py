"""GB/T 42748 indicator scores: bounds, monotonicity, the validity gate, scikit-learn conventions and
reproducibility, on small in-code feature frames with a fixed seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from features.errors import InvalidData
from valuation.indicators import (
    PATENT_INDICATORS,
    SCENARIOS,
    TRADEMARK_INDICATORS,
    IndicatorScorer,
    TrademarkScorer,
    stars,
)

OUTPUT = ["legal_score", "technical_score", "economic_score", "total_score", "stars"]


# --- factories ------------------------------------------------------------------------------------


def patent_features(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A PatentFeatures-shaped frame: codes for patent_type as the transformer emits them (design 0,
    invention 1, utility_model 2), counts with the skew of real patents."""
    rng = np.random.default_rng(seed)
    ptype = rng.choice([0.0, 1.0, 2.0], n, p=[0.15, 0.35, 0.5])
    status = rng.choice(["valid", "pending", "lapsed"], n, p=[0.6, 0.2, 0.2])
    remaining = rng.uniform(0, 20, n)
    cites = rng.poisson(2.0, n).astype(float)
    return pd.DataFrame(
        {
            "patent_type": ptype,
            "ipc_section": rng.integers(0, 8, n).astype(float),
            "is_valid": (status == "valid").astype(float),
            "is_pending": (status == "pending").astype(float),
            "age_years": rng.uniform(0, 20, n),
            "remaining_years": remaining,
            "remaining_share": remaining / 20,
            "claims": rng.poisson(7, n).astype(float),
            "independent_claims": 1.0 + rng.poisson(0.3, n),
            "backward_citations": rng.poisson(4, n).astype(float),
            "forward_citations": cites,
            "citations_per_year": cites / rng.uniform(1, 10, n),
            "family_size": 1.0 + rng.poisson(0.2, n),
            "family_countries": 1.0 + rng.poisson(0.1, n),
            "ipc_count": 1.0 + rng.poisson(0.5, n),
            "n_inventors": 1.0 + rng.poisson(2, n),
            "policy_fit": rng.integers(0, 2, n).astype(float),
            "in_use": rng.integers(0, 2, n).astype(float),
            "transfers": rng.poisson(0.1, n).astype(float),
            "licences": rng.poisson(0.1, n).astype(float),
            "prior_pledges": rng.poisson(0.1, n).astype(float),
            "invalidation_requests": rng.poisson(0.03, n).astype(float),
            "litigations": rng.poisson(0.04, n).astype(float),
        },
        index=[f"CNP{i:05d}" for i in range(n)],
    )


def trademark_features(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    registered = rng.random(n) < 0.8
    revenue = np.where(rng.random(n) < 0.6, rng.normal(15.5, 1.2, n), np.nan)
    return pd.DataFrame(
        {
            "nice_class": rng.integers(0, 20, n).astype(float),
            "is_registered": registered.astype(float),
            "goods_services": 1.0 + rng.poisson(7, n),
            "years_registered": np.where(registered, rng.uniform(0, 20, n), np.nan),
            "remaining_years": np.where(registered, rng.uniform(0, 10, n), np.nan),
            "renewals": rng.integers(0, 2, n).astype(float),
            "well_known": (rng.random(n) < 0.02).astype(float),
            "time_honoured": (rng.random(n) < 0.01).astype(float),
            "in_use": (rng.random(n) < 0.7).astype(float),
            "log_revenue_under_mark": revenue,
            "transfers": rng.poisson(0.07, n).astype(float),
            "licences": rng.poisson(0.3, n).astype(float),
            "prior_pledges": rng.poisson(0.04, n).astype(float),
            "oppositions": rng.poisson(0.01, n).astype(float),
            "invalidation_requests": rng.poisson(0.01, n).astype(float),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return patent_features()


@pytest.fixture(scope="module")
def scorer(reference) -> IndicatorScorer:
    return IndicatorScorer().fit(reference)


def one_patent(reference: pd.DataFrame, n: int, **changes) -> pd.DataFrame:
    """n copies of one valid patent, with columns changed per row (lists) or for all (scalars)."""
    base = reference.iloc[[0] * n].copy()
    base.index = range(n)
    base["is_valid"], base["is_pending"] = 1.0, 0.0
    for column, values in changes.items():
        base[column] = values
    return base


# --- bounds ---------------------------------------------------------------------------------------


def test_scores_lie_in_0_100_and_stars_in_1_5(scorer, reference):
    other = patent_features(300, seed=9)
    for frame in (reference, other):
        out = scorer.transform(frame)
        assert list(out.columns) == OUTPUT
        assert out.index.equals(frame.index)
        scores = out[OUTPUT[:-1]].to_numpy()
        assert np.all((scores >= 0) & (scores <= 100))
        assert set(out["stars"].unique()) <= {1, 2, 3, 4, 5}
        assert out["stars"].dtype == np.int64


def test_extreme_values_stay_within_bounds(scorer, reference):
    wild = one_patent(
        reference,
        2,
        forward_citations=[0.0, 1e6],
        citations_per_year=[0.0, 1e5],
        claims=[0.0, 1e4],
        licences=[0.0, 1e3],
        remaining_years=[0.0, 50.0],
    )
    scores = scorer.transform(wild)[OUTPUT[:-1]].to_numpy()
    assert np.all((scores >= 0) & (scores <= 100))


# --- monotonicity ---------------------------------------------------------------------------------

INCREASING = [
    (i.column, i.dimension)
    for i in PATENT_INDICATORS
    if i.transform in ("rank", "log_cap", "linear_cap", "binary")
]


@pytest.mark.parametrize("column, dimension", INCREASING)
def test_more_of_a_good_indicator_never_lowers_its_dimension_or_the_total(
    scorer, reference, column, dimension
):
    grid = np.concatenate([np.linspace(0, 30, 61), [50.0, 100.0, 1000.0]])
    if column == "remaining_share":
        grid = np.linspace(0, 1, 21)
    out = scorer.transform(one_patent(reference, grid.size, **{column: grid}))
    assert np.all(np.diff(out[f"{dimension}_score"]) >= 0)
    assert np.all(np.diff(out["total_score"]) >= 0)
    assert np.all(np.diff(out["stars"]) >= 0)


def test_more_citations_never_lower_the_technical_score(scorer, reference):
    cites = np.arange(0, 60, dtype=float)
    out = scorer.transform(
        one_patent(reference, cites.size, forward_citations=cites, citations_per_year=cites / 4)
    )
    assert np.all(np.diff(out["technical_score"]) >= 0)
    assert out["technical_score"].iloc[-1] > out["technical_score"].iloc[0]


@pytest.mark.parametrize("column", ["invalidation_requests", "litigations"])
def test_legal_risk_events_never_raise_the_legal_score(scorer, reference, column):
    out = scorer.transform(one_patent(reference, 5, **{column: np.arange(5.0)}))
    assert np.all(np.diff(out["legal_score"]) < 0)


def test_invention_scores_above_utility_model_above_design(scorer, reference):
    out = scorer.transform(one_patent(reference, 3, patent_type=[1.0, 2.0, 0.0]))
    assert out["technical_score"].is_monotonic_decreasing


# --- the validity gate ----------------------------------------------------------------------------


def test_a_lapsed_or_invalidated_patent_gets_legal_zero_and_one_star(scorer, reference):
    best = one_patent(
        reference,
        2,
        forward_citations=100.0,
        citations_per_year=20.0,
        claims=40.0,
        family_countries=10.0,
        licences=5.0,
        remaining_years=15.0,
        in_use=1.0,
        policy_fit=1.0,
        patent_type=1.0,
        is_valid=[1.0, 0.0],
        is_pending=0.0,
    )
    out = scorer.transform(best)
    assert out["stars"].tolist()[1] == 1 and out["stars"].tolist()[0] >= 4
    assert out["legal_score"].iloc[1] == 0.0
    assert out["total_score"].iloc[1] == 0.0
    # the technology itself is still described
    assert out["technical_score"].iloc[1] == out["technical_score"].iloc[0]


def test_a_pending_patent_scores_half_on_validity(scorer, reference):
    rows = one_patent(reference, 2, is_valid=[1.0, 0.0], is_pending=[0.0, 1.0])
    indicators = scorer.indicator_scores(rows)
    assert indicators["validity"].tolist() == [100.0, 50.0]
    out = scorer.transform(rows)
    assert out["legal_score"].iloc[1] < out["legal_score"].iloc[0]
    assert out["stars"].iloc[1] >= 1


# --- transforms by hand ---------------------------------------------------------------------------


def test_rank_is_the_mid_rank_percentile_of_the_reference(reference):
    ref = reference.copy()
    ref["claims"] = np.tile([1.0, 2.0, 3.0, 4.0], len(ref) // 4)
    s = IndicatorScorer(n_quantiles=5).fit(ref)  # quantile grid [1, 1.75, 2.5, 3.25, 4]
    rows = one_patent(ref, 5, claims=[0.0, 1.0, 2.5, 4.0, 9.0])
    assert s.indicator_scores(rows)["claims"].tolist() == [0.0, 10.0, 50.0, 90.0, 100.0]


def test_log_cap_and_decay_by_hand(reference):
    ref = reference.copy()
    ref["licences"] = np.where(np.arange(len(ref)) % 100 == 0, 3.0, 0.0)
    s = IndicatorScorer(cap_quantile=1.0).fit(ref)
    assert s.caps_["licences"] == 3.0
    rows = one_patent(ref, 3, licences=[0.0, 1.0, 3.0], litigations=[0.0, 1.0, 2.0])
    scores = s.indicator_scores(rows)
    np.testing.assert_allclose(scores["licences"], [0.0, 50.0, 100.0])  # log(2) / log(4) = 0.5
    np.testing.assert_allclose(scores["litigations"], [100.0, 50.0, 25.0])


def test_a_missing_indicator_drops_out_of_its_dimension(scorer, reference):
    rows = one_patent(reference, 2, claims=[np.nan, 7.0])
    out = scorer.transform(rows)
    assert np.isfinite(out["legal_score"]).all()
    ind = scorer.indicator_scores(rows)
    w = scorer.weights_["indicators"]
    legal = [i.name for i in PATENT_INDICATORS if i.dimension == "legal" and i.name != "claims"]
    expected = sum(w[n] * ind[n].iloc[0] for n in legal) / sum(w[n] for n in legal)
    assert out["legal_score"].iloc[0] == pytest.approx(expected)


def test_total_is_the_weighted_mean_of_the_dimensions(scorer, reference):
    out = scorer.transform(reference.iloc[:50])
    alive = (reference.iloc[:50][["is_valid", "is_pending"]].sum(axis=1) > 0).to_numpy()
    d = SCENARIOS["financing"]["dimensions"]
    expected = (
        d["legal"] * out["legal_score"]
        + d["technical"] * out["technical_score"]
        + d["economic"] * out["economic_score"]
    ) / sum(d.values())
    np.testing.assert_allclose(out["total_score"][alive], expected[alive])
    np.testing.assert_array_equal(out["stars"][alive], stars(out["total_score"][alive]))


def test_star_bands():
    assert stars([0.0, 39.99, 40.0, 54.99, 55.0, 70.0, 84.99, 85.0, np.nan]).tolist() == [
        1,
        1,
        2,
        2,
        3,
        4,
        4,
        5,
        1,
    ]
    assert stars([50.0], bands=(10, 20, 30, 40)).tolist() == [5]


# --- scikit-learn conventions ----------------------------------------------------------------------


def test_init_only_stores_parameters_and_clone_keeps_them():
    weights = {"dimensions": {"technical": 0.5}}
    s = IndicatorScorer(scenario="licensing", weights=weights, n_quantiles=51)
    assert s.get_params() == {
        "scenario": "licensing",
        "weights": weights,
        "star_bands": (40.0, 55.0, 70.0, 85.0),
        "n_quantiles": 51,
        "cap_quantile": 0.99,
        "patent_type_categories": None,
    }
    assert not [k for k in vars(s) if k.endswith("_")]
    c = clone(s)
    assert c.get_params() == s.get_params() and c is not s


def test_fit_returns_self_learns_trailing_underscore_state_and_leaves_input_alone(reference):
    before = reference.copy()
    s = IndicatorScorer()
    assert s.fit(reference) is s
    for name in ("quantiles_", "caps_", "weights_", "star_bands_", "feature_names_in_", "n_features_in_"):
        assert hasattr(s, name)
    s.transform(reference)
    pd.testing.assert_frame_equal(reference, before)
    assert list(s.get_feature_names_out()) == OUTPUT


def test_transform_before_fit_and_missing_columns_are_refused(reference):
    with pytest.raises(NotFittedError):
        IndicatorScorer().transform(reference)
    s = IndicatorScorer().fit(reference)
    with pytest.raises(InvalidData, match="citations_per_year: expected a column of the feature frame"):
        s.transform(reference.drop(columns=["citations_per_year"]))
    with pytest.raises(TypeError, match="DataFrame"):
        s.transform(reference.to_numpy())


def test_bad_parameters_are_refused_at_fit(reference):
    with pytest.raises(InvalidData, match="scenario: expected one of"):
        IndicatorScorer(scenario="tax").fit(reference)
    with pytest.raises(InvalidData) as err:
        IndicatorScorer(weights={"indicators": {"claim": 1.0, "licences": -1.0}}).fit(reference)
    assert {p.field for p in err.value.problems} == {"weights.indicators", "weights.indicators['licences']"}
    with pytest.raises(InvalidData, match="star_bands"):
        IndicatorScorer(star_bands=(50, 40, 70, 85)).fit(reference)


def test_fit_transform_equals_fit_then_transform_and_is_reproducible(reference):
    once = IndicatorScorer().fit_transform(reference)
    pd.testing.assert_frame_equal(once, IndicatorScorer().fit(reference).transform(reference))
    shuffled = reference.sample(frac=1.0, random_state=3)
    again = IndicatorScorer().fit(shuffled).transform(reference)
    pd.testing.assert_frame_equal(once, again)


def test_weights_override_changes_the_total(reference):
    default = IndicatorScorer().fit_transform(reference)
    only_technical = {"dimensions": {"legal": 0.0, "economic": 0.0}}
    tech_only = IndicatorScorer(weights=only_technical).fit_transform(reference)
    alive = (reference[["is_valid", "is_pending"]].sum(axis=1) > 0).to_numpy()
    np.testing.assert_allclose(tech_only["total_score"][alive], tech_only["technical_score"][alive])
    assert not np.allclose(default["total_score"][alive], tech_only["total_score"][alive])


def test_patent_type_as_text_or_codes_gives_the_same_scores(reference):
    text = reference.copy()
    names = {0.0: "design", 1.0: "invention", 2.0: "utility_model"}
    text["patent_type"] = reference["patent_type"].map(names)
    s = IndicatorScorer().fit(reference)
    pd.testing.assert_frame_equal(s.transform(reference), IndicatorScorer().fit(text).transform(text))
    # a transformer fitted without designs codes invention 0 and utility model 1
    partial = reference.copy()
    partial["patent_type"] = reference["patent_type"].map({0.0: np.nan, 1.0: 0.0, 2.0: 1.0})
    s2 = IndicatorScorer(patent_type_categories=["invention", "utility_model"]).fit(partial)
    scored = s2.indicator_scores(partial)["patent_type"]
    expected = reference["patent_type"].map({0.0: np.nan, 1.0: 100.0, 2.0: 60.0})
    np.testing.assert_array_equal(scored.to_numpy(), expected.to_numpy())


# --- trademarks -----------------------------------------------------------------------------------


def test_trademark_scores_bounds_gate_and_conventions():
    frame = trademark_features()
    s = TrademarkScorer()
    out = s.fit(frame).transform(frame)
    assert list(out.columns) == ["legal_score", "market_score", "economic_score", "total_score", "stars"]
    assert np.all((out.iloc[:, :4].to_numpy() >= 0) & (out.iloc[:, :4].to_numpy() <= 100))
    unregistered = frame["is_registered"] == 0
    assert (out.loc[unregistered, "stars"] == 1).all()
    assert (out.loc[unregistered, ["legal_score", "total_score"]] == 0).all().all()
    assert clone(s).get_params() == s.get_params()


def test_trademark_fame_revenue_and_oppositions_move_the_scores():
    frame = trademark_features()
    s = TrademarkScorer().fit(frame)
    base = frame.iloc[[0] * 4].reset_index(drop=True)
    base["is_registered"], base["years_registered"], base["remaining_years"] = 1.0, 8.0, 5.0
    base["well_known"] = [0.0, 1.0, 0.0, 0.0]
    base["log_revenue_under_mark"] = [14.0, 14.0, 17.0, 14.0]
    base["oppositions"] = [0.0, 0.0, 0.0, 2.0]
    out = s.transform(base)
    assert out["market_score"].iloc[1] > out["market_score"].iloc[0]
    assert out["market_score"].iloc[2] > out["market_score"].iloc[0]
    assert out["legal_score"].iloc[3] < out["legal_score"].iloc[0]
    undeclared = base.iloc[[0]].assign(log_revenue_under_mark=np.nan)
    assert s.indicator_scores(undeclared)["revenue_under_mark"].iloc[0] == 0.0
    assert {i.dimension for i in TRADEMARK_INDICATORS} == {"legal", "market", "economic"}


# --- on the synthetic portfolio -------------------------------------------------------------------


def test_scores_of_real_transformer_output_follow_the_synthetic_true_values():
    from scipy.stats import spearmanr

    from features.pipeline import patent_features
    from features.synth import synthesize

    portfolio = synthesize(300, seed=4)
    truth = portfolio.truth["patents"]
    rows = truth[["patent_id"]].assign(as_of=truth["valuation_date"])
    features, transformer = patent_features(portfolio, rows)
    scorer = IndicatorScorer(patent_type_categories=transformer.categories_["patent_type"])
    out = scorer.fit_transform(features)
    alive = (features["is_valid"] + features["is_pending"]).to_numpy() > 0
    assert (out.loc[~alive, "stars"] == 1).all()
    assert spearmanr(out["total_score"][alive], truth["true_value_cny"][alive]).statistic > 0.4
    assert out.loc[alive, "stars"].nunique() >= 3
