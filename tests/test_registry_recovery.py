"""The model registry seen by the service and by a re-run (issue 18, items 7, 8, 13c and 14c): a local store
that is missing is `RegistryUnavailable` and reading it creates nothing, the service becomes ready when the
store returns (no restart), a password in the tracking URI reaches no answer and no log line, shutdown waits
for a model load in progress, and a re-run refuses a registered version that is not the stored run.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time

import pytest
from fastapi.testclient import TestClient
from test_api_support import create_keys, model_store, store_env

import api.main
from api.main import create_app
from core.settings import Settings, masked
from models import registry, store
from models.store import RegistryUnavailable

PASSWORD = "s3cret-Pa55"
TOKEN = "t0ken-value"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    found = model_store(tmp_path_factory)
    with store_env(found.home):
        yield found


@pytest.fixture
def home(trained, tmp_path, monkeypatch):
    """A home of its own with no model store in it (IPCREDIT_HOME points at it)."""
    place = tmp_path / "home"
    place.mkdir()
    monkeypatch.setenv("IPCREDIT_HOME", str(place))
    yield place
    store.forget_connections()  # the next test's store is another file under the same kind of URI


def _settings(home, **env: str) -> Settings:
    records = f"sqlite:///{home / 'records.db'}"
    return Settings.from_env({"IPCREDIT_HOME": str(home), "DATABASE_URL": records, **env})


def _ready_within(client: TestClient, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200:
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------- a missing local store


def test_reading_a_missing_local_store_is_registry_unavailable_and_creates_nothing(home):
    with pytest.raises(RegistryUnavailable, match="mlflow.db") as refused:
        registry.champion_versions()
    assert "expected" in str(refused.value) and "got" in str(refused.value)
    with pytest.raises(RegistryUnavailable):
        registry.load("models:/ipcredit-scoring@champion", task="scoring")
    assert list(home.iterdir()) == []  # no empty mlflow.db, no mlartifacts


def test_a_service_started_without_its_store_becomes_ready_when_the_store_is_put_back(trained, home):
    settings = _settings(home, IPCREDIT_MODEL_RETRY_SECONDS="0.05")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("RegistryUnavailable: "), ready.text
        assert not (home / "mlflow.db").exists()
        time.sleep(0.2)  # a few tries later, still nothing created
        assert not (home / "mlflow.db").exists()
        shutil.copy(trained.home / "mlflow.db", home / "mlflow.db")  # the store comes back
        assert _ready_within(client, 20), client.get("/ready").text
        assert set(client.get("/ready").json()["models"]) == {"valuation", "scoring"}


def test_a_store_replaced_while_the_service_waits_is_read_afresh(trained, home):
    """An empty store (no models: ModelNotFound) replaced by the real one under the same name: the service
    does not keep reading the file it opened first."""
    sqlite3.connect(home / "mlflow.db").close()
    settings = _settings(home, IPCREDIT_MODEL_RETRY_SECONDS="0.05")
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["reason"].startswith("ModelNotFound: ")
        shutil.copy(trained.home / "mlflow.db", home / "incoming.db")
        os.replace(home / "incoming.db", home / "mlflow.db")
        assert _ready_within(client, 20), client.get("/ready").text


# --------------------------------------------------------------------------- secrets in the registry's URI


def test_masked_hides_passwords_and_secret_parameters_and_nothing_else():
    assert masked(f"http://user:{PASSWORD}@mlflow:5000") == "http://user:***@mlflow:5000"
    assert (
        masked(f"https://mlflow/api?name=x&access_token={TOKEN}")
        == "https://mlflow/api?name=x&access_token=***"
    )
    assert (
        masked(f"s3://b/k?X-Amz-Signature={TOKEN}&X-Amz-Date=1")
        == "s3://b/k?X-Amz-Signature=***&X-Amz-Date=1"
    )
    plain = "models:/ipcredit-scoring/7 sqlite:////srv/mlflow.db http://mlflow:5000/x?name=a ops@host"
    assert masked(plain) == plain


def test_a_password_in_the_tracking_uri_reaches_no_answer_and_no_log_line(trained, home, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ipcredit:{PASSWORD}@127.0.0.1:1/?token={TOKEN}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # nothing listens on port 1: refused at once
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    settings = _settings(home, IPCREDIT_MODEL_RETRY_SECONDS="600")
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
        key = create_keys(client.app.state.sessions, {"bank": ("Bank C", "bank")})["bank"]
        ready = client.get("/ready")
        models = client.get("/v1/models", headers={"X-API-Key": key})
        valuation = client.post("/v1/valuations", headers={"X-API-Key": key}, json={"assets": []})
    assert ready.status_code == models.status_code == 503
    assert ready.json()["reason"].startswith("RegistryUnavailable: "), ready.text
    assert "ipcredit:***@127.0.0.1" in ready.json()["reason"]  # the user and host still say where
    seen = ready.text + models.text + valuation.text + caplog.text
    assert caplog.records and PASSWORD not in seen and TOKEN not in seen


# --------------------------------------------------------------------------- shutdown during a load


def test_shutdown_waits_for_a_model_load_in_progress(home, monkeypatch):
    started, finished = threading.Event(), threading.Event()

    def slow_load(settings):
        if started.is_set():
            return None, "not again"
        started.set()
        time.sleep(1.0)  # a registry that takes its time
        finished.set()
        return None, "loaded too late"

    settings = _settings(home, IPCREDIT_MODEL_RETRY_SECONDS="0.01")
    real = api.main._load
    monkeypatch.setattr(api.main, "_load", lambda s: (None, "first try") if not started.is_set() else real(s))
    with TestClient(create_app(settings)) as client:
        monkeypatch.setattr(api.main, "_load", slow_load)
        assert started.wait(10)
        assert client.get("/health").status_code == 200
    assert finished.is_set()  # the lifespan ended only once the load in progress had


def test_shutdown_between_tries_does_not_wait_for_the_next(home):
    settings = _settings(home, IPCREDIT_MODEL_RETRY_SECONDS="600")
    begun = time.monotonic()
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 503
    assert time.monotonic() - begun < 30


# --------------------------------------------------------------------------- a re-run's models


def _recorded(task: str) -> dict:
    """A record's model_versions entry for the champion of `task`, as the service stores it."""
    name = {"valuation": "ipcredit-valuation", "scoring": "ipcredit-scoring"}[task]
    champion = registry.champion_versions([name])[name]
    uri = f"models:/{name}/{champion.version}"
    return {"name": name, "version": champion.version, "run_id": champion.run_id, "uri": uri}


