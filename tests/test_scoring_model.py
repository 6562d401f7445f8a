"""The scoring model: held-out accuracy, the choice of setting on the training rows, calibration, scale,
grades, monotone constraints, exact points, reason codes, reloading and bad rows; and the scale, grade,
decision and reason-code tables it uses."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import scoring.model as scoring_model
from features.adapters import GERMAN_CREDIT_SPEC, load_german_credit, spec_for
from features.errors import InvalidData
from features.pipeline import application_features
from features.spec import FeatureColumn, FeatureSpec
from features.synth import synthesize
from features.transformers import ENTERPRISE_MONOTONE
from scoring.model import BOOSTER_SETTINGS, DEFAULT_PARAMS, ScoringModel, exact_points, score_batch
from scoring.reasons import (
    BANK_TERMS,
    FALLBACK_CODE,
    LANGUAGES,
    REASONS,
    Reason,
    reason_codes,
    reason_for,
    reason_table_markdown,
    reasons_of_points,
    spec_reasons,
)
from scoring.scale import GRADE_NAMES, GRADES, DecisionPolicy, ScoreScale, grade, grade_table_markdown
from underwriting.applications import LoanTerms
from underwriting.table import MONOTONE as BUILT_IN_MONOTONE

TARGET = "default"
ID = "applicant_row"
DOC = Path(__file__).resolve().parents[1] / "docs" / "scoring-model.md"


def application_spec(table: pd.DataFrame) -> FeatureSpec:
    """A spec over the synthetic application table: every column a feature, the known directions monotone."""
    features = tuple(
        FeatureColumn(name, "categorical" if name == "industry" else "numeric", ENTERPRISE_MONOTONE.get(name))
        for name in table.columns
        if name not in ("application_id", "defaulted_12m")
    )
    return FeatureSpec(target="defaulted_12m", id="application_id", features=features, task="scoring")


def ece(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count PD bins."""
    order = np.argsort(pd_, kind="stable")
    return float(sum(abs(y[b].mean() - pd_[b].mean()) * b.size / y.size for b in np.array_split(order, bins)))


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.DataFrame]:
    table = load_german_credit()
    train, test = train_test_split(table, test_size=0.3, stratify=table[TARGET], random_state=0)
    return train, test


@pytest.fixture(scope="module")
def model(german) -> ScoringModel:
    return ScoringModel(GERMAN_CREDIT_SPEC, random_state=0).fit(german[0])


@pytest.fixture(scope="module")
def by_calibration(german, model) -> dict[str, ScoringModel]:
    fitted = {
        m: ScoringModel(GERMAN_CREDIT_SPEC, calibration=m).fit(german[0])
        for m in ("platt", "isotonic", "none")
    }
    return {"auto": model, **fitted}


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, FeatureSpec, ScoringModel, pd.DataFrame]:
    """The synthetic application table, its spec, a model fitted on 70% of it and the other 30%."""
    table = application_features(synthesize(2500, seed=3)).reset_index()
    table = table[table["defaulted_12m"].notna()].reset_index(drop=True)  # loans with an outcome
    spec = application_spec(table)
    train, test = train_test_split(table, test_size=0.3, stratify=table[spec.target], random_state=0)
    return table, spec, ScoringModel(spec, random_state=0).fit(train), test


# ---------------------------------------------------------------- accuracy and calibration


def test_pds_lie_in_0_1_and_held_out_auc_beats_0_7(german, model):
    _, test = german
    pd_ = model.predict_pd(test)
    assert ((pd_ > 0) & (pd_ < 1)).all()
    assert roc_auc_score(test[TARGET], pd_) > 0.7  # rows the model never saw, not even to calibrate
    np.testing.assert_allclose(model.predict_proba(test).sum(axis=1), 1.0)


def test_held_out_pds_are_calibrated(german, model):
    _, test = german
    y, pd_ = test[TARGET].to_numpy(), model.predict_pd(test)
    assert abs(pd_.mean() - y.mean()) < 0.05
    assert np.mean((pd_ - y) ** 2) < y.mean() * (1 - y.mean())  # Brier beats the default rate
    assert ece(y, pd_) < 0.12  # 300 rows: 30 a bin, so a few points of noise per bin


def test_auto_calibration_records_its_choice_and_the_cross_validated_figures(german, model):
    report = model.calibration_report_
    cv = report["cross_validation"]
    assert report["requested"] == "auto" and report["method"] in ("platt", "isotonic")
    assert set(cv) >= {"platt", "isotonic", "folds", "criterion"} and cv["folds"] == 5
    saves = cv["isotonic_saves"]
    assert saves["mean"] == pytest.approx(cv["platt"]["log_loss"] - cv["isotonic"]["log_loss"])
    assert report["method"] == ("isotonic" if saves["mean"] > saves["standard_error"] > 0 else "platt")
    for method in ("platt", "isotonic"):
        assert 0 < cv[method]["log_loss"] and 0 < cv[method]["brier"] < 1
    # cross-fitted: the booster learns from every row; the calibrator from their out-of-fold margins
    assert report["rows_fit"] == len(german[0]) and report["calibration_folds"] == 4
    assert report["defaults_fit"] == german[0][TARGET].sum()


