"""The models the service serves: loaded once, in the app's lifespan, pinned to registered versions.

A configured URI such as ``models:/ipcredit-scoring@champion`` is first resolved to the version the alias
points at, and that version is loaded (``models:/ipcredit-scoring/7``): the version recorded with every
decision is the one that made it, even if the alias moves while the service starts. Nothing is reloaded
afterwards: if the registry becomes unreachable, or the champion moves, the service keeps serving what it
loaded until it is restarted.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from mlflow.exceptions import MlflowException

from features.errors import require_features
from models import registry, store
from models.provenance import code_version
from valuation.assets import AssetRecord

log = logging.getLogger(__name__)

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


@dataclass(frozen=True)
class ServedModel:
    task: str
    name: str
    version: str | None  # None for a model loaded by path or run URI
    run_id: str | None
    uri: str  # loads exactly this model again
    source_uri: str  # as configured
    fitted: Any  # the domain object (valuation.valuer.Valuer or the scorer)
    # How the version came to serve, from its registry tags when it was loaded: the gate's decision, why it
    # became the champion (a manual promotion says so), and its review (models.card.sign_review).
    governance: dict[str, str | None] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "uri": self.uri,
            "source_uri": self.source_uri,
            **self.governance,
        }


@dataclass(frozen=True)
class ServedModels:
    valuation: ServedModel
    scoring: ServedModel
    loaded_at: dt.datetime
    code: dict[str, Any]  # the service's own code (models.provenance.code_version), kept with every record

    @property
    def valuer(self) -> Any:
        return self.valuation.fitted

    @property
    def scorer(self) -> Any:
        return self.scoring.fitted

    def versions(self) -> dict[str, dict[str, Any]]:
        """What is stored with every record: per task, the model's name, version, run and pinned URI."""
        return {m.task: m.describe() for m in (self.valuation, self.scoring)}


# The registry tags a served version's governance is read from (models.registry, models.card).
GOVERNANCE_TAGS = {
    "gate": "gate.decision",
    "champion_reason": "champion_reason",
    "review": "review.status",
    "reviewed_by": "review.by",
}


def pin(uri: str) -> tuple[str, str | None, str | None, str, dict[str, str | None]]:
    """(name, version, run_id, pinned URI, governance) of a model URI; an alias is resolved to its version
    now. ModelNotFound when the registry has no such model, alias or version."""
    match = _REGISTRY_URI.match(uri)
    if match is None:
        return uri, None, None, uri, {}
    name, alias, version = match["name"], match["alias"], match["version"]
    client = store.mlflow_client()
    try:
        found = (
            client.get_model_version_by_alias(name, alias)
            if alias is not None
            else client.get_model_version(name, version)
        )
    except MlflowException as e:
        store.unless_absent(e)
        where = "alias " + alias if alias is not None else "version " + str(version)
        raise store.ModelNotFound(
            f"no model at {uri}: the registry has no {where} of {name!r} "
            "(train one with `ipcredit train ... --promote`, or run `ipcredit up`)"
        ) from e
    tags = found.tags or {}
    governance = {key: tags.get(tag) for key, tag in GOVERNANCE_TAGS.items()}
    governance["review"] = governance["review"] or "pending"  # signed only by a person (models.card)
    return name, str(found.version), found.run_id, f"models:/{name}/{found.version}", governance


def load_model(uri: str, task: str) -> ServedModel:
    """The model at `uri`, pinned to its version (ModelNotFound, ModelCorrupt, or ValueError for a model
    of another task)."""
    name, version, run_id, pinned, governance = pin(uri)
    fitted = registry.load_fitted(pinned, task=task)
    log.info("loaded the %s model %s (from %s)", task, pinned, uri)
    return ServedModel(task, name, version, run_id, pinned, uri, fitted, governance)


@functools.cache
def service_code() -> dict[str, Any]:
    """This process's code (models.provenance.code_version), read once, when the service starts: files
    changed on disk later are not the code that runs."""
    return code_version()


def load_models(valuation_uri: str, scoring_uri: str) -> ServedModels:
    """Both models, pinned; ModelMismatch when the valuation model reads a feature an asset in a request
    cannot carry (the scoring model's features are checked on each application's row, which only a
    valuation builds: underwriting.decision.decide)."""
    valuation = load_model(valuation_uri, "valuation")
    require_features(
        "valuation", valuation.fitted, AssetRecord.model_fields, f"an asset in a request ({valuation.uri})"
    )
    return ServedModels(
        valuation, load_model(scoring_uri, "scoring"), dt.datetime.now(dt.UTC), service_code()
    )
