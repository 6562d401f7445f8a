"""Request and response bodies of the service (Pydantic), as the OpenAPI document shows them.

Requests refuse unknown fields (`extra="forbid"`) and check every field on its own: strict scalar types
("12" is not 12, 1 is not true), bounds, enumerations and ISO dates, so that a bad value is a 422 naming
its place (``body.assets.2.remaining_years``) before any model runs. Rules that tie fields or records
together (a little giant must be a 专精特新 SME, a report dated on or before the application) stay in the
domain (features.schema) and come back as 422 too, as a list of problems (field, row, id, expected, got).

An asset is one flat row of the valuation table (valuation.data, the input of `ipcredit value`): the
columns of both kinds, each left out (null) where it does not apply or is unknown. The enterprise is the
project's own `features.schema.Enterprise` record with plausibility limits on magnitudes added.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from features.schema import (
    ENDED_STATUSES,
    AssetKind,
    Bool,
    Date,
    Enterprise,
    GuaranteeType,
    Id,
    Industry,
    Int,
    IpcSection,
    LegalStatus,
    PatentType,
    TrademarkStatus,
)

# Figures of one kind of asset only: null on the other kind.
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

Language = Literal["zh", "en"]
Recommendation = Literal["approve", "review", "decline"]
ApplicationStatus = Literal["pending_review", "approved", "declined", "overridden"]

MAX_ASSETS = 1000  # assets valued in one request
MAX_PLEDGED = 100  # assets pledged in one application
MAX_AMOUNT_CNY = 1e15  # no enterprise, asset or loan in the programme comes near this
MAX_COUNT = 1_000_000_000
EARLIEST_DATE = dt.date(1900, 1, 1)


def _finite(low: float | None = None, high: float | None = None, **kwargs: Any) -> Any:
    """A strict float (an integer is accepted, text and booleans are not) within [low, high]."""
    return Field(ge=low, le=high, allow_inf_nan=False, strict=True, **kwargs)


def _zero_or_one(value: float) -> float:
    if value not in (0.0, 1.0):
        raise ValueError("0 or 1 (a yes/no flag)")
    return value


def _whole(value: float) -> float:
    if value != math.floor(value):
        raise ValueError("a whole number (a count)")
    return value


Share = Annotated[float, _finite(0.0, 1.0)]
Flag = Annotated[float, _finite(0.0, 1.0), AfterValidator(_zero_or_one)]
Count = Annotated[float, _finite(0.0, 1e6), AfterValidator(_whole)]
Rate = Annotated[float, _finite(0.0, 1e6)]
Years = Annotated[float, _finite(0.0, 200.0)]
AmountCNY = Annotated[float, _finite(0.0, MAX_AMOUNT_CNY)]


class Body(BaseModel):
    """Base of request bodies: unknown fields refused, enumerations kept as their text values."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Out(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


# The flags each legal status implies (a flag that says otherwise contradicts the status).
_FLAGS_OF_STATUS = {
    "valid": {"is_valid": 1, "is_pending": 0},
    "pending": {"is_valid": 0, "is_pending": 1, "is_registered": 0},
    "registered": {"is_registered": 1},
    "ended": {"is_valid": 0, "is_pending": 0, "is_registered": 0},
}


