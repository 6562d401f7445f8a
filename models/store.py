"""The MLflow store: where it is (core.settings), the client on it, and what its failures mean.

`configure(settings)` points this process's MLflow at the store the settings name (the tracking and
registry URIs; the artifacts of a local store under ``<home>/mlartifacts``, where MLflow's own default for a
SQLite store is ``./mlruns`` under whatever directory the command started in). Every entry point of `models`
calls it; it is idempotent.

A registry server that does not answer fails a call in seconds: MLflow's own defaults (7 retries with growing
waits, 120 s each) would hold a command or a service's start for minutes. Unless the environment says
otherwise, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is 2 and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` 10 s (MLflow reads
them from the environment only).

Failures: `ModelNotFound` (no such model, version or alias), `ModelCorrupt` (known, but its files are missing
or unreadable), `RegistryUnavailable` (the registry did not answer: unknown, which is not "no model").

A local store (a SQLite file, or a file store's folder) that is not there is `RegistryUnavailable` too, and
reading it creates nothing: MLflow would create an empty store, answer "no such model", and keep the empty
file open. Only training creates a store (`experiment_id`). `forget_connections` drops the connections MLflow
keeps to a local store, so that a store put back under the same name is read afresh.

Every message that names the registry masks its URI's secrets (core.settings.masked): a tracking URI's
password, and MLflow's and urllib3's exception texts that repeat it, reach no answer and no log line.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from core.settings import LOCAL_SCHEMES, Settings, masked

log = logging.getLogger(__name__)

MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
REQUEST_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class ModelNotFound(LookupError):
    """No model at the URI (no such registered model, version or alias, or no such path)."""


class ModelCorrupt(RuntimeError):
    """The registry knows the model, but its files are missing or unreadable."""


class RegistryUnavailable(RuntimeError):
    """The registry did not answer (unreachable, timing out, failing): unknown, which is not "no model"."""


# What the registry answers for no such model, version or alias; any other failure leaves it unknown.
_ABSENT = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
# What it answers when it cannot be reached or fails; other errors while loading are the model's own.
UNREACHABLE = ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED")


def configure(settings: Settings | None = None) -> Settings:
    """Point this process's MLflow client at the settings' store (creating the home folder for a local
    store) and return the settings used."""
    settings = settings or Settings()
    if settings.artifact_root is not None:
        settings.home.mkdir(parents=True, exist_ok=True)
    # MLflow also writes the URIs into the environment (for subprocesses). Put back what the user had, so
    # that MLFLOW_TRACKING_URI keeps meaning "set by the user" and a later IPCREDIT_HOME is not shadowed.
    saved = {key: os.environ.get(key) for key in MLFLOW_URI_VARIABLES}
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


def mlflow_client(settings: Settings | None = None) -> MlflowClient:
    """An MlflowClient on the settings' tracking and registry URIs (RegistryUnavailable when a local store
    is not there: see `require_store`)."""
    settings = require_store(configure(settings))
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def require_store(settings: Settings | None = None) -> Settings:
    """The settings, once each local store they name is there; RegistryUnavailable naming the missing file
    or folder otherwise (before MLflow would create an empty one)."""
    settings = settings or Settings()
    place = missing_store(settings)
    if place is not None:
        uri = settings.registry_uri if _local_place(settings.registry_uri) == place else settings.tracking_uri
        raise RegistryUnavailable(
            f"the model registry at {masked(uri)} is not there: expected the file or folder {place}; got "
            "nothing (put the store back, or create one with `ipcredit up` or `ipcredit train`)"
        )
    return settings


def missing_store(settings: Settings | None = None) -> Path | None:
    """The file or folder of a local store the settings name that is not there (a first run has none),
    or None when every store they name is there or is a server."""
    settings = settings or Settings()
    for uri in (settings.tracking_uri, settings.registry_uri):
        place = _local_place(uri)
        if place is not None and not place.exists():
            return place
    return None


def _local_place(uri: str) -> Path | None:
    """The file (SQLite) or folder (a file store) of a local store's URI; None for a server or memory."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = unquote(uri[len("sqlite:///") :]).split("?", 1)[0] if uri.startswith("sqlite:///") else ""
        return Path(path) if path and path != ":memory:" else None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    plain_path = "/" in uri or uri.startswith(".")  # not a word such as "databricks"
    if parsed.scheme in LOCAL_SCHEMES and plain_path:
        return Path(uri)
    return None


def forget_connections(settings: Settings | None = None) -> None:
    """Close the connections MLflow keeps (one engine per database URI, for its life) to the settings'
    local SQLite stores: a store put back under the same name, a new file, is then opened anew."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    settings = settings or Settings()
    for uri in {settings.tracking_uri, settings.registry_uri}:
        if not uri.startswith("sqlite:"):
            continue
        for kept in (TrackingStore, RegistryStore):
            engine = getattr(kept, "_engine_map", {}).pop(uri, None)  # MLflow's own cache (3.x)
            if engine is not None:
                engine.dispose()


def experiment_id(name: str, settings: Settings | None = None) -> str:
    """The id of experiment `name`, created (with its artifacts under the home's mlartifacts for a local
    store) when it does not exist yet."""
    settings = configure(settings)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if settings.artifact_root is not None:
        location = Path(settings.artifact_root, name).as_uri()
    log.info("creating MLflow experiment %r (artifacts: %s)", name, location or "server default")
    return mlflow.create_experiment(name, artifact_location=location)


def unless_absent(e: Exception) -> None:
    """Return when `e` (an MlflowException) says there is no such model, version or alias; otherwise raise
    RegistryUnavailable: a failure to look is never read as "none"."""
    if getattr(e, "error_code", None) in _ABSENT:
        return
    where = masked(Settings().registry_uri)
    raise RegistryUnavailable(f"the model registry at {where} did not answer: {cause(e)}") from e


def cause(e: BaseException) -> str:
    """An exception as one short line: its type and message, secrets in URLs masked (MLflow's and urllib3's
    texts repeat the URL they called)."""
    text = getattr(e, "message", None) or str(e)
    return masked(f"{type(e).__name__}: {text}")[:600]


def model_version(name: str, version: str):
    """The registered ModelVersion; ModelNotFound naming it when the registry has no such version."""
    try:
        return mlflow_client().get_model_version(name, str(version))
    except MlflowException as e:
        unless_absent(e)
        raise ModelNotFound(
            f"no model at models:/{name}/{version}: the registry has no version {version} of {name!r} "
            "(`ipcredit models history NAME` lists them)"
        ) from e


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def operator_name() -> str:
    """user@host of the person (or service account) running this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): record that rather than fail
        user = "unknown-user"
    return f"{user}@{socket.gethostname()}"
