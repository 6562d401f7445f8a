"""The subsidy an enterprise was granted (issue 18 item 11, the lock of item 14d), on SQLite and PostgreSQL.

The read is one statement on one row of subsidy_totals, by its primary key, whatever the enterprise's history
(counted statements and the query plan, not timings: benchmarks/subsidy.py times it); the totals are kept
with the approvals and summed from the reviews by revision 0006; two approvals at once hold the cap.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, insert, select, text

from lending.db import alembic_config, migrate, reading, transaction
from lending.keys import authenticate, create_key
from lending.records import review_application, save_application, subsidy_granted
from lending.tables import ALL_BANKS, Application, Review, Status, SubsidyTotal

USCC = "91350100M000100Y43"  # a unified social credit code: one cap at every bank
CAP = 100_000.0
VERSIONS = {"ipcredit-scoring": {"version": "1", "run_id": "b" * 32}}


@pytest.fixture
def people(db):
    found = {}
    for name, institution, role in [
        ("bank_a", "Bank A", "bank"),
        ("bank_b", "Bank B", "bank"),
        ("evaluator", "Programme", "evaluator"),
    ]:
        with transaction(db.factory) as session:
            found[name] = authenticate(session, create_key(session, institution, role))
    return found


def applied(db, principal, enterprise: str, subsidy: float, date: str = "2026-03-01") -> Application:
    request = {"loan": {"application_date": date}, "enterprise": {"enterprise_id": enterprise}}
    result = {"recommendation": "review", "interest_subsidy_cny": subsidy, "subsidy_cap_cny": CAP}
    with transaction(db.factory) as session:
        return save_application(session, principal, request, result, {}, VERSIONS, enterprise_id=enterprise)


def approved(db, evaluator, application: Application) -> float:
    with transaction(db.factory) as session:
        return review_application(session, evaluator, application.id, "approve").interest_subsidy_cny


def history(db, principal, enterprise: str, count: int) -> None:
    """`count` applications of the enterprise already on record, written in one statement."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "institution_id": principal.institution_id,
            "status": Status.PENDING_REVIEW,
            "request": {"loan": {"application_date": "2026-01-01"}},
            "result": {"recommendation": "review", "interest_subsidy_cny": 1.0},
            "explanation": {},
            "model_versions": VERSIONS,
            "enterprise_id": enterprise,
        }
        for _ in range(count)
    ]
    if rows:
        with transaction(db.factory) as session:
            session.execute(insert(Application), rows)


def statements_of_a_read(db, enterprise: str, institution_id: int) -> list[str]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with reading(db.factory) as session:
            subsidy_granted(session, enterprise, 2026, institution_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("prior", [0, 1_000])
def test_the_subsidy_read_is_one_statement_on_one_row_whatever_the_history(db, people, prior):
    """Item 11: the read walked every application of the enterprise with a review lookup each; it is now one
    SELECT of subsidy_totals, the same with no history and with a thousand prior applications."""
    history(db, people["bank_a"], USCC, prior)
    first = applied(db, people["bank_a"], USCC, 70_000.0)
    assert approved(db, people["evaluator"], first) == 70_000.0
    selects = statements_of_a_read(db, USCC, people["bank_b"].institution_id)
    assert len(selects) == 1, selects
    assert "subsidy_totals" in selects[0]
    assert "applications" not in selects[0] and "reviews" not in selects[0]
    with reading(db.factory) as session:
        assert subsidy_granted(session, USCC, 2026, people["bank_b"].institution_id) == 70_000.0


def test_the_subsidy_read_searches_the_primary_key(db, people):
    """The one statement finds its row through the primary key (the query plan), not by a scan."""
    query = select(SubsidyTotal.granted_cny).where(
        SubsidyTotal.enterprise_id == USCC, SubsidyTotal.year == 2026, SubsidyTotal.institution_id == 0
    )
    with reading(db.factory) as session:
        compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        if db.backend == "sqlite":
            plan = " ".join(str(r[-1]) for r in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert plan.startswith("SEARCH subsidy_totals USING PRIMARY KEY") or (
                "SEARCH subsidy_totals USING INDEX sqlite_autoindex_subsidy_totals" in plan
            ), plan
            assert all(f"{c}=?" in plan for c in ("enterprise_id", "year", "institution_id")), plan
        else:
            session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table would be scanned anyway
            plan = " ".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")))
            assert "Index" in plan and "pk_subsidy_totals" in plan, plan


def test_the_totals_are_the_sum_of_the_reviews_grants(db, people):
    """The totals kept with the approvals equal what the reviews granted, at each bank and at all banks."""
    for who, enterprise, subsidy in [
        ("bank_a", USCC, 60_000.0),
        ("bank_b", USCC, 60_000.0),  # 40,000 left of the shared cap
        ("bank_a", "E1", 30_000.0),
        ("bank_b", "E1", 30_000.0),  # another bank's E1: its own cap
    ]:
        approved(db, people["evaluator"], applied(db, people[who], enterprise, subsidy))
    with reading(db.factory) as session:
        assert totals(session) == sums_of_reviews(session)
        bank_a, bank_b = people["bank_a"].institution_id, people["bank_b"].institution_id
        assert totals(session)[(USCC, 2026, ALL_BANKS)] == CAP
        assert totals(session)[(USCC, 2026, bank_b)] == 40_000.0
        assert subsidy_granted(session, "E1", 2026, bank_a) == subsidy_granted(session, "e1", 2026, bank_b)


def totals(session) -> dict[tuple[str, int, int], float]:
    rows = session.execute(select(SubsidyTotal)).scalars()
    return {(t.enterprise_id, t.year, t.institution_id): t.granted_cny for t in rows if t.granted_cny}


def sums_of_reviews(session) -> dict[tuple[str, int, int], float]:
    granted = func.sum(Review.interest_subsidy_cny)
    joined = select().select_from(Review).join(Application, Review.application_id == Application.id)
    by_bank = joined.add_columns(Application.enterprise_id, Review.subsidy_year, Application.institution_id)
    by_bank = by_bank.add_columns(granted).group_by(
        Application.enterprise_id, Review.subsidy_year, Application.institution_id
    )
    out = {(e, y, i): g for e, y, i, g in session.execute(by_bank) if g}
    everywhere = joined.add_columns(Application.enterprise_id, Review.subsidy_year, granted)
    everywhere = everywhere.group_by(Application.enterprise_id, Review.subsidy_year)
    out.update({(e, y, ALL_BANKS): g for e, y, g in session.execute(everywhere) if g})
    return out


def test_revision_0006_sums_the_grants_of_approvals_stored_before_it(db, people):
    """An upgrade from the revision before 0006 sums what earlier approvals granted into the totals."""
    for who, enterprise in [("bank_a", USCC), ("bank_b", USCC), ("bank_a", "E9")]:
        approved(db, people["evaluator"], applied(db, people[who], enterprise, 70_000.0))
    with reading(db.factory) as session:
        kept = totals(session)
    before = ScriptDirectory.from_config(alembic_config()).get_revision("0006").down_revision
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), before)
    try:
        assert migrate(db.engine) is not None
        with reading(db.factory) as session:
            assert totals(session) == kept == sums_of_reviews(session)
    finally:
        migrate(db.engine)