class AssetIn(Body):
    """One patent or trademark as a flat row of the valuation table, figures as of the valuation date.

    Patent columns are null for a trademark and the other way round. Required: `asset_id`, `asset_kind` and
    the owner's `owner_revenue_cny` and `owner_industry`, and `patent_type` for a patent; a pledged asset
    (bundle, application) needs `remaining_years` too. Every other feature may be null (unknown), which the
    model handles but which widens no interval: send what you know.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "asset_id": "CN202110123456.7",
                    "asset_kind": "patent",
                    "patent_type": "invention",
                    "ipc_section": "H",
                    "is_valid": 1,
                    "is_pending": 0,
                    "age_years": 4.2,
                    "remaining_years": 15.8,
                    "remaining_share": 0.79,
                    "claims": 12,
                    "independent_claims": 2,
                    "backward_citations": 8,
                    "forward_citations": 5,
                    "citations_per_year": 1.6,
                    "family_size": 2,
                    "family_countries": 2,
                    "ipc_count": 3,
                    "n_inventors": 4,
                    "policy_fit": 1,
                    "in_use": 1,
                    "transfers": 0,
                    "licences": 1,
                    "prior_pledges": 0,
                    "invalidation_requests": 0,
                    "litigations": 0,
                    "owner_patents_in_force": 6,
                    "owner_revenue_cny": 38_000_000,
                    "owner_industry": "electronics",
                    "owner_high_tech": 1,
                }
            ]
        }
    )

    asset_id: Id = Field(description="Patent or trademark number; names the asset in every answer")
    asset_kind: AssetKind = Field(description="patent / trademark")
    as_of: Date | None = Field(None, description="Valuation date (informational: the figures are as of it)")
    enterprise_id: Id | None = Field(None, description="Owner enterprise (informational)")
    status_as_of: LegalStatus | TrademarkStatus | None = Field(
        None,
        description="Legal status on the valuation date, of the asset's kind; an ended right (lapsed, "
        "expired, invalidated, withdrawn, cancelled) is valued but cannot be pledged",
    )
    # patents
    patent_type: PatentType | None = Field(
        None, validate_default=True, description="Patents (required): invention / utility_model / design"
    )
    ipc_section: IpcSection | None = Field(None, description="Patents: IPC section (first letter), A-H")
    is_valid: Flag | None = Field(None, description="Patents: 1 when granted and in force")
    is_pending: Flag | None = Field(None, description="Patents: 1 while the application is pending")
    age_years: Years | None = Field(None, description="Patents: years since filing")
    remaining_years: Years | None = Field(
        None,
        description="Years of legal protection left (0 for an ended right); needed to pledge the asset "
        "(bundles and applications), may be unknown for a valuation (a pending mark)",
    )
    remaining_share: Share | None = Field(None, description="Patents: remaining share of the legal term")
    claims: Count | None = Field(None, description="Patents: number of claims")
    independent_claims: Count | None = Field(None, description="Patents: independent claims")
    backward_citations: Count | None = Field(None, description="Patents: references cited")
    forward_citations: Count | None = Field(None, description="Patents: citations received so far")
    citations_per_year: Rate | None = Field(None, description="Patents: citations received per year")
    family_size: Count | None = Field(None, description="Patents: members of the patent family")
    family_countries: Count | None = Field(None, description="Patents: jurisdictions the family covers")
    ipc_count: Count | None = Field(None, description="Patents: distinct IPC subclasses")
    n_inventors: Count | None = Field(None, description="Patents: named inventors")
    policy_fit: Flag | None = Field(None, description="Patents: 1 in a strategic emerging industry")
    in_use: Flag | None = Field(None, description="1 when the owner uses the right (declared)")
    transfers: Count | None = Field(None, description="Transfers recorded so far")
    licences: Count | None = Field(None, description="Licences recorded so far")
    prior_pledges: Count | None = Field(None, description="Pledges recorded so far")
    invalidation_requests: Count | None = Field(None, description="Invalidation requests so far")
    litigations: Count | None = Field(None, description="Patents: litigations so far")
    # trademarks
    nice_class: Int | None = Field(None, ge=1, le=45, description="Trademarks: Nice class 1-45")
    is_registered: Flag | None = Field(None, description="Trademarks: 1 when registered")
    goods_services: Count | None = Field(None, description="Trademarks: goods or services designated")
    years_registered: Years | None = Field(None, description="Trademarks: years since registration")
    renewals: Count | None = Field(None, description="Trademarks: 10-year renewals so far")
    well_known: Flag | None = Field(None, description="Trademarks: 1 for a well-known mark (驰名商标)")
    time_honoured: Flag | None = Field(
        None, description="Trademarks: 1 for a time-honoured brand (中华老字号)"
    )
    log_revenue_under_mark: Annotated[float, _finite(0.0, 40.0)] | None = Field(
        None, description="Trademarks: log(1 + yearly revenue under the mark in CNY)"
    )
    oppositions: Count | None = Field(None, description="Trademarks: oppositions so far")
    # the owner
    owner_patents_in_force: Count | None = Field(None, description="Patents the owner holds in force")
    owner_revenue_cny: AmountCNY = Field(description="Owner's revenue of the last fiscal year, CNY")
    owner_industry: Industry = Field(description="Owner's main industry")
    owner_high_tech: Flag | None = Field(
        None, description="1 when the owner is a certified high-tech enterprise"
    )

    @field_validator("status_as_of", mode="after")
    @classmethod
    def _status_fits_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("asset_kind")
        statuses = {AssetKind.PATENT: LegalStatus, AssetKind.TRADEMARK: TrademarkStatus}.get(kind)
        if value is not None and statuses is not None and value not in {s.value for s in statuses}:
            raise ValueError(f"a {kind}'s status: one of {[s.value for s in statuses]}")
        return value

    @field_validator(*PATENT_ONLY, *TRADEMARK_ONLY, mode="after")
    @classmethod
    def _figure_fits_kind(cls, value: Any, info: ValidationInfo) -> Any:
        own = AssetKind.PATENT if info.field_name in PATENT_ONLY else AssetKind.TRADEMARK
        kind = info.data.get("asset_kind")
        if value is not None and kind is not None and kind != own:
            raise ValueError(f"null on a {kind}: {info.field_name} is a {own.value} figure")
        return value

    @field_validator("independent_claims", mode="after")
    @classmethod
    def _independent_claims_within_claims(cls, value: float | None, info: ValidationInfo) -> float | None:
        claims = info.data.get("claims")
        if value is not None and claims is not None and value > claims:
            raise ValueError(f"at most the number of claims ({claims:g})")
        return value

    @field_validator("is_pending", mode="after")
    @classmethod
    def _not_both_in_force_and_pending(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value == 1 and info.data.get("is_valid") == 1:
            raise ValueError("0 when is_valid is 1: a patent is granted and in force, or pending, not both")
        return value

    @field_validator("is_valid", "is_pending", "is_registered", mode="after")
    @classmethod
    def _flag_fits_status(cls, value: float | None, info: ValidationInfo) -> float | None:
        status = info.data.get("status_as_of")
        expected = _FLAGS_OF_STATUS.get("ended" if status in ENDED_STATUSES else status, {}).get(
            info.field_name
        )
        if value is not None and expected is not None and value != expected:
            raise ValueError(f"{expected} when status_as_of is {status}: the status and the flag disagree")
        return value

    @field_validator("patent_type", mode="after")
    @classmethod
    def _patent_type_fits_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("asset_kind")  # absent when asset_kind itself was refused
        if kind == AssetKind.PATENT and value is None:
            raise ValueError("a patent needs its patent_type (invention, utility_model or design)")
        if kind == AssetKind.TRADEMARK and value is not None:
            raise ValueError("a trademark has no patent_type (null)")
        return value


class ValuationRequest(Body):
    """Assets to value, one by one."""

    assets: list[AssetIn] = Field(min_length=1, max_length=MAX_ASSETS)
    level: float = Field(
        0.9, gt=0.0, lt=1.0, strict=True, allow_inf_nan=False, description="Level of the value interval"
    )


class BundleRequest(Body):
    """Assets pledged together for one loan."""

    assets: list[AssetIn] = Field(min_length=1, max_length=MAX_PLEDGED)
    loan_term_months: Int = Field(ge=1, le=60, description="Term of the loan the bundle secures, months")


class EnterpriseIn(Enterprise):
    """A credit snapshot of the applying enterprise (features.schema.Enterprise), with every amount within
    ±1e15 CNY, every count up to 1e9 and every date from 1900 on (values no real record has, which the
    arithmetic downstream must not meet)."""

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


class LoanIn(Body):
    """The loan asked for (features.schema.LoanApplication without its ids and its bundle)."""

    application_date: Date = Field(description="Date of application; every feature is computed as of it")
    amount_cny: float = _finite(None, MAX_AMOUNT_CNY, gt=0.0, description="Amount asked for, CNY")
    term_months: Int = Field(ge=1, le=60, description="Loan term, months")
    annual_rate: Annotated[float, _finite(0.0, 0.36)] = Field(description="Annual rate (0.045 = 4.5%)")
    guarantee: GuaranteeType = Field(description="Guarantee beside the pledge")
    guarantee_share: Share = Field(description="Share of a loss the guarantor bears (0 with no guarantee)")
    insurance: Bool = Field(description="IP pledge financing insurance bought")
    insurance_share: Share = Field(description="Share of a loss the insurer bears (0 without insurance)")
    bank_id: Id | None = Field(None, description="Lending bank; the caller's institution when left out")

    @field_validator("application_date", mode="after")
    @classmethod
    def _not_ancient(cls, value: dt.date) -> dt.date:
        if value < EARLIEST_DATE:
            raise ValueError(f"a date from {EARLIEST_DATE} on")
        return value


class ApplicationRequest(Body):
    """An enterprise, the bundle it pledges and the loan it asks for."""

    application_id: Id | None = Field(
        None, description="The bank's own application id; the record's id when left out"
    )
    enterprise: EnterpriseIn
    assets: list[AssetIn] = Field(min_length=1, max_length=MAX_PLEDGED, description="The pledged bundle")
    loan: LoanIn


class ReviewRequest(Body):
    """An evaluator's decision on a pending application."""

    decision: Literal["approve", "decline", "override"] = Field(
        description="approve or decline; override: the opposite of an approve or decline recommendation"
    )
    reason: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="Why; required for an override, and to approve a recommended decline or decline a "
        "recommended approval",
    )


