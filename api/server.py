"""Running the service: `serve` (``ipcredit serve``) and `up` (``ipcredit up``), the one command from a fresh
checkout to a service answering on localhost.

`up`, step by step, each step skipped when its result exists already (so a second start is ready in seconds):

1. the synthetic portfolio in ``data/portfolio`` (models.datasets), written when absent;
2. the valuation and the scoring model, trained on it, logged and registered as champions, when the
   registry has no champion of that name (models.training: the training ``ipcredit train --promote`` runs);
3. the records database, migrated (lending.db);
4. a demo key of the bank role, issued once and kept in ``<home>/demo-api-key`` (readable by its owner
   only) so that later starts can print it again; a revoked or foreign one is replaced;
5. an example application body, ``<home>/example-application.json``, from the portfolio;
6. then it prints the key and an example ``curl`` request, and serves.

Every file `up` and `serve` write (the records' SQLite file and its journal, the key, the example, the local
model store) is readable by its owner only: both run with the file mode mask 077 (put back when they return),
and a SQLite records file written before is made its owner's alone (`owner_only`).

`up` is for a demonstration on one machine: it refuses to run with IPCREDIT_ENV=prod (use `serve`, with keys
issued by ``ipcredit keys create``).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url

from api.main import create_app
from core.settings import REGISTERED_MODELS, Settings, champion_uri
from lending import keys
from lending.db import make_engine, migrate, session_factory, transaction
from models import registry, store
from models.datasets import DEFAULT_PORTFOLIO, portfolio_at
from models.lifecycle import RunOptions
from models.training import held_out_summary, train
from underwriting.examples import application_bodies

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEMO_INSTITUTION = "Demo Bank (ipcredit up)"
DEMO_KEY_FILE = "demo-api-key"
EXAMPLE_FILE = "example-application.json"

Progress = Callable[[str], None]


class PortInUse(OSError):
    """The address to serve on is taken (another service, or another program)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_port(host: str, port: int) -> None:
    """PortInUse when nothing could listen on (host, port) now: said in one line before the server starts,
    not in a server's trace."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed port is free
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                why = "is in use (another service is listening there): choose another with --port"
            elif e.errno == errno.EACCES:
                why = "needs privileges this user lacks (ports below 1024): choose another with --port"
            else:
                raise
            raise PortInUse(e.errno, f"port {port} on {host} {why}") from e


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    settings: Settings | None = None,
    workers: int = 1,
) -> None:
    """Serve the API with uvicorn until interrupted. One process by default; with `workers` > 1, that many
    processes, each loading the models and reading its settings from the environment (so `settings`
    must then be None)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    if workers > 1 and settings is not None:
        raise ValueError("several workers read their settings from the environment: pass settings=None")
    # Settings, the port and the records database checked here, before the server starts: a refusal is one
    # line (ipcredit's), not a server's trace.
    checked = (settings or Settings()).require_stores()
    check_port(host, port)
    with owner_only_files():  # the workers inherit the mask
        migrate(checked.records_url)
        owner_only(checked.records_url, checked.tracking_uri)
        if workers == 1:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
            return
        uvicorn.run(
            "api.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info"
        )


