"""An asset as the valuation reads it: one flat row of the valuation table, its types, and its rules.

`AssetRecord` gives the row's fields and their types (strict: text is not a number, a number is not a
yes/no), with a description each: the HTTP schema of an asset (api.schemas.AssetIn) is this record, and
`ipcredit value` reads the same columns from a table. `asset_problems` holds every rule about the values:
bounds, whole counts, yes/no flags, figures of the other kind of asset, a status of the other kind, flags
that contradict the status, independent claims above the claims, terms no right can have. The valuer runs it
on every table and every request (valuation.valuer), so the API and the command line refuse the same asset
with the same message.

A rule reads only columns the valuer is given (its spec's features and EXTRA_INPUTS, and the stated status),
so the service and the logged model (which is given those columns alone) answer alike for a bank's spec.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.errors import Problem
from features.schema import (
    ENDED_STATUSES,
    AssetKind,
    Date,
    Id,
    Industry,
    Int,
    IpcSection,
    LegalStatus,
    PatentType,
    TrademarkStatus,
    id_problem,
)
from features.transformers import TERM_YEARS, numbers_or_nan
from features.values import plain
from valuation._common import Columns, raw, text

# Figures of one kind of asset only: null (missing) on the other kind.
PATENT_ONLY = (
    "ipc_section",
    "is_valid",
    "is_pending",
    "age_years",
    "remaining_share",
    "claims",
    "independent_claims",
    "backward_citations",
    "forward_citations",
    "citations_per_year",
    "family_size",
    "family_countries",
    "ipc_count",
    "n_inventors",
    "policy_fit",
    "litigations",
)
TRADEMARK_ONLY = (
    "nice_class",
    "is_registered",
    "goods_services",
    "years_registered",
    "renewals",
    "well_known",
    "time_honoured",
    "log_revenue_under_mark",
    "oppositions",
)
#: The stated legal status, which no model reads but which says whether the right can be pledged.
STATUS = "status_as_of"
MAX_AMOUNT_CNY = 1e15  # no enterprise, asset or loan in the programme comes near this
MAX_COUNT = 1_000_000

# --------------------------------------------------------------------------- the record (types and shapes)

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # an integer is accepted, text is not


class AssetRecord(BaseModel):
    """One patent or trademark as a flat row of the valuation table, figures as of the valuation date.

    Patent columns are null for a trademark and the other way round. Needed: `asset_id`, `asset_kind`, the
    owner's `owner_revenue_cny` and `owner_industry` (an application takes the applicant's from its credit
    report), and `patent_type` for a patent; a pledged asset (bundle, application) needs `remaining_years`
    too. Every other feature may be null (unknown), which the model handles but which widens no interval: send
    what you know. The values' rules (bounds, flags, counts, what fits the kind) are `asset_problems`'.
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    asset_id: Id = Field(description="Patent or trademark number; names the asset in every answer")
    asset_kind: AssetKind = Field(description="patent / trademark")
    as_of: Date | None = Field(None, description="Valuation date (informational: the figures are as of it)")
    enterprise_id: Id | None = Field(
        None, description="Owner enterprise; in an application, another than the applicant's is a third party"
    )
    status_as_of: LegalStatus | TrademarkStatus | None = Field(
        None,
        description="Legal status on the valuation date, of the asset's kind; an ended right (lapsed, "
        "expired, invalidated, withdrawn, cancelled) is valued but cannot be pledged",
    )
    # patents
    patent_type: PatentType | None = Field(
        None, description="Patents (required): invention / utility_model / design"
    )
    ipc_section: IpcSection | None = Field(None, description="Patents: IPC section (first letter), A-H")
    is_valid: Number | None = Field(None, description="Patents: 1 when granted and in force, else 0")
    is_pending: Number | None = Field(None, description="Patents: 1 while the application is pending, else 0")
    age_years: Number | None = Field(None, description="Patents: years since filing (0-200)")
    remaining_years: Number | None = Field(
        None,
        description="Years of legal protection left (0-200; 0 for an ended right); needed to pledge the "
        "asset (bundles and applications), may be unknown for a valuation (a pending mark)",
    )
    remaining_share: Number | None = Field(
        None, description="Patents: remaining share of the legal term (0-1)"
    )
    claims: Number | None = Field(None, description="Patents: number of claims (a count)")
    independent_claims: Number | None = Field(
        None, description="Patents: independent claims, at most `claims`"
    )
    backward_citations: Number | None = Field(None, description="Patents: references cited")
    forward_citations: Number | None = Field(None, description="Patents: citations received so far")
    citations_per_year: Number | None = Field(None, description="Patents: citations received per year")
    family_size: Number | None = Field(None, description="Patents: members of the patent family")
    family_countries: Number | None = Field(None, description="Patents: jurisdictions the family covers")
    ipc_count: Number | None = Field(None, description="Patents: distinct IPC subclasses")
    n_inventors: Number | None = Field(None, description="Patents: named inventors")
    policy_fit: Number | None = Field(None, description="Patents: 1 in a strategic emerging industry, else 0")
    in_use: Number | None = Field(None, description="1 when the owner uses the right (declared), else 0")
    transfers: Number | None = Field(None, description="Transfers recorded so far")
    licences: Number | None = Field(None, description="Licences recorded so far")
    prior_pledges: Number | None = Field(None, description="Pledges recorded so far")
    invalidation_requests: Number | None = Field(None, description="Invalidation requests so far")
    litigations: Number | None = Field(None, description="Patents: litigations so far")
    # trademarks
    nice_class: Int | None = Field(None, description="Trademarks: Nice class 1-45")
    is_registered: Number | None = Field(None, description="Trademarks: 1 when registered, else 0")
    goods_services: Number | None = Field(None, description="Trademarks: goods or services designated")
    years_registered: Number | None = Field(None, description="Trademarks: years since registration")
    renewals: Number | None = Field(None, description="Trademarks: 10-year renewals so far")
    well_known: Number | None = Field(None, description="Trademarks: 1 for a well-known mark (驰名商标)")
    time_honoured: Number | None = Field(
        None, description="Trademarks: 1 for a time-honoured brand (中华老字号)"
    )
    log_revenue_under_mark: Number | None = Field(
        None, description="Trademarks: log(1 + yearly revenue under the mark in CNY), 0-40"
    )
    oppositions: Number | None = Field(None, description="Trademarks: oppositions so far")
    # the owner
    owner_patents_in_force: Number | None = Field(None, description="Patents the owner holds in force")
    owner_revenue_cny: Number | None = Field(
        None, description="Owner's revenue of the last fiscal year, CNY (an applicant's: its credit report's)"
    )
    owner_industry: Industry | None = Field(
        None, description="Owner's main industry (an applicant's: its credit report's)"
    )
    owner_high_tech: Number | None = Field(
        None,
        description="1 when the owner is a certified high-tech enterprise (an applicant's: its report's)",
    )


