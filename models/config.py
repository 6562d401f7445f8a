"""Where models live: the project home, the MLflow tracking and registry URIs and the artifact store.

Read from the environment when asked, never at import:

- ``IPCREDIT_HOME``: the project home (default ``.ipcredit`` under the working directory, made absolute
  when read, so that a process that changes directory later still writes to the same place).
- ``MLFLOW_TRACKING_URI``: honoured when set; otherwise ``sqlite:///<home>/mlflow.db``.
- ``MLFLOW_REGISTRY_URI``: honoured when set; otherwise the tracking URI.

A registry server that does not answer fails a call in seconds: MLflow's own defaults (7 retries with
growing waits, 120 s each) would hold a command or a service's start for minutes. Unless the environment
says otherwise, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is 2 and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` 10 s.

Artifacts (models, plots, cards) of a local store (a ``sqlite:`` or ``file:`` URI, or a plain path) go to
``<home>/mlartifacts``: MLflow's own default for a SQLite store is ``./mlruns`` under whatever directory the
command started in. With a tracking server (``http(s)://``) the server decides where artifacts go.

>>> s = TrackingSettings.from_env({"IPCREDIT_HOME": "/srv/ipcredit"})
>>> s.tracking_uri, s.registry_uri == s.tracking_uri, s.artifact_root
('sqlite:////srv/ipcredit/mlflow.db', True, '/srv/ipcredit/mlartifacts')
>>> remote = TrackingSettings.from_env({"IPCREDIT_HOME": "/srv/h", "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
>>> remote.tracking_uri, remote.artifact_root
('http://mlflow:5000', None)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

DEFAULT_HOME = ".ipcredit"
LOCAL_SCHEMES = ("", "file", "sqlite")
ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
REQUEST_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@dataclass(frozen=True)
class TrackingSettings:
    """Resolved locations; build with `from_env` and apply to the process with `configure`."""

    home: Path
    tracking_uri: str
    registry_uri: str
    artifact_root: str | None  # a local folder for new experiments' artifacts, or None (the server decides)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrackingSettings:
        env = os.environ if env is None else env
        home = Path(env.get("IPCREDIT_HOME") or DEFAULT_HOME).expanduser().absolute()
        tracking = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        registry = env.get("MLFLOW_REGISTRY_URI") or tracking
        local = urlparse(tracking).scheme in LOCAL_SCHEMES
        return cls(home, tracking, registry, str(home / "mlartifacts") if local else None)


def configure(settings: TrackingSettings | None = None) -> TrackingSettings:
    """Point this process's MLflow client at the project's store (creating the home folder for a local
    store) and return the settings used. Idempotent; every entry point of `models` calls it."""
    import mlflow

    settings = settings or TrackingSettings.from_env()
    if settings.artifact_root is not None:
        settings.home.mkdir(parents=True, exist_ok=True)
    # MLflow also writes the URIs into the environment (for subprocesses). Put back what the user had, so
    # that MLFLOW_TRACKING_URI keeps meaning "set by the user" and a later IPCREDIT_HOME is not shadowed.
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in logs
    for name, value in REQUEST_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return settings


def experiment_id(name: str, settings: TrackingSettings | None = None) -> str:
    """The id of experiment `name`, created (with its artifacts under the home's mlartifacts for a local
    store) when it does not exist yet."""
    import mlflow

    settings = configure(settings)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if settings.artifact_root is not None:
        location = Path(settings.artifact_root, name).as_uri()
    log.info("creating MLflow experiment %r (artifacts: %s)", name, location or "server default")
    return mlflow.create_experiment(name, artifact_location=location)
