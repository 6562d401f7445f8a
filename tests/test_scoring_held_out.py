"""The held-out side of scoring training: the split (out of time where the table has vintages:
scoring.train.split_rows), what the held-out data say against the model (scoring.train.weaknesses), the
chance of the grade flags (scoring.validation.grade_flags_by_chance), and where a user reads them: the
summary `ipcredit up` and `ipcredit train` print (models.training.held_out_summary) and the model card."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.card import _weaknesses as card_section
from models.training import held_out_summary
from scoring.scale import GRADE_NAMES
from scoring.train import grade_flags_text, split_rows, weaknesses
from scoring.validation import calibration_by_grade, grade_flags_by_chance

BANDS = dict(zip(GRADE_NAMES, (0.0005, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.12, 0.3), strict=True))


def grade_rows(defaults: dict[str, int], n: int = 2000, empty: tuple[str, ...] = ()) -> list[dict]:
    """calibration_by_grade's records for `n` loans a grade at the grade's PD, `defaults` where given
    (else the expected count), none in the `empty` grades."""
    y, pd_, grades = [], [], []
    for name, band_pd in BANDS.items():
        if name in empty:
            continue
        d = defaults.get(name, round(n * band_pd))
        y += [1] * d + [0] * (n - d)
        pd_ += [band_pd] * n
        grades += [name] * n
    return calibration_by_grade(np.array(y), np.array(pd_), np.array(grades)).to_dict(orient="records")


def model_report(grades: list[dict], auc: float = 0.85, ece: float = 0.003, chance: float = 0.003) -> dict:
    return {
        "calibration_by_grade": grades,
        "metrics": {
            "auc": auc,
            "ece": ece,
            "ece_chance": chance,
            "ece_p_value": 0.3,
            "default_rate": 0.03,
            "n": 10_000,
        },
    }


def book(years: dict[int, int]) -> pd.DataFrame:
    """`years` {vintage: loans}, one default in ten, dates spread over each year."""
    rows = []
    for year, n in years.items():
        for i in range(n):
            rows.append({"application_date": f"{year}-{1 + i % 12:02d}-15", "y": int(i % 10 == 0)})
    return pd.DataFrame(rows)


def test_a_book_is_split_out_of_time_on_its_latest_whole_years():
    table = book({2019: 100, 2020: 100, 2021: 100, 2022: 50, 2023: 50})
    train, test, split = split_rows(table, "y", test_size=0.25, seed=0)
    years = lambda t: set(pd.to_datetime(t["application_date"]).dt.year)  # noqa: E731
    assert years(train) == {2019, 2020, 2021} and years(test) == {2022, 2023}  # 100 of 400: a quarter
    assert split["kind"] == "out of time" and (split["train_vintages"], split["test_vintages"]) == (
        "2019-2021",
        "2022-2023",
    )
    assert (split["rows_train"], split["rows_test"], split["defaults_train"], split["defaults_test"]) == (
        300,
        100,
        30,
        10,
    )
    assert split["text"] == (
        "out of time: trained on the vintages 2019-2021 (300 loans, 30 defaults), "
        "tested on 2022-2023 (100 loans, 10 defaults)"
    )
    # a last year that holds most rows is the test alone, and something is always left to learn from
    _, test, split = split_rows(book({2019: 10, 2020: 300}), "y", test_size=0.25, seed=0)
    assert years(test) == {2020} and split["train_vintages"] == "2019-2019"


def test_a_table_without_vintages_is_split_at_random_stratified_and_says_so():
    for table in (book({2021: 400}), book({2020: 200, 2021: 200}).drop(columns="application_date")):
        train, test, split = split_rows(table, "y", test_size=0.25, seed=3)
        assert split["kind"] == "random" and len(test) == 100 and int(test["y"].sum()) == 10
        assert split["text"].startswith("stratified at random with seed 3 (the table has no application_date")
        assert not set(train.index) & set(test.index)


FINE_DRIVERS = [{"feature": "leverage", "moved": 0.98, "against": 0.0}]
PLAIN = {"plain_lightgbm": {"auc": 0.84}}


def test_the_chance_of_the_flags_is_what_exactly_right_pds_give_in_simulation():
    rng = np.random.default_rng(0)
    n, pds = 400, np.array(list(BANDS.values()))
    flags = []
    for _ in range(1500):
        defaults = rng.binomial(n, pds)
        rows = calibration_by_grade(
            np.concatenate([np.r_[np.ones(d), np.zeros(n - d)] for d in defaults]),
            np.repeat(pds, n),
            np.repeat(list(BANDS), n),
        )
        flags.append(int(rows["underestimated"].sum()))
    flags = np.array(flags)
    for k in (1, 2):
        rows = grade_rows({name: n for name in list(BANDS)[:k]}, n=n)  # k flagged grades, whichever
        assert sum(r["underestimated"] for r in rows) == k
        assert grade_flags_by_chance(rows) == pytest.approx(np.mean(flags >= k), abs=0.03)


def test_no_flag_is_always_within_chance_and_many_flags_are_not():
    assert grade_flags_by_chance(grade_rows({})) == 1.0
    many = grade_rows({"A": 20, "BBB": 32, "BB": 50, "B": 80})
    assert sum(r["underestimated"] for r in many) == 4
    assert grade_flags_by_chance(many) < 0.01


def test_one_flag_among_nine_grades_is_reported_but_is_no_weakness():
    rows = grade_rows({"B": 75})  # 3.75% against 3.0%
    text = grade_flags_text(rows)
    assert (
        text.startswith("1 of 9 populated grades flagged (B (3.8% against 3.0%))") and "within chance" in text
    )
    assert weaknesses(model_report(rows), PLAIN, FINE_DRIVERS) == []


def test_each_weakness_is_named_in_plain_words():
    rows = grade_rows({"A": 20, "BBB": 32, "BB": 50, "B": 80}, empty=("AAA",))
    found = weaknesses(
        model_report(rows, auc=0.80, ece=0.05, chance=0.004),
        PLAIN,
        [
            {"feature": "leverage", "moved": 0.3, "against": 0.0},
            {"feature": "current_ratio", "moved": 0.9, "against": 0.1},
        ],
    )
    text = "\n".join(found)
    assert "more flags than chance gives" in text and "beyond chance" in text
    assert "grades no held-out loan falls in: AAA" in text
    assert "ECE 0.0500 is above the bound 0.0200" in text
    assert "ranks below plain LightGBM (AUC 0.800 against 0.840)" in text
    assert "drivers the PD does not follow on most applications: leverage, current_ratio" in text
    few = model_report(grade_rows({}))
    few["metrics"] |= {"default_rate": 0.005, "n": 10_000}
    assert weaknesses(few, PLAIN, FINE_DRIVERS) == [
        "only 50 held-out defaults: every figure above is uncertain"
    ]


def test_the_printed_summary_and_the_card_say_the_split_the_grades_and_the_weaknesses():
    rows = grade_rows({"B": 75})
    metrics = {
        "split": {"text": "out of time: trained on the vintages 2019-2023, tested on 2024-2025"},
        "lightgbm": {"auc": 0.866, "ks": 0.57, "ece": 0.0025, "ece_chance": 0.0026},
        "grades": grade_flags_text(rows),
        "weaknesses": "grades no held-out loan falls in: AAA",
    }
    said = held_out_summary("scoring", metrics)
    assert said.startswith(
        "held out, out of time: trained on the vintages 2019-2023, tested on 2024-2025: AUC 0.866"
    )
    assert "grades (Jeffreys test at 5%): 1 of 9 populated grades flagged" in said
    assert said.endswith("weaknesses: grades no held-out loan falls in: AAA")
    card = "\n".join(card_section(metrics))
    assert "## What the held-out data say against it" in card
    assert "- grades no held-out loan falls in: AAA" in card and "within chance" in card
    assert "None of the checks" in "\n".join(card_section(metrics | {"weaknesses": "none found"}))
    assert card_section({}) == []
    assert not math.isnan(grade_flags_by_chance(rows))