def test_auto_keeps_platt_unless_isotonic_is_clearly_better():
    """The one-standard-error rule: margins whose log-odds are linear pick Platt; a step-shaped
    relation (PD 2% or 40%, nothing a sigmoid fits) picks isotonic."""
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 2, 6000)
    logistic = rng.random(margin.size) < 1 / (1 + np.exp(-(margin - 3)))
    step = rng.random(margin.size) < np.where(margin > 1, 0.4, 0.02)
    choose = scoring_model._cross_validated_calibration
    assert choose(margin, logistic.astype(int), ScoreScale(), 0)[0] == "platt"
    choice, figures = choose(margin, step.astype(int), ScoreScale(), 0)
    assert choice == "isotonic"
    assert figures["isotonic_saves"]["mean"] > 3 * figures["isotonic_saves"]["standard_error"]


@pytest.mark.parametrize("method", ["platt", "isotonic", "none"])
def test_a_requested_calibration_is_used(by_calibration, method):
    report = by_calibration[method].calibration_report_
    assert report["method"] == method and "cross_validation" not in report
    assert (report["calibration_folds"] == 0) == (method == "none")
    # without cross-fitting the number of trees is not chosen: every booster has all its trees
    assert ("cross_fitting" not in report) == (method == "none")
    if method == "none":
        assert report["trees"] == dict.fromkeys(BOOSTER_SETTINGS, DEFAULT_PARAMS["n_estimators"])


# ---------------------------------------------------------------- the boosters, cross-fitted on training rows


def test_each_booster_is_cross_fitted_and_its_trees_recorded(model):
    report = model.calibration_report_
    crossed = report["cross_fitting"]["boosters"]
    assert list(crossed) == list(model.boosters_) == list(BOOSTER_SETTINGS)
    for name, figures in crossed.items():
        assert len(figures["auc_per_fold"]) == report["calibration_folds"] == 4
        assert figures["auc"] == pytest.approx(np.mean(figures["auc_per_fold"]))
        assert 0.5 < figures["auc"] < 1 and figures["log_loss"] > 0 and figures["trees"] >= 1
        # the final booster has its setting and the number of trees at which its folds peaked
        booster = model.boosters_[name].get_params()
        assert report["trees"][name] == booster["n_estimators"] == figures["trees"]
        assert {key: booster[key] for key in BOOSTER_SETTINGS[name]} == BOOSTER_SETTINGS[name]
    assert len(report["cross_fitting"]["auc_per_fold"]) == 4


def test_the_margin_and_its_points_are_the_boosters_means(german, model):
    X = model._prepare(german[1])
    margins = [b.booster_.predict(X, raw_score=True) for b in model.boosters_.values()]
    np.testing.assert_allclose(model._margin(X), np.mean(margins, axis=0), rtol=1e-12)
    phi = model._contrib(X)
    np.testing.assert_allclose(phi.sum(axis=1), model._margin(X), rtol=1e-9, atol=1e-9)


def test_cross_fitting_sees_only_the_training_rows_each_held_out_once(german, monkeypatch):
    train = german[0]
    calls = []
    cross_fit = scoring_model.cross_fit

    def spy(classifier, X, y, folds, categorical):
        calls.append((classifier.get_params(), X.shape[0], folds))
        return cross_fit(classifier, X, y, folds, categorical)

    monkeypatch.setattr(scoring_model, "cross_fit", spy)
    ScoringModel(GERMAN_CREDIT_SPEC, params={"min_child_samples": 30}).fit(train)
    assert len(calls) == len(BOOSTER_SETTINGS)
    for params, rows, folds in calls:
        assert rows == len(train)  # nothing but the table it is given
        held = np.concatenate([held_rows for _, held_rows in folds])
        np.testing.assert_array_equal(np.sort(held), np.arange(len(train)))  # every row held out once
        assert all(not set(fit_rows) & set(held_rows) for fit_rows, held_rows in folds)
        assert params["min_child_samples"] == 30  # a user's params override every setting
    assert all(folds is calls[0][2] for _, _, folds in calls)  # the same folds for every booster


def test_a_model_pickled_before_the_ensemble_still_scores(german, model):
    """A champion saved by an earlier version holds one booster as `model_`: it must keep serving."""
    old = copy.deepcopy(model)
    single = old.boosters_["regularised"]
    del old.boosters_
    old.model_ = single
    X = model._prepare(german[1])
    np.testing.assert_allclose(old._margin(X), single.booster_.predict(X, raw_score=True))
    assert len(old.predict_pd(german[1])) == len(german[1])


# ---------------------------------------------------------------- score and grade


def test_score_is_the_scaled_pd_and_falls_as_pd_rises(german, model):
    _, test = german
    pd_, score = model.predict_pd(test), model.score(test)
    np.testing.assert_allclose(score, model.scale.score(pd_))
    order = np.argsort(pd_)
    rising = np.diff(pd_[order]) > 0
    assert (np.diff(score[order])[rising] < 0).all()


def test_grades_follow_the_pd_bands(german, model):
    _, test = german
    pd_, grades = model.predict_pd(test), model.grade(test)
    bounds = dict(GRADES)
    for p, g in zip(pd_, grades, strict=True):
        i = GRADE_NAMES.index(g)
        assert p <= bounds[g] and (i == 0 or p > GRADES[i - 1].pd_max)


