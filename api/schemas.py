"""Request and response bodies of the service (Pydantic), as the OpenAPI document shows them.

Requests refuse unknown fields (`extra="forbid"`) and check each field's type and the body's shape: strict
scalar types ("12" is not 12, 1 is not true), enumerations, ISO dates and list lengths, so that a body that is
not an application is a 422 naming its place (``assets.claims``, row 2) before any model runs. Every rule
about the values is the domain's and comes back as a 422 in the same shape, the same for the API and the
command line (``ipcredit value``, ``ipcredit decide``): an asset's (valuation.assets: bounds, yes/no flags,
counts, figures of the other kind, flags that contradict the status, terms no right can have), a record's
(features.schema: a little giant must be a 专精特新 SME) and an application's (underwriting.applications: a
report dated on or before the application, owner facts that agree with it).

An asset is one flat row of the valuation table (valuation.assets.AssetRecord, the input of `ipcredit value`):
the columns of both kinds, each left out (null) where it does not apply or is unknown. An application is
underwriting.applications.ApplicationRecord, the line `ipcredit decide` reads.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from features.schema import Id, Int
from underwriting.applications import MAX_PLEDGED, ApplicationRecord, EnterpriseReport, LoanTerms
from valuation.assets import AssetRecord

Language = Literal["zh", "en"]
Recommendation = Literal["approve", "review", "decline"]
ApplicationStatus = Literal["pending_review", "approved", "declined", "overridden"]

MAX_ASSETS = 1000  # assets valued in one request

_ISO_DATE_START = re.compile(r"[+-]?\d{4,}-\d{2}-\d{2}")
ISO_TIME = "an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00Z"


def _iso_text(value: Any) -> Any:
    # pydantic would read "0.5" or "1700000000" as a Unix time
    if isinstance(value, str) and not _ISO_DATE_START.match(value):
        raise ValueError(ISO_TIME)
    return value


def _within_utc(value: dt.datetime) -> dt.datetime:
    try:
        value.astimezone(dt.UTC)  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
    except OverflowError:
        raise ValueError(f"{ISO_TIME}, from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z in UTC") from None
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_within_utc)]
"""A time as a query gives it: ISO 8601 text with its zone, that UTC can hold (the records keep UTC)."""


class Body(BaseModel):
    """Base of request bodies: unknown fields refused, enumerations kept as their text values."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Out(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


class AssetIn(AssetRecord):
    __doc__ = AssetRecord.__doc__

    model_config = ConfigDict(
        title="AssetIn",
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
        },
    )


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


class EnterpriseIn(EnterpriseReport):
    __doc__ = EnterpriseReport.__doc__


class LoanIn(LoanTerms):
    __doc__ = LoanTerms.__doc__

    bank_id: Id | None = Field(
        None, description="Lending bank: the caller's institution, filled in when left out; any other refused"
    )


class ApplicationRequest(ApplicationRecord):
    __doc__ = ApplicationRecord.__doc__

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
    """Who bears the expected loss (underwriting.policy): the bank, the guarantor, the insurer, the fund."""

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

    field: str = Field(description="Where: the field's names from the body's top (assets.claims), a header")
    row: int | None = Field(description="Position in the list it belongs to (assets), when there is one")
    id: str | None = Field(description="Id of the record it belongs to, when known")
    expected: str
    got: Any
    msg: str = Field(description="The problem in one line")


class ErrorResponse(Out):
    """Every error answer of the service: what happened in one line, and each bad value when there are
    some (refused input); `detail` is empty when there is no value to name (a record not found, a database
    that does not answer)."""

    message: str
    detail: list[ProblemOut] = Field(default_factory=list)