# --------------------------------------------------------------------------- responses


class Factor(Out):
    """One term of a value's explanation: the value is the product of every factor (base first)."""

    feature: str
    value: float | str | None = Field(description="The asset's value of the feature (null for the base)")
    factor: float = Field(description="Multiplies the value (1.8: this feature raises the value by 80%)")


class SubScores(Out):
    """GB/T 42748 indicator scores (0-100); null where the kind of asset has no such indicator."""

    legal: float | None
    technical: float | None
    economic: float | None
    total: float | None
    market: float | None = Field(
        None,
        description="Trademarks: the market dimension (fame, use, revenue, breadth), in place of technical",
    )


class AssetValue(Out):
    asset_id: str
    asset_kind: str
    value_cny: float = Field(description="Median estimate of the value, CNY")
    value_low_cny: float = Field(description="Low end of the interval at the requested level")
    value_high_cny: float = Field(description="High end of the interval")
    income_value_cny: float | None = Field(description="Relief-from-royalty (income approach) value")
    income_ratio: float | None = Field(description="value_cny / income_value_cny")
    cross_check_flag: bool | None = Field(description="True when the two approaches disagree by over 3x")
    scores: SubScores
    stars: float | None = Field(description="GB/T 42748 star rating, 1-5")
    factors: list[Factor] | None = Field(None, description="Explanation of value_cny (when computed)")