@pytest.mark.parametrize(
    ("pd_", "expected"),
    [
        (0.0, "AAA"),
        (0.0003, "AAA"),
        (0.001, "AAA"),
        (0.0010001, "AA"),
        (0.0025, "AA"),
        (0.005, "A"),
        (0.0075, "BBB"),
        (0.02, "BB"),
        (0.03, "B"),
        (0.08, "CCC"),
        (0.15, "CC"),
        (0.1500001, "C"),
        (1.0, "C"),
    ],
)
def test_grade_bands(pd_, expected):
    assert grade(pd_) == expected


def test_grade_of_an_array_keeps_missing_pds_missing():
    assert list(grade(np.array([0.01, np.nan, 0.5]))) == ["BBB", None, "C"]
    assert len(GRADES) == 9 and GRADE_NAMES == ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C")


def test_scale_points_to_double_the_odds():
    scale = ScoreScale(base_points=600, base_odds=50, pdo=20)
    assert scale.score(1 / 51) == pytest.approx(600)  # odds 50:1
    assert scale.score(1 / 101) - scale.score(1 / 51) == pytest.approx(20)  # odds doubled
    assert scale.factor == pytest.approx(20 / np.log(2)) and scale.points_per_logit == -scale.factor
    assert scale.offset == pytest.approx(600 - scale.factor * np.log(50))
    scores = np.array([480.0, 600.0, 700.0])
    np.testing.assert_allclose(scale.score(scale.pd_from_score(scores)), scores)


def test_scale_floors_the_pd_at_the_basel_floor_and_refuses_impossible_pds():
    scale = ScoreScale()
    assert scale.pd_floor == 0.0003
    assert scale.score(0.0) == scale.score(0.0003) == scale.score(0.0001)
    assert np.isfinite(scale.score(1.0))
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        scale.score(1.2)
    with pytest.raises(ValueError, match="pdo must be > 0"):
        ScoreScale(pdo=0)


def test_decision_policy_cut_offs_and_labels():
    policy = DecisionPolicy(approve_max_pd=0.02, decline_min_pd=0.08)
    assert list(policy.recommend([0.01, 0.02, 0.05, 0.08, 0.3])) == [
        "approve",
        "approve",
        "review",
        "decline",
        "decline",
    ]
    assert [policy.label(r) for r in ("approve", "review", "decline")] == ["批准", "复核", "拒绝"]
    assert policy.label("review", "en") == "review"
    with pytest.raises(ValueError, match="approve_max_pd < decline_min_pd"):
        DecisionPolicy(approve_max_pd=0.1, decline_min_pd=0.05)


def test_a_decline_flag_declines_whatever_the_pd():
    policy = DecisionPolicy()
    flags = {"dishonest_debtor": [1.0, True, 0.0, None, float("nan"), np.int64(1)]}
    pds = [0.001, 0.001, 0.001, 0.001, 0.001, float("nan")]
    assert list(policy.recommend(pds, flags)) == ["decline", "decline", "approve", "approve", "approve", None]
    assert policy.flags_set(flags, 6) == [["dishonest_debtor"]] * 2 + [[]] * 3 + [["dishonest_debtor"]]
    assert policy.recommend(0.001, {"dishonest_debtor": [1]}) == "decline"  # a scalar PD
    assert list(policy.recommend(pds[:1], {"other_flag": [1]})) == ["approve"]  # not a decline flag
    assert list(DecisionPolicy(decline_flags=()).recommend(pds[:1], {"dishonest_debtor": [1]})) == ["approve"]
    with pytest.raises(ValueError, match="expected 1 values, one per PD; got 6"):
        policy.recommend(pds[:1], flags)
    with pytest.raises(ValueError, match=r"'dishonest_debtor' \(row 1\): expected 0 or 1.*got 'Y'"):
        policy.recommend([0.01, 0.01], {"dishonest_debtor": [0, "Y"]})
    with pytest.raises(ValueError, match="decline_flags must be a tuple of feature names"):
        DecisionPolicy(decline_flags="dishonest_debtor")  # type: ignore[arg-type]


def test_a_decline_limit_declines_at_or_above_it_whatever_the_pd():
    policy = DecisionPolicy()
    overdue = {"max_overdue_days_24m": [89.0, 90, 365, None, float("nan")]}
    assert list(policy.recommend([0.001] * 5, overdue)) == [
        "approve",
        "decline",
        "decline",
        "approve",
        "approve",
    ]
    assert policy.flags_set(overdue | {"dishonest_debtor": [1, 0, 1, 0, 0]}, 5) == [
        ["dishonest_debtor"],
        ["max_overdue_days_24m"],
        ["dishonest_debtor", "max_overdue_days_24m"],
        [],
        [],
    ]
    assert policy.rule_features == ("dishonest_debtor", "max_overdue_days_24m")
    assert DecisionPolicy(decline_limits=()).recommend(0.001, {"max_overdue_days_24m": [400]}) == "approve"
    with pytest.raises(
        ValueError, match=r"decline limit 'max_overdue_days_24m' \(row 0\): expected a number"
    ):
        policy.recommend([0.01], {"max_overdue_days_24m": ["many"]})
    with pytest.raises(ValueError, match="decline_limits must be a tuple of"):
        DecisionPolicy(decline_limits=(("max_overdue_days_24m", "90"),))  # type: ignore[arg-type]
    stored = policy.to_dict()
    assert stored["decline_limits"] == [["max_overdue_days_24m", 90.0]]
    assert DecisionPolicy.from_dict(stored) == policy
    # a policy stored before the limits existed re-runs without them, as it was made
    before = {k: v for k, v in stored.items() if k != "decline_limits"}
    assert DecisionPolicy.from_dict(before).decline_limits == ()


