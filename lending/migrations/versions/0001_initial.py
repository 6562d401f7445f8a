"""The initial schema: institutions, api_keys, applications, reviews, valuations.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Self-contained (imports nothing from lending.tables, which will change after it); constraint and index
names are those of the naming convention in lending/tables.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ROLES = ("bank", "evaluator", "admin")
STATUSES = ("pending_review", "approved", "declined", "overridden")
DECISIONS = ("approve", "decline", "override")


def _when() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _choice(column: str, table: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _when(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institutions")),
        sa.UniqueConstraint("name", name=op.f("uq_institutions_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_prefix", sa.String(8), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _when(),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _choice("role", "api_keys", ROLES),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_api_keys_institution_id_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_institution_id"), "api_keys", ["institution_id"])
    op.create_index(op.f("ix_api_keys_key_prefix"), "api_keys", ["key_prefix"])

    op.create_table(
        "applications",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _when(),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=True),
        sa.Column("amount_cny", sa.Float(precision=53), nullable=True),
        sa.Column("grade", sa.String(8), nullable=True),
        sa.Column("pd", sa.Float(precision=53), nullable=True),
        _choice("status", "applications", STATUSES),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_applications_institution_id_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    for column in ("amount_cny", "created_at", "enterprise_id", "grade", "pd"):
        op.create_index(op.f(f"ix_applications_{column}"), "applications", [column])
    op.create_index("ix_applications_institution_created", "applications", ["institution_id", "created_at"])
    op.create_index("ix_applications_status_created", "applications", ["status", "created_at"])

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("reviewer_key_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _when(),
        _choice("decision", "reviews", DECISIONS),
        sa.CheckConstraint(
            "decision <> 'override' OR (reason IS NOT NULL AND length(trim(reason)) > 0)",
            name=op.f("ck_reviews_override_has_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"], ["applications.id"], name=op.f("fk_reviews_application_id_applications")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_key_id"], ["api_keys.id"], name=op.f("fk_reviews_reviewer_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index(op.f("ix_reviews_application_id"), "reviews", ["application_id"])
    op.create_index(op.f("ix_reviews_reviewer_key_id"), "reviews", ["reviewer_key_id"])

    op.create_table(
        "valuations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        _when(),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_valuations_institution_id_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_valuations")),
    )
    op.create_index(op.f("ix_valuations_created_at"), "valuations", ["created_at"])
    op.create_index("ix_valuations_institution_created", "valuations", ["institution_id", "created_at"])


def downgrade() -> None:
    for table in ("valuations", "reviews", "applications", "api_keys", "institutions"):
        op.drop_table(table)  # with their indexes
