"""Engines, migrations, sessions and transactions.

- `make_engine(url)`: SQLite with foreign keys enforced, write-ahead logging, a busy timeout and real
  transactions (SQLAlchemy, not the sqlite3 module, emits BEGIN, so DDL and reads are inside them too);
  PostgreSQL through psycopg 3 (``postgresql://`` URLs are given that driver). Every wait is bounded, so that
  a database out of reach is a 503 in seconds (`unavailable`), never a hang nor a 500: a connection from a
  full pool within POOL_TIMEOUT_S (5 s), a new PostgreSQL connection within CONNECT_TIMEOUT_S (10 s), and
  an answer from PostgreSQL within ANSWER_TIMEOUT_S (10 s), after which the connection is closed (a server
  or a network gone silent, which would otherwise wait for the operating system's TCP timeout).
- `migrate(engine_or_url)`: runs the Alembic migrations in ``lending/migrations`` to head, configured from
  code (there is no alembic.ini). Idempotent; on PostgreSQL an advisory lock lets several processes start
  at once.
- `session_factory(engine)` and `transaction(factory)`: one unit of work, committed when the block ends
  normally and rolled back on any exception (KeyboardInterrupt included).

>>> from sqlalchemy import select
>>> from lending.tables import Institution
>>> engine = make_engine("sqlite://")  # in memory
>>> migrate(engine)
'0006'
>>> factory = session_factory(engine)
>>> with transaction(factory) as session:
...     session.add(Institution(name="Bank of Ezhou"))
>>> with transaction(factory) as session:
...     session.scalars(select(Institution.name)).all()
['Bank of Ezhou']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from core.settings import normalise_url

__all__ = [
    "DATABASE_ERRORS",
    "MIGRATIONS",
    "alembic_config",
    "current_revision",
    "make_engine",
    "migrate",
    "session_factory",
    "transaction",
]

log = logging.getLogger(__name__)
READ_ONLY = "ipcredit_read_only"  # an execution option: the connection's transaction only reads

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10  # PostgreSQL
POOL_TIMEOUT_S = 5  # a connection from a full pool (SQLAlchemy's default: 30 s)
ANSWER_TIMEOUT_S = 10  # PostgreSQL: a statement's answer (longer than any statement of ours takes)
# What an error from the records may be when the database is out of reach (`unavailable` tells which).
DATABASE_ERRORS = (OperationalError, InterfaceError, PoolTimeout)
MIGRATION_LOCK_ID = 0x1BC_0001  # pg_advisory_xact_lock key: one migrating process at a time


# SQLite's OperationalError also reports SQL faults (no such table, a syntax error): only these mean the
# database itself is out of reach.
_SQLITE_UNREACHABLE = ("unable to open database", "database is locked", "disk i/o error", "readonly database")


def unavailable(error: BaseException) -> bool:
    """Whether a database error says the database is out of reach (down, unreachable, locked), rather than
    that a statement is at fault: the first is a 503 and exit code 4, the second a fault of ours."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, InterfaceError | PoolTimeout):  # a full pool: every connection busy, or stuck
        return True
    if not isinstance(error, OperationalError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        return any(text in str(error.orig).lower() for text in _SQLITE_UNREACHABLE)
    return True  # PostgreSQL reports statement faults as ProgrammingError and the like, not OperationalError


def driver_message(error: BaseException) -> str:
    """The database driver's own words for an error (SQLAlchemy wraps them in `orig`): for the log, not
    for callers, since they name hosts and users."""
    return str(getattr(error, "orig", None) or error).strip()


def _json_dumps(value: Any) -> str:
    # NaN and infinities are not JSON: refuse them rather than write text no other reader accepts.
    return json.dumps(value, allow_nan=False)


def make_engine(
    url: str | URL, *, answer_timeout_s: float | None = ANSWER_TIMEOUT_S, **kwargs: Any
) -> Engine:
    """An engine for `url` (a SQLAlchemy URL). Extra keyword arguments go to `sqlalchemy.create_engine`.

    SQLite: the folder of a file database is created when missing; every connection enforces foreign
    keys, waits up to 10 s for a lock instead of failing at once, and (file databases) uses write-ahead
    logging so that readers do not block the writer, with synchronous FULL (each commit reaches the disk
    before it returns). Transactions begin with BEGIN IMMEDIATE: a writer takes the write lock at the
    start and never fails half-way on a lock upgrade; a reader (`reading`) begins deferred. PostgreSQL:
    connections are pinged before use, opening one times out after 10 s (`connect_timeout`, unless the URL
    or ``connect_args`` say otherwise), and a statement unanswered after `answer_timeout_s` (None: no
    bound) closes its connection with an OperationalError. A connection from a full pool is waited for
    ``pool_timeout`` (5 s) at most.
    """
    url = make_url(normalise_url(url) if isinstance(url, str) else url)
    kwargs.setdefault("json_serializer", _json_dumps)
    if url.get_backend_name() != "sqlite":
        return _postgresql_engine(url, answer_timeout_s, kwargs)

    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in str(url)
    if not in_memory:  # a file has a pool of connections (memory: one, without a pool timeout)
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().absolute().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the sqlite3 module emits no BEGIN of its own
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # a reader (`reading`) begins deferred: in WAL mode it neither waits for the writer nor blocks it
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(url: URL, answer_timeout_s: float | None, kwargs: dict[str, Any]) -> Engine:
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
    # a server that does not answer fails a new connection in seconds, not after the OS's TCP timeout
    if "connect_timeout" not in url.query:  # the URL's own value wins
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "do_connect")
    def _bounded(_dialect: Any, _record: Any, cargs: tuple, cparams: dict[str, Any]) -> Any:
        connection = _AnswerBoundConnection.connect(*cargs, **cparams)
        connection.answer_timeout_s = answer_timeout_s
        return connection

    return engine


