"""Scratch databases for tests, on SQLite or PostgreSQL (imported by tests only; needs pytest).

- SQLite: a new file in the test's temporary folder.
- PostgreSQL: a new schema, named at random, in the database of ``IPCREDIT_TEST_POSTGRES_URL``
  (e.g. ``postgresql+psycopg://ipcredit:ipcredit@127.0.0.1:5432/ipcredit_test``), reached through
  ``search_path`` and dropped afterwards; test runs on one server do not see each other.

A migrated database can be shared by the tests of a module and emptied before each with `clear` (a
migration costs a few hundred milliseconds on PostgreSQL, emptying a few).

Without that variable the PostgreSQL cases are skipped, except under CI (``CI=true``), where they fail:
a skipped backend in CI would hide its failures. `.ci/run` starts a server and sets the variable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from lending.db import make_engine, migrate, session_factory
from lending.tables import Base

BACKENDS = ("sqlite", "postgresql")
POSTGRES_ENV = "IPCREDIT_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class Database:
    backend: str
    url: str  # with the password: a subprocess must be able to connect
    engine: Engine
    factory: sessionmaker[Session]


def postgres_url() -> str | None:
    """The PostgreSQL test server's URL; skips the test when unset, fails it when CI=true."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        return url
    message = f"{POSTGRES_ENV} is unset: no PostgreSQL server to test against"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must run both backends: .ci/run starts one and sets it)")
    pytest.skip(f"{message} (.ci/run starts one and sets it)")
    return None


@contextmanager
def scratch_url(backend: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database on `backend`, removed afterwards (PostgreSQL: its schema)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder.absolute() / 'records.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    base = postgres_url()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = make_engine(base)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(admin.url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def scratch_database(backend: str, folder: Path, migrated: bool = True) -> Iterator[Database]:
    """An empty database on `backend` (migrated to head unless told not to), with engine and sessions."""
    with scratch_url(backend, folder) as url:
        engine = make_engine(url)
        try:
            if migrated:
                migrate(engine)
            yield Database(backend, url, engine, session_factory(engine))
        finally:
            engine.dispose()


def clear(database: Database) -> None:
    """Delete every row of every table, keeping the schema and its revision (DELETE, not TRUNCATE: on a
    few rows it is many times faster)."""
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
