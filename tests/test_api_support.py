"""Shared by the API tests (this module holds no tests): one small trained model store per test session,
request bodies made from its synthetic portfolio, and apps on scratch databases.

The store is built once per session in the session's temporary folder (a small portfolio, 60 trees per
model, registered with promote=True, so both are champions) and reused by every API test module: the
modules find it by its marker file. Tests point IPCREDIT_HOME at it while they run (`store_env`).
"""

from __future__ import annotations

import functools
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
    from models.lifecycle import RunOptions
    from scoring.train import train_scoring
    from underwriting.table import default_spec as scoring_spec
    from underwriting.table import scoring_table, with_outcome
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
        options=RunOptions(promote=True, shap_rows=50, reference_rows=200),
    )
    valuer = registry.load_fitted("models:/ipcredit-valuation@champion", task="valuation")
    applications = with_outcome(scoring_table(portfolio, valuer))
    spec = scoring_spec(applications)
    trained = train_scoring(applications, spec, params={"n_estimators": TREES}, challenger=False)
    lifecycle.train_and_log(
        "scoring",
        applications,
        spec,
        trained,
        data_source=source,
        options=RunOptions(promote=True, shap_rows=50, reference_rows=200),
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
    """The first `n` application bodies of the store's portfolio (underwriting.examples), each asset with
    the applicant's owner facts repeated from its credit report (an application may leave them out), so
    that the assets can be valued alone too."""
    from underwriting.examples import application_bodies as bodies

    out = []
    for body in bodies(store.portfolio, limit=n):
        report = body["enterprise"]
        facts = {
            "owner_revenue_cny": report["revenue_cny"],
            "owner_industry": report["industry"],
            "owner_high_tech": float(report["high_tech"]),
        }
        out.append({**body, "assets": [{**asset, **facts} for asset in body["assets"]]})
    return out


# --------------------------------------------------------------------------- apps and keys


def create_keys(sessions, roles: dict[str, tuple[str, str]]) -> dict[str, str]:
    """{label: key} for {label: (institution, role)}."""
    from lending.db import transaction
    from lending.keys import create_key

    with transaction(sessions) as session:
        return {label: create_key(session, name, role) for label, (name, role) in roles.items()}


def settings_for(database_url: str, **env: str):
    from core.settings import Settings

    return Settings.from_env(
        {"IPCREDIT_HOME": os.environ["IPCREDIT_HOME"], "DATABASE_URL": database_url, **env}
    )
