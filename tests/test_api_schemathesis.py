"""Generated requests against the service's own OpenAPI document (schemathesis), on SQLite and PostgreSQL:
whatever a client sends, within the document or not, the answer is never a 5xx, its status is one the
document declares for the operation, and its body and content type are what the document says for that
status (the one error shape for every 4xx).

Deterministic (derandomized) and bounded: at most MAX_EXAMPLES cases per operation, sent with a bank's key,
and the application routes again with an admin's (who may review, and sees every bank's records). The
schema is read from an app's OpenAPI document at import, which needs no settings and loads nothing; each
backend's app starts (its lifespan: records and models) at its first generated call. `TALLY` counts a
backend's cases and 5xx answers; its fixture prints them (``pytest -s``). Marked heavy: CI
runs it.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api_support import create_keys, model_store, settings_for, store_env

from api.main import create_app
from lending.db import make_engine, migrate, session_factory
from lending.testing import BACKENDS, scratch_url

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TALLY: Counter = Counter()

pytestmark = pytest.mark.heavy

# Examples and fuzzing only, MAX_EXAMPLES per operation: the coverage phase's boundary cases run to a thousand
# per operation here (each body a deep tree to generate), past the time this suite may take.
CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    }
)
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG)

HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module", params=BACKENDS)
def service(request, tmp_path_factory):
    """(the backend's app, its keys by role); the app starts at its first generated call."""
    store = model_store(tmp_path_factory)
    with store_env(store.home), scratch_url(request.param, tmp_path_factory.mktemp("fuzz")) as url:
        engine = make_engine(url)
        migrate(engine)
        issued = create_keys(
            session_factory(engine), {"bank": ("Fuzz Bank", "bank"), "admin": ("Fuzz Ops", "admin")}
        )
        engine.dispose()
        app = create_app(settings_for(url))
        TALLY.clear()
        yield app, issued
        shutdown_lifespans()  # the app's lifespan, started by the first call: close its records
        assert app.state.models is not None, app.state.not_ready  # every case ran against a ready service
    print(
        f"\nschemathesis on {request.param}: {TALLY['cases']:,} generated cases, {TALLY['5xx']} 5xx "
        "(a status, content type or body the document does not declare fails its operation's test)"
    )


def _conforms(case, service, role: str) -> None:
    app, keys = service
    TALLY["cases"] += 1
    try:
        response = case.call(app=app, headers={"X-API-Key": keys[role]})
    except Exception:  # the app raised: its answer was a 500
        TALLY["5xx"] += 1
        raise
    TALLY["5xx"] += response.status_code >= 500
    case.validate_response(response, checks=CHECKS)  # a failed check fails the operation's test


@schema.parametrize()
@HYPOTHESIS
def test_every_answer_to_a_bank_is_one_the_document_declares(case, service):
    _conforms(case, service, "bank")


@schema.include(path_regex=r"^/v1/applications").parametrize()  # where the role changes the path taken
@HYPOTHESIS
def test_every_answer_to_an_admin_is_one_the_document_declares(case, service):
    _conforms(case, service, "admin")
