"""Registered models: loading by URI with clear errors, the champion alias and its history.

Aliases: ``champion`` is the version the service uses; ``challenger`` is the latest version registered
(it may also be the champion). MLflow keeps no history of alias moves, so every move is recorded on the
versions themselves as tags: ``champion_from`` / ``champion_until`` (ISO-8601 UTC, the latest period),
``champion_periods`` (JSON list of every [from, until] period, for a version promoted again after a
rollback) and ``champion_reason``. `history(name)` reads them back.

URIs: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, or any other MLflow model URI (``runs:/...``, a path).
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from core.settings import CHALLENGER, CHAMPION, REGISTERED_MODELS, Settings, masked
from features.errors import InvalidData, Problem
from features.spec import category_text
from models import card, pyfunc, store
from models.provenance import code_version
from models.store import (
    ModelCorrupt,
    ModelNotFound,
    RegistryUnavailable,
    cause,
    mlflow_client,
    model_version,
    operator_name,
    unless_absent,
    utc_now,
)

log = logging.getLogger(__name__)

__all__ = [  # the store's failures and client are read from here too
    "CHALLENGER",
    "CHAMPION",
    "ModelCorrupt",
    "ModelNotFound",
    "RegistryUnavailable",
    "mlflow_client",
    "model_version",
    "operator_name",
    "unless_absent",
    "utc_now",
]

DEFAULT_NAMES = tuple(REGISTERED_MODELS.values())
TASK_METADATA_KEY = "ipcredit_task"
COMMIT_METADATA_KEY = "ipcredit_code_commit"
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


# ---------------------------------------------------------------- loading


def load(uri: str, task: str | None = None):
    """The pyfunc model at `uri` (mlflow.pyfunc.load_model), or ModelNotFound / ModelCorrupt naming the URI.
    With `task`, a model of another task is refused (ValueError)."""
    settings = store.configure()
    if uri.startswith(("models:", "runs:")):  # read from the store: a missing one is not created
        store.require_store(settings)
    for package in pyfunc.CODE_PACKAGES:  # this process's code, never a mix with the model's copy
        importlib.import_module(package)
    shown = masked(uri)  # the URI as messages show it, its secrets masked
    described = _describe(uri)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except MlflowException as e:
        if described is None and e.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise ModelNotFound(masked(f"no model at {shown}: {e.message}")) from e
        if e.error_code in store.UNREACHABLE:
            unless_absent(e)
        raise ModelCorrupt(f"model {shown}{described or ''} could not be loaded: {cause(e)}") from e
    except FileNotFoundError as e:
        if (
            described is None
            and not Path(uri).exists()
            and "://" not in uri
            and not uri.startswith("models:")
        ):
            raise ModelNotFound(f"no model at {shown}: no such file or folder") from e
        raise ModelCorrupt(
            f"model {shown}{described or ''} could not be loaded: its files are incomplete ({cause(e)})"
        ) from e
    except Exception as e:  # unpickling errors, a missing class: the stored model is unusable
        raise ModelCorrupt(f"model {shown}{described or ''} could not be loaded: {cause(e)}") from e
    meta = model.metadata.metadata or {}
    running = _running_commit()
    if meta.get(COMMIT_METADATA_KEY) not in (None, "unknown", running) and running != "unknown":
        log.warning(
            "model %s was trained with code %s; this process runs %s",
            shown,
            meta[COMMIT_METADATA_KEY],
            running,
        )
    if task is not None:
        found = meta.get(TASK_METADATA_KEY)
        if found != task:
            raise ValueError(f"model {shown} is a {found or 'non-ipcredit'} model; expected a {task} model")
    return model


def load_fitted(uri: str, task: str | None = None):
    """The fitted domain object inside the model at `uri` (a Valuer, or the scorer), for the fast paths
    that are not table-in, table-out (one asset's explanation, bundles)."""
    return load(uri, task).unwrap_python_model().fitted_


class RunMismatch(ValueError):
    """A registered version a record names is no longer the run that made the record (a registry rebuilt
    or restored under the same version numbers): re-running with it would not reproduce the record."""


def load_recorded(model_versions: Mapping[str, Mapping[str, Any]], task: str):
    """The fitted model a stored record names for `task` (its `model_versions[task]`: name, version, run
    id, pinned URI), for a re-run (underwriting.decision.rerun). A registered version is loaded only while
    it is still the stored run; RunMismatch otherwise, naming both runs. A model served by path or run URI
    (no version) is loaded from its URI, which names it exactly."""
    recorded = model_versions[task]
    uri, stored_run = recorded["uri"], recorded.get("run_id")
    if recorded.get("version") is not None and stored_run is not None:
        found_run = model_version(recorded["name"], recorded["version"]).run_id
        if found_run != stored_run:
            raise RunMismatch(
                f"{uri} (the record's {task} model) is not the run that made the record: expected run "
                f"{stored_run}, got run {found_run} (the registry has changed since; re-run with the model "
                f"of runs:/{stored_run}/model if that run is still kept)"
            )
    return load_fitted(uri, task=task)


def load_spec(model):
    """The feature spec of a loaded pyfunc model (its fitted object's)."""
    return model.unwrap_python_model().fitted_.spec


def predict(model, table: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """`model.predict` after the safe conversions MLflow's schema check does not make: whole numbers and
    booleans to double where the signature says double, and numbers to text where it says string (9 and
    9.0 both become "9", as features.spec.category_text reads categories). Anything else that does not
    fit the signature is refused as InvalidData naming the column."""
    schema = model.metadata.get_input_schema()
    if schema is not None:  # only the signature's columns: MLflow would drop the others with a warning
        table = table[[c for c in schema.input_names() if c in table.columns]]
    table = table.copy()
    if params:
        accepted = model.metadata.get_params_schema()
        names = {p.name for p in accepted.params} if accepted is not None else set()
        params = {k: v for k, v in params.items() if k in names} or None
    not_numbers: list[tuple[str, int, Any]] = []  # (column, row, value)
    if schema is not None:
        for spec in schema.inputs:
            name, kind = spec.name, str(getattr(spec.type, "name", spec.type))
            if name not in table.columns:
                continue
            column = table[name]
            if kind in ("double", "float", "long", "integer") and column.dtype == object:
                numbers = pd.to_numeric(column, errors="coerce")
                bad = np.flatnonzero((column.notna() & numbers.isna()).to_numpy())
                not_numbers += [(name, int(i), column.iat[i]) for i in bad]
            elif kind in ("double", "float") and (
                pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column)
            ):
                table[name] = column.astype("float64")
            elif (
                kind == "string"
                and pd.api.types.is_numeric_dtype(column)
                and not pd.api.types.is_bool_dtype(column)
            ):
                table[name] = category_text(column).astype(object).where(column.notna(), None)
    if not_numbers:  # text in a number column: named by row, not left to MLflow's one-line refusal
        ids = _row_ids(model, table)
        problems = [Problem(name, "a number", value, row, ids[row]) for name, row, value in not_numbers]
        raise InvalidData(sorted(problems, key=lambda p: p.row), "input table")
    try:
        return model.predict(table, params=params)
    except MlflowException as e:
        message = str(e.message)
        reason = message[message.rfind("Error:") + 6 :].strip() if "Error:" in message else message[-500:]
        raise InvalidData(
            [Problem("input table", "columns of the types in the model's signature", reason)]
        ) from e


def _row_ids(model, table: pd.DataFrame) -> list[str | None]:
    """Each row's id (the spec's id column) for messages, or None."""
    spec = load_spec(model)
    if spec.id and spec.id in table.columns:
        return [None if pd.isna(v) else str(v) for v in table[spec.id]]
    return [None] * len(table)


def _describe(uri: str) -> str | None:
    """For a registry URI: check the name, alias or version exists (ModelNotFound otherwise) and return
    " (version N)" for messages; None for other URIs."""
    match = _REGISTRY_URI.match(uri)
    if match is None:
        return None
    client = mlflow_client()
    name, alias, version = match["name"], match["alias"], match["version"]
    try:
        registered = client.get_registered_model(name)
    except MlflowException as e:
        unless_absent(e)
        where = masked(Settings().registry_uri)
        raise ModelNotFound(
            f"no model at {uri}: there is no registered model {name!r} in {where} "
            "(train one with `ipcredit train ... --promote`)"
        ) from e
    aliases = dict(registered.aliases or {})
    if alias is not None:
        if alias not in aliases:
            known = ", ".join(f"{a} -> version {v}" for a, v in sorted(aliases.items())) or "none"
            raise ModelNotFound(f"no model at {uri}: {name!r} has no alias {alias!r} (aliases: {known})")
        return f" (version {aliases[alias]})"
    if version == "latest":
        return ""
    try:
        client.get_model_version(name, version)
    except MlflowException as e:
        unless_absent(e)
        raise ModelNotFound(f"no model at {uri}: {name!r} has no version {version!r}") from e
    return ""


@functools.cache
def _running_commit() -> str:
    return code_version()["commit"]


# ---------------------------------------------------------------- champion and its history


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    run_id: str | None
    since: str | None
    uri: str  # pinned to the version: stable even if the alias moves while a service runs

    @property
    def alias_uri(self) -> str:
        return f"models:/{self.name}@{CHAMPION}"


def registered_names() -> list[str]:
    """Every registered model's name (a bank's own models beside the built-in ones), sorted."""
    client, names, token = mlflow_client(), [], None
    while True:
        try:
            page = client.search_registered_models(max_results=1000, page_token=token)
        except MlflowException as e:
            unless_absent(e)
            raise
        names += [m.name for m in page]
        token = page.token
        if not token:
            return sorted(names)


def champion_versions(names: Iterable[str] = DEFAULT_NAMES) -> dict[str, Champion]:
    """The champion of each registered model that has one (names without a champion are left out)."""
    client = mlflow_client()
    out = {}
    for name in names:
        try:
            mv = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException as e:
            unless_absent(e)
            continue  # no such model or no champion yet: the caller sees it missing from the answer
        out[name] = Champion(
            name, str(mv.version), mv.run_id, mv.tags.get("champion_from"), f"models:/{name}/{mv.version}"
        )
    return out


def current_champion(name: str):
    """The ModelVersion that holds the champion alias, or None when there is none (RegistryUnavailable when
    the registry cannot say)."""
    client = mlflow_client()
    try:
        registered = client.get_registered_model(name)
    except MlflowException as e:  # not registered yet: no champion
        unless_absent(e)
        return None
    version = (registered.aliases or {}).get(CHAMPION)
    if version is None:
        return None
    try:
        return client.get_model_version(name, version)
    except MlflowException as e:
        unless_absent(e)
        raise


def set_challenger(name: str, version: str) -> None:
    mlflow_client().set_registered_model_alias(name, CHALLENGER, str(version))


def move_champion(name: str, version: str, reason: str, operator: str | None = None) -> str | None:
    """Point `champion` at `version`, closing the previous champion's period; returns the time of the move,
    or None when `version` is the champion already (nothing is recorded). Used by the gate and, for a
    rollback or a manual decision, by `promote`."""
    client = mlflow_client()
    now = utc_now()
    operator = operator or operator_name()
    mv = model_version(name, version)  # first: an unknown version must leave the champion as it was
    previous = current_champion(name)
    if previous is not None and str(previous.version) == str(version):
        return None
    if previous is not None:
        client.set_model_version_tag(name, previous.version, "champion_until", now)
        periods = _periods(previous.tags)
        if periods and periods[-1][1] is None:
            periods[-1][1] = now
        client.set_model_version_tag(name, previous.version, "champion_periods", json.dumps(periods))
    periods = _periods(mv.tags) + [[now, None]]
    client.set_registered_model_alias(name, CHAMPION, str(version))
    for key, value in {
        "champion_from": now,
        "champion_periods": json.dumps(periods),
        "champion_reason": reason[:4000],
        "champion_set_by": operator,
    }.items():
        client.set_model_version_tag(name, str(version), key, value)
    if "champion_until" in mv.tags:  # champion again (a rollback): its open period has no end
        client.delete_model_version_tag(name, str(version), "champion_until")
    log.info("%s: champion -> version %s (%s)", name, version, reason)
    return now


def promote(name: str, version: str, reason: str, operator: str | None = None) -> str | None:
    """Make `version` the champion without the gate (a rollback, or a decision taken by people), recording
    who did it and why; returns the time of the move (None: it was the champion already)."""
    if not reason.strip():
        raise ValueError("a manual promotion needs a reason (it is recorded on the version)")
    operator = operator or operator_name()
    moved = move_champion(name, version, f"manual: {reason}", operator)
    if moved is not None:  # the card says so too: it would otherwise keep only the gate's verdict
        try:
            card.note_promotion(name, version, reason, operator, moved)
        except Exception as e:  # the promotion stands (the version's tags say so): only the card lags
            log.warning("%s %s is the champion, but its card could not record it: %s", name, version, e)
    return moved


def history(name: str) -> pd.DataFrame:
    """One row per event, oldest first: time (UTC), version, event ("registered", "champion", "retired"),
    run_id, verdict (the gate's decision and reasons, on "registered" rows) and note (why it became champion,
    and by whom)."""
    client = mlflow_client()
    try:
        client.get_registered_model(name)
    except MlflowException as e:
        unless_absent(e)
        raise ModelNotFound(f"no registered model {name!r}") from e
    rows = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = mv.tags or {}
        verdict = tags.get("gate.decision", "")
        if tags.get("gate.reasons"):
            verdict = f"{verdict}: {tags['gate.reasons']}"
        registered = _dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, _dt.UTC).isoformat(
            timespec="microseconds"
        )
        rows.append((registered, int(mv.version), "registered", mv.run_id, verdict, ""))
        note = tags.get("champion_reason", "")
        if tags.get("champion_set_by"):
            note = f"{note} (by {tags['champion_set_by']})"
        for start, end in _periods(tags):
            rows.append((start, int(mv.version), "champion", mv.run_id, "", note))
            if end is not None:
                rows.append((end, int(mv.version), "retired", mv.run_id, "", ""))
    frame = pd.DataFrame(rows, columns=["time", "version", "event", "run_id", "verdict", "note"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    order = frame["event"].map({"registered": 0, "retired": 1, "champion": 2})
    return (
        frame.assign(_order=order)
        .sort_values(["time", "_order", "version"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _periods(tags: dict) -> list[list[str | None]]:
    if "champion_periods" in tags:
        return [list(p) for p in json.loads(tags["champion_periods"])]
    if "champion_from" in tags:  # written by hand or by an older version: one period
        return [[tags["champion_from"], tags.get("champion_until")]]
    return []
