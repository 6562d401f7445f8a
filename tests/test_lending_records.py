"""lending.records on SQLite and PostgreSQL: access rules, paging and filters, reviews, valuations."""

from __future__ import annotations

import math
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import lending.records as records
from features.errors import InvalidData
from lending.db import transaction
from lending.errors import AlreadyDecided, AlreadyReviewed, NotFound, PermissionDenied
from lending.keys import authenticate, create_key
from lending.records import (
    get_application,
    get_valuation,
    is_uscc,
    list_applications,
    outcome,
    review_application,
    save_application,
    save_valuation,
    subsidy_granted,
)
from lending.tables import Application, Decision, Review, Status
from underwriting.documents import differences

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def people(db):
    """Two banks, an evaluator and an admin, as principals."""
    found = {}
    for name, institution, role in [
        ("bank_a", "Bank A", "bank"),
        ("bank_b", "Bank B", "bank"),
        ("evaluator", "Hubei Appraisal Co.", "evaluator"),
        ("admin", "Operator", "admin"),
    ]:
        with transaction(db.factory) as session:
            found[name] = authenticate(session, create_key(session, institution, role))
    return found


def a_request(enterprise="91420700MA4F000001", amount=2_000_000.0):
    return {
        "enterprise_id": enterprise,
        "amount_cny": amount,
        "term_months": 12,
        "bundle": [
            {"kind": "patent", "asset_id": "CN202310000001.X"},
            {"kind": "trademark", "asset_id": "T1"},
        ],
    }


def a_result(pd=0.0314, grade="BBB", recommendation="review"):
    return {
        "valuation": {
            "value_cny": 3_400_000.0,
            "interval": [2_600_000.0, 4_300_000.0],
            "pledge_value_cny": 1.7e6,
        },
        "pd": pd,
        "score": 612.4,
        "grade": grade,
        "recommendation": recommendation,
        "credit_line_cny": 1_500_000.0,
        "expected_loss": {"total_cny": 21_000.5, "bank_cny": 8400.2, "guarantee_cny": 12_600.3},
        "subsidy_cny": 9000.0,
        "reasons": ["R03: short patent remaining life", "R11: tax grade B"],
    }


EXPLANATION = {"base_value": -3.2, "contributions": {"revenue": -0.41, "patent_age": 0.12}}
VERSIONS = {
    "ipcredit-valuation": {"version": "3", "run_id": "a" * 32},
    "ipcredit-scoring": {"version": "5", "run_id": "b" * 32},
}


def save(db, principal, created_at=None, **kwargs) -> Application:
    request = kwargs.pop("request", a_request())
    result = kwargs.pop("result", a_result())
    with transaction(db.factory) as session:
        application = save_application(session, principal, request, result, EXPLANATION, VERSIONS, **kwargs)
        if created_at is not None:
            application.created_at = created_at
    return application


def test_an_application_is_stored_whole_and_pending(db, people):
    saved = save(db, people["bank_a"])
    assert uuid.UUID(saved.id).version == 4
    with transaction(db.factory) as session:
        back = get_application(session, people["bank_a"], saved.id)
    assert back.status is Status.PENDING_REVIEW
    assert (back.request, back.result, back.explanation, back.model_versions) == (
        a_request(),
        a_result(),
        EXPLANATION,
        VERSIONS,
    )
    assert (back.enterprise_id, back.amount_cny, back.grade, back.pd) == (
        "91420700MA4F000001",
        2e6,
        "BBB",
        0.0314,
    )
    assert back.created_at.tzinfo is not None and abs(datetime.now(UTC) - back.created_at) < timedelta(
        minutes=5
    )
    assert back.reviews == []


