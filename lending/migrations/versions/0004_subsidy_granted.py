"""The interest subsidy each approval grants.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The programme pays at most 100,000 CNY of interest subsidy per enterprise per year. A decision's subsidy
counted only its own loan, so two approved loans of one enterprise could each get the whole cap. An approval
now grants what the cap leaves the enterprise for the year of the loan's application, kept on the review
(`interest_subsidy_cny`, `subsidy_year`), and the grants are summed over the enterprise's approvals. Approvals
stored before this revision are recorded as granting their decision's subsidy, so that the cap counts them.
An index on (enterprise_id, institution_id) finds an enterprise's applications at a bank for that sum.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


OVERRIDDEN_TO_APPROVE = "decline"  # an override of a decline recommendation approves


def upgrade() -> None:
    op.add_column("reviews", sa.Column("interest_subsidy_cny", sa.Float(precision=53), nullable=True))
    op.add_column("reviews", sa.Column("subsidy_year", sa.Integer(), nullable=True))
    op.create_index(
        "ix_applications_enterprise_institution", "applications", ["enterprise_id", "institution_id"]
    )
    # enterprise ids compare regardless of case (features.schema.enterprise_key): "e1" is E1's cap
    op.execute("UPDATE applications SET enterprise_id = upper(enterprise_id)")
    _grant_what_earlier_approvals_decided()


def _grant_what_earlier_approvals_decided() -> None:
    """Approvals stored before this revision granted their decision's subsidy: recorded so, so that the cap
    counts them (the year is that of the loan's application date)."""
    connection = op.get_bind()
    reviews, applications = (
        sa.table(
            "reviews",
            sa.column("id", sa.Integer),
            sa.column("application_id", sa.String),
            sa.column("decision", sa.String),
            sa.column("interest_subsidy_cny", sa.Float),
            sa.column("subsidy_year", sa.Integer),
        ),
        sa.table(
            "applications",
            sa.column("id", sa.String),
            sa.column("request", sa.JSON),
            sa.column("result", sa.JSON),
        ),
    )
    rows = connection.execute(
        sa.select(reviews.c.id, reviews.c.decision, applications.c.request, applications.c.result).join(
            applications, reviews.c.application_id == applications.c.id
        )
    ).all()
    for review_id, decision, request, result in rows:
        result, request = result or {}, request or {}
        approved = decision == "approve" or (
            decision == "override" and result.get("recommendation") == OVERRIDDEN_TO_APPROVE
        )
        subsidy = result.get("interest_subsidy_cny")
        date = str((request.get("loan") or {}).get("application_date") or "")
        if approved and isinstance(subsidy, int | float) and date[:4].isdecimal():
            connection.execute(
                reviews.update()
                .where(reviews.c.id == review_id)
                .values(interest_subsidy_cny=float(subsidy), subsidy_year=int(date[:4]))
            )


def downgrade() -> None:
    op.drop_index("ix_applications_enterprise_institution", table_name="applications")
    for column in ("subsidy_year", "interest_subsidy_cny"):  # a plain DROP COLUMN (SQLite 3.35+)
        op.drop_column("reviews", column)
