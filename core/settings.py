"""The engine's settings: one typed object read from the environment when asked, never at import.

- ``IPCREDIT_ENV``: ``dev`` (default) or ``prod``. In ``prod`` the embedded defaults are refused where they
  would be used: the records' ``DATABASE_URL`` (`records_url`) must be given and must not be SQLite (one file
  on one machine is no bank's system of record), and ``MLFLOW_TRACKING_URI`` (`tracking_uri`) must name the
  bank's MLflow server.
- ``IPCREDIT_HOME``: the project home (default ``.ipcredit`` under the working directory, made absolute when
  read, so that a process that changes directory later still uses the same place): the records' SQLite file
  and the local MLflow store live there by default.
- ``DATABASE_URL``: any SQLAlchemy URL; ``postgresql://`` (and ``postgres://``) mean PostgreSQL through
  psycopg 3. Default: ``sqlite:///<home>/ipcredit.db``.
- ``MLFLOW_TRACKING_URI``: honoured when set; otherwise ``sqlite:///<home>/mlflow.db``.
  ``MLFLOW_REGISTRY_URI``: honoured when set; otherwise the tracking URI. Artifacts of a local store go to
  ``<home>/mlartifacts`` (`artifact_root`); a tracking server decides for itself.
- ``IPCREDIT_VALUATION_URI``, ``IPCREDIT_SCORING_URI``: the models the service serves (default: the
  champions, `champion_uri`). ``IPCREDIT_MODEL_RETRY_SECONDS`` (30): how long a service whose models could
  not be loaded waits before it tries again.
- ``IPCREDIT_MAX_BODY_BYTES`` (8,000,000): the largest request body the service reads; a larger one is a 413,
  refused before it is read (the largest documented request, 1,000 assets, is about 1.3 MB).
- ``IPCREDIT_INSTITUTION_MAX_ASSETS`` (2,000; 0: no limit): the assets one institution may have in flight in
  the routes that compute (a request weighs its body's assets); over it, a 429 with Retry-After.
  ``IPCREDIT_COMPUTE_SLOTS`` (2): how many institutions compute at once in a process, each one request at a
  time (api.limits).

A variable set but empty means unset. Each field is read from exactly one variable, never from a look-alike
such as HOME.

>>> s = Settings.from_env({"IPCREDIT_HOME": "/srv/ipcredit"})
>>> s.environment, s.records_url, s.tracking_uri
('dev', 'sqlite:////srv/ipcredit/ipcredit.db', 'sqlite:////srv/ipcredit/mlflow.db')
>>> s.artifact_root
'/srv/ipcredit/mlartifacts'
>>> Settings.from_env({"DATABASE_URL": "postgres://u:p@db/ipcredit"}).records_url
'postgresql+psycopg://u:p@db/ipcredit'
>>> remote = Settings.from_env({"IPCREDIT_HOME": "/srv/h", "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
>>> remote.tracking_uri, remote.registry_uri, remote.artifact_root
('http://mlflow:5000', 'http://mlflow:5000', None)
>>> Settings.from_env({}).scoring_uri
'models:/ipcredit-scoring@champion'
>>> try:
...     Settings.from_env({"IPCREDIT_ENV": "prod"}).records_url
... except ValueError as e:
...     print(str(e)[:60])
DATABASE_URL must be set when IPCREDIT_ENV=prod; got nothing
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = ".ipcredit"
DATABASE_FILE = "ipcredit.db"
MLFLOW_FILE = "mlflow.db"
DEFAULT_MAX_BODY_BYTES = 8_000_000  # a request body; 1,000 assets, indented, are about 1.3 MB
#: MLflow URI schemes of a store on this machine, whose artifacts go under the home.
LOCAL_SCHEMES = ("", "file", "sqlite")

#: The registered model of each built-in task, and the alias the service serves and `--promote` moves.
REGISTERED_MODELS = {"valuation": "ipcredit-valuation", "scoring": "ipcredit-scoring"}
CHAMPION = "champion"
CHALLENGER = "challenger"


def champion_uri(task: str) -> str:
    """The URI of a built-in task's champion.

    >>> champion_uri("valuation")
    'models:/ipcredit-valuation@champion'
    """
    return f"models:/{REGISTERED_MODELS[task]}@{CHAMPION}"


def normalise_url(url: str) -> str:
    """Name the driver for PostgreSQL URLs that do not (SQLAlchemy's default would be psycopg2, which is not
    installed); leave every other URL as it is.

    >>> normalise_url("postgresql://u@h/db"), normalise_url("postgresql+psycopg://u@h/db")
    ('postgresql+psycopg://u@h/db', 'postgresql+psycopg://u@h/db')
    >>> normalise_url("sqlite:////tmp/x.db")
    'sqlite:////tmp/x.db'
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


# A URL's password (scheme://user:password@host) and the query parameters that carry a secret (token=,
# access_token=, password=, api_key=, X-Amz-Signature=, sig= ...): what `masked` hides.
_URL_PASSWORD = re.compile(r"(?P<start>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@?#]*):[^/\s?#]*@")
# An HTTP(S) URL's user without a password (https://TOKEN@host): registries take tokens there; a database
# URL's user (postgresql://u@db) is a name, and kept.
_HTTP_TOKEN = re.compile(r"(?P<scheme>\bhttps?://)(?!\*\*\*@)[^/\s:@?#]+@", re.IGNORECASE)
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?:^|[?&;\s])[^=&\s#]*(?:token|passw|pwd|secret|key|signature|sig|credential|auth)[^=&\s#]*=)"
    r"[^&\s#'\"]+",
    re.IGNORECASE,
)
MASK = "***"