def test_a_loan_term_beyond_the_pledge_cap_holds_an_approval_for_review():
    policy = DecisionPolicy()
    assert policy.held("approve", term_within_cap=False) == ("review", True)
    assert policy.held("review", term_within_cap=False) == ("review", True)
    assert policy.held("decline", term_within_cap=False) == ("decline", True)  # a hold never approves
    assert policy.held("approve", term_within_cap=True) == ("approve", False)
    assert DecisionPolicy(review_beyond_term_cap=False).held("approve", False) == ("approve", False)
    with pytest.raises(ValueError, match="review_beyond_term_cap must be True or False; got 'yes'"):
        DecisionPolicy(review_beyond_term_cap="yes")  # type: ignore[arg-type]
    stored = policy.to_dict()
    assert stored["review_beyond_term_cap"] is True and DecisionPolicy.from_dict(stored) == policy
    # a policy stored before the rule existed re-runs without it, as it was made
    before = {k: v for k, v in stored.items() if k != "review_beyond_term_cap"}
    assert DecisionPolicy.from_dict(before).held("approve", False) == ("approve", False)


def test_a_banks_own_reason_texts_from_its_spec_come_before_the_table(german):
    """A bank's spec names the reasons of its own columns: its codes and texts, in both languages, in
    the reasons of every path (reason_codes, decide, decide_rows), ahead of the built-in table."""
    own = {
        f.name: {"code": f"B{i:02d}", "zh": f"本行因素{i}", "en": f"Our factor {i}"}
        for i, f in enumerate(GERMAN_CREDIT_SPEC.features, start=1)
    }
    spec = dataclasses.replace(
        GERMAN_CREDIT_SPEC,
        features=tuple(dataclasses.replace(f, reason=own[f.name]) for f in GERMAN_CREDIT_SPEC.features),
    )
    fitted = ScoringModel(spec, random_state=0).fit(german[0])
    rows = german[1].head(20)
    given = {r["code"]: (r["zh"], r["en"]) for r in own.values()}
    decided = fitted.decide(rows, language="en")
    codes = [c for row in decided["reason_codes"] for c in row]
    assert codes and set(codes) <= set(given)
    for row_codes, texts in zip(decided["reason_codes"], decided["reasons"], strict=True):
        assert texts == [given[c][1] for c in row_codes]
    one = fitted.decide_rows({c: [v] for c, v in rows.iloc[0].to_dict().items()})
    assert [r["text"] for r in one.reasons[0]] == [given[r["code"]][0] for r in one.reasons[0]]
    assert {r["code"] for row in fitted.reason_codes(rows) for r in row} <= set(given)


def test_decide_applies_the_policy_and_gives_reasons(german, model):
    rows = german[1].head(40)
    policy = DecisionPolicy(approve_max_pd=0.2, decline_min_pd=0.5)
    decided = model.decide(rows, policy)
    assert list(decided.columns) == [
        ID,
        "pd",
        "score",
        "grade",
        "recommendation",
        "recommendation_label",
        "reason_codes",
        "reasons",
        "declined_by",
    ]
    assert list(decided[ID]) == list(rows[ID])
    assert list(decided["recommendation"]) == list(policy.recommend(decided["pd"].to_numpy()))
    assert set(decided["recommendation_label"]) <= {"批准", "复核", "拒绝"}
    assert all(
        len(codes) == len(texts) <= 4
        for codes, texts in zip(decided["reason_codes"], decided["reasons"], strict=True)
    )


# ---------------------------------------------------------------- monotone constraints


def test_raising_a_monotone_feature_never_moves_pd_against_its_direction(synthetic):
    table, spec, fitted, _ = synthetic
    rows = table.sample(60, random_state=0)
    checked = 0
    for column in spec.features:
        if column.monotone is None:
            continue
        grid = np.linspace(table[column.name].min(), table[column.name].max(), 30)
        # every row at every grid value, in one call: row r at grid value g is line g * 60 + r
        stacked = pd.concat([rows.assign(**{column.name: value}) for value in grid], ignore_index=True)
        pds = fitted.predict_pd(stacked).reshape(grid.size, len(rows)).T
        steps = np.diff(pds, axis=1) * (1 if column.monotone == "increasing" else -1)
        assert steps.min() >= -1e-12, column.name
        X = fitted._prepare(stacked)  # and each booster of the mean on its own
        for booster in fitted.boosters_.values():
            margins = booster.booster_.predict(X, raw_score=True).reshape(grid.size, len(rows)).T
            steps = np.diff(margins, axis=1) * (1 if column.monotone == "increasing" else -1)
            assert steps.min() >= -1e-12, column.name
        checked += 1
    assert checked == len(ENTERPRISE_MONOTONE)