def test_a_rerun_loads_the_stored_version_when_it_is_still_the_stored_run(trained):
    versions = {task: _recorded(task) for task in ("valuation", "scoring")}
    scorer = registry.load_recorded(versions, "scoring")
    assert scorer.spec.feature_names  # the fitted scorer


def test_a_rerun_refuses_a_version_that_is_not_the_stored_run(trained):
    versions = {"scoring": {**_recorded("scoring"), "run_id": "0123456789abcdef"}}
    with pytest.raises(registry.RunMismatch) as refused:
        registry.load_recorded(versions, "scoring")
    message = str(refused.value)
    assert "0123456789abcdef" in message and versions["scoring"]["uri"] in message
    assert "expected run 0123456789abcdef" in message and "got run " in message


def test_a_stored_decision_re_runs_exactly_with_the_models_load_recorded_gives(trained, tmp_path):
    from test_api_support import application_bodies

    from lending.db import transaction
    from lending.keys import authenticate
    from lending.records import get_application
    from underwriting.decision import rerun

    settings = _settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        key = create_keys(client.app.state.sessions, {"bank": ("Bank D", "bank")})["bank"]
        made = client.post(
            "/v1/applications", headers={"X-API-Key": key}, json=application_bodies(trained, 1)[0]
        )
        assert made.status_code == 201, made.text
        with transaction(client.app.state.sessions) as session:
            record = get_application(session, authenticate(session, key), made.json()["id"])
            request, result, explanation = record.request, record.result, record.explanation
            versions = record.model_versions
    valuer = registry.load_recorded(versions, "valuation")
    scorer = registry.load_recorded(versions, "scoring")
    assert rerun(request, result, explanation, valuer, scorer).differences == []
