"""core.settings, the engine's one settings object: defaults, URL normalisation, the MLflow store's
locations, the models served, and the refusals of production; models.store applies the MLflow part."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from pydantic import ValidationError

from core.settings import Settings
from models import store


def test_default_is_sqlite_in_the_home_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("IPCREDIT_HOME", "DATABASE_URL", "IPCREDIT_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.environment == "dev"
    assert settings.home == tmp_path / ".ipcredit"
    assert settings.database_url == f"sqlite:///{tmp_path / '.ipcredit' / 'ipcredit.db'}"
    assert Path(settings.database_url.removeprefix("sqlite:///")).is_absolute()


def test_home_from_the_environment_and_never_from_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert Settings().database_url == f"sqlite:///{tmp_path / 'h' / 'ipcredit.db'}"
    relative = Settings.from_env({"IPCREDIT_HOME": "rel"})
    assert relative.home.is_absolute() and relative.home.name == "rel"


def test_from_env_reads_only_the_mapping_given(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://leak@host/db")
    monkeypatch.setenv("IPCREDIT_ENV", "prod")
    settings = Settings.from_env({"IPCREDIT_HOME": "/srv/ipc"})
    assert (settings.environment, settings.database_url) == ("dev", "sqlite:////srv/ipc/ipcredit.db")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/ipc", "postgresql+psycopg://u:p@db:5432/ipc"),
        ("postgres://u:p@db/ipc", "postgresql+psycopg://u:p@db/ipc"),
        ("postgresql+psycopg://u@db/ipc", "postgresql+psycopg://u@db/ipc"),
        ("sqlite:////var/lib/ipc.db", "sqlite:////var/lib/ipc.db"),
    ],
)
def test_database_url_names_the_driver(given, expected):
    assert Settings.from_env({"DATABASE_URL": given}).database_url == expected


def test_an_unknown_environment_is_refused_when_read():
    with pytest.raises(ValidationError, match="Input should be 'dev' or 'prod'"):
        Settings.from_env({"IPCREDIT_ENV": "staging"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IPCREDIT_ENV": "prod"}, "DATABASE_URL must be set when IPCREDIT_ENV=prod; got nothing"),
        ({"IPCREDIT_ENV": "prod", "DATABASE_URL": "   "}, "DATABASE_URL must be set"),
        (
            {"IPCREDIT_ENV": "prod", "DATABASE_URL": "sqlite:////srv/ipc.db"},
            "DATABASE_URL must be a PostgreSQL URL when IPCREDIT_ENV=prod; got 'sqlite:////srv/ipc.db'",
        ),
        (
            {"IPCREDIT_ENV": "PROD", "DATABASE_URL": "sqlite+pysqlite:///x.db"},
            "SQLite is for development only",
        ),
    ],
)
def test_prod_refuses_the_embedded_records_database_where_the_records_are_used(env, message):
    settings = Settings.from_env({**env, "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert settings.tracking_uri == "http://mlflow:5000"  # the registry's side is not refused for it
    with pytest.raises(ValueError, match=message):
        _ = settings.records_url


def test_prod_refuses_the_local_model_store_where_the_registry_is_used():
    settings = Settings.from_env({"IPCREDIT_ENV": "prod", "DATABASE_URL": "postgresql://u@db/ipc"})
    assert settings.records_url == "postgresql+psycopg://u@db/ipc"  # `ipcredit keys` needs no registry
    with pytest.raises(
        ValueError, match="MLFLOW_TRACKING_URI must be set when IPCREDIT_ENV=prod; got nothing"
    ):
        _ = settings.tracking_uri
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI must be set"):
        _ = settings.registry_uri


PROD_REGISTRY = {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}


def test_prod_accepts_postgresql_and_hides_passwords_in_errors():
    settings = Settings.from_env(
        {"IPCREDIT_ENV": "Prod", "DATABASE_URL": "postgresql://u:secret@db/ipc", **PROD_REGISTRY}
    )
    assert (settings.environment, settings.records_url) == ("prod", "postgresql+psycopg://u:secret@db/ipc")
    with pytest.raises(ValidationError) as refused:
        Settings.from_env({"IPCREDIT_ENV": "qa", "DATABASE_URL": "postgresql://u:secret@db/ipc"})
    assert "secret" not in str(refused.value)


def test_the_default_store_is_a_sqlite_file_in_the_project_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.home == tmp_path / ".ipcredit" and s.home.is_absolute()
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.ipcredit' / 'mlflow.db'}"
    assert s.registry_uri == s.tracking_uri
    assert s.artifact_root == str(tmp_path / ".ipcredit" / "mlartifacts")


@pytest.mark.parametrize(
    "env, tracking, registry, artifacts",
    [
        ({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, "http://mlflow:5000", "http://mlflow:5000", None),
        (
            {"MLFLOW_TRACKING_URI": "sqlite:////data/t.db", "MLFLOW_REGISTRY_URI": "sqlite:////data/r.db"},
            "sqlite:////data/t.db",
            "sqlite:////data/r.db",
            "/srv/home/mlartifacts",
        ),
    ],
)
def test_mlflow_environment_variables_are_honoured(env, tracking, registry, artifacts):
    s = Settings.from_env({"IPCREDIT_HOME": "/srv/home", **env})
    assert (s.tracking_uri, s.registry_uri, s.artifact_root) == (tracking, registry, artifacts)


def test_the_models_served_default_to_the_champions_and_an_empty_variable_is_unset():
    s = Settings.from_env({"IPCREDIT_SCORING_URI": "  ", "IPCREDIT_VALUATION_URI": "models:/bank-v/3"})
    assert (s.valuation_uri, s.scoring_uri) == ("models:/bank-v/3", "models:/ipcredit-scoring@champion")
    assert Settings.from_env({"IPCREDIT_MODEL_RETRY_SECONDS": "2.5"}).model_retry_seconds == 2.5
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings.from_env({"IPCREDIT_MODEL_RETRY_SECONDS": "0"})


def test_configure_points_mlflow_at_the_home_and_leaves_the_environment_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    settings = store.configure()
    assert (
        mlflow.get_tracking_uri() == settings.tracking_uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    )
    assert mlflow.get_registry_uri() == settings.tracking_uri
    assert (tmp_path / "home").is_dir()
    assert "MLFLOW_TRACKING_URI" not in os.environ  # a later IPCREDIT_HOME is not shadowed by it
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "other"))
    assert store.configure().tracking_uri == f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