def test_synthetic_model_ranks_held_out_applications(synthetic):
    _, spec, fitted, test = synthetic
    assert (
        roc_auc_score(test[spec.target], fitted.predict_pd(test)) > 0.75
    )  # 17 held-out defaults: a smoke test


# ---------------------------------------------------------------- exact points


@pytest.mark.parametrize("method", ["auto", "platt", "isotonic", "none"])
def test_contributions_sum_exactly_to_the_score(german, by_calibration, method):
    fitted = by_calibration[method]
    test = german[1]
    points = fitted.contributions(test)
    assert list(points.columns) == [*GERMAN_CREDIT_SPEC.feature_names, "base"]
    assert points["base"].nunique() == 1
    np.testing.assert_allclose(points.sum(axis=1).to_numpy(), fitted.score(test), rtol=0, atol=1e-9)


def test_platt_points_are_the_shap_values_times_the_scale(german, by_calibration):
    fitted = by_calibration["platt"]
    test = german[1].head(100)
    phi = fitted._contrib(fitted._prepare(test))  # the boosters' mean TreeSHAP values
    a = fitted.calibration_report_["parameters"]["a"]
    points = fitted.contributions(test).drop(columns="base").to_numpy()
    np.testing.assert_allclose(points, -fitted.scale.factor * a * phi[:, :-1], rtol=1e-12, atol=1e-12)


def test_isotonic_pd_ranks_as_the_booster_does(german, by_calibration):
    """Isotonic steps are flat; their ties are broken by the margin, so the PD keeps the boosters' order,
    at the PD floor and cap too, and moves by no more than the tie-break."""
    fitted = by_calibration["isotonic"]
    margin = fitted._margin(fitted._prepare(german[1]))
    pd_ = fitted.predict_pd(german[1])
    order = np.argsort(margin)
    rises = np.diff(margin[order]) > 0
    assert rises.sum() == len(margin) - 1 and np.all(np.diff(pd_[order]) > 0)
    steps = fitted.calibrator_.isotonic_.predict(margin)
    assert np.max(np.abs(fitted.calibrator_.predict(margin) - steps)) <= fitted.calibrator_.TIE_BREAK
    floor = fitted.scale.pd_floor
    assert steps.min() == floor and steps.max() == 1 - floor - fitted.calibrator_.TIE_BREAK  # both bind here
    assert len(np.unique(steps)) < len(margin) / 4  # the steps alone tie many rows


def test_isotonic_points_keep_each_features_direction(german, by_calibration):
    fitted = by_calibration["isotonic"]
    test = german[1].head(100)
    phi = fitted._contrib(fitted._prepare(test))[:, :-1]
    points = fitted.contributions(test).drop(columns="base").to_numpy()
    moved = np.abs(points) > 1e-12
    assert (np.sign(points[moved]) == -np.sign(phi[moved])).all()


def test_points_sum_exactly_where_the_pd_floor_binds(german, model):
    train, test = german
    floored = clone(model).set_params(scale=ScoreScale(pd_floor=0.3)).fit(train)
    pd_ = floored.predict_pd(test)
    assert (pd_ == 0.3).any() and (pd_ == 0.7).any()  # both the floor and the cap bind somewhere
    points = floored.contributions(test)
    np.testing.assert_allclose(points.sum(axis=1).to_numpy(), floored.score(test), rtol=0, atol=1e-9)


def test_exact_points_shares_a_zero_sum_row_equally():
    raw = np.array([[1.0, -3.0], [0.0, 0.0], [2.0, -2.0]])
    out = exact_points(raw, np.array([4.0, 0.0, 1.0]), np.array([True, True, True]))
    np.testing.assert_allclose(out, [[-2.0, 6.0], [0.0, 0.0], [0.5, 0.5]])
    kept = exact_points(raw, np.array([9.0, 9.0, 9.0]), np.array([False, False, False]))
    np.testing.assert_array_equal(kept, raw)


# ---------------------------------------------------------------- reason codes


def test_reason_codes_are_the_most_negative_contributions(german, model):
    rows = german[1].head(50)
    points = model.contributions(rows).drop(columns="base")
    for language in ("zh", "en"):
        for (_, row), reasons in zip(
            points.iterrows(), model.reason_codes(rows, language=language), strict=True
        ):
            negative = row[row < 0].sort_values()
            assert [r["feature"] for r in reasons] == list(negative.index[:4])
            assert [r["code"] for r in reasons] == [REASONS[f].code for f in negative.index[:4]]
            assert all(r["points"] < 0 and r["text"] == REASONS[r["feature"]].text(language) for r in reasons)


