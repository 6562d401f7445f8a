"""underwriting: one decision path for one application and for a book. A batch decides each application as
it would be decided alone, float for float; the rows built from records equal the portfolio's; the owner's
facts are stated once; every problem of a refused application is named and the others are decided; the
policies are stored and a re-run says what a change of policy changes; the review rules; a book in files.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData, ModelMismatch
from features.synth import synthesize
from scoring.scale import DecisionPolicy
from scoring.train import train_scoring
from underwriting import book, review
from underwriting.applications import ApplicationRecord
from underwriting.decision import Decision, Policies, decide, decide_one, rerun, scoring_rows
from underwriting.documents import decision_row, differences
from underwriting.examples import application_bodies
from underwriting.policy import LendingPolicy
from underwriting.table import default_spec, scoring_table, with_outcome
from valuation.data import default_spec as valuation_spec
from valuation.data import in_force, training_table
from valuation.train import train_valuation


@pytest.fixture(scope="module")
def portfolio():
    return synthesize(3000, seed=5)


@pytest.fixture(scope="module")
def valuer(portfolio):
    values = training_table(portfolio)
    values = values[in_force(values)].reset_index(drop=True)
    return train_valuation(values, valuation_spec(values), params={"n_estimators": 60, "n_jobs": 1}).valuer


@pytest.fixture(scope="module")
def table(portfolio, valuer):
    return with_outcome(scoring_table(portfolio, valuer))


@pytest.fixture(scope="module")
def scorer(table):
    return train_scoring(table, default_spec(table), params={"n_estimators": 60}, challenger=False).model


@pytest.fixture(scope="module")
def bodies(portfolio):
    """Application bodies, with the portfolio's application ids."""
    return list(application_bodies(portfolio, limit=40, with_ids=True))


def _application(body: dict, bank: str = "Bank A"):
    return ApplicationRecord.model_validate(body).application(body.get("application_id") or "X", bank)


# --------------------------------------------------------------------------- one path


def test_a_batch_decides_each_application_as_it_is_decided_alone(bodies, valuer, scorer):
    applications = [_application(b) for b in bodies]
    together = decide(applications, valuer, scorer)
    assert all(isinstance(d, Decision) for d in together)
    for application, batch in zip(applications, together, strict=True):
        alone = decide_one(application, valuer, scorer)
        assert json.dumps(batch.result) == json.dumps(alone.result)  # float for float, key for key
        assert json.dumps(batch.explanation) == json.dumps(alone.explanation)


def test_the_rows_of_applications_received_as_records_equal_the_portfolio_s(bodies, valuer, table):
    """The service's path (records in) and the batch table of a portfolio build the same scoring row, for
    bundles of patents only and of patents and trademarks."""
    kinds = [{a["asset_kind"] for a in b["assets"]} for b in bodies]
    assert {"patent"} in kinds and {"patent", "trademark"} in kinds
    rows = scoring_rows([_application(b) for b in bodies], valuer)
    ids = [b["application_id"] for b in bodies]
    # the batch table also carries the vintage and the outcome; the rows a request builds, neither
    expected = (
        table.set_index("application_id")
        .loc[ids]
        .reset_index()
        .drop(columns=["defaulted_12m", "application_date"])
    )
    assert list(rows) == list(expected.columns)  # the model's column order
    pd.testing.assert_frame_equal(pd.DataFrame(rows), expected, check_dtype=False)


def test_the_owner_facts_are_stated_once_in_the_credit_report(bodies, valuer, scorer):
    once = bodies[0]
    assert not any("owner_revenue_cny" in a for a in once["assets"])  # stated in the report only
    report = once["enterprise"]
    repeated = copy.deepcopy(once)
    for asset in repeated["assets"]:
        asset |= {
            "owner_revenue_cny": report["revenue_cny"],
            "owner_industry": report["industry"],
            "owner_high_tech": float(report["high_tech"]),
        }
    left_out = decide_one(_application(once), valuer, scorer)
    assert left_out.result == decide_one(_application(repeated), valuer, scorer).result
    contradicting = copy.deepcopy(repeated)
    contradicting["assets"][0]["owner_revenue_cny"] = contradicting["enterprise"]["revenue_cny"] * 10
    (refused,) = decide([_application(contradicting)], valuer, scorer)
    assert isinstance(refused, InvalidData)
    assert [(p.field, p.row) for p in refused.problems] == [("assets.owner_revenue_cny", 0)]


