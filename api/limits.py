"""Fairness between institutions: one bank's heavy batch must not starve another bank's single application.

The routes that compute with the models (valuations, bundles, applications) are CPU-bound and share one
process. Two rules, both per institution (the caller's key), keep one bank from taking every bank's turn:

- a budget of assets in flight: a request weighs the assets in its body (at least 1; an application, its
  pledged bundle), counted from when its turn is asked until it returns. A request that would take an
  institution above `IPCREDIT_INSTITUTION_MAX_ASSETS` (default 2,000: two of the largest requests) is
  answered 429 with ``Retry-After`` (seconds) at once, without waiting; a request heavier than the whole
  budget is taken as the whole budget, so the largest documented request always gets in. 0 turns it off.
- turns: an institution computes one request at a time, and at most `IPCREDIT_COMPUTE_SLOTS` (default 2)
  institutions compute at once; the others wait, without holding a thread. One bank's requests queue behind
  each other, not in front of another bank's: the second bank's application runs beside the first bank's
  batch instead of after it. The work is pure Python and pandas under the GIL, so more at once per bank
  would only share the cores and contend (its throughput drops); run more processes
  (``ipcredit serve --workers N``) to use more cores.

The bookkeeping is a few dictionary operations on the event loop per request (no lock, no thread).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from fastapi import Request, status

from api.errors import ServiceError
from features.errors import Problem
from lending.keys import Principal

RETRY_AFTER_S = 1  # a turn of the largest request lasts about a second on one core


@dataclass
class Fairness:
    """The in-flight assets and the turns of each institution, in one process (one event loop)."""

    max_assets: int
    compute_slots: int
    in_flight: dict[int, int] = field(default_factory=dict)
    _turns: dict[int, anyio.Lock] = field(default_factory=dict)  # one per institution that has computed
    _slots: anyio.Semaphore | None = None

    def admit(self, institution_id: int, weight: int) -> int:
        """Count a request's weight against its institution's budget (the weight counted), or refuse it."""
        if not self.max_assets:
            return 0
        weight = min(max(weight, 1), self.max_assets)
        held = self.in_flight.get(institution_id, 0)
        if held + weight > self.max_assets:
            raise _too_many(held, weight, self.max_assets)
        self.in_flight[institution_id] = held + weight
        return weight

    def release(self, institution_id: int, weight: int) -> None:
        left = self.in_flight.get(institution_id, 0) - weight
        if left > 0:
            self.in_flight[institution_id] = left
        else:
            self.in_flight.pop(institution_id, None)

    @asynccontextmanager
    async def turn(self, institution_id: int, weight: int) -> AsyncIterator[None]:
        """The institution's turn: admitted, then its own place, then one of the process's slots."""
        counted = self.admit(institution_id, weight)
        try:
            if self._slots is None:  # made in the event loop that uses it
                self._slots = anyio.Semaphore(self.compute_slots)
            own = self._turns.setdefault(institution_id, anyio.Lock())
            async with own, self._slots:
                yield
        finally:
            self.release(institution_id, counted)


def _too_many(held: int, weight: int, limit: int) -> ServiceError:
    message = (
        f"too many assets in flight for this institution: at most {limit:,}; "
        f"{held:,} in flight and this request has {weight:,}; try again after {RETRY_AFTER_S} s"
    )
    problem = Problem("assets", f"at most {limit:,} assets in flight per institution", held + weight)
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return ServiceError(status.HTTP_429_TOO_MANY_REQUESTS, message, [problem], headers)


def fairness(request: Request) -> Fairness:
    """The app's fairness, made from its settings on first use."""
    state = request.app.state
    if getattr(state, "fairness", None) is None:
        settings = state.settings
        state.fairness = Fairness(settings.institution_max_assets, settings.compute_slots)
    return state.fairness


async def weight(request: Request) -> int:
    """The assets a request's body names (FastAPI has parsed it already: the parse is cached)."""
    try:
        body = await request.json()
    except Exception:  # not JSON: the route refuses it; it weighs the least meanwhile
        return 1
    assets = body.get("assets") if isinstance(body, dict) else None
    return len(assets) if isinstance(assets, list) else 1


@asynccontextmanager
async def compute_turn(request: Request, principal: Principal) -> AsyncIterator[None]:
    """The caller's institution's turn to compute (429 when over its budget), held until the route returns."""
    async with fairness(request).turn(principal.institution_id, await weight(request)):
        yield