def test_approvals_at_once_hold_the_cap(db, people):
    """Six approvals of one enterprise at once, at two banks, each asking 40,000 of a 100,000 cap, and no
    total yet to lock: together they grant exactly the cap."""
    pending = [applied(db, people[("bank_a", "bank_b")[i % 2]], USCC, 40_000.0) for i in range(6)]
    start = threading.Barrier(len(pending))
    grants: list[float] = []
    failures: list[BaseException] = []

    def approve(application: Application) -> None:
        try:
            start.wait(10)
            grants.append(approved(db, people["evaluator"], application))
        except BaseException as e:  # reported by the test, not lost in the thread
            failures.append(e)

    threads = [threading.Thread(target=approve, args=(a,)) for a in pending]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert sorted(grants) == [0.0, 0.0, 0.0, 20_000.0, 40_000.0, 40_000.0]
    with reading(db.factory) as session:
        assert subsidy_granted(session, USCC, 2026, people["bank_a"].institution_id) == CAP
        assert totals(session) == sums_of_reviews(session)


def test_postgresql_a_second_approval_waits_for_the_first_to_commit(db, people):
    """Item 14d: on PostgreSQL the second approval of an enterprise waits on the first's lock of the
    enterprise's totals (seen waiting in pg_stat_activity), then grants what the first left."""
    if db.backend != "postgresql":
        pytest.skip("SQLite's transactions take the write lock as they begin")
    first = applied(db, people["bank_a"], USCC, 70_000.0)
    second = applied(db, people["bank_b"], USCC, 70_000.0)
    locked, release = threading.Event(), threading.Event()
    grants: dict[str, float] = {}
    failures: list[BaseException] = []

    def hold_the_first() -> None:
        try:
            with transaction(db.factory) as session:
                grants["first"] = review_application(session, people["evaluator"], first.id, "approve")
                grants["first"] = grants["first"].interest_subsidy_cny
                locked.set()
                release.wait(30)  # the commit waits for the test
        except BaseException as e:
            failures.append(e)
            locked.set()

    def then_the_second() -> None:
        try:
            grants["second"] = approved(db, people["evaluator"], second)
        except BaseException as e:
            failures.append(e)

    holder = threading.Thread(target=hold_the_first)
    holder.start()
    assert locked.wait(30) and not failures, failures
    waiter = threading.Thread(target=then_the_second)
    waiter.start()
    try:
        assert waits_on_a_lock(db), "the second approval did not wait for the first's lock"
        assert "second" not in grants
    finally:
        release.set()
        holder.join(30)
        waiter.join(30)
    assert not failures, failures
    assert grants == {"first": 70_000.0, "second": 30_000.0}


def waits_on_a_lock(db, within_s: float = 10.0) -> bool:
    """Whether another session of this test's schema waits on a lock, within `within_s`."""
    deadline = time.monotonic() + within_s
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%subsidy_totals%'"
    )
    while time.monotonic() < deadline:
        with db.engine.connect() as connection:
            if connection.scalar(query):
                return True
        time.sleep(0.05)
    return False
