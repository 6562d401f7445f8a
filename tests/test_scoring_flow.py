"""The scoring flow end to end: the scoring table, training with the challenger, decisions, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.encoder import SpecEncoder
from features.errors import InvalidData
from features.synth import synthesize
from scoring.train import train_scoring
from underwriting.decision import decide_loans
from underwriting.policy import LOAN_COLUMNS, loan_term_columns
from underwriting.table import default_spec, scoring_table, with_outcome
from valuation.data import default_spec as valuation_spec
from valuation.data import in_force, training_table
from valuation.train import train_valuation


@pytest.fixture(scope="module")
def portfolio():
    return synthesize(4000, seed=21)


@pytest.fixture(scope="module")
def table(portfolio):
    values = training_table(portfolio)
    values = values[in_force(values)].reset_index(drop=True)
    valuer = train_valuation(values, valuation_spec(values), params={"n_estimators": 80}).valuer
    return with_outcome(scoring_table(portfolio, valuer))


@pytest.fixture(scope="module")
def trained(table):
    return train_scoring(table, default_spec(table), seed=3, params={"n_estimators": 150})


def test_training_problems_name_the_table_s_own_rows_not_the_split_s(table):
    """Values are checked on the whole table before it is split: rows 10 and 30 are the user's."""
    bad = table.reset_index()
    bad.loc[10, "leverage"] = -5.0
    bad.loc[30, "current_ratio"] = np.inf
    with pytest.raises(InvalidData) as caught:
        train_scoring(bad, default_spec(table), seed=3, params={"n_estimators": 5}, challenger=False)
    assert sorted((p.row, p.field) for p in caught.value.problems) == [
        (10, "leverage"),
        (30, "current_ratio"),
    ]


def test_scoring_table_has_one_row_per_application_with_the_valued_bundle(portfolio, table):
    known = portfolio.applications["application_id"].isin(portfolio.outcomes["application_id"])
    assert list(table["application_id"]) == list(portfolio.applications.loc[known, "application_id"])
    assert (table["pledge_value_cny"] <= table["liquidation_value_cny"] + 1e-6).all()
    assert (table["liquidation_value_cny"] <= table["bundle_value_cny"] + 1e-6).all()
    assert np.allclose(
        table["ltv_on_pledge"], table["amount_cny"] / table["pledge_value_cny"].clip(lower=1.0)
    )
    assert set(LOAN_COLUMNS) <= set(table.columns)


def test_default_spec_declares_directions_and_bounds(table):
    spec = default_spec(table)
    by_name = {f.name: f for f in spec.features}
    assert (
        by_name["max_overdue_days_24m"].monotone == "increasing" and by_name["max_overdue_days_24m"].min == 0
    )
    assert by_name["ltv_on_pledge"].monotone == "increasing"
    assert by_name["revenue_growth"].min is None  # growth may be negative
    assert "pledge_value_cny" not in by_name and spec.target == "defaulted_12m"


def test_an_industry_the_training_sample_lacks_is_scored_as_unseen(table):
    """The spec lists every industry: a model trained without one still scores an applicant in it (the
    code is encoded as missing, as an unseen category), while a code outside the list is refused."""
    spec = default_spec(table)
    assert next(f for f in spec.features if f.name == "industry").levels == tuple(map(str, range(8)))
    without = table[table["industry"] != 7]
    encoder = SpecEncoder(spec).fit(without)
    applicant = table[table["industry"] == 7].iloc[0].to_dict()
    x, problems = encoder.record_row(applicant)
    assert problems == [] and np.isnan(x[spec.feature_names.index("industry")])
    _, problems = encoder.record_row({**applicant, "industry": 8})
    assert [(p.field, p.expected) for p in problems] == [("industry", "one of 0, 1, 2, 3, 4, 5, 6, 7")]


def test_training_reports_both_models_and_beats_plain_lightgbm_or_ties(trained):
    m = trained.metrics
    assert set(trained.report["models"]) == {"lightgbm", "scorecard"}
    assert m["lightgbm"]["auc"] > 0.75 and m["scorecard"]["auc"] > 0.65
    # About ten held-out defaults: an AUC here has a standard error of several points (Hanley and McNeil,
    # 1982), so this is a smoke test, allowing two of them; benchmarks/scoring.py makes the comparison on
    # cross-validated real data.
    plain, y = m["plain_lightgbm"]["auc"], trained.test["defaulted_12m"].to_numpy()
    assert m["lightgbm"]["auc"] >= plain - 2 * _auc_standard_error(plain, y)
    assert m["rows_test"] == len(trained.test)


def _one_row(rows: pd.DataFrame, i: int, **changed) -> dict:
    """Row i as one application's row is given to the model: a mapping of column to one value."""
    return {c: np.array([changed.get(c, v)]) for c, v in rows.iloc[i].to_dict().items()}


def test_one_row_is_decided_as_in_the_batch_and_its_points_add_up(trained, table):
    model = trained.model
    rows = trained.test.head(5).reset_index(drop=True)
    batch = model.decide(rows)
    for i in range(len(rows)):
        one = model.decide_rows(_one_row(rows, i))
        assert one.pd[0] == batch["pd"].iat[i]  # float for float: one row is a batch of one
        assert one.grade[0] == batch["grade"].iat[i]
        assert [r["code"] for r in one.reasons[0]] == batch["reason_codes"].iat[i]
        assert one.base + one.points[0].sum() == pytest.approx(one.score[0], abs=1e-9)
    refused = model.decide_rows(_one_row(rows, 0, max_overdue_days_24m=-5))
    assert [p.field for p in refused.problems] == ["max_overdue_days_24m"] and np.isnan(refused.pd[0])


