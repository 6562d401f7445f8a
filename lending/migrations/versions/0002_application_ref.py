"""The bank's own application id on each application, once per institution.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A bank that retries a request after a timeout must not get a second decision on the same application: the
id it sends (`application_id` in the request) is kept in `application_ref`, unique per institution.
Records stored before this revision keep NULL there (NULLs never collide), so an existing database with
repeated ids still migrates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("application_ref", sa.String(64), nullable=True))
    op.create_index(
        "uq_applications_institution_ref", "applications", ["institution_id", "application_ref"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_applications_institution_ref", table_name="applications")
    with op.batch_alter_table("applications") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("application_ref")
