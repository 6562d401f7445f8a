"""`ipcredit up` on a prepared store: it reuses the champions, issues a demo key once and prints it with an
example request that the service accepts; a second start reuses everything."""

from __future__ import annotations

import json
import stat

import pytest
from fastapi.testclient import TestClient
from test_api_support import model_store, store_env

from api import server
from api.main import ServiceSettings, create_app


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
    with TestClient(create_app(ServiceSettings())) as client:
        response = client.post("/v1/applications", json=example, headers={"X-API-Key": key})
        assert response.status_code == 201, response.text


def test_up_refuses_production(monkeypatch):
    monkeypatch.setenv("IPCREDIT_ENV", "prod")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@127.0.0.1/db")
    with pytest.raises(ValueError, match="ipcredit serve"):
        server.up(8124, run=lambda **kwargs: None)