def test_reason_codes_skip_positive_points_and_name_unknown_features():
    points = pd.DataFrame({"overdue_count_24m": [-5.0, 3.0], "mystery": [-7.0, 1.0], "base": [600.0, 600.0]})
    values = {"overdue_count_24m": [2, 0], "mystery": [1.0, 1.0]}
    zh = reason_codes(points, language="zh", values=values)
    assert zh[1] == []
    assert [(r["code"], r["feature"], r["text"]) for r in zh[0]] == [
        (FALLBACK_CODE, "mystery", "其他因素: mystery"),
        ("R03", "overdue_count_24m", "近24个月逾期次数较多"),
    ]
    en = reason_codes(points, top=1, language="en", values=values)
    assert en[0] == [{"code": "R99", "feature": "mystery", "points": -7.0, "text": "Other factor: mystery"}]
    with pytest.raises(ValueError, match="language"):
        reason_codes(points, language="fr", values=values)
    # a text that holds on one side of the value cannot be checked without the value: refused, not guessed
    with pytest.raises(ValueError, match="values of 'overdue_count_24m'"):
        reason_codes(points)


def test_every_feature_of_the_application_table_and_the_adapters_has_its_own_code(synthetic):
    table = synthetic[0]
    # columns underwriting.table.scoring_table adds once the pledged IP is valued (as of this writing)
    valued = [
        "bundle_value_cny",
        "liquidation_value_cny",
        "pledge_value_cny",
        "strongest_asset_value_cny",
        "concentration_haircut",
        "legal_score_min",
        "technical_score_max",
        "economic_score_mean",
        "stars_max",
        "trademark_strength",
        "income_value_cny",
        "ltv_on_pledge",
        "bundle_value_to_amount",
        "log_bundle_value",
        "log_amount",
    ]
    names = [c for c in table.columns if c not in ("application_id", "defaulted_12m")] + valued
    for dataset in (
        "polish_bankruptcy",
        "german_credit",
        "hmeq",
        "sme_invoices",
        "us_patent_renewals",
        "ptab_challenges",
    ):
        names += list(spec_for(dataset).feature_names)
    missing = sorted({n for n in names if reason_for(n).code == FALLBACK_CODE})
    assert missing == []
    codes = [r.code for r in REASONS.values()]
    assert len(codes) == len(set(codes)) and FALLBACK_CODE not in codes
    for reason in REASONS.values():
        assert reason.zh and reason.en and reason.zh != reason.en
        assert ";" not in reason.zh + reason.en  # reasons are joined with ';' in batch output


# ---------------------------------------------------------------- reasons about the applicant, which way

# Words that say which side of a factor a text names, by language; English as whole words.
HIGH_WORDS = {
    "zh": ("较高", "较多", "较长", "较大", "存在", "被列入"),
    "en": ("high", "many", "long", "large", "has", "listed"),
}
LOW_WORDS = {
    "zh": ("较低", "偏低", "较少", "较短", "较小", "未", "无", "仅"),
    "en": ("low", "few", "short", "small", "not", "no", "only", "little", "young", "below"),
}
EITHER_WAY_WORDS = {
    "zh": ("对评分不利", "风险较高"),
    "en": ("counts against the score", "higher default risk"),
}
# Texts that name the opposite side of the value: the tax grade falls as its rank rises.
NAMES_THE_OPPOSITE = {"tax_grade_rank"}
OWN_TABLE = [r for r in REASONS.values() if r.source in ("application", "scoring_table")]


def _says(text: str, words: tuple[str, ...], language: str) -> bool:
    if language == "zh":
        return any(w in text for w in words)
    return any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text, re.IGNORECASE) for w in words)


@pytest.mark.parametrize("reason", OWN_TABLE, ids=lambda r: r.code)
def test_every_reason_of_the_programme_s_table_says_which_way_in_both_languages(reason):
    """Each R text names the side of its factor that lowered the score, or holds whichever way it lies."""
    assert reason.code.startswith("R")
    for language in LANGUAGES:
        text = reason.text(language)
        if reason.direction is None:
            assert _says(text, EITHER_WAY_WORDS[language], language), text
            continue
        named = (
            reason.direction
            if reason.feature not in NAMES_THE_OPPOSITE
            else {"high": "low", "low": "high"}[reason.direction]
        )
        said, opposite = (HIGH_WORDS, LOW_WORDS) if named == "high" else (LOW_WORDS, HIGH_WORDS)
        assert _says(text, said[language], language), text
        assert not _says(text, opposite[language], language), text
    # a side is checked against the value, except on a bank term (never listed)
    assert reason.direction is None or reason.adverse_from is not None or reason.feature in BANK_TERMS


def test_the_side_each_reason_names_is_the_built_in_spec_s_direction():
    """The adverse side of a monotone feature is the side the model is held to: high for increasing."""
    side = {"increasing": "high", "decreasing": "low"}
    for feature, direction in {**ENTERPRISE_MONOTONE, **BUILT_IN_MONOTONE}.items():
        assert REASONS[feature].direction == side[direction], feature


@pytest.mark.parametrize("term", sorted(BANK_TERMS))
def test_a_bank_term_is_never_a_reason_even_when_it_lowered_the_score_most(term):
    points = np.array([[-50.0, -2.0], [-50.0, 3.0]])
    names = [term, "overdue_count_24m"]
    values = {term: [0.0, 1.0], "overdue_count_24m": [3, 3]}
    banks_own = {term: Reason("B01", term, "本行条款", "Our term", "spec")}  # whatever the spec says of it
    for own in (None, banks_own):
        found = reasons_of_points(points, names, values=values, own=own)
        assert [[r["feature"] for r in row] for row in found] == [["overdue_count_24m"], []]


