"""lending.settings: defaults, URL normalisation and the refusals of production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lending.settings import Settings


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
        ({"IPCREDIT_ENV": "staging"}, "Input should be 'dev' or 'prod'"),
    ],
)
def test_unsafe_or_unknown_settings_are_refused(env, message):
    with pytest.raises(ValidationError, match=message):
        Settings.from_env(env)


def test_prod_accepts_postgresql_and_hides_passwords_in_errors():
    settings = Settings.from_env({"IPCREDIT_ENV": "Prod", "DATABASE_URL": "postgresql://u:secret@db/ipc"})
    assert (settings.environment, settings.database_url) == ("prod", "postgresql+psycopg://u:secret@db/ipc")
    with pytest.raises(ValidationError) as refused:
        Settings.from_env({"IPCREDIT_ENV": "qa", "DATABASE_URL": "postgresql://u:secret@db/ipc"})
    assert "secret" not in str(refused.value)