# --------------------------------------------------------------------------- the rules of the values

FLAGS = (
    "is_valid",
    "is_pending",
    "policy_fit",
    "in_use",
    "is_registered",
    "well_known",
    "time_honoured",
    "owner_high_tech",
)
COUNTS = (
    "claims",
    "independent_claims",
    "backward_citations",
    "forward_citations",
    "family_size",
    "family_countries",
    "ipc_count",
    "n_inventors",
    "transfers",
    "licences",
    "prior_pledges",
    "invalidation_requests",
    "litigations",
    "goods_services",
    "renewals",
    "oppositions",
    "owner_patents_in_force",
)
# column -> (lowest, highest, what is expected): numbers outside are refused.
RANGES: dict[str, tuple[float, float, str]] = {
    **{
        c: (0.0, 200.0, "a number of years from 0 to 200")
        for c in ("age_years", "remaining_years", "years_registered")
    },
    "remaining_share": (0.0, 1.0, "a share from 0 to 1"),
    "citations_per_year": (0.0, float(MAX_COUNT), f"a rate from 0 to {MAX_COUNT:,} a year"),
    "log_revenue_under_mark": (0.0, 40.0, "log(1 + revenue in CNY) from 0 to 40"),
    "owner_revenue_cny": (0.0, MAX_AMOUNT_CNY, f"an amount from 0 to {MAX_AMOUNT_CNY:g} CNY"),
}
FLAG_EXPECTED = "0 or 1 (a yes/no flag)"
COUNT_EXPECTED = f"a whole number from 0 to {MAX_COUNT:,} (a count)"
# The flags each legal status implies (a flag that says otherwise contradicts the status).
FLAGS_OF_STATUS = {
    "valid": {"is_valid": 1.0, "is_pending": 0.0},
    "pending": {"is_valid": 0.0, "is_pending": 1.0, "is_registered": 0.0},
    "registered": {"is_registered": 1.0},
    "ended": {"is_valid": 0.0, "is_pending": 0.0, "is_registered": 0.0},
}
STATUSES_OF_KIND = {
    AssetKind.PATENT.value: tuple(s.value for s in LegalStatus),
    AssetKind.TRADEMARK.value: tuple(s.value for s in TrademarkStatus),
}