def test_a_refused_application_names_every_problem_and_the_others_are_decided(bodies, valuer, scorer):
    twice = copy.deepcopy(bodies[1])
    twice["assets"].append(twice["assets"][0])  # one right pledged twice
    late = copy.deepcopy(bodies[2])
    late["enterprise"]["report_date"] = "2099-01-01"  # a report from after the application
    third = copy.deepcopy(bodies[3])
    third["assets"][0] |= {"enterprise_id": "E-THIRD", "owner_revenue_cny": None, "owner_industry": None}
    decided = decide([_application(b) for b in (bodies[0], twice, late, third, bodies[4])], valuer, scorer)
    assert isinstance(decided[0], Decision) and isinstance(decided[4], Decision)
    assert [(p.field, p.row) for p in decided[1].problems] == [("assets.asset_id", len(twice["assets"]) - 1)]
    assert {p.field for p in decided[2].problems} == {"enterprise.report_date"}
    assert [(p.field, p.row) for p in decided[3].problems] == [
        ("assets.owner_revenue_cny", 0),
        ("assets.owner_industry", 0),
    ]
    assert all("第三人出质" in p.expected for p in decided[3].problems)
    alone = decide_one(_application(bodies[4]), valuer, scorer)
    assert decided[4].result == alone.result  # a neighbour's refusal changes nothing
    with pytest.raises(InvalidData):
        decide_one(_application(late), valuer, scorer)


def test_the_subsidy_of_each_application_counts_only_what_was_granted_before_it(bodies, valuer, scorer):
    same = [_application(bodies[0]), _application({**bodies[0], "application_id": "again"})]
    first, second = decide(same, valuer, scorer, granted_before=[0.0, 99_990.0])
    assert first.result["interest_subsidy_cny"] > 10  # the first is decided as if alone (nothing shared)
    assert second.result["subsidy_granted_before_cny"] == 99_990.0
    assert second.result["interest_subsidy_cny"] == pytest.approx(10.0)  # what the cap leaves


def test_a_scoring_model_that_reads_what_no_row_gives_refuses_the_batch(bodies, valuer):
    import types

    stranger = types.SimpleNamespace(spec=types.SimpleNamespace(feature_names=("debtinc", "leverage")))
    with pytest.raises(ModelMismatch, match="debtinc"):
        decide([_application(bodies[0])], valuer, stranger)


# --------------------------------------------------------------------------- policies and re-runs


def test_each_decision_stores_its_policies_and_a_rerun_says_what_a_change_changes(bodies, valuer, scorer):
    lending = LendingPolicy().override(bank_limit_cny=1_000.0)
    policies = Policies(DecisionPolicy(approve_max_pd=0.5, decline_min_pd=0.9), lending)
    body = bodies[5]
    made = decide_one(_application(body), valuer, scorer, policies)
    assert made.result["policy"] == policies.decision.to_dict()
    assert made.result["lending_policy"] == lending.to_dict()
    assert made.result["credit_line_cny"] <= 1_000.0
    request = ApplicationRecord.model_validate(body).model_dump(mode="json")
    same = rerun(request, made.result, made.explanation, valuer, scorer)
    assert same.differences == []  # the stored policies reproduce it
    changed = rerun(request, made.result, made.explanation, valuer, scorer, Policies())
    assert "result.lending_policy.bank_limit_cny: stored 1000.0, recomputed 20000000.0" in changed.differences
    assert any(d.startswith("result.credit_line_cny") for d in changed.differences)
    assert Policies.of({}) == Policies(DecisionPolicy(decline_flags=(), decline_limits=()), LendingPolicy())


def test_differences_are_exact():
    assert differences({"pd": 0.1}, {"pd": 0.1}) == []
    assert differences({"pd": 1}, {"pd": 1.0}) == ["result.pd: stored 1, recomputed 1.0"]


# --------------------------------------------------------------------------- review rules


