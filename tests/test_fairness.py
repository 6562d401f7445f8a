"""Fairness between institutions (issue 18 item 10): a budget of assets in flight per institution, answered
429 with Retry-After, and turns to compute kept per institution, so that one bank's batch queues behind
itself, not in front of another bank's application. Behaviour only: benchmarks/fairness.py measures times.
"""

from __future__ import annotations

import anyio
import pytest
from fastapi.testclient import TestClient
from test_api_support import create_keys

from api.errors import ServiceError
from api.limits import RETRY_AFTER_S, Fairness
from api.main import create_app
from core.settings import Settings

A, B = 1, 2  # two institutions' ids


def test_an_institution_over_its_budget_is_refused_429_with_retry_after():
    fairness = Fairness(max_assets=2000, compute_slots=2)
    assert fairness.admit(A, 1000) == 1000 and fairness.admit(A, 600) == 600
    with pytest.raises(ServiceError) as refused:
        fairness.admit(A, 401)
    error = refused.value
    assert error.status_code == 429 and error.headers == {"Retry-After": str(RETRY_AFTER_S)}
    assert "at most 2,000" in error.message and "1,600 in flight" in error.message and "401" in error.message
    assert error.problems[0].field == "assets" and error.problems[0].got == 2001
    assert fairness.admit(A, 400) == 400  # exactly the budget
    fairness.release(A, 1000)
    assert fairness.admit(A, 1000) == 1000  # room again once a request returns


def test_one_institution_s_budget_is_its_own():
    fairness = Fairness(max_assets=1000, compute_slots=2)
    fairness.admit(A, 1000)
    assert fairness.admit(B, 1000) == 1000  # bank A full, bank B unaffected
    with pytest.raises(ServiceError):
        fairness.admit(A, 1)
    assert fairness.in_flight == {A: 1000, B: 1000}


def test_a_request_heavier_than_the_budget_counts_as_the_whole_budget():
    """The largest documented request always gets in when its institution has nothing in flight."""
    fairness = Fairness(max_assets=500, compute_slots=1)
    assert fairness.admit(A, 1000) == 500
    with pytest.raises(ServiceError):
        fairness.admit(A, 1)
    fairness.release(A, 500)
    assert fairness.in_flight == {}


def test_no_budget_when_the_limit_is_zero():
    fairness = Fairness(max_assets=0, compute_slots=1)
    for _ in range(10):
        fairness.admit(A, 1000)
    assert fairness.in_flight == {}


def test_a_second_bank_computes_beside_the_first_bank_s_queue():
    """Bank A has one request computing and another waiting its turn; bank B's request starts at once, and
    bank A's second only when its first returns."""
    fairness = Fairness(max_assets=2000, compute_slots=2)
    order: list[str] = []

    async def scenario() -> None:
        first_done = anyio.Event()

        async def request(institution: int, name: str, until: anyio.Event | None = None) -> None:
            async with fairness.turn(institution, 1000 if institution == A else 3):
                order.append(f"{name} starts")
                if until is not None:
                    await until.wait()
            order.append(f"{name} returns")

        async with anyio.create_task_group() as group:
            group.start_soon(request, A, "A1", first_done)
            await anyio.sleep(0.01)
            group.start_soon(request, A, "A2")
            await anyio.sleep(0.01)
            await request(B, "B1")
            assert order == ["A1 starts", "B1 starts", "B1 returns"]  # A2 waits for A1, B1 does not
            first_done.set()
        assert order[3:] == ["A1 returns", "A2 starts", "A2 returns"]
        assert fairness.in_flight == {}

    anyio.run(scenario)


def test_the_slots_bound_how_many_institutions_compute_at_once():
    fairness = Fairness(max_assets=0, compute_slots=1)
    started: list[int] = []

    async def scenario() -> None:
        release = anyio.Event()

        async def request(institution: int) -> None:
            async with fairness.turn(institution, 1):
                started.append(institution)
                await release.wait()

        async with anyio.create_task_group() as group:
            group.start_soon(request, A)
            group.start_soon(request, B)
            await anyio.sleep(0.05)
            assert started == [A]  # one slot: bank B waits for it
            release.set()
        assert started == [A, B]

    anyio.run(scenario)


@pytest.fixture
def service(tmp_path):
    """The service with records and no models to load; a stand-in for the models lets the routes that
    compute reach their turn (the 429 comes before any computing)."""
    settings = Settings.from_env(
        {
            "IPCREDIT_HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'records.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'no-models' / 'mlflow.db'}",
            "IPCREDIT_MODEL_RETRY_SECONDS": "3600",
            "IPCREDIT_INSTITUTION_MAX_ASSETS": "1000",
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.app.state.models = object()  # never reached: every request below stops before computing
        keys = create_keys(client.app.state.sessions, {"a": ("Bank A", "bank"), "b": ("Bank B", "bank")})
        yield client, keys


def _post(client, key: str, assets: int):
    # assets the schema refuses ({}): a request let through its turn is a 422, one refused by it a 429
    return client.post("/v1/valuations", headers={"X-API-Key": key}, json={"assets": [{}] * assets})


def test_the_service_answers_429_with_retry_after_in_the_one_error_shape(service):
    client, keys = service
    fairness = client.app.state.fairness = None  # made from the settings on first use
    assert _post(client, keys["a"], 600).status_code == 422  # within the budget: on to the schema
    fairness = client.app.state.fairness
    assert fairness.max_assets == 1000 and fairness.in_flight == {}  # released when the request ended
    bank_a = next(iter(fairness._turns))
    fairness.admit(bank_a, 600)  # bank A has 600 assets in flight
    refused = _post(client, keys["a"], 600)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(RETRY_AFTER_S)
    answer = refused.json()
    assert set(answer) == {"message", "detail"} and "at most 1,000" in answer["message"]
    assert answer["detail"][0]["field"] == "assets" and answer["detail"][0]["got"] == 1200
    assert set(answer["detail"][0]) == {"field", "row", "id", "expected", "got", "msg"}
    assert _post(client, keys["a"], 400).status_code == 422  # what is left of the budget
    assert _post(client, keys["b"], 1000).status_code == 422  # bank B's budget is its own