def test_filter_columns_from_nested_documents_or_given(db, people):
    nested = {"enterprise": {"enterprise_id": "E9"}, "loan": {"amount_cny": 5e5}}
    saved = save(db, people["bank_a"], request=nested, result={"decision": {"pd": 0.2, "grade": "CCC"}})
    assert (saved.enterprise_id, saved.amount_cny, saved.grade, saved.pd) == ("E9", 5e5, "CCC", 0.2)
    given = save(db, people["bank_a"], request={}, result={}, enterprise_id="E7", grade="A", pd=0.01)
    assert (given.enterprise_id, given.amount_cny, given.grade, given.pd) == ("E7", None, "A", 0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"request": [1, 2]}, "request: expected a JSON object"),
        ({"result": {"pd": float("inf")}}, "result.pd: expected a finite number"),
        ({"result": {"grade": 5}}, "grade: expected a grade of 1 to 8 characters; got 5"),
        ({"request": {"amount_cny": "lots"}}, "amount_cny: expected a finite number or nothing; got 'lots'"),
        ({"request": {"when": datetime(2026, 1, 1)}}, r"request\.when: expected a JSON value .*datetime"),
        ({"application_id": "not-a-uuid"}, "application_id: expected a UUID"),
    ],
)
def test_bad_application_records_are_refused_whole(db, people, kwargs, message):
    with pytest.raises(InvalidData, match=message):
        save(db, people["bank_a"], **kwargs)
    with transaction(db.factory) as session:
        assert session.scalar(select(func.count()).select_from(Application)) == 0


def test_model_versions_are_required(db, people):
    with (
        pytest.raises(InvalidData, match="model_versions: expected the versions"),
        transaction(db.factory) as s,
    ):
        save_application(s, people["bank_a"], a_request(), a_result(), EXPLANATION, {})


def test_an_evaluator_does_not_create_applications(db, people):
    with pytest.raises(PermissionDenied, match="needs a bank or admin key; got an evaluator key"):
        save(db, people["evaluator"])
    assert save(db, people["admin"]).institution_id == people["admin"].institution_id


def test_a_bank_never_sees_another_banks_applications(db, people):
    mine = [save(db, people["bank_a"], enterprise_id=f"A{i}") for i in range(3)]
    theirs = save(db, people["bank_b"], enterprise_id="B0")
    with transaction(db.factory) as session:
        for application in mine:
            assert get_application(session, people["bank_b"], application.id) is None
            assert get_application(session, people["bank_a"], application.id).id == application.id
        assert get_application(session, people["bank_a"], theirs.id) is None
        items, total = list_applications(session, people["bank_b"])
        assert ([a.id for a in items], total) == ([theirs.id], 1)
        items, total = list_applications(session, people["bank_a"], page_size=200)
        assert (sorted(a.id for a in items), total) == (sorted(a.id for a in mine), 3)
        # Filters do not widen what a bank sees.
        assert list_applications(session, people["bank_b"], enterprise_id="A0") == ([], 0)
        assert list_applications(session, people["bank_b"], status="pending_review")[1] == 1
        # Not even through a review: banks cannot review at all.
        with pytest.raises(PermissionDenied, match="needs an evaluator or admin key"):
            review_application(session, people["bank_b"], mine[0].id, "approve")


@pytest.mark.parametrize("role", ["evaluator", "admin"])
def test_evaluators_and_admins_see_all(db, people, role):
    saved = [save(db, people[bank]) for bank in ("bank_a", "bank_b", "bank_a")]
    with transaction(db.factory) as session:
        for application in saved:
            assert get_application(session, people[role], application.id).id == application.id
        items, total = list_applications(session, people[role])
        assert (total, {a.id for a in items}) == (3, {a.id for a in saved})


@pytest.mark.parametrize("missing", [str(uuid.uuid4()), "not-a-uuid", "", "' OR 1=1 --"])
def test_unknown_ids_are_none_for_reads_and_not_found_for_reviews(db, people, missing):
    with transaction(db.factory) as session:
        assert get_application(session, people["admin"], missing) is None
        assert get_valuation(session, people["admin"], missing) is None
        with pytest.raises(NotFound, match="no application "):
            review_application(session, people["evaluator"], missing, "approve")


