"""The service's code that made each decision and valuation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

A record re-runs exactly with the model versions it names and the code that made it. The model versions
were kept; the code was not, so a difference after an upgrade could not be told from a fault. `code` keeps
the package version, the git commit (and whether the checkout had changes) and the SHA-256 of the project's
Python files. Records stored before this revision keep NULL there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("applications", "valuations")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("code", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:  # a plain DROP COLUMN (SQLite 3.35+): copying the table would break reviews' keys
        op.drop_column(table, "code")
