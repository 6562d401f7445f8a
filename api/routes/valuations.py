"""Valuations: assets one by one, or pledged together as a bundle. Both are stored (lending.records) and
read back by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from sqlalchemy.orm import Session

from api.body import JsonRoute
from api.deps import ModelsDep, PrincipalDep, SessionDep
from api.errors import ERROR_RESPONSES, NOT_FOUND, UNAVAILABLE
from api.schemas import BundleRequest, BundleResponse, ValuationRequest, ValuationResponse
from api.serving import ServedModels
from lending import records
from lending.errors import NotFound
from lending.keys import Principal
from valuation import documents

router = APIRouter(
    prefix="/v1/valuations",
    tags=["valuations"],
    responses={**ERROR_RESPONSES, **UNAVAILABLE},
    route_class=JsonRoute,
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ValuationResponse)
def value_assets(
    body: ValuationRequest, principal: PrincipalDep, models: ModelsDep, session: SessionDep
) -> ValuationResponse:
    """Each asset's value with its interval at `level`, the income-approach value and cross-check, the
    GB/T 42748 sub-scores and stars, and the factors that explain the value. Any refused asset refuses
    the request (422, every problem listed with its row)."""
    result = documents.value_assets(models.valuer, [a.model_dump() for a in body.assets], body.level)
    return ValuationResponse(**_stored(session, principal, models, "assets", body, result), **result)


@router.post("/bundle", status_code=status.HTTP_201_CREATED, response_model=BundleResponse)
def value_bundle(
    body: BundleRequest, principal: PrincipalDep, models: ModelsDep, session: SessionDep
) -> BundleResponse:
    """Assets pledged together for a loan of `loan_term_months`: each asset's value, the bundle value
    after concentration and remaining-life cuts, the liquidation value by disposal route and the pledge
    value a bank lends against."""
    assets = [a.model_dump() for a in body.assets]
    result = documents.value_bundle(models.valuer, assets, body.loan_term_months)
    return BundleResponse(**_stored(session, principal, models, "bundle", body, result), **result)


ValuationId = Annotated[str, Path(max_length=64, description="Id of the stored valuation (a UUID)")]


@router.get("/{valuation_id}", response_model=ValuationResponse | BundleResponse, responses=NOT_FOUND)
def get_valuation(
    valuation_id: ValuationId, principal: PrincipalDep, session: SessionDep
) -> ValuationResponse | BundleResponse:
    """A stored valuation, answered as the POST that made it answered (assets one by one, or a bundle), so
    that an appraiser can retrieve it later. A bank sees its own institution's; evaluators and admins all."""
    record = records.get_valuation(session, principal, valuation_id)
    if record is None:
        raise NotFound(f"no valuation {valuation_id!r}")
    stored = {"id": record.id, "created_at": record.created_at, "model_versions": record.model_versions}
    answer = BundleResponse if record.request.get("kind") == "bundle" else ValuationResponse
    return answer(**stored, code=record.code, **record.result)


def _stored(
    session: Session,
    principal: Principal,
    models: ServedModels,
    kind: str,
    body: ValuationRequest | BundleRequest,
    result: dict[str, Any],
) -> dict[str, Any]:
    """Store a valuation with the valuation model's version and the service's code; the answer's record
    fields (id, created_at, model_versions, code)."""
    versions = {"valuation": models.versions()["valuation"]}
    record = records.save_valuation(
        session, principal, {"kind": kind, **body.model_dump(mode="json")}, result, versions, code=models.code
    )
    return {"id": record.id, "created_at": record.created_at, "model_versions": versions, "code": models.code}
