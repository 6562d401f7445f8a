"""The data model: typed records and the table checks derived from them.

Each record class is the single definition of its fields: type, unit, bounds, allowed values and
whether the value is known when a loan is applied for. `validate_table` reads those definitions to
check a whole DataFrame at once, so a record and a table are held to the same rules. Rules that
tie fields together (expiry after filing, no dates in the future) live in `_ROW_RULES` and run on
a table's columns as numpy arrays; `parse_records` runs the same rules on records' columns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import types
import typing
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any

import annotated_types
import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from features.errors import InvalidData, Problem
from features.values import plain

# --- enumerations ---------------------------------------------------------------------------


class PatentType(StrEnum):
    INVENTION = "invention"  # 发明, 20-year term from filing
    UTILITY_MODEL = "utility_model"  # 实用新型, 10 years
    DESIGN = "design"  # 外观设计, 15 years (filed since 2021-06-01; 10 before)


class LegalStatus(StrEnum):
    PENDING = "pending"
    VALID = "valid"
    LAPSED = "lapsed"  # annuity unpaid
    EXPIRED = "expired"
    INVALIDATED = "invalidated"
    WITHDRAWN = "withdrawn"


class IpcSection(StrEnum):
    A = "A"  # human necessities
    B = "B"  # performing operations; transporting
    C = "C"  # chemistry; metallurgy
    D = "D"  # textiles; paper
    E = "E"  # fixed constructions
    F = "F"  # mechanical engineering; lighting; heating; weapons
    G = "G"  # physics
    H = "H"  # electricity


class TrademarkStatus(StrEnum):
    PENDING = "pending"
    REGISTERED = "registered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    INVALIDATED = "invalidated"


#: Statuses of a right in force (or pending): worth something to its owner and to a pledgee. Every other
#: status of a patent or a mark is a right that has ended.
LIVE_STATUSES = frozenset({"valid", "pending", "registered"})
ENDED_STATUSES = frozenset(s.value for s in (*LegalStatus, *TrademarkStatus)) - LIVE_STATUSES


def flag(value: Any) -> bool | None:
    """A yes/no value: True for true or 1, False for false or 0, None when missing (None, NaN, NA);
    ValueError for anything else (text such as "Y" is not guessed at).

    >>> [flag(v) for v in (1, 0.0, True, None, float("nan"))]
    [True, False, True, None, None]
    """
    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected 0 or 1, true or false, or missing; got {value!r}")


class TaxGrade(StrEnum):
    """纳税信用等级, best first; M is the grade for new or small taxpayers with no history."""

    A = "A"
    B = "B"
    M = "M"
    C = "C"
    D = "D"


class Industry(StrEnum):
    ELECTRONICS = "electronics"  # 电子信息
    BIOMEDICINE = "biomedicine"  # 生物医药
    NEW_MATERIALS = "new_materials"  # 新材料
    ADVANCED_MANUFACTURING = "advanced_manufacturing"  # 高端装备制造
    SOFTWARE = "software"  # 软件和信息技术服务
    ENERGY_ENVIRONMENT = "energy_environment"  # 新能源与节能环保
    AGRI_FOOD = "agri_food"  # 农产品与食品加工
    LOGISTICS = "logistics"  # 物流 (Ezhou Huahu airport hub)


class AssetKind(StrEnum):
    PATENT = "patent"
    TRADEMARK = "trademark"


class EventType(StrEnum):
    """Dated legal and market events; features count them as of a date, so later ones never leak."""

    CITATION_RECEIVED = "citation_received"  # patent only: a later patent cites it
    TRANSFER = "transfer"
    LICENCE = "licence"
    PLEDGE = "pledge"
    INVALIDATION_REQUEST = "invalidation_request"
    INVALIDATED = "invalidated"
    LITIGATION = "litigation"
    LAPSE = "lapse"  # patent only: annuity unpaid
    RENEWAL = "renewal"  # trademark only: 10-year renewal
    OPPOSITION = "opposition"  # trademark only
    CANCELLATION = "cancellation"  # trademark only: e.g. three years unused


PATENT_ONLY_EVENTS = frozenset({EventType.CITATION_RECEIVED, EventType.LAPSE})
TRADEMARK_ONLY_EVENTS = frozenset({EventType.RENEWAL, EventType.OPPOSITION, EventType.CANCELLATION})


class DisposalRoute(StrEnum):
    """How a defaulted loan's pledged rights were turned into money (domain.md sections 1 and 6)."""

    LICENCE = "licence"  # licensed back to the owner or to others
    AUCTION_TRANSFER = "auction_transfer"
    PLEDGE_TO_EQUITY = "pledge_to_equity"


class GuaranteeType(StrEnum):
    NONE = "none"
    GUARANTEE_COMPANY = "guarantee_company"  # 融资担保公司
    PERSONAL = "personal"  # owner's personal joint liability


