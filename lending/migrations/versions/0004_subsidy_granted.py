"""The interest subsidy each approval grants.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The programme pays at most 100,000 CNY of interest subsidy per enterprise per year. A decision's subsidy
counted only its own loan, so two approved loans of one enterprise could each get the whole cap. An approval
now grants what the cap leaves the enterprise for the year of the loan's application, kept on the review
(`interest_subsidy_cny`, `subsidy_year`), and the grants are summed over the enterprise's approvals. Reviews
stored before this revision keep NULL there: nothing was granted on record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("interest_subsidy_cny", sa.Float(precision=53), nullable=True))
    op.add_column("reviews", sa.Column("subsidy_year", sa.Integer(), nullable=True))


def downgrade() -> None:
    for column in ("subsidy_year", "interest_subsidy_cny"):  # a plain DROP COLUMN (SQLite 3.35+)
        op.drop_column("reviews", column)