def test_paging_newest_first(db, people):
    saved = [save(db, people["bank_a"], created_at=T0 + timedelta(hours=i)) for i in range(7)]
    newest_first = [a.id for a in reversed(saved)]
    with transaction(db.factory) as session:
        pages = [list_applications(session, people["bank_a"], page=p, page_size=3) for p in (1, 2, 3, 4)]
    assert [total for _, total in pages] == [7, 7, 7, 7]
    assert [[a.id for a in items] for items, _ in pages] == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:7],
        [],
    ]


def test_equal_times_page_stably(db, people):
    saved = {save(db, people["bank_a"], created_at=T0).id for _ in range(5)}
    with transaction(db.factory) as session:
        seen = [
            a.id
            for p in (1, 2, 3)
            for a in list_applications(session, people["bank_a"], page=p, page_size=2)[0]
        ]
    assert len(seen) == 5 and set(seen) == saved


def test_page_size_is_capped(db, people, monkeypatch):
    assert records.MAX_PAGE_SIZE == 200
    monkeypatch.setattr(records, "MAX_PAGE_SIZE", 4)
    for i in range(6):
        save(db, people["bank_a"], created_at=T0 + timedelta(minutes=i))
    with transaction(db.factory) as session:
        items, total = list_applications(session, people["bank_a"], page_size=1000)
        assert (len(items), total) == (4, 6)
        assert len(list_applications(session, people["bank_a"], page=2, page_size=1000)[0]) == 2


def test_filters_by_status_and_date_range(db, people):
    days = [save(db, people["bank_a"], created_at=T0 + timedelta(days=d)) for d in range(5)]
    with transaction(db.factory) as session:
        review_application(session, people["evaluator"], days[1].id, "approve")
        review_application(session, people["evaluator"], days[3].id, "decline")
    with transaction(db.factory) as session:

        def ids(**filters):
            items, total = list_applications(session, people["bank_a"], **filters)
            assert total == len(items)
            return [a.id for a in items]

        assert ids(status="approved") == [days[1].id]
        assert ids(status=Status.PENDING_REVIEW) == [days[4].id, days[2].id, days[0].id]
        # created_from inclusive, created_to exclusive; aware times in any zone
        assert ids(created_from=T0 + timedelta(days=1), created_to=T0 + timedelta(days=3)) == [
            days[2].id,
            days[1].id,
        ]
        east8 = (T0 + timedelta(days=3)).astimezone(datetime.now().astimezone().tzinfo)
        assert ids(created_from=east8) == [days[4].id, days[3].id]
        assert ids(created_to=T0) == []
        assert ids(status="declined", created_from=T0, created_to=T0 + timedelta(days=10)) == [days[3].id]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": "lost"}, "status: expected one of pending_review, approved, declined, overridden"),
        ({"created_from": datetime(2026, 1, 1)}, "created_from: expected a timezone-aware datetime"),
        ({"created_to": "2026-01-01"}, "created_to: expected a timezone-aware datetime"),
        (
            {"created_from": T0, "created_to": T0 - timedelta(seconds=1)},
            r"created_to: expected a time at or after created_from \(.*\); got 2026-11-01T08:59:59\+00:00",
        ),
        ({"page": 0}, "page: expected an integer from 1"),
        ({"page_size": 0}, "page_size: expected an integer from 1"),
        ({"page": 1.5, "page_size": True}, r"2 problem\(s\)"),
    ],
)
def test_bad_listing_arguments_are_refused(db, people, filters, message):
    with pytest.raises(InvalidData, match=message), transaction(db.factory) as session:
        list_applications(session, people["admin"], **filters)