@pytest.mark.parametrize(
    "result, decision, reason, field",
    [
        ({"recommendation": "review"}, "override", "x", "decision"),  # no side to override
        ({"recommendation": "decline"}, "approve", None, "reason"),  # against the recommendation
        ({"recommendation": "approve"}, "decline", None, "reason"),
        ({"recommendation": "review", "held_by": [{"feature": "term_months"}]}, "approve", None, "reason"),
        (
            {
                "recommendation": "decline",
                "policy": {"decline_flags": ["dishonest_debtor"]},
                "declined_by": [{"feature": "dishonest_debtor"}],
            },
            "approve",
            "we know them",
            "decision",  # a bar: no reason approves it
        ),
    ],
)
def test_the_review_rules_refuse_what_needs_a_reason_or_is_barred(result, decision, reason, field):
    (problem,) = review.review_problems(result, decision, reason)
    assert problem.field == field


def test_the_review_rules_allow_a_reasoned_exception_and_name_the_outcome():
    held = {"recommendation": "review", "held_by": [{"feature": "term_months"}]}
    assert review.review_problems(held, "approve", "signed off by the committee") == []
    assert review.review_problems({"recommendation": "approve"}, "approve", None) == []
    assert [review.outcome(d, "approve") for d in ("approve", "decline", "override", None)] == [
        "approve",
        "decline",
        "decline",
        None,
    ]
    chosen, text, problems = review.review_input("override", "   ")
    assert (chosen, text, [p.field for p in problems]) == ("override", None, ["reason"])


def test_an_approval_grants_the_subsidy_within_what_the_cap_leaves():
    result = {"interest_subsidy_cny": 30_000.0, "subsidy_cap_cny": 100_000.0}
    assert review.subsidy_grant(result, 0.0) == 30_000.0
    assert review.subsidy_grant(result, 80_000.0) == 20_000.0
    assert review.subsidy_grant(result, 120_000.0) == 0.0
    assert review.subsidy_grant({"interest_subsidy_cny": None}, 0.0) is None
    assert (
        review.subsidy_grant({"interest_subsidy_cny": 5.0}, 99_998.0) == 2.0
    )  # older records: the default cap


# --------------------------------------------------------------------------- a decision as a row, a book


def test_a_decision_row_holds_every_figure_under_the_service_s_names(bodies, valuer, scorer):
    made = decide_one(_application(bodies[0]), valuer, scorer)
    row = decision_row(made.result, made.explanation, "en")
    for name in ("pd", "score", "grade", "recommendation", "credit_line_cny", "expected_loss_cny"):
        assert row[name] == made.result[name]
    assert row["expected_loss_split_bank"] == made.result["expected_loss_split"]["bank"]
    assert row["valuation_bundle_pledge_value_cny"] == made.result["valuation"]["bundle"]["pledge_value_cny"]
    assert row["recommendation_label"] == made.result["recommendation_label"]["en"]
    assert json.loads(row["explanation"]) == made.explanation
    reasons = json.loads(row["reasons"])
    assert [r["text"] for r in reasons] == [r["en"] for r in made.result["reasons"]]
    assert row["reason_codes"] == ";".join(r["code"] for r in made.result["reasons"])
    assert all(not isinstance(v, dict | list) for v in row.values())  # one flat row


def _json_lines(path) -> pd.DataFrame:
    """A JSON lines file read exactly (pandas' reader rounds floats)."""
    return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