# Terms counted in days/365 or days/365.25 differ by up to 5 days over 20 years: a week of slack.
TERM_SLACK_YEARS = 7 / 365.25
# An invention patent's term may be compensated for delays in its grant and, for a new drug, in its market
# approval (Patent Law 2020, art. 42): up to 5 years for a drug; allowed for any invention here.
TERM_EXTENSION_YEARS = {"invention": 5}
# A mark's registration runs 10 years and is renewed 10 years at a time (Trademark Law art. 39-40).
MARK_TERM_YEARS = 10
RENEWAL_WINDOW_YEARS = 1  # a renewal may be filed 12 months before the term ends (the new term follows it)

Found = tuple[int, str, str, Any]  # (row, field, expected, got)


def asset_problems(rows: Columns, id_column: str | None, given: Collection[str]) -> list[Problem]:
    """Every broken rule of the assets in `rows`, by row (then by rule), each with the asset's id: the values'
    bounds, flags and counts, then what ties fields together. `given`: the columns the valuer reads; a rule
    about another column is not checked (its value is not used)."""
    present = {c for c in given if c in rows}
    if STATUS in rows:
        present.add(STATUS)
    n = len(rows)
    kinds = rows.get("asset_kind", text) if "asset_kind" in present else np.full(n, None, dtype=object)

    read: dict[str, np.ndarray] = {}

    def numbers(name: str) -> np.ndarray:  # NaN where missing, or not a number (the encoder names those)
        if name not in read:
            read[name] = numbers_or_nan(rows.get(name, raw)) if name in present else np.full(n, np.nan)
        return read[name]

    found: list[Found] = _id_rules(rows, id_column)
    for rule in (_value_rules, _kind_rules, _claims_and_flags, _terms):
        found += rule(rows, present, kinds, numbers)
    ids = rows.get(id_column, text) if id_column and id_column in rows else None
    return [
        Problem(field, expected, plain(got), int(row), None if ids is None else str(ids[row]))
        for row, field, expected, got in sorted(found, key=lambda f: f[0])
    ]


Numbers = Callable[[str], np.ndarray]
OWNER_ID = "enterprise_id"


def _id_rules(rows: Columns, id_column: str | None) -> list[Found]:
    """Ids a record's `Id` type refuses (features.schema.id_problem: invisible characters, spaces at either
    end, too long), for a table no record type read (`ipcredit value`): the asset's id and its owner's."""
    found: list[Found] = []
    for name in dict.fromkeys(c for c in (id_column, OWNER_ID) if c and c in rows):
        values = rows.get(name, raw)
        for i, value in enumerate(values):
            problem = id_problem(value) if isinstance(value, str) else None
            if problem is not None:
                found.append((i, name, problem, value))
    return found


def _value_rules(rows: Columns, present: set[str], kinds: np.ndarray, numbers: Numbers) -> list[Found]:
    """Flags that are not 0 or 1, counts that are not whole numbers in range, figures out of their range."""
    found: list[Found] = []
    for name in FLAGS:
        values = numbers(name)
        found += [
            (i, name, FLAG_EXPECTED, values[i])
            for i in _where(~np.isnan(values) & (values != 0) & (values != 1))
        ]
    for name in COUNTS:
        values = numbers(name)
        bad = ~np.isnan(values) & ((values < 0) | (values > MAX_COUNT) | (values != np.floor(values)))
        found += [(i, name, COUNT_EXPECTED, values[i]) for i in _where(bad)]
    for name, (low, high, expected) in RANGES.items():
        values = numbers(name)
        bad = ~np.isnan(values) & ((values < low) | (values > high))
        found += [(i, name, expected, values[i]) for i in _where(bad)]
    return found


def _kind_rules(rows: Columns, present: set[str], kinds: np.ndarray, numbers: Numbers) -> list[Found]:
    """A figure of the other kind of asset, a status of the other kind, a patent without its type or a mark
    with one."""
    found: list[Found] = []
    for names, own, other in ((PATENT_ONLY, "patent", "trademark"), (TRADEMARK_ONLY, "trademark", "patent")):
        of_other = kinds == other
        if not of_other.any():
            continue
        for name in names:
            if name not in present:
                continue
            given = _given(rows.get(name, raw))
            expected = f"null on a {other}: {name} is a {own} figure"
            found += [(i, name, expected, rows.get(name, raw)[i]) for i in _where(given & of_other)]
    if STATUS in present:
        status = rows.get(STATUS, raw)
        for i in _where(_given(status)):
            allowed = STATUSES_OF_KIND.get(kinds[i])
            if allowed is not None and status[i] not in allowed:
                found.append((i, STATUS, f"a {kinds[i]}'s status: one of {list(allowed)}", status[i]))
    if "patent_type" in present:
        types = rows.get("patent_type", raw)
        typed = _given(types)
        needed = "a patent needs its patent_type (invention, utility_model or design)"
        found += [(i, "patent_type", needed, None) for i in _where(~typed & (kinds == "patent"))]
        none = "a trademark has no patent_type (null)"
        found += [(i, "patent_type", none, types[i]) for i in _where(typed & (kinds == "trademark"))]
    return found