@pytest.mark.parametrize(
    ("decision", "reason", "status"),
    [
        ("approve", None, Status.APPROVED),
        ("decline", "pledged patent lapses in 8 months", Status.DECLINED),
        (Decision.OVERRIDE, "  guarantee from the Ezhou fund covers 80%  ", Status.OVERRIDDEN),
    ],
)
def test_a_review_sets_the_status_and_is_stored(db, people, decision, reason, status):
    saved = save(db, people["bank_a"], result=a_result(recommendation="approve"))
    with transaction(db.factory) as session:
        review = review_application(session, people["evaluator"], saved.id, decision, reason)
    with transaction(db.factory) as session:
        back = get_application(session, people["bank_a"], saved.id)
    assert back.status is status
    assert [(r.id, r.decision, r.reviewer_key_id) for r in back.reviews] == [
        (review.id, Decision(decision), people["evaluator"].key_id)
    ]
    assert back.reviews[0].reason == (reason.strip() if reason else None)
    assert back.result == a_result(recommendation="approve")  # the model's outputs stay as they were
    assert outcome(back.status, "approve") == ("decline" if status is Status.OVERRIDDEN else decision)


@pytest.mark.parametrize(
    ("decision", "reason", "message"),
    [
        ("override", None, "reason: expected a reason for the override; got None"),
        ("override", "   ", "reason: expected a reason for the override"),
        ("maybe", None, "decision: expected one of approve, decline, override; got 'maybe'"),
        ("approve", "x" * 4001, "reason: expected at most 4000 characters"),
    ],
)
def test_bad_reviews_are_refused_and_change_nothing(db, people, decision, reason, message):
    saved = save(db, people["bank_a"])
    with pytest.raises(InvalidData, match=message), transaction(db.factory) as session:
        review_application(session, people["evaluator"], saved.id, decision, reason)
    with transaction(db.factory) as session:
        assert get_application(session, people["admin"], saved.id).status is Status.PENDING_REVIEW
        assert session.scalar(select(func.count()).select_from(Review)) == 0


@pytest.mark.parametrize(
    ("recommended", "decision", "message"),
    [
        (
            "decline",
            "approve",
            "reason: expected a reason for approving against the recommendation to decline",
        ),
        (
            "approve",
            "decline",
            "reason: expected a reason for declining against the recommendation to approve",
        ),
        (
            "review",
            "override",
            "decision: expected approve or decline (the recommendation is review: there is",
        ),
    ],
)
def test_going_against_the_recommendation_needs_a_reason_and_a_side(
    db, people, recommended, decision, message
):
    saved = save(db, people["bank_a"], result=a_result(recommendation=recommended))
    with pytest.raises(InvalidData, match=re.escape(message)), transaction(db.factory) as session:
        review_application(
            session, people["evaluator"], saved.id, decision, "on file" if decision == "override" else None
        )
    with transaction(db.factory) as session:
        assert get_application(session, people["admin"], saved.id).status is Status.PENDING_REVIEW
        review_application(
            session,
            people["evaluator"],
            saved.id,
            decision if decision != "override" else "approve",
            "on file",
        )


def test_an_application_is_reviewed_once(db, people):
    saved = save(db, people["bank_a"])
    with transaction(db.factory) as session:
        review_application(session, people["evaluator"], saved.id, "decline")
    with (
        pytest.raises(AlreadyReviewed, match="is declined; only pending_review"),
        transaction(db.factory) as s,
    ):
        review_application(s, people["admin"], saved.id, "override", "second look")
    with transaction(db.factory) as session:
        back = get_application(session, people["admin"], saved.id)
        assert (back.status, len(back.reviews)) == (Status.DECLINED, 1)


def test_the_database_itself_refuses_an_override_without_reason(db, people):
    saved = save(db, people["bank_a"])
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(
            Review(application_id=saved.id, reviewer_key_id=people["evaluator"].key_id, decision="override")
        )
        session.flush()


def test_status_and_review_land_together_or_not_at_all(db, people):
    saved = save(db, people["bank_a"], result=a_result(recommendation="decline"))
    with pytest.raises(RuntimeError, match="after the review"), transaction(db.factory) as session:
        review_application(session, people["evaluator"], saved.id, "override", "collateral re-appraised")
        raise RuntimeError("failure after the review, before the commit")
    with transaction(db.factory) as session:
        back = get_application(session, people["admin"], saved.id)
        assert (back.status, back.reviews) == (Status.PENDING_REVIEW, [])