def test_a_dishonest_debtor_is_declined_on_both_paths_whatever_its_pd(trained):
    rows = trained.test.head(6).reset_index(drop=True)
    rows["dishonest_debtor"] = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    batch = trained.model.decide(rows)
    assert list(batch["declined_by"]) == [["dishonest_debtor"], [], ["dishonest_debtor"], [], [], []]
    assert (batch.loc[[0, 2], "recommendation"] == "decline").all()
    for i in range(len(rows)):
        one = trained.model.decide_rows(_one_row(rows, i))
        assert (one.recommendation[0], one.declined_by[0]) == (
            batch["recommendation"].iat[i],
            batch["declined_by"].iat[i],
        )
    out, _ = decide_loans(trained.model, rows)
    assert list(out["declined_by"]) == ["dishonest_debtor", "", "dishonest_debtor", "", "", ""]


def test_decisions_add_lending_figures_that_add_up(trained):
    rows = trained.test.head(40).reset_index(drop=True)
    out, problems = decide_loans(trained.model, rows)
    assert not problems and len(out) == 40
    shares = out[[c for c in out.columns if c.startswith("el_")]].sum(axis=1)
    assert np.allclose(shares, out["expected_loss_cny"])
    assert (out["credit_line_cny"] <= rows["amount_cny"] + 1e-6).all()
    assert (out["interest_subsidy_cny"] <= 100_000 + 1e-6).all()
    assert (out["interest_subsidy_cny"] <= 0.5 * out["credit_line_cny"] * rows["annual_rate"] + 1e-6).all()


def test_one_applications_lending_figures_equal_the_tables(trained):
    """The service's path (one row as a mapping of column to value) gives the batch's figures."""
    rows = trained.test.head(6).reset_index(drop=True)
    out, _ = decide_loans(trained.model, rows)
    for i in range(len(rows)):
        pd_, grade = out["pd"].to_numpy()[[i]], out["grade"].to_numpy()[[i]]
        one = loan_term_columns(rows.iloc[i].to_dict(), pd_, grade)
        for column, values in one.items():
            assert values.shape == (1,) and values[0] == pytest.approx(out.loc[i, column], rel=1e-12), column


def test_a_bad_row_is_reported_and_the_rest_decided(trained):
    rows = trained.test.head(4).reset_index(drop=True).copy()
    rows["court_judgements"] = rows["court_judgements"].astype(object)
    rows.loc[2, "court_judgements"] = "several"
    out, problems = decide_loans(trained.model, rows)
    assert [(p.row, p.field) for p in problems] == [(2, "court_judgements")]
    assert out.loc[2, "pd"] != out.loc[2, "pd"] and out.loc[[0, 1, 3], "pd"].notna().all()
    assert "expected a number" in out.loc[2, "error"] and np.isnan(out.loc[2, "credit_line_cny"])
    # the recommendation in the language asked for, last so that the other columns keep their places
    assert out.columns[-1] == "recommendation_label" and out.loc[2, "recommendation_label"] is None
    labels = {"approve": "批准", "review": "复核", "decline": "拒绝"}
    assert [labels[r] for r in out.loc[[0, 1, 3], "recommendation"]] == list(
        out.loc[[0, 1, 3], "recommendation_label"]
    )
    english, _ = decide_loans(trained.model, rows, language="en")
    assert list(english.loc[[0, 1, 3], "recommendation_label"]) == list(out.loc[[0, 1, 3], "recommendation"])


def test_train_scoring_and_score_cli_on_a_flat_table(tmp_path, monkeypatch, table):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "home"))
    table.to_parquet(tmp_path / "apps.parquet")
    default_spec(table).to_yaml(tmp_path / "spec.yaml")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train",
            "scoring",
            "--data",
            str(tmp_path / "apps.parquet"),
            "--spec",
            str(tmp_path / "spec.yaml"),
            "--name",
            "bank-b",
            "--promote",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "registered models:/bank-b/1" in result.output and "first champion" in result.output
    # the report names the split: the book's later vintages held out, and what they say against the model
    years = pd.to_datetime(table["application_date"]).dt.year
    assert f"held out, out of time: trained on the vintages {years.min()}-" in result.output
    assert f"-{years.max()} (" in result.output and "weaknesses: " in result.output
    result = runner.invoke(
        app,
        [
            "score",
            "--input",
            str(tmp_path / "apps.parquet"),
            "--output",
            str(tmp_path / "scores.csv"),
            "--model",
            "models:/bank-b@champion",
            "--language",
            "en",
        ],
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "scores.csv")
    assert list(out.columns[:5]) == ["application_id", "pd", "score", "grade", "reason_codes"]
    assert list(out["application_id"]) == list(table["application_id"])
    assert out["grade"].isin(["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C"]).all()


def _auc_standard_error(auc: float, y: np.ndarray) -> float:
    """Hanley and McNeil's standard error of an AUC from n1 positives and n0 negatives."""
    n1, n0 = int(y.sum()), int((y == 0).sum())
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return float(np.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)))
