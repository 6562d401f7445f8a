"""Loan applications: decided and stored pending review, read back, listed, reviewed.

A bank sees only its own institution's applications: another's id answers 404, exactly as an id that
does not exist, and listings leave them out. Evaluators and admins see all; they (not banks) review.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi import status as http

from api import views
from api.body import JsonRoute
from api.deps import LanguageDep, ModelsDep, PrincipalDep, SessionDep
from api.errors import (
    ALREADY_DECIDED,
    CONFLICT,
    ERROR_RESPONSES,
    FORBIDDEN,
    NOT_FOUND,
    UNAVAILABLE,
)
from api.schemas import (
    ApplicationPage,
    ApplicationRequest,
    ApplicationResponse,
    ApplicationStatus,
    IsoTime,
    ReviewRequest,
)
from features.errors import InvalidData, Problem
from features.schema import ID_MAX_LENGTH, Id
from lending import records
from lending.db import reading
from lending.errors import NotFound
from lending.keys import Principal
from underwriting.decision import decide_one

router = APIRouter(
    prefix="/v1/applications",
    tags=["applications"],
    responses=ERROR_RESPONSES,
    route_class=JsonRoute,
)

ApplicationId = Annotated[str, Path(max_length=64, description="Id of the stored application (a UUID)")]


@router.post(
    "",
    status_code=http.HTTP_201_CREATED,
    response_model=ApplicationResponse,
    responses={**FORBIDDEN, **ALREADY_DECIDED, **UNAVAILABLE},
)
def create_application(
    request: Request,
    body: ApplicationRequest,
    principal: PrincipalDep,
    models: ModelsDep,
    session: SessionDep,
    lang: LanguageDep = "zh",
) -> ApplicationResponse:
    """Value the pledged bundle, score the enterprise and decide the loan: PD, score, grade,
    recommendation, credit line, expected loss and who bears it, interest subsidy, reasons and SHAP
    explanations. Stored as an application pending review, with the request as decided (its ids filled
    in), the result, the explanation and the model versions, in one transaction. An application_id the
    bank has sent before is refused (409, naming the stored record): a retry never decides twice."""
    record_id = str(uuid.uuid4())
    decided = body.model_copy(
        update={
            "application_id": body.application_id or record_id,
            "loan": body.loan.model_copy(update={"bank_id": _lending_bank(body.loan.bank_id, principal)}),
        }
    )
    enterprise_id = decided.enterprise.enterprise_id
    # The subsidy granted so far, read apart from the write (which begins when the decision is saved): no
    # lock is held while computing. An approval checks again what is left (lending.records).
    with reading(request.app.state.sessions) as session_read:
        year = decided.loan.application_date.year
        granted = records.subsidy_granted(session_read, enterprise_id, year, principal.institution_id)
    application = decided.application(decided.application_id, decided.loan.bank_id)
    decision = decide_one(application, models.valuer, models.scorer, granted_before=granted)
    record = records.save_application(
        session,
        principal,
        decided.model_dump(mode="json"),
        decision.result,
        decision.explanation,
        models.versions(),
        application_id=record_id,
        application_ref=body.application_id,  # the bank's own id, when it sent one: decided once
        enterprise_id=enterprise_id,
        amount_cny=decided.loan.amount_cny,
        grade=decision.result["grade"],
        pd=decision.result["pd"],
        code=models.code,
    )
    return views.application_response(record, lang)


def _lending_bank(given: str | None, principal: Principal) -> str:
    """The caller's institution, which files the application: a `loan.bank_id` sent must name it (a bank
    files no record showing another bank), in any case or width of its letters."""
    own = principal.institution_name[:ID_MAX_LENGTH]
    if given is not None and _comparable(given) != _comparable(own):
        expected = f"the caller's institution ({own}), or nothing"
        raise InvalidData([Problem("loan.bank_id", expected, given)], what="application")
    return own


def _comparable(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


@router.get("", response_model=ApplicationPage)
def list_applications(
    principal: PrincipalDep,
    session: SessionDep,
    status: ApplicationStatus | None = None,
    created_from: Annotated[IsoTime | None, Query(description="From this time on (inclusive)")] = None,
    created_to: Annotated[IsoTime | None, Query(description="Before this time (exclusive)")] = None,
    enterprise_id: Annotated[Id | None, Query(description="The applicant's id")] = None,
    application_id: Annotated[
        Id | None, Query(description="The bank's own application id, as it sent it")
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=records.MAX_PAGE_SIZE)] = 50,
) -> ApplicationPage:
    """The applications the caller may see, newest first, filtered by status, creation time (ISO 8601
    with a zone, e.g. 2026-01-01T00:00:00Z), applicant and the bank's own application id, a page at a
    time."""
    items, total = records.list_applications(
        session,
        principal,
        status,
        created_from,
        created_to,
        page=page,
        page_size=page_size,
        enterprise_id=enterprise_id,
        application_ref=application_id,
    )
    return ApplicationPage(
        items=[views.application_summary(a) for a in items], total=total, page=page, page_size=page_size
    )


@router.get("/{application_id}", response_model=ApplicationResponse, responses=NOT_FOUND)
def get_application(
    application_id: ApplicationId, principal: PrincipalDep, session: SessionDep, lang: LanguageDep = "zh"
) -> ApplicationResponse:
    """One application with its decision, explanation, model versions and reviews."""
    record = records.get_application(session, principal, application_id)
    if record is None:
        raise NotFound(f"no application {application_id!r}")
    return views.application_response(record, lang)


@router.post(
    "/{application_id}/review",
    response_model=ApplicationResponse,
    responses={**NOT_FOUND, **FORBIDDEN, **CONFLICT},
)
def review_application(
    application_id: ApplicationId,
    body: ReviewRequest,
    principal: PrincipalDep,
    session: SessionDep,
    lang: LanguageDep = "zh",
) -> ApplicationResponse:
    """Approve, decline or override (with a reason) a pending application: evaluators and admins only."""
    records.review_application(session, principal, application_id, body.decision, body.reason)
    record = records.get_application(session, principal, application_id)
    if record is None:  # reviewers see every application: only a concurrent deletion could do this
        raise NotFound(f"no application {application_id!r}")
    return views.application_response(record, lang)