def test_valuations_are_stored_and_visible_by_institution(db, people):
    request = {"assets": [{"kind": "patent", "asset_id": "CN1"}]}
    result = {"value_cny": 1.234e6, "interval": [9.1e5, 1.6e6], "explanation": {"claims": 0.3}}
    versions = {"ipcredit-valuation": {"version": "3", "run_id": "c" * 32}}
    records_made = {}
    for name in ("bank_a", "evaluator"):
        with transaction(db.factory) as session:
            records_made[name] = save_valuation(session, people[name], request, result, versions)
    with transaction(db.factory) as session:
        back = get_valuation(session, people["bank_a"], records_made["bank_a"].id)
        assert (back.request, back.result, back.model_versions) == (request, result, versions)
        assert get_valuation(session, people["bank_b"], records_made["bank_a"].id) is None
        assert get_valuation(session, people["bank_a"], records_made["evaluator"].id) is None
        assert get_valuation(session, people["admin"], records_made["bank_a"].id) is not None
        with pytest.raises(InvalidData, match="model_versions: expected the versions"):
            save_valuation(session, people["bank_a"], request, result, {})


def toy_decision(request: dict) -> dict:
    """A deterministic stand-in for the models: float arithmetic whose last bits depend on every input bit."""
    amount, term = request["amount_cny"], request["term_months"]
    logit = -4.1 + 0.37 * math.log(amount) / 3.0 - 0.021 * term + sum(a["weight"] for a in request["assets"])
    pd = 1.0 / (1.0 + math.exp(-logit))
    return {"pd": pd, "score": 600.0 - 28.85 * math.log(pd / (1 - pd)), "line": amount * (1 - pd) / 3}


def test_rerunning_a_stored_request_reproduces_the_stored_result_exactly(db, people):
    request = {
        "amount_cny": 1_234_567.89,
        "term_months": 18,
        "assets": [{"weight": 0.1}, {"weight": 1 / 3}, {"weight": 2.0**-40}],
    }
    with transaction(db.factory) as session:
        saved = save_application(session, people["bank_a"], request, toy_decision(request), {}, VERSIONS)
    with transaction(db.factory) as session:
        stored = get_application(session, people["evaluator"], saved.id)
    assert stored.model_versions == VERSIONS
    assert differences(stored.result, toy_decision(stored.request)) == []
    nudged = dict(stored.request, amount_cny=math.nextafter(stored.request["amount_cny"], 0))  # one ulp
    assert differences(stored.result, toy_decision(nudged)) != []


def test_of_two_concurrent_reviews_exactly_one_wins(db, people):
    saved = save(db, people["bank_a"])
    outcome = {}

    def second_reviewer():
        try:
            with transaction(db.factory) as session:
                review_application(session, people["admin"], saved.id, "approve")
            outcome["second"] = "approved"
        except AlreadyReviewed as e:
            outcome["second"] = e

    with transaction(db.factory) as session:
        review_application(session, people["evaluator"], saved.id, "decline")
        other = threading.Thread(target=second_reviewer)
        other.start()
        other.join(0.5)
        assert other.is_alive()  # waiting on the first reviewer's lock
    other.join(20)
    assert isinstance(outcome["second"], AlreadyReviewed)
    with transaction(db.factory) as session:
        back = get_application(session, people["bank_a"], saved.id)
        assert (back.status, [r.decision for r in back.reviews]) == (Status.DECLINED, [Decision.DECLINE])


def test_the_bank_s_application_id_is_decided_once_per_institution(db, people):
    first = save(db, people["bank_a"], application_ref="BOE-1")
    with pytest.raises(AlreadyDecided, match=first.id):
        save(db, people["bank_a"], application_ref="BOE-1")
    save(db, people["bank_b"], application_ref="BOE-1")  # another bank's own id
    save(db, people["bank_a"])  # no id: never a conflict
    save(db, people["bank_a"])
    with transaction(db.factory) as session:
        _, total = list_applications(session, people["admin"])
    assert total == 4