def test_the_bank_terms_are_the_loan_terms_the_bank_sets():
    """Every term of a loan but its date and the amount asked for, by its scoring-table name (the guarantee
    arranged is the column `guarantee_company`): a new term must be placed on one side or the other."""
    applicants = {"application_date", "amount_cny", "bank_id"}
    bank_sets = set(LoanTerms.model_fields) - applicants - {"guarantee"} | {"guarantee_company"}
    assert bank_sets == BANK_TERMS


CHECKED = [r for r in REASONS.values() if r.adverse_from is not None]


@pytest.mark.parametrize("reason", CHECKED, ids=lambda r: r.code)
def test_a_reason_is_listed_only_when_the_value_is_on_the_side_its_text_names(reason):
    """At its limit and beyond it a reason is listed; just short of it, or unknown, it is not, however much
    the value lowered the score: the next reason comes instead."""
    toward = 1.0 if reason.direction == "high" else -1.0
    limit = reason.adverse_from
    values = {reason.feature: [limit, limit + toward, limit - 0.01 * toward, np.nan], "mystery": [1.0] * 4}
    points = np.array([[-9.0, -1.0]] * 4)
    found = reasons_of_points(points, [reason.feature, "mystery"], values=values)
    listed = [[r["feature"] for r in row] for row in found]
    assert listed == [[reason.feature, "mystery"]] * 2 + [["mystery"]] * 2


def test_outstanding_loans_of_3_percent_of_revenue_are_not_called_high():
    """The demo's case: R21 ("outstanding loans high against revenue") was listed at a ratio of 3%."""
    points = pd.DataFrame({"debt_to_revenue": [-20.0, -20.0], "leverage": [-1.0, -1.0]})
    values = {"debt_to_revenue": [0.03, 0.8], "leverage": [0.7, 0.7]}
    assert [[r["code"] for r in row] for row in reason_codes(points, values=values)] == [
        ["R08"],
        ["R21", "R08"],
    ]