def _claims_and_flags(rows: Columns, present: set[str], kinds: np.ndarray, numbers: Numbers) -> list[Found]:
    """Independent claims above the claims; a patent both in force and pending; a flag that contradicts
    the status."""
    found: list[Found] = []
    claims, independent = numbers("claims"), numbers("independent_claims")
    for i in _where(independent > claims):  # NaN compares False
        found.append(
            (i, "independent_claims", f"at most the number of claims ({claims[i]:g})", independent[i])
        )
    valid, pending = numbers("is_valid"), numbers("is_pending")
    both = "0 when is_valid is 1: a patent is granted and in force, or pending, not both"
    found += [(i, "is_pending", both, pending[i]) for i in _where((valid == 1) & (pending == 1))]
    if STATUS in present:
        status = rows.get(STATUS, raw)
        flags = {name: numbers(name) for name in ("is_valid", "is_pending", "is_registered")}
        for i in _where(_given(status)):
            key = "ended" if status[i] in ENDED_STATUSES else status[i]
            for name, expected in FLAGS_OF_STATUS.get(key, {}).items():
                value = flags[name][i]
                if not np.isnan(value) and value != expected:
                    text_ = f"{expected:g} when status_as_of is {status[i]}: the status and the flag disagree"
                    found.append((i, name, text_, value))
    return found


def _terms(rows: Columns, present: set[str], kinds: np.ndarray, numbers: Numbers) -> list[Found]:
    """Terms no right can have, which the value (monotone in the remaining term) would take at its word:
    a patent's remaining term longer than the legal term of its type (TERM_YEARS), or its age plus
    remaining term longer than that; a mark's remaining term longer than a registration plus the renewal
    window, or its years registered plus remaining term not 10 years per registration and renewal (within
    the window)."""
    if not {"asset_kind", "remaining_years"} <= present:
        return []
    n = len(rows)
    types = rows.get("patent_type", text) if "patent_type" in present else np.full(n, None, dtype=object)
    remaining, age = numbers("remaining_years"), numbers("age_years")
    registered, renewals = numbers("years_registered"), numbers("renewals")
    typed = (kinds == "patent") & np.isin(types, list(TERM_YEARS))
    term = np.array(
        [
            TERM_YEARS[t] + TERM_EXTENSION_YEARS.get(t, 0) if k else np.nan
            for t, k in zip(types, typed, strict=True)
        ]
    )
    too_long = typed & (remaining > term + TERM_SLACK_YEARS)
    too_old = typed & ~too_long & (age + remaining > term + TERM_SLACK_YEARS)
    cap = MARK_TERM_YEARS + RENEWAL_WINDOW_YEARS
    span = MARK_TERM_YEARS * (renewals + 1)
    mark = kinds == "trademark"
    beyond_cap = mark & (remaining > cap + TERM_SLACK_YEARS)
    off_span = (
        mark & ~beyond_cap & (np.abs(registered + remaining - span) > RENEWAL_WINDOW_YEARS + TERM_SLACK_YEARS)
    )
    found: list[Found] = []
    for i in _where(too_long | too_old):
        extension = TERM_EXTENSION_YEARS.get(types[i], 0)
        legal = f"{TERM_YEARS[types[i]]} years" + (
            f", {extension} more by term compensation" if extension else ""
        )
        if too_long[i]:
            found.append(
                (
                    i,
                    "remaining_years",
                    f"at most the legal term of a {types[i]} patent ({legal})",
                    remaining[i],
                )
            )
        else:
            expected = f"age_years + remaining_years at most a {types[i]} patent's legal term ({legal})"
            found.append((i, "remaining_years", expected, f"{age[i]:g} + {remaining[i]:g}"))
    for i in _where(beyond_cap):
        expected = f"at most a registration's {MARK_TERM_YEARS} years (renewed early: {cap})"
        found.append((i, "remaining_years", expected, remaining[i]))
    for i in _where(off_span):
        expected = (
            f"years_registered + remaining_years of {span[i]:g} years ({MARK_TERM_YEARS} per "
            f"registration and renewal: renewals {renewals[i]:g}), within {RENEWAL_WINDOW_YEARS} year"
        )
        found.append((i, "remaining_years", expected, f"{registered[i]:g} + {remaining[i]:g}"))
    return found


def _where(mask: np.ndarray) -> np.ndarray | tuple[()]:
    """The rows where `mask` holds; none at once when it holds nowhere (the usual case: one request's few
    assets pay no index building per rule)."""
    return np.flatnonzero(mask) if mask.any() else ()


def _given(values: np.ndarray) -> np.ndarray:
    """Where a value is present (not None, NaN or pandas NA)."""
    return ~pd.isna(values)