class _AnswerBoundConnection(psycopg.Connection):
    """A psycopg connection whose every wait for the server ends after `answer_timeout_s`: the connection is
    then closed (its state is unknown) and an OperationalError says so, which SQLAlchemy reports as a lost
    connection (`unavailable`) and the pool replaces."""

    answer_timeout_s: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        bound = timeout if timeout is not None else self.answer_timeout_s
        try:
            return super().wait(gen, interval=interval, timeout=bound)
        except psycopg.errors._WaitTimeout:  # psycopg's own, internal: made a public OperationalError here
            if timeout is not None:
                raise  # a caller's own timeout, handled by psycopg
            self.pgconn.finish()
            raise psycopg.OperationalError(f"the database did not answer within {bound:g} s") from None


def alembic_config(connection: Connection | None = None, url: str | URL | None = None) -> Config:
    """An Alembic config for the lending migrations, built in code: with `connection` for online commands
    (upgrade, downgrade, ``revision --autogenerate``), or with `url` for offline SQL scripts
    (``command.upgrade(config, "head", sql=True)``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else normalise_url(url)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine_or_url: Engine | str | URL, revision: str = "head") -> str | None:
    """Upgrade the database to `revision` (default: the newest) and return the revision it is at.

    Runs in one transaction: on PostgreSQL (transactional DDL) a failed migration leaves the schema as it
    was; concurrent callers wait for each other on an advisory lock and the second finds nothing to do.
    """
    owned = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if owned else engine_or_url
    try:
        # another process's migration may hold the lock, and a migration take, longer than an answer's bound
        with engine.begin() as connection, _unbounded(connection):
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
            command.upgrade(alembic_config(connection), revision)
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if owned:
            engine.dispose()


@contextmanager
def _unbounded(connection: Connection) -> Iterator[None]:
    """No answer timeout on this PostgreSQL connection within the block (a migration may wait longer)."""
    dbapi_connection = connection.connection.dbapi_connection
    if not isinstance(dbapi_connection, _AnswerBoundConnection):
        yield
        return
    bound, dbapi_connection.answer_timeout_s = dbapi_connection.answer_timeout_s, None
    try:
        yield
    finally:
        dbapi_connection.answer_timeout_s = bound


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`. Objects stay readable after their transaction ends (no expiry on
    commit), so that a caller can answer from what it has just saved."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: yields a session, rolls it back when the block ends (there is nothing
    to commit) and closes it. On SQLite it begins deferred, not IMMEDIATE: it takes no write lock, so that
    reads (the caller's key, the subsidy granted so far) do not queue behind another request's commit."""
    session = factory()
    try:
        session.connection(execution_options={READ_ONLY: True})
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: yields a session, commits when the block ends normally, rolls back on any
    exception (then re-raises it) and always closes the session."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
