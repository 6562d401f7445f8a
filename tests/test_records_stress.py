"""The records database under stress (issue 18 items 14a and 14b): a full connection pool and a silent
PostgreSQL connection are a database out of reach (`lending.db.unavailable`, a 503), within a bounded time,
not a 500 after 30 s nor a wait for the operating system's TCP timeout."""

from __future__ import annotations

import select
import socket
import threading
from contextlib import ExitStack, closing

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from test_api_support import create_keys

import lending.db
from api.main import create_app
from core.settings import Settings
from lending.db import make_engine, unavailable
from lending.testing import BACKENDS, scratch_url


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_pool_is_the_database_out_of_reach(backend, tmp_path):
    """Item 14a: every connection checked out, the next waits `pool_timeout` and is told the database is
    out of reach (a 503), not SQLAlchemy's TimeoutError left to be a 500."""
    with scratch_url(backend, tmp_path) as url:
        engine = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
        try:
            with engine.connect():
                with pytest.raises(PoolTimeout) as full, engine.connect():
                    pass
            assert unavailable(full.value)
        finally:
            engine.dispose()


def test_the_pool_waits_a_bounded_time_by_default():
    engine = make_engine("postgresql://u@127.0.0.1/none")
    assert engine.pool.timeout() == lending.db.POOL_TIMEOUT_S <= 5


def test_the_service_answers_a_full_pool_503_in_the_one_error_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(lending.db, "POOL_TIMEOUT_S", 0.2)  # read when the service makes its engine
    settings = Settings.from_env(
        {
            "IPCREDIT_HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'records.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'no-models' / 'mlflow.db'}",
            "IPCREDIT_MODEL_RETRY_SECONDS": "3600",
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        key = create_keys(client.app.state.sessions, {"a": ("Bank A", "bank")})["a"]
        engine = client.app.state.sessions.kw["bind"]
        with ExitStack() as held:
            for _ in range(engine.pool.size() + engine.pool._max_overflow):
                held.enter_context(engine.connect())
            answer = client.get("/v1/applications", headers={"X-API-Key": key})
        assert answer.status_code == 503
        assert answer.json() == {
            "message": "the records database is unavailable (the service's log says why)",
            "detail": [],
        }
        assert client.get("/v1/applications", headers={"X-API-Key": key}).status_code == 200  # free again


class SilentProxy:
    """A TCP relay to PostgreSQL that can go silent: it keeps every connection open and stops passing
    bytes either way (a server hung, or a network that drops packets), and accepts new connections
    without answering them."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.silent = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.silent.is_set():
                continue  # accepted, never answered
            server = socket.create_connection(self.upstream)
            self.sockets.append(server)
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        while not self.silent.is_set():
            try:
                ready, _, _ = select.select([a, b], [], [], 0.05)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for s in self.sockets:
            with closing(s):
                pass


def test_postgresql_a_silent_connection_is_out_of_reach_within_the_answer_timeout(tmp_path):
    """Item 14b: a statement sent to a server gone silent fails after the answer timeout, its connection
    closed and reported lost (a 503), instead of waiting for the TCP timeout (here: forever)."""
    with scratch_url("postgresql", tmp_path) as url:
        real = make_url(url)
        proxy = SilentProxy(real.host or "127.0.0.1", real.port or 5432)
        through = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(through, answer_timeout_s=1.0, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as connection:
                assert connection.scalar(text("SELECT 1")) == 1
                proxy.silent.set()
                outcome: list[BaseException | int] = []

                def query() -> None:
                    try:
                        outcome.append(connection.scalar(text("SELECT 2")))
                    except BaseException as e:
                        outcome.append(e)

                worker = threading.Thread(target=query, daemon=True)
                worker.start()
                worker.join(20)  # the bound is 1 s: joined long before, unless nothing bounds the wait
                assert not worker.is_alive(), "the statement still waits for the silent server"
            (error,) = outcome
            assert isinstance(error, OperationalError) and unavailable(error)
            assert "did not answer within 1 s" in str(error)
            with pytest.raises(OperationalError) as again, engine.connect():  # a new one: connect_timeout
                pass
            assert unavailable(again.value)
        finally:
            engine.dispose()
            proxy.close()


def test_postgresql_a_migration_is_not_bound_by_the_answer_timeout(tmp_path):
    """A migration may wait longer (another process's migration holds its lock): no bound while it runs,
    and the connection has its bound again afterwards."""
    with scratch_url("postgresql", tmp_path) as url:
        engine = make_engine(url, answer_timeout_s=0.5)
        try:
            assert lending.db.migrate(engine) is not None
            with engine.connect() as connection:
                assert connection.connection.dbapi_connection.answer_timeout_s == 0.5
                with pytest.raises(OperationalError) as slow:
                    connection.execute(text("SELECT pg_sleep(2)"))
                assert unavailable(slow.value)
        finally:
            engine.dispose()
