"""Liveness and readiness: /health answers whenever the process serves; /ready only when both models are
loaded and the records database answers (503 with the reason otherwise). Neither needs a key."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from api.errors import RECORDS_UNAVAILABLE
from api.schemas import Health, Readiness
from lending.db import driver_message, reading

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is up and serving HTTP."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Not ready: the models are not loaded, or the records database does not answer",
        }
    },
)
def ready(request: Request):
    """Ready when the valuation and scoring models are loaded (their versions are listed) and the records
    database answers."""
    models = request.app.state.models
    reason = None if models is not None else request.app.state.not_ready
    if reason is None:
        reason = _records_unavailable(request.app.state.sessions)
    if reason is not None:
        body = Readiness(status="not_ready", reason=reason)
        return JSONResponse(body.model_dump(), status.HTTP_503_SERVICE_UNAVAILABLE)
    return Readiness(status="ready", models=models.versions())


def _records_unavailable(sessions: sessionmaker) -> str | None:
    """Why the records database does not answer, or None: a read (lending.db.reading, which takes no write
    lock on SQLite) of one constant."""
    try:
        with reading(sessions) as session:
            session.execute(text("SELECT 1"))
    except DBAPIError as e:
        log.warning("the records database is unavailable: %s", driver_message(e))
        return RECORDS_UNAVAILABLE  # /ready needs no key: the driver's words (hosts, users) stay in the log
    return None
