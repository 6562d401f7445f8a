"""`ipcredit up` on a prepared store: it reuses the champions, issues a demo key once and prints it with an
example request that the service accepts; a second start reuses everything."""

from __future__ import annotations

import json
import stat
import time

import pytest
from fastapi.testclient import TestClient
from test_api_support import model_store, store_env

from api import server
from api.errors import RECORDS_UNAVAILABLE
from api.main import create_app
from core.settings import Settings


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    found = model_store(tmp_path_factory)
    with store_env(found.home):
        yield found


def test_up_reuses_the_champions_issues_a_demo_key_once_and_prints_an_example(store, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "portfolio").symlink_to(store.portfolio_dir)  # the default portfolio folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'records.db'}")
    runs, steps, printed = [], [], []

    def start():
        return server.up(
            8123,
            steps.append,
            echo=printed.append,
            run=lambda **kwargs: runs.append(kwargs),
            host="127.0.0.1",
        )

    key = start()
    assert any("using the champions" in s for s in steps) and not any("training" in s for s in steps)
    assert any(key in line for line in printed)
    curl = next(line for line in printed if "curl" in line)
    assert "http://127.0.0.1:8123/v1/applications" in curl and f"X-API-Key: {key}" in curl
    kept = store.home / server.DEMO_KEY_FILE
    assert kept.read_text().strip() == key and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert runs[0]["host"] == "127.0.0.1" and runs[0]["port"] == 8123

    steps.clear()
    assert start() == key  # the second start reuses the key, the example and the models
    assert any("reusing" in s for s in steps) and not any("writing" in s for s in steps)

    example = json.loads((store.home / server.EXAMPLE_FILE).read_text(encoding="utf-8"))
    with TestClient(create_app(Settings())) as client:
        response = client.post("/v1/applications", json=example, headers={"X-API-Key": key})
        assert response.status_code == 201, response.text


def test_up_refuses_production(monkeypatch):
    monkeypatch.setenv("IPCREDIT_ENV", "prod")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@127.0.0.1/db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.bank.internal:5000")
    with pytest.raises(ValueError, match="ipcredit serve"):
        server.up(8124, run=lambda **kwargs: None)


def test_production_needs_the_registry_named_as_it_needs_the_database():
    prod = {"IPCREDIT_ENV": "prod", "DATABASE_URL": "postgresql://u:p@127.0.0.1/db"}
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI must be set when IPCREDIT_ENV=prod"):
        Settings.from_env(prod).require_stores()  # as `serve` checks before it starts
    named = Settings.from_env({**prod, "MLFLOW_TRACKING_URI": "http://mlflow.bank.internal:5000"})
    assert named.environment == "prod" and named.model_retry_seconds == 30.0


def test_a_service_without_its_models_tries_again_and_becomes_ready(store, tmp_path, monkeypatch):
    """The registry was down at the start: /ready says why, and the service loads the models on a later
    try, without a restart."""
    import api.main

    real, calls = api.main._load, []

    def registry_down_once(settings):
        calls.append(settings)
        return (None, "RegistryUnavailable: down for the test") if len(calls) == 1 else real(settings)

    monkeypatch.setattr(api.main, "_load", registry_down_once)
    settings = Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'records.db'}", "IPCREDIT_MODEL_RETRY_SECONDS": "0.05"}
    )
    with TestClient(create_app(settings)) as client:
        first = client.get("/ready")
        assert first.status_code == 503 and "down for the test" in first.json()["reason"]
        for _ in range(400):  # the retry runs on the app's event loop, beside the requests
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["models"]) == {"valuation", "scoring"} and len(calls) >= 2


def test_a_records_database_that_stops_answering_is_a_503_not_a_500(store, tmp_path):
    from lending.db import make_engine, session_factory

    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'records.db'}"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200
        gone = make_engine("postgresql://ipcredit:x@127.0.0.1:1/none")  # nothing listens on port 1
        client.app.state.sessions = session_factory(gone)
        ready = client.get("/ready")
        assert ready.status_code == 503 and "the records database is unavailable" in ready.json()["reason"]
        listed = client.get("/v1/applications", headers={"X-API-Key": "ipc_00000000_" + "x" * 43})
        assert listed.status_code == 503
        assert listed.json() == {"message": RECORDS_UNAVAILABLE, "detail": []}
        assert "127.0.0.1" not in listed.text + ready.text  # the driver's words stay in the log
