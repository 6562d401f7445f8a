"""Answers built from stored records (lending.tables), in the language asked for.

A record keeps reason and recommendation texts in both languages; an answer shows one of them as `text`
(and `recommendation_label`) beside both. POST and GET answer from the same stored documents, so what a
bank is told when it applies is what it reads back later.
"""

from __future__ import annotations

from typing import Any

from api.schemas import (
    ApplicationResponse,
    ApplicationSummary,
    Language,
    ReviewOut,
)
from lending.records import outcome
from lending.tables import Application


def _reasons(reasons: list[dict[str, Any]], lang: Language) -> list[dict[str, Any]]:
    return [{**r, "text": r[lang]} for r in reasons]


def application_response(record: Application, lang: Language) -> ApplicationResponse:
    result = record.result
    return ApplicationResponse.model_validate(
        {
            "id": record.id,
            "institution_id": record.institution_id,
            "status": record.status.value,
            "outcome": outcome(record.status, result["recommendation"]),
            "created_at": record.created_at,
            "application_id": result["application_id"],
            "enterprise_id": result["enterprise_id"],
            "valuation": result["valuation"],
            "pd": result["pd"],
            "score": result["score"],
            "grade": result["grade"],
            "recommendation": result["recommendation"],
            "recommendation_label": result["recommendation_label"][lang],
            "credit_line_cny": result["credit_line_cny"],
            "ead_cny": result["ead_cny"],
            "lgd": result["lgd"],
            "expected_loss_cny": result["expected_loss_cny"],
            "expected_loss_split": result["expected_loss_split"],
            "interest_subsidy_cny": result["interest_subsidy_cny"],
            "subsidy_cap_cny": result.get("subsidy_cap_cny"),  # none in records before it
            "subsidy_granted_before_cny": result.get("subsidy_granted_before_cny"),
            "reasons": _reasons(result["reasons"], lang),
            "declined_by": _reasons(result.get("declined_by", []), lang),  # none in records before it
            "held_by": _reasons(result.get("held_by", []), lang),
            "request": record.request,
            "explanation": record.explanation,
            "model_versions": record.model_versions,
            "code": record.code,
            "reviews": [
                ReviewOut(
                    decision=review.decision.value,
                    reason=review.reason,
                    reviewer_key_id=review.reviewer_key_id,
                    created_at=review.created_at,
                    interest_subsidy_cny=review.interest_subsidy_cny,
                    subsidy_year=review.subsidy_year,
                )
                for review in record.reviews
            ],
        }
    )


def application_summary(record: Application) -> ApplicationSummary:
    result = record.result
    return ApplicationSummary(
        id=record.id,
        application_id=result.get("application_id"),
        institution_id=record.institution_id,
        status=record.status.value,
        outcome=outcome(record.status, result.get("recommendation")),
        created_at=record.created_at,
        enterprise_id=record.enterprise_id,
        amount_cny=record.amount_cny,
        grade=record.grade,
        pd=record.pd,
        recommendation=result.get("recommendation"),
        credit_line_cny=result.get("credit_line_cny"),
    )
