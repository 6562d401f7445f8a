"""Enterprise ids as keys: long enough for any accepted id, and in the one spelling records compare.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

An enterprise id is stored as its key (features.schema.id_key: NFKC, case folded, upper case), which may be
longer than the id sent: "ß" * 33 is 33 characters and its key, "SS" * 33, 66; PostgreSQL refused it from a
64-character column (a 500) where SQLite stored it. `applications.enterprise_id` now holds
ID_KEY_MAX_LENGTH (192) characters: KEY_GROWTH (3) for each of the 64 an id may have. The keys stored before
this revision were upper-cased by SQL (0004), which leaves some letters unfolded ("ß" on PostgreSQL) and
full-width forms apart: they are re-keyed here. `application_ref`, the bank's own id compared as sent, keeps
its 64 characters and its stored spelling (re-spelling it could make two refs of one bank collide).
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Self-contained, as every revision: features.schema's ID_MAX_LENGTH and ID_KEY_MAX_LENGTH as of this one.
ID_LENGTH = 64
KEY_LENGTH = 192
ENTERPRISE_INDEXES = {  # the indexes on applications.enterprise_id (0001, 0004)
    "ix_applications_enterprise_id": ["enterprise_id"],
    "ix_applications_enterprise_institution": ["enterprise_id", "institution_id"],
}


def _key(value: str) -> str:
    """features.schema.id_key as of this revision: NFKC, case folded, upper case."""
    if value.isascii():
        return value.upper()
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return unicodedata.normalize("NFKC", folded.upper())


def upgrade() -> None:
    _enterprise_id_length(KEY_LENGTH)
    _rekey_enterprise_ids()


def _enterprise_id_length(length: int) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("applications", "enterprise_id", type_=sa.String(length), existing_nullable=True)
        return
    # SQLite changes a column by copying its table, which the reviews' foreign keys forbid once reviews
    # exist: the column is replaced in place instead (its indexes dropped and made again)
    for name in ENTERPRISE_INDEXES:
        op.drop_index(name, table_name="applications")
    op.add_column("applications", sa.Column("enterprise_id_new", sa.String(length), nullable=True))
    op.execute("UPDATE applications SET enterprise_id_new = enterprise_id")
    op.execute("ALTER TABLE applications DROP COLUMN enterprise_id")  # SQLite 3.35+
    op.execute("ALTER TABLE applications RENAME COLUMN enterprise_id_new TO enterprise_id")
    for name, columns in ENTERPRISE_INDEXES.items():
        op.create_index(name, "applications", columns)


def _rekey_enterprise_ids() -> None:
    """Each stored enterprise id as its key (most are already: ASCII ids upper-cased by 0004)."""
    applications = sa.table("applications", sa.column("enterprise_id", sa.String))
    connection = op.get_bind()
    stored = connection.execute(
        sa.select(applications.c.enterprise_id).where(applications.c.enterprise_id.is_not(None)).distinct()
    ).scalars()
    for old, new in [(old, _key(old)) for old in stored if _key(old) != old]:
        connection.execute(
            applications.update().where(applications.c.enterprise_id == old).values(enterprise_id=new)
        )


def downgrade() -> None:
    # a key longer than 64 characters makes PostgreSQL refuse: cutting it would name another enterprise
    _enterprise_id_length(ID_LENGTH)
