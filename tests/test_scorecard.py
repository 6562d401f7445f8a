"""The challenger scorecard: held-out accuracy, the shared scale, its table, exact points, monotone bins,
reloading and bad rows."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import joblib
import numpy as np
import pandas as pd
import pytest
from pandas.errors import Pandas4Warning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from features.adapters import GERMAN_CREDIT_SPEC, HMEQ_SPEC, load_german_credit, load_hmeq
from features.spec import FeatureSpec
from scoring.model import score_batch
from scoring.reasons import REASONS
from scoring.scale import ScoreScale
from scoring.scorecard import TABLE_COLUMNS, ScorecardModel

TARGET = "default"
ID = "applicant_row"
FIVE = (
    "status_of_existing_checking_account",
    "duration_in_month",
    "credit_history",
    "credit_amount",
    "age_in_years",
)

# optbinning 1.0 under pandas 3.1 warns from its own code on every fit, twice per feature:
# - binning_statistics.py, BinningTable.build: `df.loc["Totals"] = totals` writes "" into the float WoE
#   column ("Setting an item of incompatible dtype is deprecated ...");
# - scorecard.py, Scorecard.fit: `binning_table.reset_index(level=0, inplace=True)` ("The inplace keyword
#   in DataFrame.reset_index is deprecated ...").
# BinningProcess.fit always builds its tables with totals and Scorecard.fit always resets in place, so no
# argument avoids them. They are recorded and checked here, not ignored: any other warning, or these
# from anywhere but optbinning, still fails the test. (Reported; a narrow pyproject filter may replace this.)
OPTBINNING_DEPRECATIONS = (
    "Setting an item of incompatible dtype is deprecated",
    "The inplace keyword in DataFrame.reset_index is deprecated",
)


@contextmanager
def optbinning_deprecations():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    unexpected = [
        f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if not (
            issubclass(w.category, Pandas4Warning)
            and "optbinning" in w.filename
            and str(w.message).startswith(OPTBINNING_DEPRECATIONS)
        )
    ]
    assert not unexpected, unexpected


def fit(model: ScorecardModel, table: pd.DataFrame) -> ScorecardModel:
    with optbinning_deprecations():
        return model.fit(table)


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.DataFrame]:
    table = load_german_credit()
    return tuple(train_test_split(table, test_size=0.3, stratify=table[TARGET], random_state=0))


@pytest.fixture(scope="module")
def card(german) -> ScorecardModel:
    return fit(ScorecardModel(GERMAN_CREDIT_SPEC, random_state=0), german[0])


def test_held_out_auc_beats_0_7_and_pds_lie_in_0_1(german, card):
    _, test = german
    pd_ = card.predict_pd(test)
    assert ((pd_ > 0) & (pd_ < 1)).all()
    assert roc_auc_score(test[TARGET], pd_) > 0.7  # rows the scorecard never saw
    assert abs(pd_.mean() - test[TARGET].mean()) < 0.05


def test_scorecard_points_use_the_models_scale(german):
    train, test = german
    scale = ScoreScale(base_points=500, base_odds=20, pdo=40)
    few = FeatureSpec(  # five features are enough to check the scale, and quicker to bin
        target=TARGET,
        id=ID,
        features=tuple(c for c in GERMAN_CREDIT_SPEC.features if c.name in FIVE),
        task="scoring",
    )
    custom = fit(ScorecardModel(few, scale=scale), train)
    pd_ = custom.predict_pd(test)
    np.testing.assert_allclose(custom.score(test), scale.score(pd_))
    # optbinning's own score (the sum of the table's bin points) is the same number
    np.testing.assert_allclose(custom.scorecard_.score(custom._prepare(test)), custom.score(test), atol=1e-9)


def test_table_lists_bins_and_points_of_every_feature(card):
    table = card.table()
    assert list(table.columns) == TABLE_COLUMNS
    assert set(table["Variable"]) == set(GERMAN_CREDIT_SPEC.feature_names)
    assert np.isfinite(table["Points"].to_numpy(dtype=float)).all()


def test_contributions_sum_exactly_to_the_score_and_give_reasons(german, card):
    _, test = german
    points = card.contributions(test)
    np.testing.assert_allclose(points.sum(axis=1).to_numpy(), card.score(test), rtol=0, atol=1e-9)
    assert points["base"].nunique() == 1
    features = points.drop(columns="base")
    for (_, row), reasons in zip(features.head(30).iterrows(), card.reason_codes(test.head(30)), strict=True):
        negative = row[row < 0].sort_values()
        assert [r["code"] for r in reasons] == [REASONS[f].code for f in negative.index[:4]]


def test_monotone_features_get_monotone_bins():
    table = load_hmeq()
    train, test = train_test_split(table, test_size=0.3, stratify=table["bad"], random_state=0)
    hmeq = fit(ScorecardModel(HMEQ_SPEC), train)
    assert roc_auc_score(test["bad"], hmeq.predict_pd(test)) > 0.75
    bins = hmeq.table()
    for name in ("derog", "delinq"):  # monotone increasing in HMEQ_SPEC
        numeric = bins[(bins["Variable"] == name) & ~bins["Bin"].isin(["Special", "Missing"])]
        assert len(numeric) >= 2
        assert np.all(np.diff(numeric["Event rate"].to_numpy(dtype=float)) > 0)
        assert np.all(np.diff(numeric["Points"].to_numpy(dtype=float)) < 0)


def test_a_reloaded_scorecard_scores_identically(tmp_path, german, card):
    _, test = german
    joblib.dump(card, tmp_path / "card.joblib")
    loaded = joblib.load(tmp_path / "card.joblib")
    assert loaded.scale == card.scale
    np.testing.assert_array_equal(loaded.score(test), card.score(test))
    pd.testing.assert_frame_equal(loaded.table(), card.table())


def test_bad_rows_are_reported_by_id_while_good_rows_are_scored(german, card):
    rows = german[1].head(6).reset_index(drop=True).copy()
    rows["housing"] = rows["housing"].astype(object)
    rows.loc[1, "housing"] = "castle"
    out, problems = score_batch(card, rows)
    assert list(out.columns[:5]) == [ID, "pd", "score", "grade", "reason_codes"]
    assert [(p.row, p.field, p.record_id) for p in problems] == [(1, "housing", str(rows.loc[1, ID]))]
    assert np.isnan(out.loc[1, "pd"]) and out.drop(index=1)["pd"].notna().all()
    np.testing.assert_allclose(
        out.drop(index=1)["pd"].to_numpy(dtype=float), card.predict_pd(rows.drop(index=1))
    )