class AppraisalSource(StrEnum):
    APPRAISAL = "appraisal"  # an appraiser's report
    TRANSACTION = "transaction"  # a transfer or licence price


# --- field helpers --------------------------------------------------------------------------


def field(
    description: str,
    *,
    unit: str | None = None,
    at_application: bool = True,
    past: bool = False,
    **constraints: Any,
) -> Any:
    """A documented field: `unit`, whether it is known at application time, and for dates whether
    it may not lie in the future. Bounds (`ge`, `le`, `gt`) go to pydantic and to table checks."""
    extra = {"unit": unit, "at_application": at_application, "past": past}
    return Field(description=description, json_schema_extra=extra, **constraints)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    """Dates come as dates or ISO 'YYYY-MM-DD' text; a number, a timestamp or a datetime is refused,
    not reinterpreted."""
    is_date = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if not (is_date or isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise ValueError("a date or an ISO date text YYYY-MM-DD")
    return value


# Strict scalar types: "12" is not 12 and 1 is not True. Enums accept their text value.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Date = Annotated[dt.date, BeforeValidator(_iso_date)]
ID_MAX_LENGTH = 64  # characters of an id, as sent and once in NFKC
# The most characters one character of an id in NFKC becomes in its key (id_key: "ß" is "SS", "ῒ" three;
# tests/test_ids.py checks every code point): the records' key columns hold ID_MAX_LENGTH of them.
KEY_GROWTH = 3
ID_KEY_MAX_LENGTH = ID_MAX_LENGTH * KEY_GROWTH
# Characters no id may hold: invisible or not characters at all, they make two spellings of one id.
_REFUSED_IN_ID = {
    "Cc": "a control character",
    "Cf": "a format character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
ID_EXPECTED = "an id without control, format, surrogate, private-use or unassigned characters or line breaks"


def _character(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" {name}" if name else "")


def id_problem(value: str) -> str | None:
    """What is wrong with an id, in words that name the character and its position (from 1), or None: a
    character of _REFUSED_IN_ID, a space at either end (once in NFKC), or more than ID_MAX_LENGTH characters
    in NFKC. Records (the `Id` type) and tables (validate_table, valuation.assets) refuse alike."""
    problem = _refused_character(value)
    if problem is not None:
        return problem
    text = normalised_id(value)
    for position in (1, len(text)):
        if text and text[position - 1].isspace():
            space = _character(text[position - 1])
            return f"an id without spaces at either end ({space} at position {position})"
    if len(text) > ID_MAX_LENGTH:
        return f"an id of at most {ID_MAX_LENGTH} characters in Unicode NFKC (got {len(text)})"
    return None


def _refused_character(value: str) -> str | None:
    if value.isascii() and value.isprintable():  # printable ASCII (most ids) holds none of them
        return None
    for position, c in enumerate(value, 1):
        kind = _REFUSED_IN_ID.get(unicodedata.category(c))
        if kind is not None:
            return f"{ID_EXPECTED} ({_character(c)}, {kind}, at position {position})"
    return None


def _no_surrogate(value: Any) -> Any:
    # before pydantic's own check of text, which refuses a lone surrogate without naming it
    if isinstance(value, str) and not value.isascii():
        problem = _refused_character(value)
        if problem is not None and "surrogate" in problem:
            raise ValueError(problem)
    return value


def normalised_id(value: str) -> str:
    """An id in Unicode NFKC: one spelling of what reads alike ("ＣＮ１" is "CN1", "ﬁ" is "fi")."""
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def _clean_id(value: str) -> str:
    # "E1 " and "E1\u200b" would be other enterprises than E1 to a comparison: refused, not trimmed
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return normalised_id(value)


#: An id (asset, enterprise, application, bank) as the domain takes it: 1 to 64 characters, kept in NFKC,
#: case kept (what the bank sent is what it reads back); ids that are case-blind compare by `id_key`.
Id = Annotated[
    str,
    Strict(),
    annotated_types.MinLen(1),
    annotated_types.MaxLen(ID_MAX_LENGTH),
    AfterValidator(_clean_id),
    BeforeValidator(_no_surrogate),
]


def id_key(value: str) -> str:
    """A case-blind id as records compare and store it: in NFKC, case folded, in upper case ("cnp1" is
    CNP1, "ß" is "SS"; a CNIPA number and a unified social credit code are upper case by their standards).
    Idempotent; at most KEY_GROWTH characters a character. Asset and enterprise ids are case-blind; a bank's
    own application id and the bank's id are compared as sent (in NFKC)."""
    if value.isascii():
        return value.upper()
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return unicodedata.normalize("NFKC", folded.upper())


def enterprise_key(enterprise_id: str) -> str:
    """An enterprise id as records compare it: `id_key` ("e0000001" is E0000001)."""
    return id_key(enterprise_id)


CNY = "CNY"
DAYS = "days"


class Record(BaseModel):
    """Base of every record: strict scalar types (no silent coercion), unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    #: columns that identify a row; duplicates are refused
    key: typing.ClassVar[tuple[str, ...]] = ()


# --- records --------------------------------------------------------------------------------


class Patent(Record):
    """A Chinese patent held by an enterprise (static bibliographic data; dated events are separate)."""

    key: typing.ClassVar[tuple[str, ...]] = ("patent_id",)

    patent_id: Id = field("Application or publication number, e.g. CN202110123456.7")
    enterprise_id: Id = field("Owner (patentee) enterprise")
    patent_type: PatentType = field("invention / utility_model / design")
    filing_date: Date = field("Filing (application) date", past=True)
    grant_date: Date | None = field("Grant date; empty while pending", past=True, default=None)
    expiry_date: Date = field("Statutory end of term (filing date + term)")
    legal_status: LegalStatus = field(
        "Status when the record was extracted; features derive the status as of the application "
        "date from dated events instead",
        at_application=False,
    )
    ipc_main: Annotated[str, Strict()] | None = field(
        "Main IPC subclass, e.g. H01M; empty for designs (Locarno-classified)",
        default=None,
        pattern=r"^[A-H]\d\d[A-Z]$",
    )
    ipc_count: Int = field("Number of distinct IPC subclasses assigned (breadth of field)", ge=0)
    n_claims: Int = field("Number of claims", ge=0)
    n_independent_claims: Int = field("Number of independent claims", ge=0)
    backward_citations: Int = field("References cited by the patent (fixed at grant)", ge=0)
    family_size: Int = field("Members of the patent family, this one included", ge=1)
    family_countries: Int = field("Jurisdictions the family covers", ge=1)
    n_inventors: Int = field("Named inventors", ge=1)
    in_use: Bool = field("The owner's products use the patent (declared)")


class Trademark(Record):
    """A registered (or applied-for) Chinese trademark."""

    key: typing.ClassVar[tuple[str, ...]] = ("trademark_id",)

    trademark_id: Id = field("Registration (or application) number")
    enterprise_id: Id = field("Owner (registrant) enterprise")
    nice_class: Int = field("Nice class of goods or services", ge=1, le=45)
    n_goods_services: Int = field("Goods or services designated in the class", ge=1)
    filing_date: Date = field("Filing date", past=True)
    registration_date: Date | None = field("Registration date; empty while pending", past=True, default=None)
    status: TrademarkStatus = field(
        "Status when the record was extracted; features derive it as of the application date",
        at_application=False,
    )
    well_known: Bool = field("Recognised well-known mark (驰名商标)")
    time_honoured: Bool = field("Time-honoured brand (中华老字号)")
    in_use: Bool = field("The mark is used on goods or services (declared)")
    revenue_under_mark_cny: Float | None = field(
        "Yearly revenue of products sold under the mark (declared)", unit=CNY, ge=0, default=None
    )


class AssetEvent(Record):
    """A dated legal or market event on one patent or trademark."""

    key: typing.ClassVar[tuple[str, ...]] = ()

    asset_kind: AssetKind = field("patent / trademark")
    asset_id: Id = field("patent_id or trademark_id")
    event_type: EventType = field("What happened")
    event_date: Date = field("When it happened (public record date)", past=True)


class Enterprise(Record):
    """A credit snapshot of an enterprise as of `report_date` (statements, bureau, court, tax)."""

    key: typing.ClassVar[tuple[str, ...]] = ("enterprise_id", "report_date")

    enterprise_id: Id = field("Unified social credit code or internal id")
    report_date: Date = field(
        "Date the snapshot was taken; features use the latest one on or before the application date",
        past=True,
    )
    industry: Industry = field("Main industry")
    founded_date: Date = field("Date of incorporation", past=True)
    registered_capital_cny: Float = field("Registered capital", unit=CNY, ge=0)
    employees: Int = field("Staff", ge=1)
    rd_staff: Int = field("R&D staff", ge=0)
    revenue_cny: Float = field("Revenue of the last fiscal year", unit=CNY, ge=0)
    revenue_growth: Float = field("Revenue growth over the prior year (0.1 = +10%)", unit="ratio", ge=-1)
    gross_margin: Float = field("Gross margin (gross profit / revenue)", unit="ratio", le=1)
    net_profit_cny: Float = field("Net profit of the last fiscal year", unit=CNY)
    total_assets_cny: Float = field("Total assets", unit=CNY, ge=0)
    total_liabilities_cny: Float = field("Total liabilities", unit=CNY, ge=0)
    current_ratio: Float | None = field(
        "Current assets / current liabilities", unit="ratio", ge=0, default=None
    )
    operating_cash_flow_cny: Float = field("Operating cash flow of the last fiscal year", unit=CNY)
    rd_spend_cny: Float = field("R&D spend of the last fiscal year", unit=CNY, ge=0)
    tax_grade: TaxGrade = field("Tax credit grade (纳税信用等级) A, B, M, C, D")
    tax_paid_cny: Float = field("Tax paid in the last fiscal year", unit=CNY, ge=0)
    overdue_count_24m: Int = field("Overdue repayments in the last 24 months (credit bureau)", ge=0)
    max_overdue_days_24m: Int = field("Longest overdue in the last 24 months", unit=DAYS, ge=0)
    outstanding_loans_cny: Float = field("Loans outstanding", unit=CNY, ge=0)
    guarantees_given_cny: Float = field("Guarantees given for others", unit=CNY, ge=0)
    court_judgements: Int = field("Court judgements against the enterprise, last 3 years", ge=0)
    enforcement_count: Int = field("Enforcement cases (被执行), last 3 years", ge=0)
    dishonest_debtor: Bool = field("On the dishonest-debtor list (失信被执行人)")
    admin_penalties: Int = field("Administrative penalties, last 3 years", ge=0)
    high_tech: Bool = field("High-tech enterprise (高新技术企业) certificate")
    specialized_sme: Bool = field("专精特新 SME (list supplied by the economy bureau)")
    little_giant: Bool = field("专精特新 'little giant' (小巨人)")
    tech_sme: Bool = field("Registered tech SME (科技型中小企业)")


class PledgedAsset(Record):
    asset_kind: AssetKind = field("patent / trademark")
    asset_id: Id = field("patent_id or trademark_id")


class Pledge(PledgedAsset):
    """One row of the pledges table: an asset pledged in an application."""

    key: typing.ClassVar[tuple[str, ...]] = ("application_id", "asset_kind", "asset_id")

    application_id: Id = field("Loan application")


class LoanApplication(Record):
    """A loan asked for against a bundle of pledged IP. As a table, the bundle is the pledges table."""

    key: typing.ClassVar[tuple[str, ...]] = ("application_id",)

    application_id: Id = field("Application id")
    enterprise_id: Id = field("Applying enterprise")
    bank_id: Id = field("Lending bank")
    application_date: Date = field("Date of application; every feature is computed as of it", past=True)
    amount_cny: Float = field("Amount asked for", unit=CNY, gt=0)
    term_months: Int = field("Loan term", unit="months", ge=1, le=60)
    annual_rate: Float = field("Annual interest rate (0.045 = 4.5%)", unit="ratio", ge=0, le=0.36)
    guarantee: GuaranteeType = field("Guarantee beside the pledge")
    guarantee_share: Float = field(
        "Share of a loss the guarantor bears (0 with no guarantee)", unit="ratio", ge=0, le=1
    )
    insurance: Bool = field("IP pledge financing insurance bought")
    insurance_share: Float = field(
        "Share of a loss the insurer bears (0 without insurance)", unit="ratio", ge=0, le=1
    )
    pledged_assets: tuple[PledgedAsset, ...] = field(
        "Patents and trademarks pledged (the bundle); a table keeps them in the pledges table", min_length=1
    )


class LoanOutcome(Record):
    """What happened to a loan in the 12 months after it was granted (the scoring target)."""

    key: typing.ClassVar[tuple[str, ...]] = ("application_id",)

    application_id: Id = field("Loan application")
    defaulted_12m: Bool = field("90+ days past due or written off within 12 months", at_application=False)
    default_date: Date | None = field("Date of default", past=True, at_application=False, default=None)
    recovery_cny: Float | None = field(
        "Amount recovered after default (disposal of the pledge and others)",
        unit=CNY,
        ge=0,
        at_application=False,
        default=None,
    )
    disposal_route: DisposalRoute | None = field(
        "How the pledged rights of a defaulted loan were disposed of", at_application=False, default=None
    )
    recovery_date: Date | None = field(
        "Date the recovery was completed", past=True, at_application=False, default=None
    )
    repaid_date: Date | None = field(
        "Date the loan was repaid in full (empty while it runs, or after a default)",
        past=True,
        at_application=False,
        default=None,
    )


class Appraisal(Record):
    """An observed value of an asset: an appraiser's report or a transaction price."""

    key: typing.ClassVar[tuple[str, ...]] = ("asset_kind", "asset_id", "appraisal_date")

    asset_kind: AssetKind = field("patent / trademark")
    asset_id: Id = field("patent_id or trademark_id")
    appraisal_date: Date = field("Valuation date", past=True)
    value_cny: Float = field("Observed value", unit=CNY, gt=0)
    source: AppraisalSource = field("appraisal / transaction")


# --- column descriptions derived from the records ---------------------------------------------


class Column(typing.NamedTuple):
    name: str
    kind: str  # "str", "int", "float", "bool", "date", "enum"
    required: bool
    allowed: tuple[str, ...] | None
    ge: float | None
    gt: float | None
    le: float | None
    pattern: str | None
    past: bool
    unit: str | None
    at_application: bool
    description: str
    max_length: int | None = None
    identifier: bool = False  # an `Id`: its characters are checked too (id_problem)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, required) for `X | None` and plain X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], False
    return annotation, True


@functools.cache  # the record classes are fixed: introspect each once, not on every table
def columns(model: type[Record]) -> tuple[Column, ...]:
    """The table columns of a record class (list-valued fields such as the bundle excluded)."""
    out = []
    for name, info in model.model_fields.items():
        inner, required = _unwrap(info.annotation)
        if typing.get_origin(inner) is tuple:
            continue
        if typing.get_origin(inner) is Annotated:
            inner = typing.get_args(inner)[0]
        bounds: dict[str, Any] = {"ge": None, "gt": None, "le": None, "pattern": None, "max_length": None}
        for meta in info.metadata:
            for attr in bounds:
                if getattr(meta, attr, None) is not None:
                    bounds[attr] = getattr(meta, attr)
        allowed = None
        if isinstance(inner, type) and issubclass(inner, StrEnum):
            kind, allowed = "enum", tuple(m.value for m in inner)
        else:
            kind = {str: "str", int: "int", float: "float", bool: "bool", dt.date: "date"}[inner]
        extra = info.json_schema_extra or {}
        out.append(
            Column(
                name,
                kind,
                required,
                allowed,
                bounds["ge"],
                bounds["gt"],
                bounds["le"],
                bounds["pattern"],
                bool(extra.get("past")),
                extra.get("unit"),
                bool(extra.get("at_application", True)),
                info.description or "",
                bounds["max_length"],
                any(getattr(meta, "func", None) is _clean_id for meta in info.metadata),
            )
        )
    return tuple(out)


# --- table validation -----------------------------------------------------------------------

# A table as a DataFrame (a portfolio), or as a mapping of column name to a 1-D array (one request's records,
# record_columns): checks and formulas take either, so one record does not pay pandas' fixed cost per column.
Table = pd.DataFrame | Mapping[str, Any]


def _row_label(table: Table, key: tuple[str, ...], positions: np.ndarray) -> list[str | None]:
    if not key or not set(key) <= set(table.keys()):
        return [None] * len(positions)
    parts = []
    for k in key:
        values = np.asarray(table[k])[positions]
        if values.dtype.kind == "M":
            values = np.datetime_as_string(values, unit="D")
        parts.append(values.astype(str))
    return ["/".join(p) for p in zip(*parts, strict=True)]


def _problems_at(
    table: Table,
    key: tuple[str, ...],
    mask: np.ndarray,
    field_name: str,
    expected: str,
    got: Iterable[Any] | None = None,
) -> list[Problem]:
    positions = np.flatnonzero(mask)
    if positions.size == 0:
        return []
    values = np.asarray(table[field_name])[positions] if got is None else np.asarray(list(got), dtype=object)
    ids = _row_label(table, key, positions)
    return [
        Problem(field_name, expected, plain(v), int(r), i)
        for r, v, i in zip(positions, values, ids, strict=True)
    ]


def _check_column(df: pd.DataFrame, col: Column, key: tuple[str, ...], today: dt.date) -> list[Problem]:
    s = df[col.name]
    missing = s.isna().to_numpy()
    problems = []
    if col.required:
        problems += _problems_at(df, key, missing, col.name, f"a value ({col.kind})")
    present = ~missing
    if col.kind in ("int", "float"):
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            return problems + [Problem(col.name, f"a numeric column ({col.kind})", str(s.dtype))]
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        if col.kind == "int":
            problems += _problems_at(df, key, present & (values != np.round(values)), col.name, "an integer")
        problems += _not_finite(df, key, col, values)
        for bound, op, text in (
            (col.ge, np.less, ">="),
            (col.gt, np.less_equal, ">"),
            (col.le, np.greater, "<="),
        ):
            if bound is not None:
                problems += _problems_at(df, key, present & op(values, bound), col.name, f"{text} {bound:g}")
    elif col.kind == "bool":
        if not pd.api.types.is_bool_dtype(s):
            return problems + [Problem(col.name, "a boolean column (true/false)", str(s.dtype))]
    elif col.kind == "date":
        if not pd.api.types.is_datetime64_any_dtype(s):
            return problems + [Problem(col.name, "a date column", str(s.dtype))]
        problems += _in_future(df, key, col, s.to_numpy(), today)
    else:  # str and enum
        is_text = (
            pd.api.types.is_string_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype)
            or (s.dtype == object and s.dropna().map(type).eq(str).all())
        )
        if not is_text:
            return problems + [Problem(col.name, "a text column", str(s.dtype))]
        text = s.astype("string")
        if col.allowed is not None:
            bad = present & ~text.isin(col.allowed).fillna(False).to_numpy(dtype=bool)
            problems += _problems_at(df, key, bad, col.name, f"one of {', '.join(col.allowed)}")
        if col.pattern is not None:
            bad = present & ~text.str.fullmatch(col.pattern).fillna(False).to_numpy(dtype=bool)
            problems += _problems_at(df, key, bad, col.name, f"a code matching {col.pattern}")
        if col.max_length is not None:
            length = text.str.len().fillna(0).to_numpy()
            problems += _problems_at(
                df,
                key,
                present & ((length == 0) | (length > col.max_length)),
                col.name,
                f"a non-empty text of at most {col.max_length} characters",
            )
        if col.identifier:
            problems += _id_problems(df, key, col.name, text)
    return problems


def _id_problems(df: pd.DataFrame, key: tuple[str, ...], name: str, text: pd.Series) -> list[Problem]:
    """An id column's values that `id_problem` refuses, each distinct value checked once."""
    found = {v: id_problem(v) for v in text.dropna().unique()}
    refused = {v: problem for v, problem in found.items() if problem is not None}
    if not refused:
        return []
    problems = []
    for expected in set(refused.values()):
        values = [v for v, problem in refused.items() if problem == expected]
        mask = text.isin(values).fillna(False).to_numpy(dtype=bool)
        problems += _problems_at(df, key, mask, name, expected)
    return problems


def _not_finite(table: Table, key: tuple[str, ...], col: Column, values: np.ndarray) -> list[Problem]:
    return _problems_at(table, key, np.isinf(values), col.name, "a finite number")  # NaN is missing, not bad


def _in_future(
    table: Table, key: tuple[str, ...], col: Column, values: np.ndarray, today: dt.date
) -> list[Problem]:
    if not col.past:
        return []
    future = values > np.datetime64(today, "D")  # NaT compares False
    return _problems_at(table, key, future, col.name, f"a date not after today ({today})")


def _check_parsed_column(
    arrays: Mapping[str, np.ndarray], col: Column, key: tuple[str, ...], today: dt.date
) -> list[Problem]:
    """What pydantic leaves to the table in records it parsed (it checked each field's type, bounds,
    pattern and length): infinite numbers and dates after today. `arrays`: the records' columns as
    record_columns built them, so one request's records are checked without pandas."""
    if col.kind in ("int", "float"):
        return _not_finite(arrays, key, col, arrays[col.name])
    if col.kind == "date":
        return _in_future(arrays, key, col, arrays[col.name], today)
    return []


def _rule_arrays(df: pd.DataFrame, present: Iterable[Column]) -> dict[str, np.ndarray]:
    """A type-checked table's columns as the numpy arrays the row rules take, as record_columns makes
    them for records: dates as datetime64 (NaT when missing), numbers as floats (NaN), booleans as
    bools, text as objects (None)."""
    out = {}
    for col in present:
        s = df[col.name]
        if col.kind == "date":  # seconds, as for records: any date fits, and a day is exact
            out[col.name] = (s.dt.tz_localize(None) if s.dt.tz is not None else s).to_numpy("datetime64[s]")
        elif col.kind in ("int", "float"):
            out[col.name] = s.to_numpy(dtype="float64", na_value=np.nan)
        elif col.kind == "bool":
            out[col.name] = s.to_numpy(dtype=bool, na_value=False)
        else:
            out[col.name] = s.to_numpy(dtype=object, na_value=None)
    return out


def _given(d: Mapping[str, np.ndarray], column: str) -> np.ndarray:
    """Where an optional column holds a value (nowhere when the table lacks the column)."""
    if column not in d:
        return _none(d)
    values = d[column]
    return ~np.isnat(values) if values.dtype.kind == "M" else pd.notna(values)


def _none(d: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.zeros(len(next(iter(d.values()))), dtype=bool)


def _date_gap(d: Mapping[str, np.ndarray], later: str, earlier: str) -> np.ndarray:
    """True where both dates are present and `later` lies before `earlier` (NaT compares False)."""
    return d[later] < d[earlier]


# Rules that tie several fields of one row together. Each returns (field, expected, mask of bad rows).
# They take the table's columns as numpy arrays (_rule_arrays, record_columns).
RowRule = Callable[[Mapping[str, np.ndarray]], tuple[str, str, np.ndarray]]
_ROW_RULES: dict[type[Record], list[RowRule]] = {
    Patent: [
        lambda d: (
            "grant_date",
            "a grant date on or after the filing date",
            _date_gap(d, "grant_date", "filing_date"),
        ),
        lambda d: (
            "expiry_date",
            "an expiry date after the filing date",
            d["expiry_date"] <= d["filing_date"],
        ),
        lambda d: (
            "n_independent_claims",
            "at most n_claims independent claims",
            d["n_independent_claims"] > d["n_claims"],
        ),
        lambda d: (
            "family_countries",
            "at most family_size countries",
            d["family_countries"] > d["family_size"],
        ),
        lambda d: (
            "ipc_main",
            "an IPC subclass for inventions and utility models",
            pd.isna(d["ipc_main"]) & (d["patent_type"] != PatentType.DESIGN),
        ),
        lambda d: (
            "grant_date",
            "a grant date for a patent in force",
            np.isnat(d["grant_date"]) & (d["legal_status"] == LegalStatus.VALID),
        ),
    ],
    Trademark: [
        lambda d: (
            "registration_date",
            "a registration date on or after the filing date",
            _date_gap(d, "registration_date", "filing_date"),
        ),
        lambda d: (
            "registration_date",
            "a registration date for a registered mark",
            np.isnat(d["registration_date"]) & (d["status"] == TrademarkStatus.REGISTERED),
        ),
    ],
    AssetEvent: [
        lambda d: (
            "event_type",
            "an event that can happen to a patent",
            (d["asset_kind"] == AssetKind.PATENT) & np.isin(d["event_type"], list(TRADEMARK_ONLY_EVENTS)),
        ),
        lambda d: (
            "event_type",
            "an event that can happen to a trademark",
            (d["asset_kind"] == AssetKind.TRADEMARK) & np.isin(d["event_type"], list(PATENT_ONLY_EVENTS)),
        ),
    ],
    Enterprise: [
        lambda d: (
            "founded_date",
            "a founding date on or before the report date",
            _date_gap(d, "report_date", "founded_date"),
        ),
        lambda d: (
            "rd_staff",
            "at most `employees` R&D staff",
            d["rd_staff"] > d["employees"],
        ),
        lambda d: (
            "max_overdue_days_24m",
            "0 when overdue_count_24m is 0",
            (d["overdue_count_24m"] == 0) & (d["max_overdue_days_24m"] > 0),
        ),
        lambda d: (
            "little_giant",
            "a little giant to be a 专精特新 SME too",
            d["little_giant"] & ~d["specialized_sme"],
        ),
    ],
    LoanApplication: [
        lambda d: (
            "guarantee_share",
            "0 when there is no guarantee",
            (d["guarantee"] == GuaranteeType.NONE) & (d["guarantee_share"] > 0),
        ),
        lambda d: (
            "insurance_share",
            "0 when there is no insurance",
            ~d["insurance"] & (d["insurance_share"] > 0),
        ),
        lambda d: (
            "insurance_share",
            "guarantee_share + insurance_share <= 1",
            d["guarantee_share"] + d["insurance_share"] > 1 + 1e-9,
        ),
    ],
    LoanOutcome: [
        lambda d: (
            "default_date",
            "a default date exactly when defaulted_12m is true",
            d["defaulted_12m"] == np.isnat(d["default_date"]),
        ),
        lambda d: (
            "disposal_route",
            "a disposal route only for a defaulted loan",
            _given(d, "disposal_route") & ~d["defaulted_12m"],
        ),
        lambda d: (
            "repaid_date",
            "no repayment date for a defaulted loan",
            _given(d, "repaid_date") & d["defaulted_12m"],
        ),
        lambda d: (
            "recovery_date",
            "a recovery date on or after the default date",
            _date_gap(d, "recovery_date", "default_date") if "recovery_date" in d else _none(d),
        ),
    ],
}


def validate_table(
    df: pd.DataFrame, model: type[Record], *, today: dt.date | None = None, what: str | None = None
) -> None:
    """Refuse a table with any bad value, listing every problem (field, row, id, expected, got).

    Columns beyond the record's fields are allowed and left alone; nothing is converted.
    """
    today = today or dt.date.today()
    what = what or f"{model.__name__} table"
    cols = columns(model)
    names = [c.name for c in cols]
    absent = [n for n in names if n not in df.columns and model.model_fields[n].is_required()]
    if absent:
        raise InvalidData([Problem(n, "a column", "no such column") for n in absent], what)
    present_cols = [c for c in cols if c.name in df.columns]
    problems: list[Problem] = []
    for col in present_cols:
        problems += _check_column(df, col, model.key, today)
    if any(p.row is None for p in problems):  # a mistyped column: row rules cannot run on it
        raise InvalidData(problems, what)
    problems += _table_rule_problems(df, model, _rule_arrays(df, present_cols), len(df))
    if problems:
        raise InvalidData(problems, what)


def _table_rule_problems(
    table: Table, model: type[Record], arrays: Mapping[str, np.ndarray], rows: int, *, unique: bool = True
) -> list[Problem]:
    """Repeated keys (unless not `unique`) and broken cross-field rules. `table` names the rows in problems
    (a DataFrame, or the records' arrays); `arrays`: its columns as the rules take them."""
    problems: list[Problem] = []
    if unique and model.key and rows > 1:  # one record cannot repeat a key
        dup = pd.DataFrame({k: table[k] for k in model.key}).duplicated(keep="first").to_numpy()
        problems += _problems_at(
            table,
            model.key,
            dup,
            model.key[0],
            "a unique id",
            got=_row_label(table, model.key, np.flatnonzero(dup)),
        )
    for rule in _ROW_RULES.get(model, []):
        try:
            name, expected, mask = rule(arrays)
        except KeyError:  # an optional column the rule needs is absent: nothing to check
            continue
        problems += _problems_at(table, model.key, mask, name, expected)
    return problems


def records_to_table(records: Iterable[Record], model: type[Record]) -> pd.DataFrame:
    """Records as a typed table (dates as datetime64, enums as strings)."""
    return pd.DataFrame(record_columns(records, model), columns=[c.name for c in columns(model)])


def record_columns(records: Iterable[Record], model: type[Record]) -> dict[str, np.ndarray]:
    """The records' columns as typed numpy arrays. Built column by column in numpy, then framed once: one
    request's records become a table in microseconds, not milliseconds."""
    rows = [r.model_dump(include={c.name for c in columns(model)}) for r in records]
    out = {}
    for col in columns(model):
        values = [row[col.name] for row in rows]
        if col.kind == "date":
            out[col.name] = np.array(values, dtype="datetime64[s]")  # None -> NaT
        elif col.kind == "bool":
            out[col.name] = np.array([bool(v) for v in values], dtype=bool)
        elif col.kind in ("int", "float"):
            whole = col.kind == "int" and None not in values
            out[col.name] = np.array(values, dtype="int64" if whole else "float64")  # None -> NaN
        else:
            out[col.name] = np.array(values, dtype=object)
    return out


def parse_records(
    model: type[Record], items: Iterable[Mapping[str, Any]], *, today: dt.date | None = None
) -> list[Record]:
    """Parse and check raw records (dicts; dates as dates or ISO text). Every problem in every record
    is reported at once, with its row and id: type errors in some records and table rules (future
    dates, cross-field rules, duplicates) in the others."""
    parsed, problems = parse_each(model, items, today=today)
    if problems:
        raise InvalidData(problems, f"{model.__name__} records")
    return parsed  # type: ignore[return-value]


def parse_each(
    model: type[Record],
    items: Iterable[Mapping[str, Any]],
    *,
    today: dt.date | None = None,
    keys: bool = True,
) -> tuple[list[Record | None], list[Problem]]:
    """`parse_records` that refuses nothing: each item parsed (None where pydantic refused it), and every
    problem of every item, in row order (a row named there is refused, parsed or not). With `keys` False, a
    key repeated is no problem (the credit reports of several applications: one enterprise may apply twice
    on one report)."""
    items = list(items)
    today = today or dt.date.today()
    parsed: list[Record | None] = [None] * len(items)
    rows, problems = [], []
    for row, item in enumerate(items):
        try:
            parsed[row] = model.model_validate(item)
            rows.append(row)
        except ValidationError as e:
            for err in e.errors():
                name = ".".join(str(p) for p in err["loc"]) or "record"
                label = _record_label(model, item)
                problems.append(Problem(name, expected_text(err["msg"]), err.get("input"), row, label))
    # What pydantic leaves, on the records' columns as arrays (no DataFrame: a request's one record is
    # checked in microseconds). Rows here are positions among the records that parsed.
    valid = [parsed[row] for row in rows]
    arrays = record_columns(valid, model)
    found = [p for col in columns(model) for p in _check_parsed_column(arrays, col, model.key, today)]
    found += _table_rule_problems(arrays, model, arrays, len(valid), unique=keys)
    problems += [
        Problem(p.field, p.expected, p.got, rows[p.row] if p.row is not None else None, p.record_id)
        for p in found
    ]
    return parsed, sorted(problems, key=lambda p: (p.row is None, p.row or 0))


def expected_text(message: str) -> str:
    """What pydantic says was expected, in the project's words: "a valid number", not "Input should be a
    valid number"."""
    return message.removeprefix("Input should be ").removeprefix("Value error, ")


def body_problems(errors: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """pydantic's errors on a request body (an application, or assets to value) as Problems: the field by
    its names (``assets.claims``), the row by the first list position in it (the asset's), what was expected
    in words, and what was got. pydantic's own steps in a location (``function-after[...]``, the member of a
    union it tried) are not fields: they are left out, and a value every member of a union refused is one
    problem, its expectations joined by "; or ". A body that is not JSON is one problem: where it stops being
    JSON and why."""
    merged: dict[tuple[str, int | None], Problem] = {}
    for err in errors:
        if err.get("type") == "json_invalid":
            where = next((part for part in err["loc"] if isinstance(part, int)), None)
            why = (err.get("ctx") or {}).get("error", err["msg"])
            merged[("body", None)] = Problem("body", "a JSON object", f"{why} (at character {where})")
            continue
        loc = list(err["loc"])
        names = [part for part in loc if isinstance(part, str) and part.isidentifier()]
        row = next((part for part in loc if isinstance(part, int)), None)
        key = (".".join(names) or "body", row)
        expected = expected_text(err["msg"])
        if key in merged:
            first = merged[key]
            if expected not in first.expected.split("; or "):
                merged[key] = dataclasses.replace(first, expected=f"{first.expected}; or {expected}")
            continue
        merged[key] = Problem(key[0], expected, err.get("input"), row)
    return list(merged.values())


def _record_label(model: type[Record], item: Any) -> str | None:
    if not model.key or not isinstance(item, Mapping) or not all(k in item for k in model.key):
        return None
    return "/".join(str(item[k]) for k in model.key)