def test_two_decisions_on_one_id_at_the_same_moment_store_one(db, people):
    outcome = {}

    def second():
        try:
            save(db, people["bank_a"], application_ref="BOE-2")
            outcome["second"] = "stored"
        except AlreadyDecided as e:
            outcome["second"] = e

    with transaction(db.factory) as session:
        save_application(
            session, people["bank_a"], a_request(), a_result(), EXPLANATION, VERSIONS, application_ref="BOE-2"
        )
        other = threading.Thread(target=second)
        other.start()
        other.join(0.5)  # the second waits on the first's write (SQLite lock, PostgreSQL unique index)
    other.join(20)
    assert isinstance(outcome["second"], AlreadyDecided)
    with transaction(db.factory) as session:
        assert list_applications(session, people["admin"])[1] == 1


def test_the_database_itself_refuses_a_second_decision_on_one_id(db, people, monkeypatch):
    import lending.records

    save(db, people["bank_a"], application_ref="BOE-3")
    monkeypatch.setattr(lending.records, "_check_undecided", lambda *args: None)  # both checked at once
    with pytest.raises(AlreadyDecided, match="by another request at the same moment") as caught:
        save(db, people["bank_a"], application_ref="BOE-3")
    assert caught.value.record_id is None
    with transaction(db.factory) as session:
        assert list_applications(session, people["admin"])[1] == 1


def test_the_code_that_decided_is_kept_with_the_record(db, people):
    code = {"commit": "0" * 40, "dirty": False, "package_version": "0.1.0", "code_sha256": "f" * 64}
    saved, before = save(db, people["bank_a"], code=code), save(db, people["bank_a"])
    with transaction(db.factory) as session:
        assert get_application(session, people["bank_a"], saved.id).code == code
        assert get_application(session, people["bank_a"], before.id).code is None  # none given: null
        valued = save_valuation(
            session, people["bank_a"], {"assets": []}, {"assets": []}, VERSIONS, code=code
        )
    with transaction(db.factory) as session:
        assert get_valuation(session, people["bank_a"], valued.id).code == code
    with pytest.raises(InvalidData, match=r"code\.commit: expected a finite number"):
        save(db, people["bank_a"], code={"commit": float("nan")})


def test_a_decline_flag_bars_approval_and_a_decline_limit_needs_only_a_reason(db, people):
    def declined_by(feature: str) -> dict:
        rule = {"code": "R01", "feature": feature, "zh": "-", "en": "-"}
        policy = {"decline_flags": ["dishonest_debtor"], "decline_limits": [["max_overdue_days_24m", 90.0]]}
        return {**a_result(recommendation="decline"), "declined_by": [rule], "policy": policy}

    barred = save(db, people["bank_a"], result=declined_by("dishonest_debtor"))
    for decision in ("approve", "override"):
        with pytest.raises(InvalidData, match="decline flag dishonest_debtor bars new credit"):
            with transaction(db.factory) as session:
                review_application(session, people["evaluator"], barred.id, decision, "collateral is strong")
    arrear = save(db, people["bank_a"], result=declined_by("max_overdue_days_24m"))
    with transaction(db.factory) as session:
        review_application(session, people["evaluator"], arrear.id, "approve", "the arrear was a bank error")
        review_application(session, people["evaluator"], barred.id, "decline")
        assert get_application(session, people["admin"], arrear.id).status is Status.APPROVED


def test_approving_an_application_held_for_review_needs_a_reason(db, people):
    rule = {"code": "R32", "feature": "term_months", "zh": "-", "en": "-"}
    held = {**a_result(recommendation="review"), "held_by": [rule]}
    first, second = save(db, people["bank_a"], result=held), save(db, people["bank_a"], result=held)
    with pytest.raises(
        InvalidData, match=r"reason: expected a reason for approving an exception.*term_months"
    ):
        with transaction(db.factory) as session:
            review_application(session, people["evaluator"], first.id, "approve")
    with transaction(db.factory) as session:
        review_application(session, people["evaluator"], first.id, "approve", "board-approved term")
        review_application(session, people["evaluator"], second.id, "decline")  # declining needs none
        assert get_application(session, people["admin"], first.id).status is Status.APPROVED


