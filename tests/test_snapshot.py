"""Point-in-time snapshots: what a patent, a trademark or an enterprise looked like on a given day.

The key guarantee is that nothing dated after the as-of date, and no status taken when the data were
extracted, reaches a snapshot or the features built on it. Each such test is paired with one where an
event on or before the as-of date does change the result, so the check can fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData
from features.pipeline import application_features
from features.portfolio import Portfolio
from features.schema import (
    PATENT_ONLY_EVENTS,
    TRADEMARK_ONLY_EVENTS,
    AssetEvent,
    EventType,
    LegalStatus,
    Patent,
    Trademark,
    TrademarkStatus,
    parse_records,
    records_to_table,
)
from features.snapshot import enterprise_snapshot, patent_snapshot, trademark_snapshot
from features.synth import synthesize
from features.transformers import PatentFeatures, TrademarkFeatures

D = pd.Timestamp("2022-06-30")  # the as-of date of the hand-built tables
DAY = pd.Timedelta(days=1)
CLOCK = dt.date(2100, 1, 1)  # "today" for the record checks: some hand-built events lie after the real today

PATENT_EVENT_TYPES = [e.value for e in EventType if e not in TRADEMARK_ONLY_EVENTS]
TRADEMARK_EVENT_TYPES = [e.value for e in EventType if e not in PATENT_ONLY_EVENTS]

# --- factories --------------------------------------------------------------------------------------


def patent(patent_id: str = "P1", **changes) -> dict:
    """An invention filed 2010, granted mid-2012, in force until 2030 (a valid Patent record)."""
    return {
        "patent_id": patent_id,
        "enterprise_id": "E1",
        "patent_type": "invention",
        "filing_date": dt.date(2010, 1, 1),
        "grant_date": dt.date(2012, 6, 1),
        "expiry_date": dt.date(2030, 1, 1),
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
    } | changes


PATENTS = [
    patent("P1"),
    patent(
        "P2",
        patent_type="utility_model",
        filing_date=dt.date(2015, 3, 1),
        grant_date=dt.date(2015, 12, 1),
        expiry_date=dt.date(2025, 3, 1),
        ipc_main="B23K",
        n_claims=6,
        n_independent_claims=1,
        family_size=1,
        family_countries=1,
        legal_status="lapsed",
    ),
    patent(
        "P3",
        patent_type="design",
        filing_date=dt.date(2021, 7, 1),
        grant_date=dt.date(2022, 1, 10),
        expiry_date=dt.date(2036, 7, 1),
        ipc_main=None,
        ipc_count=0,
        n_claims=0,
        n_independent_claims=0,
        backward_citations=0,
        family_size=1,
        family_countries=1,
        in_use=False,
    ),
]


def trademark(trademark_id: str = "T1", **changes) -> dict:
    """A mark filed 2007 and registered 2008-05-01 (its first 10-year term ends in 2018)."""
    return {
        "trademark_id": trademark_id,
        "enterprise_id": "E1",
        "nice_class": 9,
        "n_goods_services": 8,
        "filing_date": dt.date(2007, 6, 1),
        "registration_date": dt.date(2008, 5, 1),
        "status": "registered",
        "well_known": False,
        "time_honoured": False,
        "in_use": True,
        "revenue_under_mark_cny": 2_000_000.0,
    } | changes


TRADEMARKS = [
    trademark("T1"),
    trademark(
        "T2",
        nice_class=35,
        filing_date=dt.date(2019, 1, 1),
        registration_date=dt.date(2020, 3, 1),
        status="expired",
        revenue_under_mark_cny=None,
    ),
    trademark("T3", nice_class=30, filing_date=dt.date(2021, 9, 1), registration_date=dt.date(2022, 9, 1)),
]


def event(asset_id: str, event_type: str, date: str | pd.Timestamp, kind: str = "patent") -> dict:
    return {
        "asset_kind": kind,
        "asset_id": asset_id,
        "event_type": event_type,
        "event_date": pd.Timestamp(date).date(),
    }


EVENTS = [
    event("P1", "citation_received", "2013-05-01"),
    event("P1", "citation_received", "2016-01-01"),
    event("P1", "citation_received", "2019-06-30"),
    event("P1", "licence", "2018-01-01"),
    event("P2", "transfer", "2017-01-01"),
    event("P2", "invalidation_request", "2020-02-01"),
    event("T1", "renewal", "2018-03-15", "trademark"),
    event("T1", "licence", "2015-01-01", "trademark"),
    event("T2", "opposition", "2019-08-01", "trademark"),
]


def patents_table(*items: dict) -> pd.DataFrame:
    """A typed patents table; the records are checked first, so the fixtures are valid data."""
    return records_to_table(parse_records(Patent, items or PATENTS, today=CLOCK), Patent)


def trademarks_table(*items: dict) -> pd.DataFrame:
    return records_to_table(parse_records(Trademark, items or TRADEMARKS, today=CLOCK), Trademark)


def events_table(*items: dict) -> pd.DataFrame:
    return records_to_table(parse_records(AssetEvent, items, today=CLOCK), AssetEvent)


def with_events(events: pd.DataFrame, *items: dict) -> pd.DataFrame:
    return pd.concat([events, events_table(*items)], ignore_index=True)


def rows(key: str, *pairs: tuple[str, str | pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({key: [p[0] for p in pairs], "as_of": pd.to_datetime([p[1] for p in pairs])})


def patent_rows(as_of=D) -> pd.DataFrame:
    return rows("patent_id", *[(p["patent_id"], as_of) for p in PATENTS])


def trademark_rows(as_of=D) -> pd.DataFrame:
    return rows("trademark_id", *[(t["trademark_id"], as_of) for t in TRADEMARKS])


@pytest.fixture(scope="module")
def patents() -> pd.DataFrame:
    return patents_table()


@pytest.fixture(scope="module")
def trademarks() -> pd.DataFrame:
    return trademarks_table()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return events_table(*EVENTS)


def assert_frames_differ(left: pd.DataFrame, right: pd.DataFrame) -> None:
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(left, right)


# --- point in time: patents --------------------------------------------------------------------------


def test_hand_built_patents_at_the_as_of_date(patents, events):
    snap = patent_snapshot(patent_rows(), patents, events)
    assert list(snap["status_as_of"]) == ["valid", "valid", "valid"]  # P2 is `lapsed` at extraction
    assert list(snap["forward_citations"]) == [3, 0, 0]
    assert list(snap["licences"]) == [1, 0, 0]
    assert list(snap["transfers"]) == [0, 1, 0]
    assert list(snap["invalidation_requests"]) == [0, 1, 0]
    assert "legal_status" not in snap.columns
    assert (snap["as_of"] == D).all()


@pytest.mark.parametrize("days_after", [1, 5_000])
@pytest.mark.parametrize("event_type", PATENT_EVENT_TYPES)
def test_patent_events_after_the_as_of_date_change_nothing(patents, events, event_type, days_after):
    later = with_events(events, *[event(p["patent_id"], event_type, D + days_after * DAY) for p in PATENTS])
    before = patent_snapshot(patent_rows(), patents, events)
    after = patent_snapshot(patent_rows(), patents, later)
    pd.testing.assert_frame_equal(after, before)
    features = PatentFeatures().fit(before)
    pd.testing.assert_frame_equal(features.transform(after), features.transform(before))


@pytest.mark.parametrize("legal_status", [s.value for s in LegalStatus] + ["anything at all", None])
def test_the_extraction_time_legal_status_is_never_used(patents, events, legal_status):
    changed = patents.assign(legal_status=legal_status)
    before = patent_snapshot(patent_rows(), patents, events)
    after = patent_snapshot(patent_rows(), changed, events)
    pd.testing.assert_frame_equal(after, before)
    features = PatentFeatures().fit(before)
    pd.testing.assert_frame_equal(features.transform(after), features.transform(before))


@pytest.mark.parametrize("days_before", [0, 1], ids=["on", "before"])
@pytest.mark.parametrize(
    "event_type, column, expected",
    [
        ("citation_received", "forward_citations", [4, 1, 1]),
        ("licence", "licences", [2, 1, 1]),
        ("lapse", "status_as_of", ["lapsed"] * 3),
        ("invalidated", "status_as_of", ["invalidated"] * 3),
    ],
)
def test_a_patent_event_on_or_before_the_as_of_date_counts(
    patents, events, event_type, column, expected, days_before
):
    """The counterpart of the tests above: the same events, dated on or before D, do change the features."""
    on_or_before = D - days_before * DAY
    earlier = with_events(events, *[event(p["patent_id"], event_type, on_or_before) for p in PATENTS])
    before = patent_snapshot(patent_rows(), patents, events)
    after = patent_snapshot(patent_rows(), patents, earlier)
    assert list(after[column]) == expected
    features = PatentFeatures().fit(before)
    assert_frames_differ(features.transform(after), features.transform(before))


# --- point in time: trademarks -----------------------------------------------------------------------


def test_hand_built_trademarks_at_the_as_of_date(trademarks, events):
    snap = trademark_snapshot(trademark_rows(), trademarks, events)
    # T1 was renewed in 2018, T2 is in its first term (table says `expired`), T3 registers after D.
    assert list(snap["status_as_of"]) == ["registered", "registered", "pending"]
    assert list(snap["renewals"]) == [1, 0, 0]
    assert list(snap["oppositions"]) == [0, 1, 0]
    assert snap["registration_date"].isna().tolist() == [False, False, True]
    assert "status" not in snap.columns


@pytest.mark.parametrize("days_after", [1, 5_000])
@pytest.mark.parametrize("event_type", TRADEMARK_EVENT_TYPES)
def test_trademark_events_after_the_as_of_date_change_nothing(trademarks, events, event_type, days_after):
    later = with_events(
        events, *[event(t["trademark_id"], event_type, D + days_after * DAY, "trademark") for t in TRADEMARKS]
    )
    before = trademark_snapshot(trademark_rows(), trademarks, events)
    after = trademark_snapshot(trademark_rows(), trademarks, later)
    pd.testing.assert_frame_equal(after, before)
    features = TrademarkFeatures().fit(before)
    pd.testing.assert_frame_equal(features.transform(after), features.transform(before))


@pytest.mark.parametrize("status", [s.value for s in TrademarkStatus] + ["anything at all", None])
def test_the_extraction_time_trademark_status_is_never_used(trademarks, events, status):
    before = trademark_snapshot(trademark_rows(), trademarks, events)
    after = trademark_snapshot(trademark_rows(), trademarks.assign(status=status), events)
    pd.testing.assert_frame_equal(after, before)
    features = TrademarkFeatures().fit(before)
    pd.testing.assert_frame_equal(features.transform(after), features.transform(before))


@pytest.mark.parametrize("days_before", [0, 1], ids=["on", "before"])
@pytest.mark.parametrize(
    "event_type, column, expected",
    [
        ("renewal", "renewals", [2, 1, 1]),
        ("licence", "licences", [2, 1, 1]),
        ("invalidated", "status_as_of", ["invalidated"] * 3),
        ("cancellation", "status_as_of", ["cancelled"] * 3),
    ],
)
def test_a_trademark_event_on_or_before_the_as_of_date_counts(
    trademarks, events, event_type, column, expected, days_before
):
    earlier = with_events(
        events,
        *[event(t["trademark_id"], event_type, D - days_before * DAY, "trademark") for t in TRADEMARKS],
    )
    before = trademark_snapshot(trademark_rows(), trademarks, events)
    after = trademark_snapshot(trademark_rows(), trademarks, earlier)
    assert list(after[column]) == expected
    features = TrademarkFeatures().fit(before)
    assert_frames_differ(features.transform(after), features.transform(before))


def test_a_renewal_on_or_before_the_as_of_date_extends_the_term(trademarks, events):
    renewed = with_events(events, event("T2", "renewal", D, "trademark"))
    before = trademark_snapshot(trademark_rows(), trademarks, events).set_index("trademark_id")
    after = trademark_snapshot(trademark_rows(), trademarks, renewed).set_index("trademark_id")
    gained = (after.loc["T2", "expiry_as_of"] - before.loc["T2", "expiry_as_of"]).days
    assert gained in (3652, 3653)
    pd.testing.assert_series_equal(after.loc["T1"], before.loc["T1"])


# --- status as of a date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patent_id, as_of, extra, status",
    [
        pytest.param("P1", "2015-01-01", [], "valid", id="valid"),
        pytest.param("P1", "2011-01-01", [], "pending", id="pending-grant-after-as-of"),
        pytest.param("P1", "2012-06-01", [], "valid", id="valid-on-grant-day"),
        pytest.param("P1", "2017-01-01", [event("P1", "lapse", "2016-01-01")], "lapsed", id="lapsed"),
        pytest.param(
            "P1", "2015-12-31", [event("P1", "lapse", "2016-01-01")], "valid", id="valid-before-lapse"
        ),
        pytest.param("P2", "2025-03-01", [], "expired", id="expired-on-expiry-day"),
        pytest.param("P2", "2025-02-28", [], "valid", id="valid-day-before-expiry"),
        pytest.param(
            "P1", "2019-01-01", [event("P1", "invalidated", "2019-01-01")], "invalidated", id="invalidated"
        ),
        pytest.param("P2", "2021-01-01", [], "valid", id="valid-with-pending-invalidation-request"),
        pytest.param(
            "P2", "2026-01-01", [event("P2", "lapse", "2020-01-01")], "lapsed", id="lapsed-then-term-ends"
        ),
    ],
)
def test_patent_status_as_of_a_date(patents, events, patent_id, as_of, extra, status):
    snap = patent_snapshot(rows("patent_id", (patent_id, as_of)), patents, with_events(events, *extra))
    assert snap["status_as_of"].tolist() == [status]


def test_a_grant_after_the_as_of_date_is_not_known_yet(patents, events):
    snap = patent_snapshot(rows("patent_id", ("P1", "2011-01-01"), ("P1", "2013-01-01")), patents, events)
    assert snap["grant_date"].isna().tolist() == [True, False]


@pytest.mark.parametrize(
    "trademark_id, as_of, extra, status",
    [
        pytest.param("T2", "2021-01-01", [], "registered", id="registered"),
        pytest.param("T2", "2019-06-01", [], "pending", id="pending-registration-after-as-of"),
        pytest.param("T1", "2018-06-01", [], "expired", id="expired-10-years-after-registration"),
        pytest.param("T1", "2018-04-01", [], "registered", id="registered-just-before-10-years"),
        pytest.param(
            "T1",
            "2018-06-01",
            [event("T1", "renewal", "2018-03-15", "trademark")],
            "registered",
            id="renewed",
        ),
        pytest.param(
            "T1",
            "2018-06-01",
            [event("T1", "renewal", "2018-07-01", "trademark")],
            "expired",
            id="renewal-recorded-after-as-of",
        ),
        pytest.param(
            "T1",
            "2028-06-01",
            [event("T1", "renewal", "2018-03-15", "trademark")],
            "expired",
            id="expired-20-years-after-registration-with-one-renewal",
        ),
        pytest.param(
            "T1",
            "2028-06-01",
            [
                event("T1", "renewal", "2018-03-15", "trademark"),
                event("T1", "renewal", "2028-03-15", "trademark"),
            ],
            "registered",
            id="renewed-twice",
        ),
        pytest.param(
            "T2",
            "2021-01-01",
            [event("T2", "cancellation", "2020-12-01", "trademark")],
            "cancelled",
            id="cancelled",
        ),
        pytest.param(
            "T2",
            "2021-01-01",
            [event("T2", "invalidated", "2020-12-01", "trademark")],
            "invalidated",
            id="invalidated",
        ),
    ],
)
def test_trademark_status_as_of_a_date(trademark_id, as_of, extra, status):
    snap = trademark_snapshot(
        rows("trademark_id", (trademark_id, as_of)), trademarks_table(), events_table(*extra)
    )
    assert snap["status_as_of"].tolist() == [status]


def test_trademark_expiry_runs_ten_years_per_term():
    renewal = event("T1", "renewal", "2018-03-15", "trademark")
    snap = trademark_snapshot(
        rows("trademark_id", ("T1", "2018-01-01"), ("T1", "2018-06-01")),
        trademarks_table(),
        events_table(renewal),
    )
    registered = pd.Timestamp("2008-05-01")
    years = (snap["expiry_as_of"] - registered).dt.days / 365.25
    assert years.round(2).tolist() == [10.0, 20.0]


# --- several dates in one call ---------------------------------------------------------------------


def test_the_same_patent_at_two_dates_gets_two_rows_of_counts(patents, events):
    snap = patent_snapshot(
        rows("patent_id", ("P1", "2014-01-01"), ("P2", D), ("P1", "2020-01-01")), patents, events
    )
    assert snap["patent_id"].tolist() == ["P1", "P2", "P1"]
    assert snap["forward_citations"].tolist() == [1, 0, 3]
    assert snap["licences"].tolist() == [0, 0, 1]
    assert snap["as_of"].tolist() == [pd.Timestamp("2014-01-01"), D, pd.Timestamp("2020-01-01")]


def test_the_same_trademark_at_two_dates_gets_two_rows(trademarks, events):
    request = rows("trademark_id", ("T1", "2014-01-01"), ("T1", "2019-01-01"))
    snap = trademark_snapshot(request, trademarks, events)
    assert snap["renewals"].tolist() == [0, 1]
    assert snap["licences"].tolist() == [0, 1]


def test_snapshot_rows_keep_the_index_of_the_request(patents, events):
    request = rows("patent_id", ("P3", D), ("P1", D)).set_axis(["A9", "A1"])
    snap = patent_snapshot(request, patents, events)
    assert snap.index.tolist() == ["A9", "A1"]
    assert snap["patent_id"].tolist() == ["P3", "P1"]


# --- refusals --------------------------------------------------------------------------------------


def test_an_unknown_patent_is_refused_naming_the_row(patents, events):
    with pytest.raises(
        InvalidData,
        match=r"patent_id: expected an id present in the patents table; "
        r"got 'CN-NOPE' \(row 1\)",
    ):
        patent_snapshot(rows("patent_id", ("P1", D), ("CN-NOPE", D)), patents, events)


def test_an_unknown_trademark_is_refused_naming_the_row(trademarks, events):
    with pytest.raises(
        InvalidData,
        match=r"trademark_id: expected an id present in the trademarks table; "
        r"got 'TM-NOPE' \(row 0\)",
    ):
        trademark_snapshot(rows("trademark_id", ("TM-NOPE", D)), trademarks, events)


def test_an_as_of_date_before_filing_is_refused_naming_the_row(patents, events):
    with pytest.raises(InvalidData) as caught:
        patent_snapshot(
            rows("patent_id", ("P1", D), ("P2", "2015-02-28"), ("P3", "2021-07-01")), patents, events
        )
    assert [(p.field, p.row, p.record_id, p.got) for p in caught.value.problems] == [
        ("as_of", 1, "P2", "2015-02-28")
    ]
    message = "as_of: expected a date on or after the filing date; got '2015-02-28' (row 1, id P2)"
    assert message in str(caught.value)


def test_a_trademark_as_of_date_before_filing_is_refused(trademarks, events):
    with pytest.raises(InvalidData, match=r"as_of: .*filing date; got '2021-08-31' \(row 0, id T3\)"):
        trademark_snapshot(rows("trademark_id", ("T3", "2021-08-31")), trademarks, events)


# --- enterprises ---------------------------------------------------------------------------------------

REPORTS = pd.DataFrame(
    {
        "enterprise_id": ["E1", "E1", "E1", "E2"],
        "report_date": pd.to_datetime(["2021-03-31", "2020-03-31", "2022-03-31", "2021-06-30"]),
        "revenue_cny": [2.0, 1.0, 3.0, 10.0],
    }
)


@pytest.mark.parametrize(
    "enterprise_id, as_of, report",
    [
        pytest.param("E1", "2021-12-31", "2021-03-31", id="latest-before"),
        pytest.param("E1", "2021-03-31", "2021-03-31", id="same-day"),
        pytest.param("E1", "2021-03-30", "2020-03-31", id="day-before-a-report"),
        pytest.param("E1", "2030-01-01", "2022-03-31", id="long-after"),
        pytest.param("E2", "2021-07-01", "2021-06-30", id="other-enterprise"),
    ],
)
def test_enterprise_snapshot_takes_the_latest_report_on_or_before_the_date(enterprise_id, as_of, report):
    request = pd.DataFrame({"enterprise_id": [enterprise_id], "as_of": [pd.Timestamp(as_of)]})
    snap = enterprise_snapshot(request, REPORTS)
    assert snap["report_date"].tolist() == [pd.Timestamp(report)]
    assert (snap["report_date"] <= snap["as_of"]).all()


def test_enterprise_snapshot_keeps_row_order_and_index():
    request = pd.DataFrame(
        {
            "enterprise_id": ["E2", "E1", "E1"],
            "as_of": pd.to_datetime(["2022-01-01", "2022-06-01", "2020-06-01"]),
        },
        index=["A3", "A1", "A2"],
    )
    snap = enterprise_snapshot(request, REPORTS)
    assert snap.index.tolist() == ["A3", "A1", "A2"]
    assert snap["revenue_cny"].tolist() == [10.0, 3.0, 1.0]


def test_a_later_report_never_enters_the_enterprise_snapshot():
    request = pd.DataFrame(
        {"enterprise_id": ["E1", "E2"], "as_of": pd.to_datetime(["2021-12-31", "2021-07-01"])}
    )
    later = pd.DataFrame(
        {
            "enterprise_id": ["E1", "E2"],
            "report_date": pd.to_datetime(["2022-01-01", "2021-07-02"]),
            "revenue_cny": [99.0, 99.0],
        }
    )
    before = enterprise_snapshot(request, REPORTS)
    after = enterprise_snapshot(request, pd.concat([REPORTS, later], ignore_index=True))
    pd.testing.assert_frame_equal(after, before)
    same_day = later.assign(report_date=request["as_of"])  # the counterpart: a report on the day is used
    snap = enterprise_snapshot(request, pd.concat([REPORTS, same_day]))
    assert snap["revenue_cny"].tolist() == [99.0, 99.0]


@pytest.mark.parametrize(
    "enterprise_id, as_of",
    [("E2", "2021-06-29"), ("E9", "2021-06-29")],
    ids=["no-report-yet", "unknown-enterprise"],
)
def test_an_enterprise_without_a_report_by_then_is_refused(enterprise_id, as_of):
    request = pd.DataFrame(
        {"enterprise_id": ["E1", enterprise_id], "as_of": pd.to_datetime(["2022-01-01", as_of])}
    )
    message = (
        r"enterprise_id: expected a credit snapshot dated on or before the as-of date; "
        rf"got 'none' \(row 1, id {enterprise_id}\)"
    )
    with pytest.raises(InvalidData, match=message):
        enterprise_snapshot(request, REPORTS)


def test_enterprise_snapshot_of_no_rows_is_empty():
    """BUG: with no rows the left key column becomes object dtype and merge_asof refuses to match it
    with the str-typed enterprise ids (pandas MergeError) instead of returning an empty frame."""
    request = pd.DataFrame(
        {"enterprise_id": pd.Series([], dtype="str"), "as_of": pd.Series([], dtype="datetime64[ms]")}
    )
    assert len(enterprise_snapshot(request, REPORTS)) == 0


# --- application features on a synthetic portfolio ---------------------------------------------------


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    return synthesize(400, seed=2)


@pytest.fixture(scope="module")
def baseline(portfolio) -> pd.DataFrame:
    return application_features(portfolio)


def _pledged(p: Portfolio) -> pd.DataFrame:
    return p.pledges.merge(
        p.applications[["application_id", "application_date", "enterprise_id"]], on="application_id"
    )


def _one_report_per_applicant(p: Portfolio, apps: pd.Series) -> pd.DataFrame:
    reports = p.enterprises[p.enterprises["enterprise_id"].isin(apps.index)]
    return reports.drop_duplicates("enterprise_id", keep="last").copy()


def _events_of_every_type(kind: str, ids, dates, types: list[str]) -> pd.DataFrame:
    ids, dates = np.asarray(ids, dtype=object), pd.to_datetime(pd.Series(dates)).to_numpy()
    return pd.DataFrame(
        {
            "asset_kind": kind,
            "asset_id": np.tile(ids, len(types)),
            "event_type": np.repeat(types, len(ids)),
            "event_date": np.tile(dates, len(types)),
        }
    )


def test_application_features_ignore_everything_after_each_application(portfolio, baseline):
    pledged = _pledged(portfolio)
    last = portfolio.applications["application_date"].max()
    later = [portfolio.events]
    for kind, types in (("patent", PATENT_EVENT_TYPES), ("trademark", TRADEMARK_EVENT_TYPES)):
        # an asset pledged again later is read by the later application: events after its last pledge
        of_kind = pledged[pledged["asset_kind"] == kind]
        mine = of_kind.groupby("asset_id", as_index=False)["application_date"].max()
        for days in (1, 400):  # the day after the last pledging application, and a year later
            dates = mine["application_date"] + days * DAY
            later.append(_events_of_every_type(kind, mine["asset_id"], dates, types))
        every = portfolio.patents["patent_id"] if kind == "patent" else portfolio.trademarks["trademark_id"]
        later.append(_events_of_every_type(kind, every, [last + DAY] * len(every), types))
    events = pd.concat(later, ignore_index=True)
    # A newer credit report for each applicant, dated the day after its last application, with very
    # different figures.
    apps = portfolio.applications.groupby("enterprise_id")["application_date"].max()
    newer = _one_report_per_applicant(portfolio, apps)
    newer["report_date"] = (newer["enterprise_id"].map(apps) + DAY).astype(newer["report_date"].dtype)
    newer[["revenue_cny", "net_profit_cny", "overdue_count_24m"]] = [1.0, -1e9, 99]
    changed = dataclasses.replace(
        portfolio,
        events=events,
        enterprises=pd.concat([portfolio.enterprises, newer], ignore_index=True),
        patents=portfolio.patents.assign(legal_status="withdrawn"),
        trademarks=portfolio.trademarks.assign(status="cancelled"),
    )
    assert len(changed.events) > 2 * len(portfolio.events)
    pd.testing.assert_frame_equal(application_features(changed), baseline)


def test_a_renewal_on_the_application_date_does_change_application_features(portfolio, baseline):
    pledged = _pledged(portfolio)
    marks = pledged[pledged["asset_kind"] == "trademark"]
    assert len(marks) > 10
    renewals = _events_of_every_type("trademark", marks["asset_id"], marks["application_date"], ["renewal"])
    events = pd.concat([portfolio.events, renewals], ignore_index=True)
    changed = dataclasses.replace(portfolio, events=events)
    after = application_features(changed)
    moved = after["mean_remaining_years"] - baseline["mean_remaining_years"]
    has_mark = baseline.index.isin(marks["application_id"])
    assert (moved[has_mark] > 1).all() and (moved[~has_mark] == 0).all()


def test_a_newer_report_on_the_application_date_does_change_application_features(portfolio, baseline):
    """A report dated on an enterprise's last application is read by it (and by no earlier one)."""
    apps = portfolio.applications.groupby("enterprise_id")["application_date"].max()
    newer = _one_report_per_applicant(portfolio, apps)
    newer["report_date"] = newer["enterprise_id"].map(apps).astype(newer["report_date"].dtype)
    newer["revenue_cny"] = newer["revenue_cny"] * 2
    enterprises = pd.concat([portfolio.enterprises, newer], ignore_index=True)
    changed = dataclasses.replace(portfolio, enterprises=enterprises)
    after = application_features(changed)
    loans = portfolio.applications.set_index("application_id").loc[baseline.index]
    last = (loans["application_date"] == loans["enterprise_id"].map(apps)).to_numpy()
    moved = (after["log_revenue"] - baseline["log_revenue"]).to_numpy()
    assert last.any() and (~last).any()
    assert np.all(moved[~last] == 0)
    assert np.all(moved[last] != 0)  # the last application reads the newer report
