"""The model versions in use."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import LoadedModelsDep, PrincipalDep
from api.errors import ERROR_RESPONSES, UNAVAILABLE
from api.schemas import ModelsResponse

router = APIRouter(prefix="/v1/models", tags=["models"], responses={**ERROR_RESPONSES, **UNAVAILABLE})


@router.get("", response_model=ModelsResponse)
def models_in_use(models: LoadedModelsDep, _principal: PrincipalDep) -> ModelsResponse:
    """The versions the service loaded at startup and serves until it restarts (the champions then)."""
    return ModelsResponse(models=models.versions(), loaded_at=models.loaded_at)