@pytest.fixture(scope="module")
def rate_driven() -> tuple[pd.DataFrame, ScoringModel]:
    """A bank's own spec with the interest rate, on loans where the rate (set high for risky borrowers)
    predicts default best, and low outstanding debt goes with more defaults (unconstrained)."""
    rng = np.random.default_rng(7)
    n = 3000
    table = pd.DataFrame(
        {
            "loan": [f"L{i}" for i in range(n)],
            "annual_rate": rng.uniform(0.03, 0.08, n),
            "debt_to_revenue": rng.uniform(0.0, 1.0, n),
            "overdue_count_24m": rng.poisson(0.5, n).astype(float),
        }
    )
    logit = -3.0 + 60 * (table["annual_rate"] - 0.055) - 2.0 * (table["debt_to_revenue"] - 0.5)
    logit += 0.6 * table["overdue_count_24m"]
    table["bad"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    rate_reason = {"code": "B01", "zh": "本行贷款利率", "en": "Our interest rate"}
    spec = FeatureSpec(
        target="bad",
        id="loan",
        task="scoring",
        features=(
            FeatureColumn("annual_rate", "numeric", reason=rate_reason),
            FeatureColumn("debt_to_revenue", "numeric"),
            FeatureColumn("overdue_count_24m", "numeric", "increasing"),
        ),
    )
    return table, ScoringModel(spec, random_state=0).fit(table)


def test_a_model_that_reads_the_rate_never_gives_it_as_a_reason_and_no_reason_contradicts_its_value(
    rate_driven,
):
    table, model = rate_driven
    rows = table.head(400)
    points = model.contributions(rows).drop(columns="base")
    rate_worst = points.idxmin(axis=1) == "annual_rate"
    assert rate_worst.sum() > 50  # the rate lowered these scores most: the case the rule is for
    low_debt_against = (points["debt_to_revenue"] < 0) & (rows["debt_to_revenue"] < 0.5)
    assert low_debt_against.sum() > 20  # the model weighs low debt against the applicant here
    decided, scored = model.decide(rows), model.decide_rows(rows)
    batch, _ = score_batch(model, rows)
    for i, (reasons, codes) in enumerate(zip(model.reason_codes(rows), decided["reason_codes"], strict=True)):
        assert [r["code"] for r in reasons] == codes == [r["code"] for r in scored.reasons[i]]
        assert ";".join(codes) == batch["reason_codes"].iat[i]
        assert "B01" not in codes and "R33" not in codes
        for r in reasons:
            assert r["points"] < 0 and REASONS[r["feature"]].holds(np.array([rows[r["feature"]].iat[i]]))[0]
    assert not any("R21" in decided["reason_codes"].iat[i] for i in np.flatnonzero(low_debt_against))
    one_row = {c: np.array([v]) for c, v in rows.iloc[int(np.flatnonzero(rate_worst)[0])].items()}
    assert all(r["feature"] != "annual_rate" for r in model.decide_rows(one_row).reasons[0])


# ---------------------------------------------------------------- storage and bad rows


def test_a_reloaded_model_scores_identically_with_its_scale(tmp_path, german, model):
    train, test = german[0], german[1].head(100)
    scale = ScoreScale(base_points=500, base_odds=20, pdo=40)
    custom = clone(model).set_params(scale=scale).fit(train)
    np.testing.assert_allclose(
        custom.predict_pd(test), model.predict_pd(test)
    )  # the scale changes points only
    np.testing.assert_allclose(custom.score(test), scale.score(model.predict_pd(test)))
    joblib.dump(custom, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert loaded.scale == scale
    np.testing.assert_array_equal(loaded.score(test), custom.score(test))
    pd.testing.assert_frame_equal(loaded.contributions(test), custom.contributions(test))
    assert loaded.calibration_report_ == custom.calibration_report_


def test_bad_rows_are_reported_by_id_while_good_rows_are_scored(german, model):
    rows = german[1].head(8).reset_index(drop=True).copy()
    rows["purpose"] = rows["purpose"].astype(object)
    rows.loc[2, "purpose"] = "spaceship"
    rows["credit_amount"] = rows["credit_amount"].astype(object)
    rows.loc[5, "credit_amount"] = "a lot"
    rows.loc[6, "age_in_years"] = -3
    out, problems = score_batch(model, rows, policy=DecisionPolicy())
    assert list(out.columns[:5]) == [ID, "pd", "score", "grade", "reason_codes"]
    assert {"recommendation", "reasons", "error"} <= set(out.columns)
    assert list(out[ID]) == list(rows[ID])
    assert {(p.row, p.field) for p in problems} == {(2, "purpose"), (5, "credit_amount"), (6, "age_in_years")}
    assert all(p.record_id == str(rows.loc[p.row, ID]) for p in problems)
    bad, good = [2, 5, 6], [0, 1, 3, 4, 7]
    assert out.loc[bad, "pd"].isna().all() and out.loc[bad, "grade"].isna().all()
    assert (out.loc[bad, "reason_codes"] == "").all() and (out.loc[good, "error"] == "").all()
    assert "expected a number" in out.loc[5, "error"] and "spaceship" in out.loc[2, "error"]
    clean = rows.loc[good].astype({"credit_amount": "int64"})
    np.testing.assert_allclose(out.loc[good, "pd"].to_numpy(dtype=float), model.predict_pd(clean))
    expected_codes = [";".join(r["code"] for r in reasons) for reasons in model.reason_codes(clean)]
    assert list(out.loc[good, "reason_codes"]) == expected_codes
    with pytest.raises(InvalidData, match="purpose: expected one of"):
        model.predict_pd(rows)
    served, served_problems = model.score_table(rows)  # the serving entry point: same, with a recommendation
    pd.testing.assert_frame_equal(served, out)
    assert served_problems == problems


def test_a_missing_feature_column_is_refused(german, model):
    with pytest.raises(InvalidData, match="purpose: expected a column"):
        score_batch(model, german[1].drop(columns=["purpose"]))


def test_training_refuses_unusable_tables(german):
    train = german[0].reset_index(drop=True)
    bad = train.astype({"credit_amount": "float64"})
    bad.loc[3, "credit_amount"] = np.inf
    with pytest.raises(InvalidData, match=r"credit_amount: expected a finite number; got inf \(row 3"):
        ScoringModel(GERMAN_CREDIT_SPEC).fit(bad)
    few = pd.concat([train[train[TARGET] == 0], train[train[TARGET] == 1].head(4)])
    with pytest.raises(InvalidData, match="at least 10 defaults"):
        ScoringModel(GERMAN_CREDIT_SPEC).fit(few)
    with pytest.raises(ValueError, match="calibration must be one of"):
        ScoringModel(GERMAN_CREDIT_SPEC, calibration="magic").fit(train)
    with pytest.raises(ValueError, match="params must not set class_weight .* got 'balanced'"):
        ScoringModel(GERMAN_CREDIT_SPEC, params={"class_weight": "balanced"}).fit(train)


def test_the_doc_prints_the_tables_the_code_uses():
    text = DOC.read_text(encoding="utf-8")
    assert reason_table_markdown() in text
    assert grade_table_markdown() in text


def test_a_spec_may_not_give_a_code_the_built_in_table_gives_another_factor(german):
    def with_reason(code: str) -> FeatureSpec:
        first = GERMAN_CREDIT_SPEC.features[0]
        reason = {"code": code, "zh": "本行因素", "en": "Our factor"}
        return dataclasses.replace(
            GERMAN_CREDIT_SPEC,
            features=(dataclasses.replace(first, reason=reason), *GERMAN_CREDIT_SPEC.features[1:]),
        )

    for code, owner in (("R02", "max_overdue_days_24m"), ("R99", "any other")):
        with pytest.raises(
            InvalidData,
            match=rf"features\[0\]\.reason\.code: expected a code of no other factor \({code} is {owner}\)",
        ):
            ScoringModel(with_reason(code), random_state=0).fit(german[0])
    own_code = REASONS[GERMAN_CREDIT_SPEC.features[0].name].code  # its own built-in code: allowed
    assert spec_reasons(with_reason(own_code))[GERMAN_CREDIT_SPEC.features[0].name].text("en") == "Our factor"
