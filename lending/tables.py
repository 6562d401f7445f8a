"""The schema of the loan workflow's records (SQLAlchemy 2 typed declarative).

- ``institutions``: banks, evaluators and the operator, by unique name.
- ``api_keys``: one row per issued key: its institution, role, an 8-character public prefix for lookup
  and the SHA-256 of the whole key (never the key itself); revoked keys keep their row.
- ``applications``: one loan decision: the request exactly as received, the outputs, the SHAP explanation,
  the model versions that made it, its status, and copies of a few fields (enterprise, amount, grade, PD)
  in indexed columns for filtering. The JSON columns are the record; the copies serve queries only.
- ``reviews``: an evaluator's or admin's decision on an application; an override carries a reason.
- ``valuations``: one valuation request (POST /v1/valuations): request, result and model versions.
- ``subsidy_totals``: the interest subsidy an enterprise's approvals granted in a year, at each bank and at
  all banks, kept with the approvals so that reading what the cap leaves is one row whatever the history.

Every timestamp is stored and returned in UTC (aware datetimes on both backends). JSON columns are the
plain JSON type on both backends (text kept as written, not PostgreSQL's JSONB): see docs/records.md.
Enumerations are strings with CHECK constraints, not native PostgreSQL enum types, so that adding a
value later is an ordinary migration on both backends.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from features.schema import ID_KEY_MAX_LENGTH, ID_MAX_LENGTH

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back as an aware UTC datetime, on SQLite (which keeps no zone)
    as on PostgreSQL (timestamptz). Naive datetimes are refused: their zone would be a guess."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware; got naive {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    """What a key may do: a bank creates and reads its own applications; an evaluator reads all and
    reviews; an admin does everything."""

    BANK = "bank"
    EVALUATOR = "evaluator"
    ADMIN = "admin"


class Status(enum.StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    DECLINED = "declined"
    OVERRIDDEN = "overridden"


class Decision(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    OVERRIDE = "override"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as the values ("pending_review"), in a VARCHAR with a CHECK constraint on both backends.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON(), datetime: UTCDateTime()}


class Institution(Base):
    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="institution")

    def __repr__(self) -> str:
        return f"Institution(id={self.id!r}, name={self.name!r})"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    key_prefix: Mapped[str] = mapped_column(String(8), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the whole key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    institution: Mapped[Institution] = relationship(back_populates="keys")

    def __repr__(self) -> str:  # never the hash
        return f"ApiKey(id={self.id!r}, prefix={self.key_prefix!r}, role={self.role!r})"


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_institution_created", "institution_id", "created_at"),
        Index("ix_applications_status_created", "status", "created_at"),
        Index("uq_applications_institution_ref", "institution_id", "application_ref", unique=True),
        # an enterprise's applications at a bank (0004; the subsidy's sum is in subsidy_totals since 0006)
        Index("ix_applications_enterprise_institution", "enterprise_id", "institution_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as text
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    status: Mapped[Status] = mapped_column(_enum(Status, "status"), default=Status.PENDING_REVIEW)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    request: Mapped[dict[str, Any]]  # the inputs exactly as received
    result: Mapped[dict[str, Any]]  # valuation, PD, score, grade, credit line, EL and split, subsidy, reasons
    explanation: Mapped[dict[str, Any]]  # SHAP
    model_versions: Mapped[dict[str, Any]]  # registered model name -> version (and run id)
    code: Mapped[dict[str, Any] | None]  # the service's code: package version, git commit, code hash
    # Copies for filtering and sorting; the JSON above is the record.
    # the bank's id, in NFKC as sent: once per institution
    application_ref: Mapped[str | None] = mapped_column(String(ID_MAX_LENGTH))
    # the applicant's key (features.schema.id_key), which may be longer than its id (0005)
    enterprise_id: Mapped[str | None] = mapped_column(String(ID_KEY_MAX_LENGTH), index=True)
    amount_cny: Mapped[float | None] = mapped_column(Float(53), index=True)
    grade: Mapped[str | None] = mapped_column(String(8), index=True)
    pd: Mapped[float | None] = mapped_column(Float(53), index=True)

    reviews: Mapped[list[Review]] = relationship(
        back_populates="application", order_by="Review.id", cascade="save-update, merge"
    )

    def __repr__(self) -> str:
        return f"Application(id={self.id!r}, institution_id={self.institution_id!r}, status={self.status!r})"


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(
            "decision <> 'override' OR (reason IS NOT NULL AND length(trim(reason)) > 0)",
            name="override_has_reason",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    reviewer_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    decision: Mapped[Decision] = mapped_column(_enum(Decision, "decision"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An approval grants the interest subsidy: what the cap left the enterprise for the year when it was
    # approved (lending.records.review_application); NULL for a decline and for reviews before 0004.
    interest_subsidy_cny: Mapped[float | None] = mapped_column(Float(53))
    subsidy_year: Mapped[int | None] = mapped_column(Integer)

    application: Mapped[Application] = relationship(back_populates="reviews")

    def __repr__(self) -> str:
        return f"Review(id={self.id!r}, application_id={self.application_id!r}, decision={self.decision!r})"


class Valuation(Base):
    __tablename__ = "valuations"
    __table_args__ = (Index("ix_valuations_institution_created", "institution_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as text
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    request: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any]]
    model_versions: Mapped[dict[str, Any]]
    code: Mapped[dict[str, Any] | None]

    def __repr__(self) -> str:
        return f"Valuation(id={self.id!r}, institution_id={self.institution_id!r})"


#: `SubsidyTotal.institution_id` of the total over every bank (institution ids count from 1).
ALL_BANKS = 0


class SubsidyTotal(Base):
    """The interest subsidy an enterprise's approvals granted for a year: at one bank (its institution id) and
    at all banks (`ALL_BANKS`). The reviews hold each grant; this is their sum, added to in the approval's
    transaction (lending.records), so that the cap's read is one row, not a walk of the enterprise's
    history."""

    __tablename__ = "subsidy_totals"

    enterprise_id: Mapped[str] = mapped_column(String(ID_KEY_MAX_LENGTH), primary_key=True)  # applications'

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # a bank's, or ALL_BANKS
    granted_cny: Mapped[float] = mapped_column(Float(53), default=0.0)

    def __repr__(self) -> str:
        return (
            f"SubsidyTotal(enterprise_id={self.enterprise_id!r}, year={self.year!r}, "
            f"institution_id={self.institution_id!r}, granted_cny={self.granted_cny!r})"
        )
