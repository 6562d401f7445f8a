"""The data model refuses bad records and bad tables alike, listing every problem with where and what.

Each record type has a factory returning a valid record as a dict; a case overrides a few fields of
row 1 in a three-row batch and names the field that must be reported. The same cases run through
`parse_records` (records) and through `records_to_table` + a modified frame + `validate_table` (tables).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData
from features.schema import (
    Appraisal,
    AssetEvent,
    Enterprise,
    LoanApplication,
    LoanOutcome,
    Patent,
    Record,
    Trademark,
    columns,
    parse_records,
    records_to_table,
    validate_table,
)

TODAY = dt.date(2025, 1, 1)
FUTURE = "2025-02-01"  # after TODAY


# --- factories: one valid record per type, as a dict, with overrides ---------------------------


def patent(**overrides) -> dict:
    return {
        "patent_id": "CN202110123456.7",
        "enterprise_id": "E0000001",
        "patent_type": "invention",
        "filing_date": "2021-03-01",
        "grant_date": "2023-05-10",
        "expiry_date": "2041-03-01",
        "legal_status": "valid",
        "ipc_main": "H01M",
        "ipc_count": 2,
        "n_claims": 10,
        "n_independent_claims": 2,
        "backward_citations": 5,
        "family_size": 2,
        "family_countries": 2,
        "n_inventors": 3,
        "in_use": True,
        **overrides,
    }


def trademark(**overrides) -> dict:
    return {
        "trademark_id": "TM00000001",
        "enterprise_id": "E0000001",
        "nice_class": 9,
        "n_goods_services": 8,
        "filing_date": "2018-04-02",
        "registration_date": "2019-01-20",
        "status": "registered",
        "well_known": False,
        "time_honoured": False,
        "in_use": True,
        "revenue_under_mark_cny": 3.5e6,
        **overrides,
    }


def enterprise(**overrides) -> dict:
    return {
        "enterprise_id": "E0000001",
        "report_date": "2024-03-31",
        "industry": "electronics",
        "founded_date": "2015-06-01",
        "registered_capital_cny": 5e6,
        "employees": 40,
        "rd_staff": 8,
        "revenue_cny": 2e7,
        "revenue_growth": 0.1,
        "gross_margin": 0.3,
        "net_profit_cny": 1.5e6,
        "total_assets_cny": 2.4e7,
        "total_liabilities_cny": 1.2e7,
        "current_ratio": 1.4,
        "operating_cash_flow_cny": 1.8e6,
        "rd_spend_cny": 1.2e6,
        "tax_grade": "B",
        "tax_paid_cny": 6e5,
        "overdue_count_24m": 0,
        "max_overdue_days_24m": 0,
        "outstanding_loans_cny": 3e6,
        "guarantees_given_cny": 0.0,
        "court_judgements": 0,
        "enforcement_count": 0,
        "dishonest_debtor": False,
        "admin_penalties": 0,
        "high_tech": True,
        "specialized_sme": False,
        "little_giant": False,
        "tech_sme": True,
        **overrides,
    }


def application(**overrides) -> dict:
    return {
        "application_id": "A0000001",
        "enterprise_id": "E0000001",
        "bank_id": "B01",
        "application_date": "2024-04-15",
        "amount_cny": 2e6,
        "term_months": 12,
        "annual_rate": 0.045,
        "guarantee": "guarantee_company",
        "guarantee_share": 0.6,
        "insurance": True,
        "insurance_share": 0.3,
        "pledged_assets": [
            {"asset_kind": "patent", "asset_id": "CN202110123456.7"},
            {"asset_kind": "trademark", "asset_id": "TM00000001"},
        ],
        **overrides,
    }


def outcome(**overrides) -> dict:
    return {
        "application_id": "A0000001",
        "defaulted_12m": False,
        "default_date": None,
        "recovery_cny": None,
        **overrides,
    }


def event(**overrides) -> dict:
    return {
        "asset_kind": "patent",
        "asset_id": "CN202110123456.7",
        "event_type": "licence",
        "event_date": "2023-06-01",
        **overrides,
    }


def appraisal(**overrides) -> dict:
    return {
        "asset_kind": "patent",
        "asset_id": "CN202110123456.7",
        "appraisal_date": "2024-04-10",
        "value_cny": 1.2e6,
        "source": "appraisal",
        **overrides,
    }


FACTORIES = {
    Patent: patent,
    Trademark: trademark,
    Enterprise: enterprise,
    LoanApplication: application,
    LoanOutcome: outcome,
    AssetEvent: event,
    Appraisal: appraisal,
}
# The field that tells rows apart in a batch (and that a problem's id should show).
ID_FIELD = {
    Patent: "patent_id",
    Trademark: "trademark_id",
    Enterprise: "enterprise_id",
    LoanApplication: "application_id",
    LoanOutcome: "application_id",
    AssetEvent: "asset_id",
    Appraisal: "asset_id",
}
MODELS = list(FACTORIES)


def make(model: type[Record], i: int, **overrides) -> dict:
    """The i-th valid record of a batch (distinct id), with overrides."""
    item = FACTORIES[model]()
    item[ID_FIELD[model]] = f"{item[ID_FIELD[model]]}-{i}"
    return {**item, **overrides}


def batch(model: type[Record], n: int = 3, bad: dict[int, dict] | None = None) -> list[dict]:
    bad = bad or {}
    return [make(model, i, **bad.get(i, {})) for i in range(n)]


def table(model: type[Record], n: int = 3, bad: dict[int, dict] | None = None) -> pd.DataFrame:
    """A valid typed table of n rows, then values replaced as `bad` says (ISO text -> Timestamp for dates)."""
    df = records_to_table(parse_records(model, batch(model, n), today=TODAY), model)
    kinds = {c.name: c.kind for c in columns(model)}
    for row, overrides in (bad or {}).items():
        for name, value in overrides.items():
            df.loc[row, name] = pd.Timestamp(value) if kinds[name] == "date" and value is not None else value
    return df


def expected_id(model: type[Record], item: dict) -> str | None:
    """What a problem's record_id should contain: the row's id, or None for a table without a key."""
    return item[ID_FIELD[model]] if model.key else None


def assert_names_row(problem, model: type[Record], row: int, item: dict) -> None:
    assert problem.row == row, problem
    ident = expected_id(model, item)
    if ident is None:
        assert problem.record_id is None, problem
    else:
        assert problem.record_id is not None and ident in problem.record_id, problem
    text = str(problem)
    assert text.startswith(f"{problem.field}: expected ") and "; got " in text and f"row {row}" in text


# --- one bad value in row 1: (model, overrides of row 1, field reported, value got) ---------------

BAD = [
    # a date in the future
    pytest.param(Patent, {"grant_date": FUTURE}, "grant_date", FUTURE, id="patent-future-grant"),
    pytest.param(Trademark, {"registration_date": FUTURE}, "registration_date", FUTURE, id="tm-future-reg"),
    pytest.param(Enterprise, {"report_date": FUTURE}, "report_date", FUTURE, id="ent-future-report"),
    pytest.param(LoanApplication, {"application_date": FUTURE}, "application_date", FUTURE, id="app-future"),
    pytest.param(
        LoanOutcome,
        {"defaulted_12m": True, "default_date": FUTURE},
        "default_date",
        FUTURE,
        id="outcome-future-default",
    ),
    pytest.param(AssetEvent, {"event_date": FUTURE}, "event_date", FUTURE, id="event-future"),
    pytest.param(Appraisal, {"appraisal_date": FUTURE}, "appraisal_date", FUTURE, id="appraisal-future"),
    # a negative count or amount
    pytest.param(Patent, {"backward_citations": -1}, "backward_citations", -1, id="patent-negative-cites"),
    pytest.param(Trademark, {"n_goods_services": -1}, "n_goods_services", -1, id="tm-negative-goods"),
    pytest.param(Enterprise, {"court_judgements": -2}, "court_judgements", -2, id="ent-negative-judgements"),
    pytest.param(LoanApplication, {"term_months": -12}, "term_months", -12, id="app-negative-term"),
    pytest.param(
        LoanOutcome,
        {"defaulted_12m": True, "default_date": "2024-09-01", "recovery_cny": -1.0},
        "recovery_cny",
        -1.0,
        id="outcome-negative-recovery",
    ),
    pytest.param(Appraisal, {"value_cny": -5.0}, "value_cny", -5.0, id="appraisal-negative-value"),
    # dates out of order
    pytest.param(
        Patent, {"expiry_date": "2020-03-01"}, "expiry_date", "2020-03-01", id="patent-expiry<filing"
    ),
    pytest.param(Patent, {"grant_date": "2020-03-01"}, "grant_date", "2020-03-01", id="patent-grant<filing"),
    pytest.param(
        Trademark,
        {"registration_date": "2017-01-01"},
        "registration_date",
        "2017-01-01",
        id="tm-registration<filing",
    ),
    pytest.param(
        Enterprise, {"founded_date": "2024-06-01"}, "founded_date", "2024-06-01", id="ent-founded>report"
    ),
    # unknown codes
    pytest.param(Patent, {"patent_type": "petty_patent"}, "patent_type", "petty_patent", id="patent-type"),
    pytest.param(Patent, {"ipc_main": "Z99Z"}, "ipc_main", "Z99Z", id="patent-ipc-Z99Z"),
    pytest.param(Enterprise, {"tax_grade": "AA"}, "tax_grade", "AA", id="ent-tax-grade"),
    pytest.param(Enterprise, {"industry": "mining"}, "industry", "mining", id="ent-industry"),
    pytest.param(Trademark, {"nice_class": 46}, "nice_class", 46, id="tm-nice-46"),
    pytest.param(
        AssetEvent,
        {"asset_kind": "trademark", "event_type": "lapse"},
        "event_type",
        "lapse",
        id="event-lapse-on-trademark",
    ),
    pytest.param(
        AssetEvent, {"event_type": "renewal"}, "event_type", "renewal", id="event-renewal-on-patent"
    ),
    pytest.param(LoanApplication, {"guarantee": "bank"}, "guarantee", "bank", id="app-guarantee"),
    pytest.param(Appraisal, {"source": "guess"}, "source", "guess", id="appraisal-source"),
    # other cross-field rules
    pytest.param(Patent, {"n_independent_claims": 11}, "n_independent_claims", 11, id="patent-indep>claims"),
    pytest.param(Enterprise, {"little_giant": True}, "little_giant", True, id="ent-giant-not-sme"),
    pytest.param(LoanApplication, {"guarantee": "none"}, "guarantee_share", 0.6, id="app-share-no-guarantee"),
    pytest.param(LoanOutcome, {"defaulted_12m": True}, "default_date", None, id="outcome-default-no-date"),
]


def _same(got, expected) -> bool:
    if expected is None:  # an empty value; a missing date is shown as 'NaT'
        return got is None or (isinstance(got, float) and np.isnan(got)) or got in (pd.NaT, "NaT")
    return got == expected


@pytest.mark.parametrize("model, overrides, field, got", BAD)
def test_bad_record_is_refused(model, overrides, field, got):
    items = batch(model, bad={1: overrides})
    with pytest.raises(
        InvalidData,
        match=rf"{model.__name__} records refused, 1 problem\(s\):\n  - {field}: "
        r"expected .+; got .+ \(row 1",
    ) as info:
        parse_records(model, items, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field == field and _same(problem.got, got), problem
    if model is not Appraisal:  # see test_appraisal_record_problem_names_the_asset
        assert_names_row(problem, model, 1, items[1])


@pytest.mark.parametrize("model, overrides, field, got", BAD)
def test_bad_table_row_is_refused(model, overrides, field, got):
    df = table(model, bad={1: overrides})
    with pytest.raises(
        InvalidData,
        match=rf"{model.__name__} table refused, 1 problem\(s\):\n  - {field}: "
        r"expected .+; got .+ \(row 1",
    ) as info:
        validate_table(df, model, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field == field and _same(problem.got, got), problem
    assert_names_row(problem, model, 1, {**make(model, 1), **overrides})


# A date field of each type that may not lie in the future, and what else must hold for it.
FUTURE_CASE = {
    Patent: {"grant_date": FUTURE},
    Trademark: {"registration_date": FUTURE},
    Enterprise: {"report_date": FUTURE},
    LoanApplication: {"application_date": FUTURE},
    LoanOutcome: {"defaulted_12m": True, "default_date": FUTURE},
    AssetEvent: {"event_date": FUTURE},
    Appraisal: {"appraisal_date": FUTURE},
}
NOT_AFTER_TODAY = r"expected a date not after today \(2025-01-01\); got '2025-02-01'"


@pytest.mark.parametrize("model", MODELS)
def test_future_dates_are_judged_against_the_given_today(model):
    """'In the future' means after `today=`, so the same record passes when today is later."""
    items = batch(model, bad={1: FUTURE_CASE[model]})
    with pytest.raises(InvalidData, match=NOT_AFTER_TODAY):
        parse_records(model, items, today=TODAY)
    parse_records(model, items, today=dt.date.fromisoformat(FUTURE))
    df = table(model, bad={1: FUTURE_CASE[model]})
    with pytest.raises(InvalidData, match=NOT_AFTER_TODAY):
        validate_table(df, model, today=TODAY)
    validate_table(df, model, today=dt.date.fromisoformat(FUTURE))


# --- duplicate ids ---------------------------------------------------------------------------------

KEYED = [m for m in MODELS if m.key]


@pytest.mark.parametrize("model", KEYED)
def test_duplicate_ids_are_refused_in_records(model):
    items = batch(model)
    items[2] = {**items[2], **{k: items[0][k] for k in model.key}}
    with pytest.raises(InvalidData, match=r"expected a unique id; got .+ \(row 2, id ") as info:
        parse_records(model, items, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field in model.key and problem.row == 2
    assert items[0][ID_FIELD[model]] in problem.record_id


@pytest.mark.parametrize("model", KEYED)
def test_duplicate_ids_are_refused_in_tables(model):
    df = table(model)
    df.loc[2, list(model.key)] = df.loc[0, list(model.key)].to_numpy()
    with pytest.raises(InvalidData, match=r"expected a unique id; got .+ \(row 2, id ") as info:
        validate_table(df, model, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field in model.key and problem.row == 2
    assert make(model, 0)[ID_FIELD[model]] in problem.record_id


def test_events_have_no_key_so_a_repeated_event_is_kept():
    """Two licences on one day are two rows, not a duplicate: the events table has no key."""
    assert AssetEvent.key == ()
    same = [event(), event()]
    assert len(parse_records(AssetEvent, same, today=TODAY)) == 2


# --- no silent coercion ------------------------------------------------------------------------------

WRONG_TYPES = [
    pytest.param(Patent, "n_claims", "12", id="patent-claims-text"),
    pytest.param(Patent, "in_use", 1, id="patent-in_use-int"),
    pytest.param(Patent, "patent_id", 12345, id="patent-id-int"),
    pytest.param(Patent, "filing_date", 20210301, id="patent-date-int"),
    pytest.param(Patent, "filing_date", dt.datetime(2021, 3, 1, 0, 0), id="patent-date-datetime"),
    pytest.param(Patent, "filing_date", "1614556800", id="patent-date-unix-seconds-text"),
    pytest.param(Trademark, "nice_class", "9", id="tm-nice-text"),
    pytest.param(Trademark, "well_known", "false", id="tm-bool-text"),
    pytest.param(Enterprise, "employees", 40.0, id="ent-employees-float"),
    pytest.param(Enterprise, "high_tech", 1, id="ent-bool-int"),
    pytest.param(Enterprise, "revenue_cny", "20000000", id="ent-revenue-text"),
    pytest.param(LoanApplication, "term_months", "12", id="app-term-text"),
    pytest.param(LoanApplication, "insurance", 0, id="app-bool-int"),
    pytest.param(LoanOutcome, "defaulted_12m", 1, id="outcome-bool-int"),
    pytest.param(AssetEvent, "event_date", 45000, id="event-date-int"),
    pytest.param(Appraisal, "value_cny", "1200000", id="appraisal-value-text"),
]


@pytest.mark.parametrize("model, name, value", WRONG_TYPES)
def test_record_with_a_wrong_type_is_refused_not_coerced(model, name, value):
    items = batch(model, bad={1: {name: value}})
    with pytest.raises(
        InvalidData, match=rf"  - {name}: expected .+; got {re.escape(repr(value))} \(row 1"
    ) as info:
        parse_records(model, items, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field == name and problem.got == value and problem.row == 1


WRONG_COLUMNS = [
    pytest.param(Patent, "n_claims", lambda s: s.astype(str), "a numeric column", id="patent-claims-text"),
    pytest.param(Patent, "in_use", lambda s: s.astype("int64"), "a boolean column", id="patent-in_use-int"),
    pytest.param(
        Patent, "filing_date", lambda s: s.dt.strftime("%Y-%m-%d"), "a date column", id="patent-date-text"
    ),
    pytest.param(Trademark, "nice_class", lambda s: s.astype(str), "a numeric column", id="tm-nice-text"),
    pytest.param(Enterprise, "high_tech", lambda s: s.astype("int64"), "a boolean column", id="ent-bool-int"),
    pytest.param(
        LoanOutcome, "defaulted_12m", lambda s: s.astype("int64"), "a boolean column", id="outcome-bool-int"
    ),
    pytest.param(
        Appraisal, "value_cny", lambda s: s.astype(str), "a numeric column", id="appraisal-value-text"
    ),
]


@pytest.mark.parametrize("model, name, convert, expected", WRONG_COLUMNS)
def test_table_column_of_a_wrong_type_is_refused_not_coerced(model, name, convert, expected):
    df = table(model)
    df[name] = convert(df[name])
    with pytest.raises(InvalidData, match=rf"  - {name}: expected {expected}") as info:
        validate_table(df, model, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field == name and problem.row is None and problem.got == str(df[name].dtype)


def test_table_int_column_with_a_fraction_is_refused():
    df = table(Patent)
    df["n_claims"] = df["n_claims"].astype("float64")
    df.loc[2, "n_claims"] = 10.5
    with pytest.raises(InvalidData, match=r"n_claims: expected an integer; got 10.5 \(row 2, id CN"):
        validate_table(df, Patent, today=TODAY)


# Records and tables are documented to be held to the same rules; these values test that promise.
SAME_RULES = [
    pytest.param(Patent, "enterprise_id", "", id="empty-owner-id"),
    pytest.param(Patent, "patent_id", "CN" + "9" * 63, id="id-over-64-chars"),
    pytest.param(Trademark, "enterprise_id", 1234567, id="int-owner-id"),
]


@pytest.mark.parametrize("model, name, value", SAME_RULES)
def test_a_value_a_record_refuses_is_refused_in_a_table_too(model, name, value):
    with pytest.raises(InvalidData, match=name):
        parse_records(model, batch(model, bad={1: {name: value}}), today=TODAY)
    df = table(model)
    if isinstance(value, int):
        df[name] = np.arange(len(df)) + value
    else:
        df.loc[1, name] = value
    with pytest.raises(InvalidData, match=name):
        validate_table(df, model, today=TODAY)


# --- unknown fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_unknown_field_in_a_record_is_refused(model):
    items = batch(model, bad={1: {"colour": "blue"}})
    with pytest.raises(InvalidData, match=r"  - colour: expected .+; got 'blue' \(row 1") as info:
        parse_records(model, items, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field == "colour" and problem.row == 1


def test_extra_table_columns_are_left_alone():
    df = table(Patent).assign(analyst_note="ok")
    validate_table(df, Patent, today=TODAY)


def test_missing_required_column_is_named():
    df = table(Patent).drop(columns=["n_claims", "filing_date"])
    with pytest.raises(InvalidData, match="n_claims: expected a column") as info:
        validate_table(df, Patent, today=TODAY)
    assert {p.field for p in info.value.problems} == {"n_claims", "filing_date"}


# --- every problem at once ---------------------------------------------------------------------------

# Three different faults per type, each in its own row (rows 0, 2 and 4 of five).
THREE_FAULTS = {
    Patent: [{"grant_date": FUTURE}, {"expiry_date": "2020-03-01"}, {"ipc_main": "Z99Z"}],
    Trademark: [{"registration_date": FUTURE}, {"nice_class": 46}, {"registration_date": "2017-01-01"}],
    Enterprise: [{"tax_grade": "AA"}, {"founded_date": "2024-06-01"}, {"court_judgements": -1}],
    LoanApplication: [{"application_date": FUTURE}, {"guarantee": "none"}, {"amount_cny": -1.0}],
    LoanOutcome: [
        {"defaulted_12m": True},
        {"default_date": "2024-09-01"},
        {"defaulted_12m": True, "default_date": FUTURE},
    ],
    AssetEvent: [{"event_date": FUTURE}, {"event_type": "renewal"}, {"event_type": "sold"}],
    Appraisal: [{"value_cny": -1.0}, {"appraisal_date": FUTURE}, {"source": "guess"}],
}


def _three_bad(model):
    return dict(zip((0, 2, 4), THREE_FAULTS[model], strict=True))


@pytest.mark.parametrize("model", MODELS)
def test_every_bad_table_row_is_listed_at_once(model):
    bad = _three_bad(model)
    df = table(model, n=5, bad=bad)
    with pytest.raises(InvalidData, match=r"refused, 3 problem\(s\)") as info:
        validate_table(df, model, today=TODAY)
    problems = sorted(info.value.problems, key=lambda p: p.row)
    assert [p.row for p in problems] == [0, 2, 4]
    for p in problems:
        assert_names_row(p, model, p.row, {**make(model, p.row), **bad[p.row]})


def test_every_bad_record_is_listed_at_once_when_all_faults_are_type_or_bound_errors():
    items = batch(Patent, n=5, bad={0: {"n_claims": "12"}, 2: {"patent_type": "petty"}, 4: {"in_use": 1}})
    with pytest.raises(InvalidData, match=r"3 problem\(s\)") as info:
        parse_records(Patent, items, today=TODAY)
    found = [(p.field, p.row) for p in info.value.problems]
    assert found == [("n_claims", 0), ("patent_type", 2), ("in_use", 4)]


# Faults found by the table checks that parse_records runs after parsing (dates, cross-field rules).
THREE_ROW_RULE_FAULTS = {
    Patent: [{"grant_date": FUTURE}, {"expiry_date": "2020-03-01"}, {"n_independent_claims": 11}],
    Trademark: [
        {"registration_date": FUTURE},
        {"registration_date": "2017-01-01"},
        {"registration_date": None},
    ],
    Enterprise: [{"report_date": FUTURE}, {"founded_date": "2024-06-01"}, {"little_giant": True}],
    LoanApplication: [{"application_date": FUTURE}, {"guarantee": "none"}, {"insurance": False}],
    LoanOutcome: [
        {"defaulted_12m": True},
        {"default_date": "2024-09-01"},
        {"defaulted_12m": True, "default_date": FUTURE},
    ],
    AssetEvent: [
        {"event_date": FUTURE},
        {"event_type": "renewal"},
        {"asset_kind": "trademark", "event_type": "lapse"},
    ],
    Appraisal: [
        {"appraisal_date": FUTURE},
        {"appraisal_date": "2025-03-01"},
        {"appraisal_date": "2026-01-01"},
    ],
}


@pytest.mark.parametrize("model", MODELS)
def test_every_bad_record_is_listed_at_once_when_all_faults_are_row_rules(model):
    bad = dict(zip((0, 2, 4), THREE_ROW_RULE_FAULTS[model], strict=True))
    items = batch(model, n=5, bad=bad)
    with pytest.raises(InvalidData, match=r"refused, 3 problem\(s\)") as info:
        parse_records(model, items, today=TODAY)
    assert sorted(p.row for p in info.value.problems) == [0, 2, 4]


def test_every_bad_record_is_listed_at_once_whatever_the_kind_of_fault():
    """parse_records promises every problem in every record at once. A type error in one record
    must not hide a future date in another or a cross-field fault in a third."""
    items = batch(
        Patent, n=5, bad={0: {"n_claims": "12"}, 2: {"grant_date": FUTURE}, 4: {"expiry_date": "2020-03-01"}}
    )
    with pytest.raises(InvalidData) as info:
        parse_records(Patent, items, today=TODAY)
    assert sorted((p.row, p.field) for p in info.value.problems) == [
        (0, "n_claims"),
        (2, "grant_date"),
        (4, "expiry_date"),
    ]


def test_appraisal_record_problem_names_the_asset():
    """An appraisal's id is (asset_kind, asset_id, appraisal_date); a problem must name the asset,
    not only its kind."""
    items = batch(Appraisal, bad={1: {"value_cny": -5.0}})
    with pytest.raises(InvalidData) as info:
        parse_records(Appraisal, items, today=TODAY)
    (problem,) = info.value.problems
    assert items[1]["asset_id"] in (problem.record_id or ""), problem


# --- the pledged bundle --------------------------------------------------------------------------------


def test_application_with_an_empty_bundle_is_refused():
    with pytest.raises(InvalidData, match=r"pledged_assets: expected .+; got \[\] \(row 0, id A0000001\)"):
        parse_records(LoanApplication, [application(pledged_assets=[])], today=TODAY)


def test_application_without_a_bundle_is_refused():
    """A loan is asked for against pledged IP: a record with no pledged_assets at all must be refused,
    as the portfolio refuses an application with no row in the pledges table."""
    item = application()
    del item["pledged_assets"]
    with pytest.raises(InvalidData, match="pledged_assets"):
        parse_records(LoanApplication, [item], today=TODAY)


def test_pledged_asset_of_an_unknown_kind_is_refused():
    item = application(pledged_assets=[{"asset_kind": "copyright", "asset_id": "X1"}])
    with pytest.raises(InvalidData, match=r"pledged_assets\.0\.asset_kind: expected .+; got 'copyright'"):
        parse_records(LoanApplication, [item], today=TODAY)


# --- round trip ----------------------------------------------------------------------------------------


def _as_cell(kind: str, value):
    if value is None:
        return None
    if kind == "date":
        return pd.Timestamp(value)
    return value


@pytest.mark.parametrize("model", MODELS)
def test_valid_records_round_trip_through_a_table(model):
    items = batch(model)
    records = parse_records(model, items, today=TODAY)
    assert [type(r) for r in records] == [model] * 3
    df = records_to_table(records, model)
    validate_table(df, model, today=TODAY)
    cols = columns(model)
    assert list(df.columns) == [c.name for c in cols]
    for row, item in enumerate(items):
        for col in cols:
            got, want = df[col.name].iat[row], _as_cell(col.kind, item.get(col.name))
            if want is None:
                assert pd.isna(got), (col.name, got)
            else:
                assert got == want, (col.name, got, want)
    kinds = {"int": "int64", "float": "float64", "bool": "bool"}
    for col in cols:
        if col.kind in kinds and not df[col.name].isna().any():
            assert str(df[col.name].dtype) == kinds[col.kind], col.name
        if col.kind == "date":
            assert pd.api.types.is_datetime64_any_dtype(df[col.name]), col.name


def test_dates_may_be_given_as_dates_or_iso_text():
    as_text = parse_records(Patent, [patent()], today=TODAY)[0]
    as_dates = parse_records(
        Patent,
        [
            patent(
                filing_date=dt.date(2021, 3, 1),
                grant_date=dt.date(2023, 5, 10),
                expiry_date=dt.date(2041, 3, 1),
            )
        ],
        today=TODAY,
    )[0]
    assert as_text == as_dates


def test_row_rules_read_dates_with_a_time_zone_and_far_ahead():
    """A table's dates reach the cross-field rules as days, whatever their zone or range."""
    df = table(Patent)
    df["expiry_date"] = df["expiry_date"].astype("datetime64[s]")
    df.loc[0, "expiry_date"] = pd.Timestamp("9999-12-31")  # beyond pandas' nanosecond range
    validate_table(df, Patent, today=TODAY)
    df["expiry_date"] = df["expiry_date"].dt.tz_localize("Asia/Shanghai")
    df.loc[1, "expiry_date"] = df.loc[1, "filing_date"].tz_localize("Asia/Shanghai")
    expected = r"expiry_date: expected an expiry date after the filing date.*\(row 1"
    with pytest.raises(InvalidData, match=expected):
        validate_table(df, Patent, today=TODAY)
