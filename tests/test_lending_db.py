"""lending.db on SQLite and PostgreSQL: migrations, engines, transactions, exact JSON, and a process killed
mid-transaction."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, text
from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

import lending
from features.errors import InvalidData
from lending.db import alembic_config, current_revision, make_engine, migrate, session_factory, transaction
from lending.keys import authenticate, create_key
from lending.records import save_application
from lending.tables import ApiKey, Application, Base, Institution
from lending.testing import BACKENDS, scratch_database

TABLES = {"institutions", "api_keys", "applications", "reviews", "valuations"}
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture(params=BACKENDS)
def empty(request, tmp_path):
    with scratch_database(request.param, tmp_path, migrated=False) as database:
        yield database


def a_bank(db, name="Bank of Ezhou"):
    with transaction(db.factory) as session:
        key = create_key(session, name, "bank")
        return key, authenticate(session, key)


def test_migrations_create_every_table_and_are_idempotent(empty):
    assert current_revision(empty.engine) is None
    assert migrate(empty.engine) == HEAD
    assert TABLES <= set(inspect(empty.engine).get_table_names())
    with transaction(empty.factory) as session:
        session.add(Institution(name="kept"))
    assert migrate(empty.engine) == HEAD  # a second run changes nothing and loses nothing
    assert migrate(empty.url) == HEAD  # from a URL too (its own engine, disposed)
    with transaction(empty.factory) as session:
        assert session.scalars(sql_select(Institution.name)).all() == ["kept"]


def test_migrations_match_the_tables_module(db):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    checks = {c["name"] for c in inspect(db.engine).get_check_constraints("reviews")}
    assert {"ck_reviews_decision", "ck_reviews_override_has_reason"} <= checks


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'er' / 'x.db'}")  # folders created
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_postgresql_urls_get_psycopg(monkeypatch):
    engine = make_engine("postgresql://u:p@127.0.0.1:1/none")  # no connection is made
    assert engine.dialect.driver == "psycopg"


def test_foreign_keys_are_enforced(db):
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(ApiKey(institution_id=999, role="bank", key_prefix="00000000", key_hash="0" * 64))
        session.flush()


def test_transaction_commits_on_success(db):
    _, bank = a_bank(db)
    with transaction(db.factory) as session:
        saved = save_application(session, bank, {"amount_cny": 1.0}, {}, {}, {"m": "1"})
    with transaction(db.factory) as session:
        assert session.get(Application, saved.id) is not None


@pytest.mark.parametrize("error", [RuntimeError("scoring failed"), KeyboardInterrupt()])
def test_a_transaction_that_raises_midway_leaves_nothing(db, error):
    _, bank = a_bank(db)
    with pytest.raises(type(error)), transaction(db.factory) as session:
        session.add(Institution(name="half-made"))
        save_application(session, bank, {"amount_cny": 1.0}, {"pd": 0.1}, {}, {"m": "1"})
        session.flush()  # both rows written to the database, not yet committed
        raise error
    with transaction(db.factory) as session:
        assert session.scalar(sql_select(func.count()).select_from(Application)) == 0
        assert session.scalars(sql_select(Institution.name)).all() == ["Bank of Ezhou"]


DOCUMENT = {
    "floats": [0.1, 1 / 3, 2 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 1e300, -0.0, 0.0, 1.0, 123456.789],
    "ints": [0, -1, 2**53 + 1, 10**30],
    "text": '知识产权质押 \u00e9 "quoted" \\ \n',
    "nested": {"z": 1, "a": [True, False, None], "empty": {}, "list": []},
    "order": {"b": 1, "a": 2, "c": 3},
}


def test_json_round_trips_exactly(db):
    _, bank = a_bank(db)
    with transaction(db.factory) as session:
        saved = save_application(session, bank, DOCUMENT, DOCUMENT, DOCUMENT, {"m": "1"})
    with transaction(db.factory) as session:
        back = session.get(Application, saved.id)
        for stored in (back.request, back.result, back.explanation):
            assert stored == DOCUMENT
            assert json.dumps(stored) == json.dumps(DOCUMENT)  # same types, key order, repr of every float
            assert [type(x) for x in stored["floats"]] == [float] * len(DOCUMENT["floats"])
            assert str(stored["floats"][7]) == "-0.0"


def test_non_json_values_are_refused_before_writing(db):
    _, bank = a_bank(db)
    with pytest.raises(InvalidData, match=r"result\.pd: expected a finite number; got nan"):
        with transaction(db.factory) as session:
            save_application(session, bank, {}, {"pd": float("nan")}, {}, {"m": "1"})
    # The engine's serialiser refuses too, whatever the caller (wrapped by SQLAlchemy on SQLite, raised by
    # psycopg's JSON dumper on PostgreSQL).
    with pytest.raises(
        (StatementError, ValueError), match="Out of range float values are not JSON compliant"
    ):
        with transaction(db.factory) as session:
            session.add(
                Application(
                    id=str(uuid.uuid4()),
                    institution_id=bank.institution_id,
                    request={"x": float("inf")},
                    result={},
                    explanation={},
                    model_versions={},
                )
            )
            session.flush()


def test_timestamps_are_utc_and_aware(db):
    _, bank = a_bank(db)
    with transaction(db.factory) as session:
        saved = save_application(session, bank, {}, {}, {}, {"m": "1"})
        saved.created_at = datetime(2026, 3, 1, 20, 30, tzinfo=timezone(timedelta(hours=8)))
    with transaction(db.factory) as session:
        back = session.get(Application, saved.id)
        assert back.created_at == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
        assert back.created_at.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="timestamps must be timezone-aware"):
        with transaction(db.factory) as session:
            session.get(Application, saved.id).created_at = datetime(2026, 3, 1)


CHILD = """
import os, sys, time
from lending.db import make_engine, session_factory, transaction
from lending.keys import authenticate
from lending.records import save_application

