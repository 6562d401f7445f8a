"""The subsidy each enterprise was granted, kept as a total with the approvals.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

What the cap leaves an enterprise was the sum of its approvals' grants, read by walking every application of
the enterprise with a review lookup each: a request's cost grew with the enterprise's history (15.5 ms with
38,444 prior applications). `subsidy_totals` keeps that sum by enterprise and year, at each bank and at all
banks (institution_id 0), added to in each approval's transaction; the cap's read and its lock are one row.
The totals of the approvals stored before this revision are summed from their reviews.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from features.schema import ID_KEY_MAX_LENGTH  # applications.enterprise_id's length since 0005

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

ALL_BANKS = 0  # lending.tables.ALL_BANKS
ENTERPRISE_ID_LENGTH = 192  # applications.enterprise_id's since 0005 (features.schema.ID_KEY_MAX_LENGTH)


def upgrade() -> None:
    op.create_table(
        "subsidy_totals",
        sa.Column("enterprise_id", sa.String(ID_KEY_MAX_LENGTH), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("granted_cny", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "year", "institution_id", name=op.f("pk_subsidy_totals")),
    )
    _sum_the_grants_so_far()


def _sum_the_grants_so_far() -> None:
    granted = """
        SELECT a.enterprise_id, r.subsidy_year, {bank}, sum(r.interest_subsidy_cny)
        FROM reviews r JOIN applications a ON a.id = r.application_id
        WHERE a.enterprise_id IS NOT NULL
          AND r.subsidy_year IS NOT NULL AND r.interest_subsidy_cny IS NOT NULL
        GROUP BY a.enterprise_id, r.subsidy_year{group}
    """
    columns = "INSERT INTO subsidy_totals (enterprise_id, year, institution_id, granted_cny)"
    op.execute(f"{columns} {granted.format(bank='a.institution_id', group=', a.institution_id')}")
    op.execute(f"{columns} {granted.format(bank=str(ALL_BANKS), group='')}")


def downgrade() -> None:
    op.drop_table("subsidy_totals")
