"""Liveness and readiness: /health answers whenever the process serves; /ready only when both models are
loaded (503 with the reason otherwise). Neither needs a key."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is up and serving HTTP."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the models are not loaded"}},
)
def ready(request: Request):
    """Ready when the valuation and scoring models are loaded (their versions are listed)."""
    models = request.app.state.models
    if models is None:
        body = Readiness(status="not_ready", reason=request.app.state.not_ready)
        return JSONResponse(body.model_dump(), status.HTTP_503_SERVICE_UNAVAILABLE)
    return Readiness(status="ready", models=models.versions())