def masked(text: object) -> str:
    """`text` (a URL, or a message that holds URLs, such as MLflow's and urllib3's exception texts) with
    every URL's password and secret query parameters replaced by ***: what reaches an answer or a log line.

    >>> masked("http://user:pa@ss@mlflow:5000/api?name=x&token=abc")
    'http://user:***@mlflow:5000/api?name=x&token=***'
    >>> masked("host=db user=u password=p sslmode=require")
    'host=db user=u password=*** sslmode=require'
    >>> masked("API request to https://u:p@h/x failed; sqlite:////srv/mlflow.db; postgresql://u@db/x")
    'API request to https://u:***@h/x failed; sqlite:////srv/mlflow.db; postgresql://u@db/x'
    >>> masked("https://ghp_abc123@mlflow.bank.cn/api")  # over HTTP a user without a password is a token
    'https://***@mlflow.bank.cn/api'
    """
    text = str(text)
    if "://" not in text and "=" not in text:  # the common case costs one scan
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['start']}:{MASK}@", text)
    text = _HTTP_TOKEN.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_PARAMETER.sub(lambda m: m["name"] + MASK, text)


# The variables the settings read, by field (each field's alias); `from_env` reads exactly these.
VARIABLES = (
    "IPCREDIT_ENV",
    "IPCREDIT_HOME",
    "DATABASE_URL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "IPCREDIT_VALUATION_URI",
    "IPCREDIT_SCORING_URI",
    "IPCREDIT_MODEL_RETRY_SECONDS",
    "IPCREDIT_MAX_BODY_BYTES",
    "IPCREDIT_INSTITUTION_MAX_ASSETS",
    "IPCREDIT_COMPUTE_SLOTS",
)


class Settings(BaseSettings):
    """Where the records and the models live, which models to serve and how careful to be. Build with
    ``Settings()`` (the process environment) or ``Settings.from_env(mapping)``."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None, hide_input_in_errors=True)  # passwords

    environment: Literal["dev", "prod"] = Field(default="dev", validation_alias="IPCREDIT_ENV")
    home: Path = Field(default=Path(DEFAULT_HOME), validation_alias="IPCREDIT_HOME")
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    mlflow_tracking_uri: str = Field(default="", validation_alias="MLFLOW_TRACKING_URI")
    mlflow_registry_uri: str = Field(default="", validation_alias="MLFLOW_REGISTRY_URI")
    valuation_uri: str = Field(default=champion_uri("valuation"), validation_alias="IPCREDIT_VALUATION_URI")
    scoring_uri: str = Field(default=champion_uri("scoring"), validation_alias="IPCREDIT_SCORING_URI")
    model_retry_seconds: float = Field(default=30.0, gt=0, validation_alias="IPCREDIT_MODEL_RETRY_SECONDS")
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, ge=1, validation_alias="IPCREDIT_MAX_BODY_BYTES"
    )
    institution_max_assets: int = Field(
        default=2000, ge=0, validation_alias="IPCREDIT_INSTITUTION_MAX_ASSETS"
    )
    compute_slots: int = Field(default=2, ge=1, validation_alias="IPCREDIT_COMPUTE_SLOTS")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: the process environment) and nothing else."""
        if env is None:
            return cls()
        # Every variable passed explicitly (empty when absent), so that none is read from os.environ.
        return cls(**{name: env.get(name, "") for name in VARIABLES})

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object, info) -> object:
        if isinstance(value, str) and not value.strip():
            default = cls.model_fields[info.field_name].default
            return str(default) if isinstance(default, Path) else default
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        url = self.database_url.strip()
        if url:
            self.database_url = normalise_url(url)
        elif self.environment == "dev":
            self.database_url = f"sqlite:///{self.home / DATABASE_FILE}"
        return self

    # Production's refusals are made where each store is used, not when the settings are read: a command
    # that never opens the records (training, say) does not need DATABASE_URL, nor one that never opens the
    # registry (`ipcredit keys`) MLFLOW_TRACKING_URI.

    @property
    def records_url(self) -> str:
        """The records database's URL; in prod, refused unless it is given and is not SQLite."""
        if self.environment == "prod":
            if not self.database_url:
                raise ValueError(
                    "DATABASE_URL must be set when IPCREDIT_ENV=prod; got nothing (the SQLite default is for "
                    "development only). Set it to a PostgreSQL URL, e.g. postgresql://user:password@host/ipcredit"
                )
            if self.database_url.startswith("sqlite"):
                raise ValueError(
                    "DATABASE_URL must be a PostgreSQL URL when IPCREDIT_ENV=prod; "
                    f"got {self.database_url!r} (SQLite is for development only)"
                )
        return self.database_url

    @property
    def tracking_uri(self) -> str:
        """MLflow's tracking URI; in prod, refused unless it is given."""
        given = self.mlflow_tracking_uri.strip()
        if self.environment == "prod" and not given:
            raise ValueError(
                "MLFLOW_TRACKING_URI must be set when IPCREDIT_ENV=prod; got nothing (the local store "
                "under IPCREDIT_HOME is for one machine: point the engine at the bank's MLflow server)"
            )
        return given or f"sqlite:///{self.home / MLFLOW_FILE}"

    def require_stores(self) -> Settings:
        """These settings, once both stores' refusals have been checked (the service uses both)."""
        _ = self.records_url, self.tracking_uri
        return self

    @property
    def registry_uri(self) -> str:
        return self.mlflow_registry_uri.strip() or self.tracking_uri

    @property
    def artifact_root(self) -> str | None:
        """A local folder for new experiments' artifacts, or None (a tracking server decides)."""
        local = urlparse(self.tracking_uri).scheme in LOCAL_SCHEMES
        return str(self.home / "mlartifacts") if local else None

    def model_uri(self, task: str) -> str:
        """The URI the service serves for a task."""
        return {"valuation": self.valuation_uri, "scoring": self.scoring_uri}[task]