@contextmanager
def owner_only_files() -> Iterator[None]:
    """Files created meanwhile are readable by their owner only (umask 077); the mask is put back after."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def owner_only(*store_urls: str) -> None:
    """SQLite files (and their journals) of the stores, the records' and the local model store's, written
    before, made readable by their owner only; other stores are left to their servers."""
    for store_url in store_urls:
        if not store_url.startswith("sqlite:"):
            continue
        database = make_url(store_url).database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            continue
        for path in (Path(database), Path(f"{database}-wal"), Path(f"{database}-shm")):
            if path.exists():
                path.chmod(0o600)


def up(
    port: int = DEFAULT_PORT,
    progress: Progress | None = None,
    *,
    host: str = DEFAULT_HOST,
    echo: Callable[[str], None] = print,
    run: Callable[..., None] | None = None,
) -> str:
    """Prepare what is missing (portfolio, models, records, demo key), print the key and an example
    request, then serve. `progress(step)` is told each step; `echo` prints the key and the example.
    `run(host=, port=, settings=)` serves (default `serve`). Returns the demo key."""
    say = progress or _stderr
    settings = Settings()
    if settings.environment == "prod":
        raise ValueError(
            "ipcredit up prepares a demonstration (synthetic data, a demo key kept on disk); "
            "got IPCREDIT_ENV=prod: run `ipcredit serve` with keys from `ipcredit keys create` instead"
        )
    if run is None:
        check_port(host, port)  # before minutes of training, not after
    with owner_only_files():
        ensure_models(say)
        key = ensure_demo_key(settings, say)
        example = ensure_example(settings, say)
        _announce(key, example, host, port, echo)
        say(f"serving on http://{host}:{port}")
        (run or serve)(host=host, port=port, settings=settings)
    return key


def _announce(key: str, example: Path, host: str, port: int, echo: Callable[[str], None]) -> None:
    url = f"http://{host}:{port}"
    echo(f"demo API key (bank role, {DEMO_INSTITUTION}): {key}")
    echo("an example application:")
    echo(
        f"  curl -s -X POST {url}/v1/applications -H 'X-API-Key: {key}' "
        f"-H 'Content-Type: application/json' -d @{example}"
    )
    echo(f"API documentation: {url}/docs (OpenAPI: {url}/openapi.json)")


def ensure_models(say: Progress) -> None:
    """Champions of both models in the registry, trained on the synthetic portfolio when missing, by the
    training `ipcredit train ... --promote` runs (models.training)."""
    names = tuple(REGISTERED_MODELS.values())
    champions = {} if store.missing_store() else registry.champion_versions(names)  # a first run: no store
    if len(champions) == len(names):
        say(
            "models: using the champions "
            + ", ".join(f"{name} version {c.version}" for name, c in sorted(champions.items()))
        )
        return
    if not (DEFAULT_PORTFOLIO / "manifest.json").exists():
        say(f"writing the synthetic portfolio to {DEFAULT_PORTFOLIO}")
    else:
        say(f"reading the portfolio in {DEFAULT_PORTFOLIO}")
    portfolio_at(None)  # written first when absent
    for task, name in REGISTERED_MODELS.items():
        if name not in champions:
            say(f"training the {task} model")
            registration = train(
                task, options=RunOptions(promote=True), valuation_uri=champion_uri("valuation")
            )
            say(held_out_summary(task, registration.metrics))
            say(f"registered {registration.model_uri}; gate: {registration.verdict.summary()}")


def ensure_demo_key(settings: Settings, say: Progress) -> str:
    """The demo bank's key: the one kept in <home>/demo-api-key while it is valid, else a new one."""
    say("opening the records")
    engine = make_engine(settings.records_url)
    try:
        migrate(engine)
        owner_only(settings.records_url, settings.tracking_uri)
        factory = session_factory(engine)
        stored = settings.home / DEMO_KEY_FILE
        if stored.exists():
            key = stored.read_text(encoding="utf-8").strip()
            with transaction(factory) as session:
                who = keys.authenticate(session, key)
            if who is not None and who.institution_name == DEMO_INSTITUTION and who.role == "bank":
                say(f"demo key: reusing {stored}")
                return key
            say(f"demo key: {stored} holds no valid demo key; issuing a new one")
        with transaction(factory) as session:
            key = keys.create_key(session, DEMO_INSTITUTION, "bank")
        _write_private(stored, key + "\n")
        say(f"demo key: issued, kept in {stored}")
        return key
    finally:
        engine.dispose()


def ensure_example(settings: Settings, say: Progress) -> Path:
    """<home>/example-application.json: the portfolio's first application as a request body."""
    target = settings.home / EXAMPLE_FILE
    if target.exists():
        target.chmod(0o600)  # one written before this rule
        return target
    say(f"writing an example request to {target}")
    portfolio, _ = portfolio_at(None)
    body = next(application_bodies(portfolio, limit=1))
    _write_private(target, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    return target


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT: set it
