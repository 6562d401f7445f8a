"""A loan application as plain records, the shape it comes in, and the rules that tie its parts together.

`ApplicationRecord` is the shape of one application: the applicant's credit report, the assets it pledges
(valuation-table rows, valuation.assets.AssetRecord) and the loan asked for. It is the body `POST
/v1/applications` takes (api.schemas.ApplicationRequest is this record) and each line `ipcredit decide` reads,
so the two refuse the same input in the same words. Its types are checked by pydantic; every rule about the
values is the domain's: the assets' (valuation.assets), the records' (features.schema), and the
application's own, here (`applicant_problems`).

An application states the owner's facts (revenue, industry, high-tech) once, in the credit report: the
applicant's own pledged assets (no `enterprise_id`, or the applicant's) take them from there (`own_facts`);
an asset that repeats them must agree, or a pledge could be valued on a revenue the report does not show. A
third party's asset (第三人出质: another enterprise pledges for the applicant) states its owner's facts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.errors import Problem
from features.schema import Bool, Date, Enterprise, GuaranteeType, Id, Int, enterprise_key
from valuation.assets import MAX_AMOUNT_CNY, AssetRecord

MAX_PLEDGED = 100  # assets pledged in one application
MAX_COUNT = 1_000_000_000
EARLIEST_DATE = dt.date(1900, 1, 1)
# The applicant's credit report field of each owner fact an asset carries.
OWNER_FACTS = {
    "owner_revenue_cny": "revenue_cny",
    "owner_industry": "industry",
    "owner_high_tech": "high_tech",
}
# The owner facts without which an asset is not valued (valuation.data.REQUIRED).
NEEDED_OWNER_FACTS = ("owner_revenue_cny", "owner_industry")


class EnterpriseReport(Enterprise):
    """The applicant's credit report (features.schema.Enterprise), with every amount within ±1e15 CNY, every
    count up to 1e9 and every date from 1900 on (values no real record has, which the arithmetic downstream
    must not meet)."""

    model_config = ConfigDict(title="Enterprise")

    @field_validator("*", mode="after")
    @classmethod
    def _plausible(cls, value: Any) -> Any:
        if isinstance(value, float) and math.isfinite(value) and abs(value) > MAX_AMOUNT_CNY:
            raise ValueError(f"a magnitude of at most {MAX_AMOUNT_CNY:g}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT:
            raise ValueError(f"at most {MAX_COUNT:,}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a finite number")
        if isinstance(value, dt.date) and value < EARLIEST_DATE:
            raise ValueError(f"a date from {EARLIEST_DATE} on")
        return value


def _finite(low: float | None = None, high: float | None = None, **kwargs: Any) -> Any:
    """A strict float (an integer is accepted, text and booleans are not) within [low, high]."""
    return Field(ge=low, le=high, allow_inf_nan=False, strict=True, **kwargs)


class LoanTerms(BaseModel):
    """The loan asked for: features.schema.LoanApplication without its ids and its bundle."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    application_date: Date = Field(description="Date of application; every feature is computed as of it")
    amount_cny: float = _finite(None, MAX_AMOUNT_CNY, gt=0.0, description="Amount asked for, CNY")
    term_months: Int = Field(ge=1, le=60, description="Loan term, months")
    annual_rate: float = _finite(0.0, 0.36, description="Annual rate (0.045 = 4.5%)")
    guarantee: GuaranteeType = Field(description="Guarantee beside the pledge")
    guarantee_share: float = _finite(
        0.0, 1.0, description="Share of a loss the guarantor bears (0 with no guarantee)"
    )
    insurance: Bool = Field(description="IP pledge financing insurance bought")
    insurance_share: float = _finite(0.0, 1.0, description="Share of a loss the insurer bears (0 without)")
    bank_id: Id | None = Field(None, description="Lending bank; the caller's institution when left out")

    @field_validator("application_date", mode="after")
    @classmethod
    def _not_ancient(cls, value: dt.date) -> dt.date:
        if value < EARLIEST_DATE:
            raise ValueError(f"a date from {EARLIEST_DATE} on")
        return value


