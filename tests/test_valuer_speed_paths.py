"""Valuer.value and the methods beside it give the same figures whatever the size of the table.

The income cross-check and the GB/T scores read a table's columns once as arrays and restrict them to
rows (asset kind, rows not refused) without copying the frame; a request's few rows and a batch go
through the same code. These tests hold that fixed: a few hundred synthetic rows valued at once equal
the same rows valued one by one and in chunks (either side of the encoder's record path), refused rows
included, and the inputs a service builds (records with None, any index) are valued as a typed table.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from features.encoder import RECORD_ROWS
from features.errors import InvalidData
from features.synth import synthesize
from valuation import income
from valuation._common import Columns, floats, floats_as_is, raw, set_flags, text
from valuation.data import default_spec, in_force, training_table
from valuation.model import ValueModel
from valuation.valuer import Valuer

N_ROWS = 240
BAD = {  # row -> values the encoder refuses (each row keeps its other values)
    3: {"claims": -3.0},
    17: {"owner_industry": "shipbuilding"},
    18: {"owner_revenue_cny": np.nan},
    101: {"asset_kind": None},
    200: {"remaining_years": np.inf},
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    t = training_table(synthesize(1200, seed=5))
    return t[in_force(t)].reset_index(drop=True)


@pytest.fixture(scope="module")
def valuer(table) -> Valuer:
    spec = default_spec(table)
    model = ValueModel(spec, params={"n_estimators": 40}, random_state=3).fit(table)
    return Valuer.fit(table, spec, model=model)


@pytest.fixture(scope="module")
def rows(table) -> pd.DataFrame:
    """Patents and trademarks mixed, refused rows among them."""
    out = table.sample(N_ROWS, random_state=2).reset_index(drop=True)
    assert {"patent", "trademark"} <= set(out["asset_kind"])
    for row, change in BAD.items():
        for column, value in change.items():
            out.loc[row, column] = value
    return out


def _valued_in_chunks(valuer: Valuer, rows: pd.DataFrame, size: int):
    frames, problems = [], []
    for start in range(0, len(rows), size):
        values, found = valuer.value(rows.iloc[start : start + size])
        frames.append(values)
        problems += [(p.field, p.row + start, p.record_id, p.expected, _text(p.got)) for p in found]
    return pd.concat(frames, ignore_index=True), problems


def _text(value) -> str:  # NaN != NaN: compare a value by its text
    return repr(value)


@pytest.mark.parametrize("size", [1, 2, 5, RECORD_ROWS, RECORD_ROWS + 1, 100])
def test_a_table_valued_at_once_equals_it_valued_in_chunks(valuer, rows, size):
    whole, problems = valuer.value(rows)
    chunked, chunk_problems = _valued_in_chunks(valuer, rows, size)
    pd.testing.assert_frame_equal(whole, chunked, check_exact=True)
    # the same problems; a table lists them by field, so chunks list them in another order
    assert sorted((p.field, p.row, p.record_id, p.expected, _text(p.got)) for p in problems) == sorted(
        chunk_problems
    )
    refused = whole["error"] != ""
    assert set(np.flatnonzero(refused)) == set(BAD)
    assert whole.loc[refused, "value_cny"].isna().all()
    assert whole.loc[refused, "cross_check_flag"].isna().all()
    # every good row has a value, an income value and scores from the scorer of its kind
    good = whole[~refused]
    assert good[["value_cny", "income_value_cny", "legal_score", "total_score", "stars"]].notna().all().all()
    patents = rows.loc[~refused.to_numpy(), "asset_kind"].eq("patent").to_numpy()
    assert good["technical_score"].notna().to_numpy().tolist() == patents.tolist()


def test_income_and_scores_of_a_table_equal_them_row_by_row(valuer, rows):
    good = rows.drop(index=list(BAD))  # income_value refuses a bad industry or revenue outright
    income_values = valuer.income_value(good)
    one_by_one = np.concatenate([valuer.income_value(good.iloc[[i]]) for i in range(len(good))])
    np.testing.assert_array_equal(income_values, one_by_one)
    assert np.isfinite(income_values).all()

    scores = valuer.indicator_scores(good)
    assert scores.index.is_unique and set(scores.index) == set(good.index)
    by_row = pd.concat([valuer.indicator_scores(good.iloc[[i]]) for i in range(len(good))])
    pd.testing.assert_frame_equal(scores.sort_index(), by_row.sort_index(), check_exact=True)
    # patents first, then trademarks, each in table order
    kinds = good.loc[scores.index, "asset_kind"].to_numpy()
    assert (kinds[: (kinds == "patent").sum()] == "patent").all()


def test_the_index_of_the_table_does_not_change_the_values(valuer, rows):
    plain, problems = valuer.value(rows)
    for index in (
        pd.RangeIndex(7, 7 + len(rows)),
        pd.Index([f"r{i}" for i in range(len(rows))]),
        pd.RangeIndex(len(rows), name="asset"),
        pd.Index(np.arange(len(rows))[::-1]),
    ):
        values, found = valuer.value(rows.set_axis(index))
        pd.testing.assert_frame_equal(values, plain, check_exact=True)
        assert [repr(p) for p in found] == [repr(p) for p in problems]


def test_a_request_built_from_records_is_valued_as_the_typed_table(valuer, rows):
    """The service builds its table from records: None for what an asset lacks, so a column no asset of
    the request has is of object dtype, and text columns hold None where the typed table has NaN."""
    good = rows.drop(index=list(BAD))
    kinds = good["asset_kind"]
    typed = pd.concat([good[kinds == "trademark"].head(2), good[kinds == "patent"].head(4)])
    typed = typed.reset_index(drop=True)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in typed.to_dict(orient="records")
    ]
    for subset in (
        [0, 1, 2, 3, 4, 5],
        [i for i in range(6) if typed["asset_kind"][i] == "trademark"][:1],
        [i for i in range(6) if typed["asset_kind"][i] == "patent"][:2],
    ):
        frame = pd.DataFrame.from_records([records[i] for i in subset])
        expected, _ = valuer.value(typed.iloc[subset])
        got, problems = valuer.value(frame)
        assert not problems
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        got_records, problems = valuer.value_records([records[i] for i in subset])
        assert not problems
        pd.testing.assert_frame_equal(pd.DataFrame(got_records), expected, check_exact=True)


def test_records_explained_with_their_values_get_each_records_own_factors(valuer, rows):
    """value_records(explain=True) explains the records in one TreeSHAP pass (on another thread): each
    record gets the factors value_one gives it alone, a refused record none, and the figures are those
    of value_records without explanation."""
    typed = rows.drop(index=list(BAD)).head(20).reset_index(drop=True)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in typed.to_dict(orient="records")
    ]
    records[4]["claims"] = -3.0  # refused
    explained, problems = valuer.value_records(records, explain=True)
    plain_figures, same_problems = valuer.value_records(records)
    assert [(p.field, p.row) for p in problems] == [(p.field, p.row) for p in same_problems]
    assert {p.row for p in problems} == {4} and "claims" in {p.field for p in problems}
    assert explained["factors"][4] is None
    for i, record in enumerate(records):
        if i != 4:
            assert explained["factors"][i] == valuer.model.value_one(record)["factors"]
    figures = pd.DataFrame({c: explained[c] for c in plain_figures})
    pd.testing.assert_frame_equal(figures, pd.DataFrame(plain_figures), check_exact=True)


def test_text_in_a_numeric_column_of_a_refused_row_leaves_the_other_rows_valued(valuer, rows):
    """A value the encoder refuses as "not a number" sits in a row that is not valued: the other rows'
    columns are still read as numbers, at any size."""
    for n in (5, 40):
        part = rows.drop(index=list(BAD)).head(n).reset_index(drop=True)
        clean, _ = valuer.value(part)
        messy = part.astype({"claims": object})
        messy.loc[2, "claims"] = "many"
        values, problems = valuer.value(messy)
        assert [(p.field, p.row) for p in problems] == [("claims", 2)]
        keep = np.arange(n) != 2
        pd.testing.assert_frame_equal(
            values[keep].drop(columns="error"), clean[keep].drop(columns="error"), check_exact=True
        )


def test_a_patent_without_its_owners_patent_count_has_no_income_value(valuer, rows):
    """The income approach splits the owner's revenue over its patents in force: a patent without that
    count is valued, without an income value or cross-check, and the other rows are unchanged. The
    income function itself refuses the missing count, naming the row among its patents and the label."""
    part = rows.drop(index=list(BAD)).head(30).reset_index(drop=True)
    patents = np.flatnonzero(part["asset_kind"].eq("patent").to_numpy())
    clean, _ = valuer.value(part)
    part.loc[patents[4], "owner_patents_in_force"] = np.nan
    values, problems = valuer.value(part)
    assert problems == [] and values["value_cny"].iat[patents[4]] > 0
    assert np.isnan(values["income_value_cny"].iat[patents[4]])
    assert np.isnan(values["income_ratio"].iat[patents[4]])  # no cross-check, rather than agreement
    assert values["cross_check_flag"].isna().tolist() == [i == patents[4] for i in range(len(part))]
    others = np.arange(len(part)) != patents[4]
    pd.testing.assert_frame_equal(values[others], clean[others], check_exact=True)
    labelled = part.set_axis([f"a{i}" for i in range(len(part))])
    with pytest.raises(InvalidData) as direct:
        income.patent_income_inputs(
            labelled.iloc[patents],
            labelled["owner_revenue_cny"].iloc[patents],
            labelled["owner_industry"].iloc[patents],
            labelled["owner_patents_in_force"].iloc[patents],
        )
    assert [(p.field, p.row, p.record_id) for p in direct.value.problems] == [
        ("patents_in_force", 4, f"a{patents[4]}")
    ]


def test_income_inputs_and_scorer_outputs_of_a_frame_equal_them_row_by_row(valuer, rows):
    good = rows.drop(index=list(BAD))
    for kind, inputs_of, scorer in (
        ("patent", _patent_inputs, valuer.patent_scorer),
        ("trademark", _trademark_inputs, valuer.trademark_scorer),
    ):
        frame = good[good["asset_kind"] == kind]
        whole = inputs_of(frame)
        by_row = pd.concat([inputs_of(frame.iloc[[i]]) for i in range(len(frame))])
        pd.testing.assert_frame_equal(whole, by_row, check_exact=True)
        assert list(whole.columns) == income.INPUT_COLUMNS
        np.testing.assert_array_equal(
            income.value_from_inputs(whole),
            np.concatenate([income.value_from_inputs(by_row.iloc[[i]]) for i in range(len(by_row))]),
        )
        for method in (scorer.transform, scorer.indicator_scores):
            pd.testing.assert_frame_equal(
                method(frame),
                pd.concat([method(frame.iloc[[i]]) for i in range(len(frame))]),
                check_exact=True,
            )
    empty = income.trademark_income_inputs(good.head(0), 1e6, "software")
    assert list(empty.columns) == income.INPUT_COLUMNS and len(empty) == 0
    assert empty.dtypes.equals(_trademark_inputs(good[good["asset_kind"] == "trademark"].head(2)).dtypes)


def _patent_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    return income.patent_income_inputs(
        frame,
        frame["owner_revenue_cny"],
        frame["owner_industry"],
        frame["owner_patents_in_force"],
        high_tech=frame["owner_high_tech"].fillna(0),
    )


def _trademark_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    return income.trademark_income_inputs(
        frame,
        frame["owner_revenue_cny"],
        frame["owner_industry"],
        high_tech=frame["owner_high_tech"].fillna(0),
    )


@pytest.mark.parametrize("n", [0, 3, 64, 65, 300])
@pytest.mark.parametrize("dtype", ["str", "string", object])
def test_columns_read_text_and_numbers_as_pandas_does(n, dtype):
    """Columns gives what the pandas conversion it stands for gives, at any length, missing values
    (NaN, None, pd.NA) and restriction to rows included."""
    rng = np.random.default_rng(n)
    words = np.array(["invention", "design", None, "utility_model"], dtype=object)[rng.integers(0, 4, n)]
    numbers = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    frame = pd.DataFrame({"word": pd.Series(words, dtype=dtype), "x": numbers, "y": numbers * 2})
    frame["z"] = pd.array(np.where(np.isnan(numbers), None, numbers), dtype="Float64")
    rows = np.flatnonzero(rng.random(n) < 0.5)
    columns = Columns(frame)
    for part, subset in ((columns, frame), (columns.take(rows), frame.iloc[rows])):
        _same(part.get("word", raw), subset["word"].to_numpy())
        _same(part.get("word", text), subset["word"].astype(str).to_numpy())
        for name in ("x", "y", "z"):
            _same(part.get(name), subset[name].to_numpy(dtype="float64", na_value=np.nan))
            _same(part.get(name, raw), subset[name].to_numpy())
        assert [part.labels[i] for i in range(len(part))] == [str(i) for i in subset.index]


RECORD_COLUMNS = {  # name -> values of records (None: missing), each a kind pandas infers differently
    "text": ["invention", None, "design", "utility_model", None],
    "all_missing": [None] * 5,
    "whole": [3, 0, 12, 7, 1],
    "whole_or_missing": [3, None, 12, 7, None],
    "real": [1.5, 2.0, float("nan"), 0.0, -3.25],
    "whole_and_real": [1, 2.5, None, 4, 0.0],
    "flag": [True, False, False, True, True],
    "flag_or_missing": [True, None, False, None, True],
    "mixed": [1, "two", None, 3.0, True],
    "huge": [2**70, 1, None, 5, 6],
}


@pytest.mark.parametrize("name", list(RECORD_COLUMNS))
def test_columns_of_records_read_as_the_columns_of_their_frame(name):
    """Columns.of_records (a request's assets, with no DataFrame built) reads each column, by each
    conversion, as Columns over `DataFrame.from_records` of the same records does: value and type."""
    records = [{name: v} for v in RECORD_COLUMNS[name]]
    frame = pd.DataFrame.from_records(records)
    rows = np.array([0, 2, 3])
    flags = [set_flags] if name not in ("text", "mixed") else []  # a flag column holds numbers
    for conversion in (floats, floats_as_is, raw, text, *flags):
        for part, subset in (
            (Columns.of_records(records, [name]), Columns(frame)),
            (Columns.of_records(records, [name]).take(rows), Columns(frame).take(rows)),
        ):
            try:
                expected = subset.get(name, conversion)
            except (TypeError, ValueError) as e:
                with pytest.raises(type(e)):
                    part.get(name, conversion)
                continue
            _same(part.get(name, conversion), expected)
            assert len(part) == len(subset) and list(part.index) == list(subset.index)
            labels = [part.labels[i] for i in range(len(part))]
            assert labels == [subset.labels[i] for i in range(len(subset))]


def _same(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert [type(v) for v in got] == [type(v) for v in expected]
    assert all(a is b or a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(got, expected, strict=True))


def test_a_patent_left_longer_than_its_legal_term_is_refused_on_both_paths(valuer, rows):
    """A utility model lasts 10 years: 50 left is no patent's figure, and the value (monotone in the
    remaining term) would take it at its word. Refused by row on the table and the record paths."""
    part = rows.drop(index=list(BAD)).head(12).reset_index(drop=True)
    at = int(np.flatnonzero(part["asset_kind"].eq("patent").to_numpy())[0])
    part.loc[at, ["patent_type", "remaining_years"]] = ["utility_model", 50.0]
    table_values, table_problems = valuer.value(part)
    _, record_problems = valuer.value_records(part.to_dict("records"))
    for problems in (table_problems, record_problems):
        assert [(p.field, p.row, p.expected) for p in problems] == [
            ("remaining_years", at, "at most the legal term of a utility_model patent (10 years)")
        ]
    assert (
        np.isnan(table_values["value_cny"].iat[at]) and table_values["value_cny"].drop(index=at).notna().all()
    )


def test_one_request_s_explanation_never_waits_behind_another_s(valuer, rows, monkeypatch):
    """Two requests explained at once (two banks' valuations in the service's threads): the second's
    explanation runs while the first's is still running. With one shared explaining thread, one bank's
    1,000-asset valuation held every other bank's application for the whole of its own (issue 18)."""
    original = ValueModel.explain_rows
    second_ran = threading.Event()
    calls = []

    def explain_rows(self, X, groups, records):
        calls.append(len(records))
        if len(calls) == 1:  # the first holds its thread until the second's explanation has run
            assert second_ran.wait(timeout=30), "the second explanation waited behind the first"
        else:
            second_ran.set()
        return original(self, X, groups, records)

    monkeypatch.setattr(ValueModel, "explain_rows", explain_rows)
    typed = rows.drop(index=list(BAD)).head(6).reset_index(drop=True)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in typed.to_dict(orient="records")
    ]
    with ThreadPoolExecutor(max_workers=2) as requests:
        first = requests.submit(valuer.value_records, records[:5], explain=True)
        while not calls:  # the first request's explanation has started
            time.sleep(0.001)
        second = requests.submit(valuer.value_records, records[5:], explain=True)
        (figures, _), (alone, _) = first.result(timeout=60), second.result(timeout=60)
    assert calls == [5, 1] and all(f is not None for f in figures["factors"] + alone["factors"])