class ModelVersion(Out):
    name: str
    version: str | None = Field(description="Registered model version; null for a model loaded by path")
    run_id: str | None
    uri: str = Field(description="URI that loads exactly this model (models:/NAME/VERSION)")
    source_uri: str = Field(description="URI the service was configured with (e.g. the champion alias)")
    gate: str | None = Field(
        None,
        description="The promotion gate's decision on this version (e.g. promoted, first champion, refused)",
    )
    champion_reason: str | None = Field(
        None, description="Why it became the champion (a manual promotion starts with 'manual:')"
    )
    review: str | None = Field(
        None, description="Its model review when the service loaded it: pending or signed"
    )
    reviewed_by: str | None = Field(None, description="Who signed the review")


CODE_DESCRIPTION = (
    "The service's code that made it: package version, git commit (and whether the checkout had changes) "
    "and the SHA-256 of its Python files; null for records made before it was kept"
)


class ValuationResponse(Out):
    id: str = Field(description="Id of the stored valuation")
    created_at: dt.datetime
    level: float
    assets: list[AssetValue]
    model_versions: dict[str, ModelVersion]
    code: dict[str, Any] | None = Field(default=None, description=CODE_DESCRIPTION)


class BundleAssetFigures(Out):
    """One asset's part in the bundle (valuation.pledge)."""

    asset_id: str | None = None
    asset_type: str
    value_cny: float
    share: float
    remaining_years: float
    coverage: float
    life_factor: float
    contribution_cny: float
    route: str
    discount: float
    liquidation_value_cny: float
    pledge_rate: float
    pledge_value_cny: float