def _book_tables(bodies: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bodies as the two tables of the documented format."""
    applications = [{"application_id": b["application_id"], **b["enterprise"], **b["loan"]} for b in bodies]
    assets = [{"application_id": b["application_id"], **a} for b in bodies for a in b["assets"]]
    return pd.DataFrame(applications), pd.DataFrame(assets)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_book_in_json_lines_or_in_tables_is_decided_alike_in_input_order(
    tmp_path, bodies, valuer, scorer, suffix
):
    chosen = copy.deepcopy(bodies[:6])
    chosen[3]["loan"]["term_months"] = 0  # refused by the loan's own type rules
    lines = tmp_path / "book.jsonl"
    lines.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in chosen), encoding="utf-8")
    applications, assets = _book_tables(chosen)
    table_in = tmp_path / f"applications{'.csv' if suffix == '.jsonl' else suffix}"
    assets_in = tmp_path / f"assets{'.csv' if suffix == '.jsonl' else suffix}"
    for frame, path in ((applications, table_in), (assets, assets_in)):
        frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path, index=False)
    out_lines, out_table = tmp_path / f"from-lines{suffix}", tmp_path / f"from-tables{suffix}"
    first = book.decide_book(lines, out_lines, valuer, scorer)
    second = book.decide_book(table_in, out_table, valuer, scorer, assets=assets_in)
    assert first.rows == second.rows == 6 and first.refused_rows == second.refused_rows == 1
    assert [(p.row, p.field) for p in first.refused] == [(3, "loan.term_months")]
    read = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".jsonl": _json_lines}
    a, b = read[suffix](out_lines), read[suffix](out_table)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["application_id"]) == [x["application_id"] for x in chosen]
    assert a["error"].fillna("").astype(bool).tolist() == [False, False, False, True, False, False]
    alone = decide_one(_application(chosen[0]), valuer, scorer)
    assert a.loc[0, "pd"] == alone.result["pd"] and a.loc[0, "grade"] == alone.result["grade"]


def test_a_book_table_with_a_column_the_format_does_not_have_is_refused(tmp_path, bodies, valuer, scorer):
    applications, assets = _book_tables(bodies[:2])
    applications.rename(columns={"amount_cny": "amount"}).to_csv(tmp_path / "a.csv", index=False)
    assets.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(InvalidData) as refused:
        book.decide_book(tmp_path / "a.csv", tmp_path / "out.csv", valuer, scorer, assets=tmp_path / "b.csv")
    assert [p.field for p in refused.value.problems] == ["applications.amount"]


def test_the_shipped_example_book_is_decided_without_a_refusal(valuer, scorer, tmp_path):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    lines = book.decide_book(examples / "applications.jsonl", tmp_path / "a.parquet", valuer, scorer)
    tables = book.decide_book(
        examples / "applications.csv", tmp_path / "b.parquet", valuer, scorer, assets=examples / "assets.csv"
    )
    assert lines.rows == tables.rows >= 3 and lines.refused == tables.refused == []
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    )
    assert np.isfinite(pd.read_parquet(tmp_path / "a.parquet")["pd"]).all()


def _write_book(tmp_path, bodies: list[dict], suffix: str = ".csv") -> tuple:
    applications, assets = _book_tables(bodies)
    paths = tmp_path / f"applications{suffix}", tmp_path / f"assets{suffix}"
    for frame, path in zip((applications, assets), paths, strict=True):
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    return paths


def test_an_asset_of_no_application_refuses_the_tables(tmp_path, bodies, valuer, scorer):
    """A mistyped id would otherwise leave the asset out of its bundle unseen."""
    applications, assets = _write_book(tmp_path, bodies[:3])
    table = pd.read_csv(assets, dtype=str)
    table.loc[1, "application_id"] = "A-typo"
    table.to_csv(assets, index=False)
    with pytest.raises(InvalidData) as refused:
        book.decide_book(applications, tmp_path / "out.csv", valuer, scorer, assets=assets)
    assert [(p.field, p.row, p.got) for p in refused.value.problems] == [
        ("assets.application_id", 1, "A-typo")
    ]
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("form", ["lines", "tables"])
def test_an_id_two_applications_carry_refuses_both_in_whatever_chunk(
    tmp_path, bodies, valuer, scorer, form, monkeypatch
):
    monkeypatch.setattr(book, "CHUNK", 2)  # the two carriers in different chunks
    chosen = copy.deepcopy(bodies[:5])
    chosen[4]["application_id"] = chosen[0]["application_id"]
    if form == "lines":
        source, assets = tmp_path / "book.jsonl", None
        source.write_text("".join(json.dumps(b) + "\n" for b in chosen), encoding="utf-8")
    else:
        for asset in chosen[4]["assets"]:
            asset["asset_id"] += "-other"  # the second application's own assets: not merged into the first's
        source, assets = _write_book(tmp_path, chosen)
    outcome = book.decide_book(source, tmp_path / "out.csv", valuer, scorer, assets=assets)
    assert [(p.row, p.field) for p in outcome.refused] == [(0, "application_id"), (4, "application_id")]
    out = pd.read_csv(tmp_path / "out.csv", dtype={"error": str}).fillna({"error": ""})
    assert out["error"].astype(bool).tolist() == [True, False, False, False, True]


def test_a_json_lines_book_may_begin_with_a_byte_order_mark_and_hold_blank_lines(
    tmp_path, bodies, valuer, scorer
):
    source = tmp_path / "book.jsonl"
    text = "\n\n".join(json.dumps(b, ensure_ascii=False) for b in bodies[:3]) + "\n\n"
    source.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    outcome = book.decide_book(source, tmp_path / "out.jsonl", valuer, scorer)
    assert outcome.rows == 3 and outcome.refused == []


def test_a_parquet_book_s_numeric_ids_and_a_blank_in_a_yes_no_column_are_read(
    tmp_path, bodies, valuer, scorer
):
    applications, assets = _book_tables(bodies[:4])
    numbers = {a: 1001 + k for k, a in enumerate(applications["application_id"])}
    applications["application_id"] = applications["application_id"].map(numbers)
    assets["application_id"] = assets["application_id"].map(numbers)
    applications["high_tech"] = applications["high_tech"].astype(float)  # 0.0 and 1.0, as with a blank
    applications.loc[0, "high_tech"] = np.nan
    applications.to_parquet(tmp_path / "a.parquet", index=False)
    assets.to_parquet(tmp_path / "b.parquet", index=False)
    outcome = book.decide_book(
        tmp_path / "a.parquet", tmp_path / "out.parquet", valuer, scorer, assets=tmp_path / "b.parquet"
    )
    # the blank is the only value refused (the report must say yes or no); the 1.0s and 0.0s are read
    assert [(p.row, p.field, p.got) for p in outcome.refused] == [(0, "enterprise.high_tech", None)]
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["application_id"].tolist() == ["1001", "1002", "1003", "1004"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_book_is_written_alike_in_every_chunk_and_refused_ids_as_text(
    tmp_path, bodies, valuer, scorer, suffix, monkeypatch
):
    """A whole number stays one from chunk to chunk (a chunk with a refusal once wrote 12.0), and a refused
    application's odd id is written as text (Parquet once failed on it, leaving half a file)."""
    monkeypatch.setattr(book, "CHUNK", 2)
    chosen = copy.deepcopy(bodies[:5])
    chosen[3]["enterprise"]["enterprise_id"] = 12345  # refused: not text
    source = tmp_path / "book.jsonl"
    source.write_text("".join(json.dumps(b) + "\n" for b in chosen), encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    outcome = book.decide_book(source, out, valuer, scorer)
    assert outcome.refused_rows == 1
    if suffix == ".csv":
        frame = pd.read_csv(out, dtype=str)
        term = frame["valuation_bundle_loan_term_months"].dropna().tolist()
        assert term and all(t.isdigit() for t in term)
    elif suffix == ".parquet":
        frame = pd.read_parquet(out)
        assert frame.loc[3, "enterprise_id"] == "12345"
    else:
        frame = _json_lines(out)
        assert frame.loc[3, "enterprise_id"] == "12345"
    assert frame["application_id"].tolist() == [b["application_id"] for b in chosen]


def test_a_failed_run_leaves_an_earlier_output_as_it_was_and_the_input_is_never_the_output(
    tmp_path, bodies, valuer
):
    import types

    source = tmp_path / "book.jsonl"
    source.write_text("".join(json.dumps(b) + "\n" for b in bodies[:3]), encoding="utf-8")
    out = tmp_path / "out.csv"
    out.write_text("earlier\n", encoding="utf-8")
    stranger = types.SimpleNamespace(spec=types.SimpleNamespace(feature_names=("debtinc",)))
    with pytest.raises(ModelMismatch):
        book.decide_book(source, out, valuer, stranger)
    assert out.read_text(encoding="utf-8") == "earlier\n"
    assert {p.name for p in tmp_path.iterdir()} == {"book.jsonl", "out.csv"}  # no partial file left
    with pytest.raises(InvalidData, match="--output"):
        book.decide_book(source, source, valuer, stranger)
    with pytest.raises(InvalidData, match="--bank-id"):
        book.decide_book(source, out, valuer, stranger, bank_id="x" * 500)
    assert source.read_text(encoding="utf-8").count("\n") == 3
