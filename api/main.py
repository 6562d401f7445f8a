"""The service: `create_app(settings)` assembles the FastAPI app; its lifespan opens the records and loads
the models.

At startup (the lifespan, never at import): the records' engine is opened and migrated to the newest
schema (lending.db), then both models are loaded from the registry and pinned to the versions their
URIs resolve to (api.serving). A database that cannot be opened stops the start; models that cannot be
loaded leave the service up but not ready (/ready answers 503 with the reason, every route that needs
them 503), and it tries again every `model_retry_seconds` (30 s) until they load: a registry that was down,
or a champion promoted since, makes it ready without a restart (a local store put back is opened anew:
models.store.forget_connections). Once loaded, nothing reloads: if the registry becomes unreachable the
loaded versions keep serving. Shutdown waits for a load in progress to end (a thread cannot be stopped
half-way) and starts no new one. Reasons and log lines mask the secrets of any URL (core.settings.masked).

A registry server that does not answer costs the start seconds, not minutes (models.store sets MLflow's
retries), and the service keeps trying in the background. Settings: core.settings (the environment).

Run it with ``ipcredit serve`` (api.server) or ``uvicorn --factory api.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api import errors
from api.routes import applications, health, models, valuations
from api.serving import ServedModels, load_models, service_code
from core.settings import Settings, masked
from features.errors import ModelMismatch
from lending.db import make_engine, migrate, session_factory
from models import store
from models.store import ModelNotFound, RegistryUnavailable

log = logging.getLogger(__name__)


def _load(settings: Settings) -> tuple[ServedModels | None, str | None]:
    """The models, or None with the reason they could not be loaded (logged, and shown by /ready; a URL's
    secrets masked in both)."""
    try:
        return load_models(settings.valuation_uri, settings.scoring_uri), None
    except (ModelNotFound, RegistryUnavailable, ModelMismatch) as e:  # the registry down or empty, or
        # a champion trained on another table: expected, and /ready says which
        reason = masked(f"{type(e).__name__}: {e}")
        log.warning("the models could not be loaded; the service is not ready: %s", reason)
    except Exception as e:  # any failure leaves the service up and not ready, saying why
        reason = masked(f"{type(e).__name__}: {e}")
        trace = masked("".join(traceback.format_exception(e)))  # its chained causes may quote the URL
        log.error("the models could not be loaded; the service is not ready: %s\n%s", reason, trace)
    store.forget_connections()  # a store put back under the same name is opened anew on the next try
    return None, reason


def _freeze_long_lived() -> None:
    """Keep what is loaded so far (models, libraries) out of every later garbage collection, which would
    otherwise walk it all on each full collection during requests."""
    gc.collect()
    gc.freeze()


async def _load_until_loaded(app: FastAPI, settings: Settings, stopping: asyncio.Event) -> None:
    """Try again, every `model_retry_seconds`, until the models load (then serve them) or the service
    stops. A try in progress is never abandoned: shutdown waits for it to end."""
    while app.state.models is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.model_retry_seconds)
        if stopping.is_set():
            return
        models, reason = await run_in_threadpool(_load, settings)
        if models is None:
            app.state.not_ready = reason
            continue
        app.state.models = models
        log.info("the models are loaded; the service is ready")
        _freeze_long_lived()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings if app.state.settings is not None else Settings()
    app.state.settings = settings
    engine = make_engine(settings.records_url)
    retrying: asyncio.Task | None = None
    stopping = asyncio.Event()
    try:
        revision = migrate(engine)
        log.info("records at %s, schema %s", engine.url.render_as_string(hide_password=True), revision)
        app.state.sessions = session_factory(engine)
        service_code()  # the code that runs, read now (a late model load must not read later files)
        app.state.models, app.state.not_ready = _load(settings)
        app.state.started_at = dt.datetime.now(dt.UTC)
        _freeze_long_lived()
        if app.state.models is None:
            retrying = asyncio.create_task(_load_until_loaded(app, settings, stopping))
        yield
    finally:
        stopping.set()
        if retrying is not None:  # a load in progress runs to its end (its thread cannot be stopped)
            await retrying
        gc.unfreeze()
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; `settings` default to the environment's, read when the app starts (not here)."""
    app = FastAPI(
        title="ipcredit",
        summary="IP valuation and 'IP + credit' scoring for banks lending against pledged patents and marks",
        description=(
            "Valuations of patents and trademarks, bundle and pledge values, and loan decisions "
            "(PD, score, grade, credit line, expected loss, subsidy, reasons, SHAP explanations), each "
            "stored with its inputs and model versions. Every endpoint but /health and /ready needs an "
            "`X-API-Key`. Reason texts are in Chinese unless `?lang=en`. See docs/api.md."
        ),
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.models = None
    app.state.not_ready = "starting"
    errors.install(app)
    app.include_router(health.router)
    app.include_router(valuations.router)
    app.include_router(applications.router)
    app.include_router(models.router)
    return app