class BundleFigures(Out):
    """The bundle: value after concentration and life cuts, liquidation value by disposal route, and the
    pledge value a bank lends against; with the assumptions used (valuation.pledge)."""

    total_value_cny: float
    largest_share: float
    concentration_haircut: float
    shortest_remaining_years: float
    exposure_years: float
    life_adjustment_cny: float
    bundle_value_cny: float
    liquidation_by_route: dict[str, float]
    liquidation_value_cny: float
    pledge_value_cny: float
    loan_term_months: int
    term_within_cap: bool
    assets: list[BundleAssetFigures]
    assumptions: dict[str, Any]
    pledge_assumptions: dict[str, Any]


class BundleValuationOut(Out):
    assets: list[AssetValue]
    bundle: BundleFigures


class BundleResponse(BundleValuationOut):
    id: str = Field(description="Id of the stored valuation")
    created_at: dt.datetime
    model_versions: dict[str, ModelVersion]
    code: dict[str, Any] | None = Field(default=None, description=CODE_DESCRIPTION)


class Reason(Out):
    code: str = Field(description="Stable reason code (scoring.reasons)")
    feature: str
    points: float = Field(description="Score points this feature took off")
    text: str = Field(description="In the language asked for (?lang=zh, the default, or en)")
    zh: str
    en: str


class PolicyRule(Out):
    """A lending-policy rule that declined the application whatever its PD, or held it for review
    (scoring.scale.DecisionPolicy)."""

    code: str = Field(description="Reason code of the feature (scoring.reasons)")
    feature: str = Field(description="The feature the rule reads, e.g. dishonest_debtor or term_months")
    text: str = Field(description="In the language asked for")
    zh: str
    en: str


class LossSplit(Out):
    """Who bears the expected loss (scoring.policy): the bank, the guarantor, the insurer, the risk fund."""

    bank: float
    guarantor: float
    insurer: float
    fund: float


class ScoreExplanation(Out):
    base_points: float = Field(description="Score of an average application")
    points: dict[str, float] = Field(description="SHAP score points per feature; base + sum = score")
    values: dict[str, float | str | None] = Field(
        default_factory=dict,
        description="The application's value of each feature, as the model read it (null: unknown), so that "
        "each feature's points can be checked against its value (none in records made before they were kept)",
    )


class AssetExplanation(Out):
    asset_id: str
    factors: list[Factor]


class Explanation(Out):
    score: ScoreExplanation
    assets: list[AssetExplanation]


