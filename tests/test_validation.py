"""Validation report: metrics against scikit-learn, scipy and hand values; Jeffreys test; PSI; the HTML and
JSON report; bad input refused by row."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from features.errors import InvalidData
from scoring.scale import GRADE_NAMES
from scoring.validation import (
    calibration_by_grade,
    chance_eces,
    jeffreys_p_value,
    metrics,
    psi,
    psi_label,
    psi_table,
    reliability_table,
    validation_report,
    write_report,
)


def sample(n: int = 2000, seed: int = 3, shift: float = 0.0) -> dict:
    """Synthetic held-out data: a score, PD from it, defaults drawn from the PD, grades by PD band."""
    rng = np.random.default_rng(seed)
    score_train = rng.normal(600, 50, n)
    score_test = rng.normal(600 + shift, 50, n)
    pd_test = 1 / (1 + np.exp((score_test - 450) / 40))
    y_test = (rng.uniform(size=n) < pd_test).astype(int)
    cuts = np.array([0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1])
    grades = np.array(GRADE_NAMES, dtype=object)[np.searchsorted(cuts, pd_test)]
    return {
        "y_test": y_test,
        "pd_test": pd_test,
        "score_train": score_train,
        "score_test": score_test,
        "grades_test": grades,
    }


# --- metrics ----------------------------------------------------------------------------------------------


def test_metrics_by_hand():
    m = metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], bins=2)
    assert m["auc"] == pytest.approx(0.75)  # 3 of 4 (defaulter, payer) pairs ranked right
    assert m["gini"] == pytest.approx(0.5)
    assert m["ks"] == pytest.approx(0.5)
    # Brier: (0.01 + 0.16 + 0.4225 + 0.04) / 4
    assert m["brier"] == pytest.approx(0.158125)
    # bins {0.1, 0.35}: mean PD 0.225 vs rate 0.5; {0.4, 0.8}: 0.6 vs 0.5 -> (0.275 + 0.1) / 2
    assert m["ece"] == pytest.approx(0.1875)
    assert m["default_rate"] == 0.5 and m["n"] == 4


def test_metrics_against_sklearn_and_scipy():
    s = sample()
    y, p = s["y_test"], s["pd_test"]
    m = metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["gini"] == pytest.approx(2 * roc_auc_score(y, p) - 1)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    ks = stats.ks_2samp(p[y == 1], p[y == 0]).statistic
    assert m["ks"] == pytest.approx(ks)
    assert 0.0 <= m["ece"] < 0.05  # defaults drawn from the PD: well calibrated


def test_ece_uses_equal_frequency_bins():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.1, 1003)
    y = (rng.uniform(size=1003) < p).astype(int)
    table = reliability_table(y, p, bins=10)
    assert table["n"].sum() == 1003 and table["n"].max() - table["n"].min() <= 1
    assert table["mean_pd"].is_monotonic_increasing
    ece = (table["n"] / 1003 * (table["observed_rate"] - table["mean_pd"]).abs()).sum()
    assert metrics(y, p)["ece"] == pytest.approx(ece)


def test_metrics_with_one_class_leave_ranking_measures_undefined():
    m = metrics([0, 0, 0], [0.01, 0.02, 0.03])
    assert math.isnan(m["auc"]) and math.isnan(m["gini"]) and math.isnan(m["ks"])
    assert m["brier"] == pytest.approx((0.0001 + 0.0004 + 0.0009) / 3)


def test_metrics_refuse_bad_rows():
    with pytest.raises(InvalidData) as e:
        metrics([0, 2, 1], [0.1, 0.2, 1.5])
    assert "y: expected 0 or 1 (1 = default); got 2 (row 1)" in str(e.value)
    assert "pd: expected a probability in [0, 1]; got 1.5 (row 2)" in str(e.value)
    with pytest.raises(InvalidData, match="one PD per outcome"):
        metrics([0, 1], [0.1])


def test_chance_ece_of_one_bin_matches_the_binomial_mean_absolute_deviation():
    # Two bins of 100 loans at PD 0.3: a bin's ECE by chance is E|D/100 - 0.3| with D ~ Binomial(100, 0.3).
    k = np.arange(101)
    exact = float((stats.binom.pmf(k, 100, 0.3) * np.abs(k / 100 - 0.3)).sum())
    draws = chance_eces(np.full(200, 0.3), bins=2, draws=4000)
    assert draws.shape == (4000,)
    assert draws.mean() == pytest.approx(exact, abs=4 * draws.std() / np.sqrt(draws.size))


def test_chance_ece_is_zero_for_certain_outcomes_and_the_same_on_every_call():
    assert chance_eces([0.0, 1.0, 0.0, 1.0], bins=2, draws=5).tolist() == [0.0] * 5
    p = np.random.default_rng(0).uniform(0, 0.4, 500)
    assert np.array_equal(chance_eces(p), chance_eces(p))  # a fixed seed: a report can be re-run
    many = np.full(600_000, 0.1)  # 4 million outcomes at a time: 6 draws, then 1
    eces = chance_eces(many, draws=7)
    assert eces.size == 7 and np.all((eces > 0) & (eces < 0.01)) and len(set(eces.tolist())) == 7


def test_ece_p_value_tells_chance_from_miscalibration_on_a_small_book():
    # 1,000 loans at about 30% default: PDs exactly right show an ECE near 0.03 by chance alone.
    rng = np.random.default_rng(5)
    p = rng.beta(2, 4.7, 1000)
    right = metrics((rng.uniform(size=1000) < p).astype(int), p)
    assert 0.02 < right["ece_chance"] < 0.045
    assert right["ece_p_value"] > 0.05
    too_low = metrics((rng.uniform(size=1000) < np.minimum(1.0, 1.4 * p)).astype(int), p)
    assert too_low["ece"] > 0.08 and too_low["ece_p_value"] < 0.01
    assert too_low["ece_chance"] == right["ece_chance"]  # it depends on the PDs only


def test_ece_p_value_by_hand():
    # PDs 0 and 1, outcomes the other way round: every draw has ECE 0, the observed one is 1.
    m = metrics([1, 1, 0, 0], [0.0, 0.0, 1.0, 1.0], bins=2)
    assert m["ece"] == 1.0 and m["ece_chance"] == 0.0
    assert m["ece_p_value"] == pytest.approx(1 / 401)  # (0 draws as far off + 1) / (400 + 1)
    assert metrics([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], bins=2)["ece_p_value"] == 1.0


def test_reliability_bins_carry_the_range_of_rates_chance_gives_pds_exactly_right():
    p = np.repeat([0.05, 0.5], 200)  # two bins of 200 loans
    table = reliability_table(np.zeros(400, dtype=int), p, bins=2)
    # Binomial(200, q) / 200: its 5th and 95th percentiles, within a draw's step
    for row, q in zip(table.itertuples(), (0.05, 0.5), strict=True):
        assert row.chance_low == pytest.approx(stats.binom.ppf(0.05, 200, q) / 200, abs=0.011)
        assert row.chance_high == pytest.approx(stats.binom.ppf(0.95, 200, q) / 200, abs=0.011)
        assert row.chance_low < q < row.chance_high


def test_chance_draws_follow_each_loan_into_its_bin_whatever_the_order():
    # Shuffled PDs: the bins are cut on the sorted PDs, and each loan's draws must land in its own bin.
    p = np.random.default_rng(1).permutation(np.repeat([0.05, 0.5], 200))
    k = np.arange(201)
    exact = {q: float((stats.binom.pmf(k, 200, q) * np.abs(k - 200 * q)).sum()) for q in (0.05, 0.5)}
    eces = chance_eces(p, bins=2, draws=4000)
    assert eces.mean() == pytest.approx(sum(exact.values()) / 400, abs=4 * eces.std() / np.sqrt(eces.size))
    m = metrics(np.zeros(400, dtype=int), p, bins=2)
    assert m["ece_chance"] == pytest.approx(chance_eces(p, bins=2).mean())  # the mean of the 400 draws
    table = reliability_table(np.zeros(400, dtype=int), p, bins=2)
    assert table["mean_pd"].tolist() == pytest.approx([0.05, 0.5])
    assert table["chance_high"].iloc[0] < 0.1 < table["chance_low"].iloc[1]


def test_report_refuses_a_bad_bin_count():
    with pytest.raises(InvalidData, match="bins: expected an integer >= 2; got 0"):
        validation_report({"lightgbm": sample()}, GRADE_NAMES, bins=0)


def test_chance_ece_refuses_bad_pds_by_row():
    with pytest.raises(InvalidData) as e:
        chance_eces([0.1, float("nan"), 1.2], bins=1)
    message = str(e.value)
    assert "pd: expected a probability in [0, 1]; got nan (row 1)" in message
    assert "got 1.2 (row 2)" in message and "bins: expected an integer >= 2; got 1" in message


# --- calibration by grade ---------------------------------------------------------------------------------


def test_jeffreys_p_value_matches_scipy_beta():
    assert jeffreys_p_value(5, 100, 0.02)[0] == pytest.approx(stats.beta.cdf(0.02, 5.5, 95.5))
    assert jeffreys_p_value(0, 50, 0.01)[0] == pytest.approx(stats.beta.cdf(0.01, 0.5, 50.5))


def test_calibration_by_grade_by_hand():
    # grade A: 4 loans, PD 0.1 each, 3 defaults -> PD underestimated; grade BB: 4 loans PD 0.5, 2 defaults
    y = [1, 1, 1, 0, 1, 0, 1, 0]
    p = [0.1] * 4 + [0.5] * 4
    g = ["A"] * 4 + ["BB"] * 4
    table = calibration_by_grade(y, p, g, grade_order=["A", "BB", "C"]).set_index("grade")
    assert table.loc["A", "n"] == 4 and table.loc["A", "defaults"] == 3
    assert table.loc["A", "observed_rate"] == pytest.approx(0.75)
    assert table.loc["A", "mean_pd"] == pytest.approx(0.1)
    assert table.loc["A", "p_value"] == pytest.approx(stats.beta.cdf(0.1, 3.5, 1.5))
    assert bool(table.loc["A", "underestimated"]) is True
    assert table.loc["BB", "p_value"] == pytest.approx(stats.beta.cdf(0.5, 2.5, 2.5))  # 0.5 by symmetry
    assert bool(table.loc["BB", "underestimated"]) is False
    assert table.loc["C", "n"] == 0 and math.isnan(table.loc["C", "p_value"])
    assert list(table.index) == ["A", "BB", "C"]


def test_a_grade_without_defaults_is_not_flagged_even_with_a_low_p_value():
    table = calibration_by_grade([0, 0, 0], [0.0004] * 3, ["AAA"] * 3, grade_order=["AAA"])
    p_value = stats.beta.cdf(0.0004, 0.5, 3.5)
    assert p_value < 0.05  # the Jeffreys prior alone
    assert table.loc[0, "p_value"] == pytest.approx(p_value)
    assert bool(table.loc[0, "underestimated"]) is False


def test_calibration_refuses_unknown_grades_by_row():
    with pytest.raises(InvalidData, match=r"grades: expected one of .*got 'D' \(row 1\)"):
        calibration_by_grade([0, 1], [0.1, 0.2], ["A", "D"])


# --- PSI --------------------------------------------------------------------------------------------------


def test_psi_of_identical_distributions_is_zero_and_of_a_shifted_one_is_large():
    rng = np.random.default_rng(1)
    train = rng.normal(600, 50, 5000)
    assert psi(train, train) == pytest.approx(0.0, abs=1e-12)
    assert psi(train, rng.normal(600, 50, 5000)) < 0.1
    shifted = psi(train, rng.normal(650, 50, 5000))
    assert shifted > 0.25 and psi_label(shifted) == "rebuild"


def test_psi_by_hand_with_an_empty_bin():
    # expected quartiles of 1..8 -> bins (-inf, 2.75], (2.75, 4.5], (4.5, 6.25], (6.25, inf]
    table = psi_table([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 5, 5], bins=4, epsilon=1e-4)
    np.testing.assert_allclose(table["expected_share"], [0.25] * 4)
    np.testing.assert_allclose(table["actual_share"], [0.5, 0.0, 0.5, 0.0])
    term_full = (0.5 - 0.25) * np.log(0.5 / 0.25)
    term_empty = (1e-4 - 0.25) * np.log(1e-4 / 0.25)
    assert psi([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 5, 5], bins=4) == pytest.approx(
        2 * term_full + 2 * term_empty
    )


@pytest.mark.parametrize(
    "value, label", [(0.0, "stable"), (0.099, "stable"), (0.1, "watch"), (0.25, "watch"), (0.26, "rebuild")]
)
def test_psi_label(value, label):
    assert psi_label(value) == label


def test_psi_refuses_missing_values_by_row():
    with pytest.raises(InvalidData, match=r"actual: expected a finite number; got nan \(row 1\)"):
        psi([1.0, 2.0, 3.0], [1.0, float("nan")])


# --- report -----------------------------------------------------------------------------------------------


def test_report_writes_html_with_headings_and_images_and_json_that_loads(tmp_path):
    models = {"lightgbm": sample(seed=3), "scorecard": sample(seed=4, shift=30.0)}
    report = validation_report(models, GRADE_NAMES)
    assert set(report["models"]) == {"lightgbm", "scorecard"}
    assert (
        report["models"]["scorecard"]["psi_score"]["value"]
        > report["models"]["lightgbm"]["psi_score"]["value"]
    )

    html_path, json_path = write_report(report, tmp_path / "out")
    text = html_path.read_text(encoding="utf-8")
    for heading in (
        "模型验证报告 (Model validation report)",
        "区分能力 (Discrimination)",
        "校准 (Calibration)",
        "分级校准 (Calibration by grade)",
        "稳定性 (Stability",
        "Jeffreys p 值 (Jeffreys p-value)",
        "完全校准时的偶然误差 (ECE of PDs exactly right, by chance)",
    ):
        assert heading in text
    assert text.count("<th>lightgbm</th>") == 1 and text.count("<th>scorecard</th>") == 1  # side by side
    assert text.count('src="data:image/png;base64,') == 3
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    png = base64.b64decode(text[start : text.index('"', start)])
    assert png.startswith(b"\x89PNG")

    loaded = json.loads(json_path.read_text(encoding="utf-8"))
    m = loaded["models"]["lightgbm"]["metrics"]
    assert m["auc"] == pytest.approx(report["models"]["lightgbm"]["metrics"]["auc"])
    assert [r["grade"] for r in loaded["models"]["lightgbm"]["calibration_by_grade"]] == list(GRADE_NAMES)


def test_report_in_english_and_with_a_chinese_model_name(tmp_path):
    s = sample(n=300)
    s["y_test"] = np.zeros(300, dtype=int)  # no default: AUC undefined, written as null
    report = validation_report({"评分卡": s})
    html_path, json_path = write_report(report, tmp_path, lang="en")
    text = html_path.read_text(encoding="utf-8")
    assert "<h2>Discrimination" not in text and "Discrimination" in text and "区分能力" not in text
    assert "<th>评分卡</th>" in text
    assert json.loads(json_path.read_text(encoding="utf-8"))["models"]["评分卡"]["metrics"]["auc"] is None


def test_report_refuses_bad_models_naming_model_and_row():
    good = sample(n=200)
    bad = dict(sample(n=200, seed=5))
    bad["pd_test"] = bad["pd_test"].copy()
    bad["pd_test"][7] = -0.2
    missing = {k: v for k, v in good.items() if k != "score_train"}
    with pytest.raises(InvalidData) as e:
        validation_report({"good": good, "bad": bad, "partial": missing})
    text = str(e.value)
    assert "bad.pd: expected a probability in [0, 1]; got -0.2 (row 7)" in text
    assert "partial.score_train: expected present; got 'missing'" in text
    assert "good." not in text