factory = session_factory(make_engine(os.environ["CHILD_URL"]))
with transaction(factory) as session:
    who = authenticate(session, os.environ["CHILD_KEY"])
    save_application(session, who, {"amount_cny": 5e5}, {"pd": 0.02}, {}, {"m": "1"},
                     application_id=os.environ["CHILD_ID"])
    session.flush()
    print("written", flush=True)
    time.sleep(120)
print("committed", flush=True)
"""


def test_a_process_killed_mid_transaction_leaves_no_half_record(db):
    key, bank = a_bank(db)
    application_id = str(uuid.uuid4())
    root = Path(lending.__file__).parents[1]
    env = dict(os.environ, CHILD_URL=db.url, CHILD_KEY=key, CHILD_ID=application_id)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, env=env, cwd=root, text=True
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child did not write its row within 60 s"
        assert child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()

    started = time.monotonic()
    with transaction(db.factory) as session:  # a new connection
        assert session.get(Application, application_id) is None
        if db.backend == "postgresql":  # wait for the server to notice the dead client, boundedly
            session.execute(text("SET LOCAL lock_timeout = '20s'"))
        # The same id again: this waits on (and would conflict with) any row the child's transaction
        # still held; it goes through because that transaction was rolled back and its locks released.
        save_application(
            session, bank, {"amount_cny": 1.0}, {}, {}, {"m": "1"}, application_id=application_id
        )
    assert time.monotonic() - started < 20
    with transaction(db.factory) as session:
        rows = session.scalars(sql_select(Application)).all()
        assert [(r.id, r.request) for r in rows] == [(application_id, {"amount_cny": 1.0})]


def test_only_a_database_out_of_reach_counts_as_unavailable(tmp_path):
    from lending.db import unavailable

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(OperationalError) as fault, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))
    assert not unavailable(fault.value)  # a statement at fault: ours, not the database's
    gone = make_engine("postgresql://ipcredit:x@127.0.0.1:1/none")  # nothing listens on port 1
    with pytest.raises(OperationalError) as down, gone.connect():
        pass
    assert unavailable(down.value)


def test_revisions_0003_and_0004_go_down_with_reviews_stored(tmp_path):
    """SQLite drops the `code` and subsidy columns in place: copying a table would break the reviews' foreign
    keys."""
    from lending.records import review_application

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    assert migrate(engine) == HEAD
    factory = session_factory(engine)
    with transaction(factory) as session:
        bank = authenticate(session, create_key(session, "Bank", "bank"))
        evaluator = authenticate(session, create_key(session, "Programme", "evaluator"))
        saved = save_application(
            session,
            bank,
            {"a": 1},
            {"recommendation": "review"},
            {},
            {"scoring": {"version": "1"}},
            code={"commit": "x"},
        )
    with transaction(factory) as session:
        review_application(session, evaluator, saved.id, "approve")
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")
    assert current_revision(engine) == "0002"
    assert "code" not in {c["name"] for c in inspect(engine).get_columns("applications")}
    assert "subsidy_year" not in {c["name"] for c in inspect(engine).get_columns("reviews")}
    assert migrate(engine) == HEAD


def test_revision_0004_records_the_subsidy_earlier_approvals_granted(tmp_path):
    """Approvals stored before 0004 granted their decision's subsidy: the upgrade records it, so that the
    enterprise's cap counts them; a decline, and an override of an approve recommendation, grant nothing."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0003")
    rows = [  # (recommendation, review decision, subsidy)
        ("approve", "approve", 60_000.0),
        ("decline", "override", 30_000.0),  # an override of a decline approves
        ("approve", "override", 20_000.0),  # ... of an approve declines
        ("review", "decline", 10_000.0),
    ]
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO institutions (id, name, created_at) VALUES (1, 'B', '2026-01-01')")
        )
        connection.execute(
            text(
                "INSERT INTO api_keys (id, institution_id, role, key_prefix, key_hash, created_at) "
                "VALUES (1, 1, 'evaluator', 'abcdefgh', :hash, '2026-01-01')"
            ),
            {"hash": "0" * 64},
        )
        for i, (recommendation, decision, subsidy) in enumerate(rows):
            connection.execute(
                text(
                    "INSERT INTO applications (id, institution_id, status, created_at, request, result, "
                    "explanation, model_versions, enterprise_id) VALUES (:id, 1, 'approved', '2026-03-01', "
                    ":request, :result, '{}', '{}', 'E1')"
                ),
                {
                    "id": f"a{i}",
                    "request": json.dumps({"loan": {"application_date": "2026-03-01"}}),
                    "result": json.dumps({"recommendation": recommendation, "interest_subsidy_cny": subsidy}),
                },
            )
            connection.execute(
                text(
                    "INSERT INTO reviews (application_id, reviewer_key_id, decision, reason, created_at) "
                    "VALUES (:id, 1, :decision, 'r', '2026-03-02')"
                ),
                {"id": f"a{i}", "decision": decision},
            )
    assert migrate(engine) == HEAD
    with engine.connect() as connection:
        granted = connection.execute(
            text(
                "SELECT application_id, interest_subsidy_cny, subsidy_year "
                "FROM reviews ORDER BY application_id"
            )
        ).all()
    assert [tuple(row) for row in granted] == [
        ("a0", 60_000.0, 2026),
        ("a1", 30_000.0, 2026),
        ("a2", None, None),
        ("a3", None, None),
    ]


def test_a_read_does_not_wait_for_a_writer_on_sqlite(tmp_path):
    """`reading` begins deferred: while another transaction holds SQLite's write lock (BEGIN IMMEDIATE, as
    every writer does), a read answers instead of queueing behind it."""
    from lending.db import reading

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    factory = session_factory(engine)
    with transaction(factory) as writer:
        writer.add(Institution(name="Bank A"))
        writer.flush()  # the write lock is held until this block ends
        # (a read that took the write lock would wait out the busy timeout and fail: "database is locked")
        with reading(factory) as reader:
            assert reader.scalar(sql_select(func.count()).select_from(Institution)) == 0  # not yet committed
    with reading(factory) as reader:
        assert reader.scalar(sql_select(func.count()).select_from(Institution)) == 1