class ReviewOut(Out):
    decision: str
    reason: str | None
    reviewer_key_id: int
    created_at: dt.datetime
    interest_subsidy_cny: float | None = Field(
        None,
        description="The interest subsidy an approval granted: the decision's, within what the cap left the "
        "enterprise for the year when it was approved; null for a decline (and before 2026-11-30)",
    )
    subsidy_year: int | None = Field(
        None, description="The year of the loan's application, whose cap it counts in"
    )


Outcome = Literal["approve", "decline"]
OUTCOME_DESCRIPTION = (
    "The loan's decision after review (an override is the opposite of the recommendation); null while pending"
)


class ApplicationResponse(Out):
    id: str = Field(description="Id of the stored application")
    application_id: str = Field(description="The bank's application id (the record id when none was sent)")
    institution_id: int
    status: ApplicationStatus
    outcome: Outcome | None = Field(description=OUTCOME_DESCRIPTION)
    created_at: dt.datetime
    enterprise_id: str
    valuation: BundleValuationOut
    pd: float = Field(description="12-month probability of default")
    score: float
    grade: str
    recommendation: Recommendation
    recommendation_label: str
    credit_line_cny: float
    ead_cny: float
    lgd: float
    expected_loss_cny: float
    expected_loss_split: LossSplit
    interest_subsidy_cny: float = Field(
        description="First-year interest subsidy of the loan as decided, within what the cap left the "
        "enterprise for the year; an approval grants it within what is left then "
        "(reviews[].interest_subsidy_cny)"
    )
    subsidy_cap_cny: float | None = Field(
        None, description="The programme's subsidy cap per enterprise per year (null in records before it)"
    )
    subsidy_granted_before_cny: float | None = Field(
        None,
        description="Subsidy the enterprise's approved loans of the same year were granted when this one was "
        "decided (null in records before it)",
    )
    reasons: list[Reason]
    declined_by: list[PolicyRule] = Field(
        default_factory=list,
        description="Policy rules that declined the application whatever its PD (e.g. on the "
        "dishonest-debtor list, 失信被执行人); empty when the PD alone set the recommendation",
    )
    held_by: list[PolicyRule] = Field(
        default_factory=list,
        description="Policy rules that hold the application for review whatever its PD (a loan term beyond "
        "the pledge policy's cap): the recommendation is then at least review (a decline stays a decline, "
        "the rule still listed); empty when none applies",
    )
    request: dict[str, Any] = Field(
        description="The application as decided: the body sent, with its ids filled in (the figures an "
        "evaluator checks the decision against)"
    )
    explanation: Explanation
    model_versions: dict[str, ModelVersion]
    code: dict[str, Any] | None = Field(default=None, description=CODE_DESCRIPTION)
    reviews: list[ReviewOut]


class ApplicationSummary(Out):
    id: str
    application_id: str | None
    institution_id: int
    status: ApplicationStatus
    outcome: Outcome | None = Field(description=OUTCOME_DESCRIPTION)
    created_at: dt.datetime
    enterprise_id: str | None
    amount_cny: float | None
    grade: str | None
    pd: float | None
    recommendation: str | None
    credit_line_cny: float | None


class ApplicationPage(Out):
    items: list[ApplicationSummary]
    total: int = Field(description="Applications matching the filters, over every page")
    page: int
    page_size: int


class ModelsResponse(Out):
    models: dict[str, ModelVersion]
    loaded_at: dt.datetime


class Health(Out):
    status: Literal["ok"]


class Readiness(Out):
    status: Literal["ready", "not_ready"]
    reason: str | None = None
    models: dict[str, ModelVersion] | None = None


class ProblemOut(Out):
    """One bad value: where it is, what was expected and what was got."""

    field: str
    row: int | None = Field(description="Position in the list it belongs to (assets), when there is one")
    id: str | None = Field(description="Id of the record it belongs to, when known")
    expected: str
    got: Any
    msg: str


class InvalidDataResponse(Out):
    detail: list[ProblemOut]
    message: str


class ErrorResponse(Out):
    detail: str
