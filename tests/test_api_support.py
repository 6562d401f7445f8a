"""Shared by the API tests (this module holds no tests): one small trained model store per test session,
request bodies made from its synthetic portfolio, and apps on scratch databases.

The store is built once per session in the session's temporary folder (a small portfolio, 60 trees per
model, registered with promote=True, so both are champions) and reused by every API test module: the
modules find it by its marker file. Tests point IPCREDIT_HOME at it while they run (`store_env`).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENTERPRISES = 2000
SEED = 11
TREES = 60
MARKER = "store.json"


@dataclass(frozen=True)
class Store:
    home: Path
    portfolio_dir: Path

    @functools.cached_property
    def portfolio(self):
        from features.portfolio import Portfolio

        return Portfolio.load(self.portfolio_dir)


@contextmanager
def store_env(home: Path) -> Iterator[None]:
    """IPCREDIT_HOME at `home` and no MLFLOW_* variables, restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPCREDIT_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.delenv("IPCREDIT_VALUATION_URI", raising=False)
        mp.delenv("IPCREDIT_SCORING_URI", raising=False)
        yield


def _build(home: Path) -> None:
    from features.synth import synthesize
    from models import lifecycle, registry
    from scoring.data import default_spec as scoring_spec
    from scoring.data import scoring_table
    from scoring.train import train_scoring
    from valuation.data import default_spec as valuation_spec
    from valuation.data import in_force, training_table
    from valuation.train import train_valuation

    portfolio = synthesize(ENTERPRISES, seed=SEED)
    portfolio.save(home / "portfolio")
    source = {"source": f"synthesize({ENTERPRISES}, seed={SEED})", "kind": "portfolio"}
    table = training_table(portfolio)
    table = table[in_force(table)].reset_index(drop=True)  # as models.datasets.training_data
    lifecycle.train_and_log(
        "valuation",
        table,
        valuation_spec(table),
        functools.partial(train_valuation, params={"n_estimators": TREES, "n_jobs": 1}),
        data_source=source,
        promote=True,
        shap_rows=50,
        reference_rows=200,
    )
    valuer = registry.load_fitted("models:/ipcredit-valuation@champion", task="valuation")
    applications = scoring_table(portfolio, valuer)
    spec = scoring_spec(applications)
    trained = train_scoring(applications, spec, params={"n_estimators": TREES}, challenger=False)
    lifecycle.train_and_log(
        "scoring",
        applications,
        spec,
        trained,
        data_source=source,
        promote=True,
        shap_rows=50,
        reference_rows=200,
    )


def model_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The session's store, built by the first module that asks for it."""
    home = tmp_path_factory.getbasetemp() / "api-model-store"
    marker = home / MARKER
    if not marker.exists():
        home.mkdir(parents=True, exist_ok=True)
        with store_env(home):
            _build(home)
        marker.write_text(json.dumps({"enterprises": ENTERPRISES, "seed": SEED}))
    return Store(home, home / "portfolio")


def application_bodies(store: Store, n: int) -> list[dict[str, Any]]:
    """The first `n` application bodies of the store's portfolio (api.examples)."""
    from api.examples import application_bodies as bodies

    return list(itertools.islice(bodies(store.portfolio), n))


# --------------------------------------------------------------------------- apps and keys


def create_keys(sessions, roles: dict[str, tuple[str, str]]) -> dict[str, str]:
    """{label: key} for {label: (institution, role)}."""
    from lending.db import transaction
    from lending.keys import create_key

    with transaction(sessions) as session:
        return {label: create_key(session, name, role) for label, (name, role) in roles.items()}


def settings_for(database_url: str, **env: str):
    from api.main import ServiceSettings

    return ServiceSettings.from_env(
        {"IPCREDIT_HOME": os.environ["IPCREDIT_HOME"], "DATABASE_URL": database_url, **env}
    )
