"""The records' settings: one typed object read from the environment, never at import.

- ``DATABASE_URL``: any SQLAlchemy URL; ``postgresql://`` (and ``postgres://``) mean PostgreSQL through
  psycopg 3. Default: ``sqlite:///<home>/ipcredit.db``, an absolute path, so that a process that changes
  directory later still opens the same file.
- ``IPCREDIT_HOME``: the project home (default ``.ipcredit`` under the working directory, made absolute),
  as for the MLflow store (``models/config.py``).
- ``IPCREDIT_ENV``: ``dev`` (default) or ``prod``. In ``prod`` the embedded defaults are refused: the
  DATABASE_URL must be given and must not be SQLite (one file on one machine is no bank's system of record).

>>> s = Settings.from_env({"IPCREDIT_HOME": "/srv/ipcredit"})
>>> s.environment, s.database_url
('dev', 'sqlite:////srv/ipcredit/ipcredit.db')
>>> Settings.from_env({"DATABASE_URL": "postgres://u:p@db/ipcredit"}).database_url
'postgresql+psycopg://u:p@db/ipcredit'
>>> try:
...     Settings.from_env({"IPCREDIT_ENV": "prod"})
... except ValueError as e:
...     print(str(e).splitlines()[1][:75])
  Value error, DATABASE_URL must be set when IPCREDIT_ENV=prod; got nothing
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = ".ipcredit"  # the same default as models/config.py
DATABASE_FILE = "ipcredit.db"


def normalise_url(url: str) -> str:
    """Name the driver for PostgreSQL URLs that do not (SQLAlchemy's default would be psycopg2, which is
    not installed); leave every other URL as it is.

    >>> normalise_url("postgresql://u@h/db"), normalise_url("postgresql+psycopg://u@h/db")
    ('postgresql+psycopg://u@h/db', 'postgresql+psycopg://u@h/db')
    >>> normalise_url("sqlite:////tmp/x.db")
    'sqlite:////tmp/x.db'
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """Where the records live and how careful to be. Build with ``Settings()`` (the process environment)
    or ``Settings.from_env(mapping)``; use ``database_url``, which is always resolved."""

    # Each field is read from exactly one variable (its alias), never from a look-alike such as HOME.
    model_config = SettingsConfigDict(extra="ignore", env_file=None, hide_input_in_errors=True)  # passwords

    environment: Literal["dev", "prod"] = Field(default="dev", validation_alias="IPCREDIT_ENV")
    home: Path = Field(default=Path(DEFAULT_HOME), validation_alias="IPCREDIT_HOME")
    database_url: str = Field(default="", validation_alias="DATABASE_URL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: the process environment) and nothing else."""
        if env is None:
            return cls()
        # Every variable passed explicitly (empty when absent), so that none is read from os.environ.
        return cls(**{name: env.get(name, "") for name in ("IPCREDIT_ENV", "IPCREDIT_HOME", "DATABASE_URL")})

    @field_validator("environment", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or "dev"  # set but empty means unset
        return value

    @field_validator("home", mode="before")
    @classmethod
    def _home(cls, value: object) -> object:
        return value or DEFAULT_HOME  # set but empty means unset, as in models/config.py

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _resolve_and_refuse_unsafe(self) -> Settings:
        url = self.database_url.strip()
        if self.environment == "prod":
            if not url:
                raise ValueError(
                    "DATABASE_URL must be set when IPCREDIT_ENV=prod; got nothing (the SQLite default is for "
                    "development only). Set it to a PostgreSQL URL, e.g. postgresql://user:password@host/ipcredit"
                )
            if url.startswith("sqlite"):
                raise ValueError(
                    f"DATABASE_URL must be a PostgreSQL URL when IPCREDIT_ENV=prod; got {url!r} "
                    "(SQLite is for development only)"
                )
        resolved = normalise_url(url) if url else f"sqlite:///{self.home / DATABASE_FILE}"
        self.database_url = resolved
        return self