def test_approvals_grant_the_subsidy_within_the_enterprise_s_cap_for_the_year(db, people):
    """The programme pays at most the cap per enterprise per year: each approval grants its decision's
    subsidy within what the enterprise's earlier approvals of the same year left, whatever the order of the
    decisions. A decline grants nothing; another year, or another enterprise, has its own cap."""

    def applied(enterprise: str, date: str, subsidy: float) -> Application:
        request = {"loan": {"application_date": date}, "enterprise": {"enterprise_id": enterprise}}
        result = {**a_result(), "interest_subsidy_cny": subsidy, "subsidy_cap_cny": 100_000.0}
        return save(db, people["bank_a"], request=request, result=result, enterprise_id=enterprise)

    first, second, third = (applied("E1", "2026-03-01", s) for s in (60_000.0, 60_000.0, 30_000.0))
    declined = applied("E1", "2026-05-01", 50_000.0)
    next_year, other = applied("E1", "2027-01-02", 70_000.0), applied("E2", "2026-03-01", 60_000.0)
    granted = {}
    with transaction(db.factory) as session:
        for application in (first, second, third, next_year, other):
            review = review_application(session, people["evaluator"], application.id, "approve")
            granted[application.id] = (review.interest_subsidy_cny, review.subsidy_year)
        review = review_application(session, people["evaluator"], declined.id, "decline")
        assert (review.interest_subsidy_cny, review.subsidy_year) == (None, None)
    assert [granted[a.id] for a in (first, second, third)] == [
        (60_000.0, 2026),
        (40_000.0, 2026),
        (0.0, 2026),
    ]
    assert granted[next_year.id] == (70_000.0, 2027) and granted[other.id] == (60_000.0, 2026)
    bank = people["bank_a"].institution_id
    with transaction(db.factory) as session:
        assert subsidy_granted(session, "E1", 2026, bank) == 100_000.0
        assert subsidy_granted(session, "E1", 2027, bank) == 70_000.0
        assert subsidy_granted(session, "E3", 2026, bank) == 0.0
        assert subsidy_granted(session, "E1", 2026, people["bank_b"].institution_id) == 0.0  # its own E1
        assert subsidy_granted(session, "e1", 2026, bank) == 100_000.0  # ids compare regardless of case


def test_a_unified_social_credit_code_shares_the_cap_across_banks_and_an_internal_id_does_not(db, people):
    """The cap is per enterprise: an enterprise named by its unified social credit code is the same one at
    every bank; a bank's internal id (E1) may name another enterprise at another bank."""
    uscc = "91350100M000100Y43"  # a valid code (its check character)

    def approved(who: str, enterprise: str) -> None:
        request = {"loan": {"application_date": "2026-03-01"}}
        result = {**a_result(), "interest_subsidy_cny": 70_000.0, "subsidy_cap_cny": 100_000.0}
        application = save(db, people[who], request=request, result=result, enterprise_id=enterprise)
        with transaction(db.factory) as session:
            review_application(session, people["evaluator"], application.id, "approve")

    not_a_code = "100000000000000001"  # 18 characters, but its check character is wrong: an internal id
    assert is_uscc(uscc) and is_uscc(uscc.lower()) and not is_uscc(not_a_code)
    for who in ("bank_a", "bank_b"):
        approved(who, uscc if who == "bank_a" else uscc.lower())
        approved(who, "E1")
        approved(who, not_a_code)
    with transaction(db.factory) as session:
        for who in ("bank_a", "bank_b"):
            institution = people[who].institution_id
            assert subsidy_granted(session, uscc, 2026, institution) == 100_000.0  # 70,000 + 30,000 left
            assert subsidy_granted(session, "E1", 2026, institution) == 70_000.0  # each bank's own E1
            assert subsidy_granted(session, not_a_code, 2026, institution) == 70_000.0
