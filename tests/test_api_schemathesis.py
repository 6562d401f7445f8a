"""Generated requests against the service's own OpenAPI document (schemathesis): whatever a client sends,
within the document or not, the answer is never a 5xx.

Deterministic (derandomized) and bounded: at most MAX_EXAMPLES cases per operation, sent with a bank's key,
and the application routes again with an admin's (who may review, and sees every bank's records). The
schema is read from the app's OpenAPI document at import, which needs no settings and loads nothing; the
app starts (its lifespan: records and models) at the first generated call, inside the `keys` fixture's
environment. Marked heavy: CI runs it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from test_api_support import create_keys, model_store, store_env

from api.main import create_app
from lending.db import make_engine, migrate, session_factory

MAX_EXAMPLES = 20

pytestmark = pytest.mark.heavy

APP = create_app()  # settings from the environment when it starts
# Examples and fuzzing only, MAX_EXAMPLES per operation: the coverage phase's boundary cases run to a thousand
# per operation here (each body a deep tree to generate), past the time this suite may take.
CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    }
)
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)

HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    store = model_store(tmp_path_factory)
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'records.db'}"
    with store_env(store.home), pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        engine = make_engine(url)
        migrate(engine)
        issued = create_keys(
            session_factory(engine), {"bank": ("Fuzz Bank", "bank"), "admin": ("Fuzz Ops", "admin")}
        )
        engine.dispose()
        yield issued
        shutdown_lifespans()  # the app's lifespan, started by the first call: close its records
    assert APP.state.models is not None, APP.state.not_ready  # every case ran against a ready service


def _no_server_error(case, key: str) -> None:
    response = case.call(app=APP, headers={"X-API-Key": key})
    case.validate_response(response, checks=[not_a_server_error])


@schema.parametrize()
@HYPOTHESIS
def test_no_request_from_a_bank_gets_a_server_error(case, keys):
    _no_server_error(case, keys["bank"])


@schema.include(path_regex=r"^/v1/applications").parametrize()  # where the role changes the path taken
@HYPOTHESIS
def test_no_request_from_an_admin_gets_a_server_error(case, keys):
    _no_server_error(case, keys["admin"])