class ApplicationRecord(BaseModel):
    """An enterprise, the bundle it pledges and the loan it asks for."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    application_id: Id | None = Field(
        None, description="The bank's own application id; the record's id when left out"
    )
    enterprise: EnterpriseReport
    assets: list[AssetRecord] = Field(min_length=1, max_length=MAX_PLEDGED, description="The pledged bundle")
    loan: LoanTerms

    def application(self, application_id: str, bank_id: str) -> Application:
        """The application as plain records, its ids filled where the record has none."""
        return Application(
            application_id=self.application_id or application_id,
            bank_id=self.loan.bank_id or bank_id,
            enterprise=self.enterprise.model_dump(),
            assets=tuple(asset.model_dump() for asset in self.assets),
            loan=self.loan.model_dump(exclude={"bank_id"}),
        )


@dataclass(frozen=True)
class Application:
    """One application as plain records: the credit report (features.schema.Enterprise's fields), the pledged
    assets (valuation-table rows: valuation.assets.AssetRecord's fields) and the loan's terms (LoanTerms'
    fields but the bank), with the application's and the lending bank's ids."""

    application_id: str
    bank_id: str
    enterprise: Mapping[str, Any]
    assets: Sequence[Mapping[str, Any]]
    loan: Mapping[str, Any]

    @property
    def enterprise_id(self) -> Any:
        return self.enterprise.get("enterprise_id")


def is_own(enterprise: Enterprise, asset: Mapping[str, Any]) -> bool:
    """Whether the applicant owns the asset: it names no owner, or the applicant (ids compare regardless of
    case)."""
    owner = asset.get("enterprise_id")
    return owner is None or enterprise_key(str(owner)) == enterprise_key(enterprise.enterprise_id)


def own_facts(enterprise: Enterprise, asset: Mapping[str, Any]) -> dict[str, Any]:
    """The asset with the applicant's owner facts where it is the applicant's own and leaves them out."""
    filled = dict(asset)
    if is_own(enterprise, asset):
        for column, report in OWNER_FACTS.items():
            if filled.get(column) is None:
                known = getattr(enterprise, report)
                filled[column] = float(known) if isinstance(known, bool) else known
    return filled


def applicant_problems(
    enterprise: Enterprise, assets: Sequence[Mapping[str, Any]], date: dt.date
) -> list[Problem]:
    """Problems (field `assets.<column>`, row the asset's) of pledged assets whose figures are dated after
    the application (`as_of`), of the applicant's own assets whose owner facts differ from its credit report,
    and of a third party's asset that leaves out its owner's facts."""
    problems = []
    for i, asset in enumerate(assets):
        where = {"row": i, "record_id": None if asset.get("asset_id") is None else str(asset["asset_id"])}
        as_of = asset.get("as_of")
        if as_of is not None and pd.Timestamp(as_of) > pd.Timestamp(date):
            expected = f"a valuation date on or before the application date {date}"
            problems.append(Problem("assets.as_of", expected, str(as_of), **where))
        if not is_own(enterprise, asset):
            for column in NEEDED_OWNER_FACTS:
                if asset.get(column) is None:
                    fact = column.removeprefix("owner_")
                    expected = f"the owner's {fact}: a third party's asset (第三人出质) states its owner's"
                    problems.append(Problem(f"assets.{column}", expected + " facts", None, **where))
            continue
        for column, report in OWNER_FACTS.items():
            given, known = asset.get(column), getattr(enterprise, report)
            if given is None or known is None:
                continue
            same = bool(given) == bool(known) if report == "high_tech" else given == known
            if not same:
                expected = f"the applicant's {report}, {known} (the asset is the applicant's own)"
                problems.append(Problem(f"assets.{column}", expected, given, **where))
    return problems
