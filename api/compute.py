"""What the service computes for one request, from the loaded models, as plain JSON documents.

No HTTP and no database here: a route validates the body (api.schemas), calls one of these functions,
stores what it returns (lending.records) and answers from the stored record. The functions are pure in
the models and the request: re-running a stored request with the stored model versions gives the same
documents, number for number (tests/test_api_service.py does it).

- `value_assets`: each asset's value, interval, income-approach value and cross-check, GB/T sub-scores and
  stars, and the factors that explain the value (valuation.valuer.Valuer).
- `value_bundle`: the same per asset, then the bundle, liquidation value by route and pledge value.
- `decide_application`: the scoring row built from the application's records (scoring.data), the decision
  with its SHAP points (scoring.model) and lending figures (scoring.decision), and the bundle's valuation.

Documents hold only JSON values: a figure that does not apply (the technical score of a trademark, a
missing income value) is None, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from api.schemas import ApplicationRequest, AssetIn
from api.serving import require_features
from features.errors import InvalidData, Problem
from scoring.data import request_scoring_table
from scoring.decision import loan_term_columns
from scoring.policy import LendingPolicy
from scoring.reasons import MAX_REASONS, Reason, beyond_term_cap, reason_for
from scoring.scale import DecisionPolicy
from valuation.pledge import STATUS_COLUMNS
from valuation.valuer import Valuer

LANGUAGES = ("zh", "en")
LOSS_SHARES = {"bank": "el_bank", "guarantor": "el_guarantor", "insurer": "el_insurer", "fund": "el_fund"}
# Valuer.value's columns in an AssetValue document, in its order.
_VALUE_FIGURES = (
    "value_cny",
    "value_low_cny",
    "value_high_cny",
    "income_value_cny",
    "income_ratio",
    "cross_check_flag",
)
_SCORES = {
    "legal": "legal_score",
    "technical": "technical_score",
    "economic": "economic_score",
    "total": "total_score",
    "market": "market_score",
}
LOAN_FIGURES = (
    "credit_line_cny",
    "ead_cny",
    "lgd",
    "expected_loss_cny",
    "interest_subsidy_cny",
)
# Where a problem came from, for its field name in an answer: request_scoring_table parses the loan and the
# enterprise as records (features.schema.parse_records names them after the record class).
_PROBLEM_PREFIX = {
    "LoanApplication records": "loan.",
    "Enterprise records": "enterprise.",
    "bundle": "assets.",
}


@dataclass(frozen=True)
class Decision:
    """The documents stored for one application (lending.records.save_application)."""

    result: dict[str, Any]
    explanation: dict[str, Any]


def plain(value: Any) -> Any:
    """`value` as JSON values: numpy scalars as Python ones, NaN, NA and infinities as None, tuples as lists.

    >>> plain({"a": np.float64(1.5), "b": [np.int64(2), float("nan")], "c": (pd.NA, np.bool_(True))})
    {'a': 1.5, 'b': [2, None], 'c': [None, True]}
    """
    # The common exact types first: a decision's documents hold a few thousand values, and the generic
    # checks below (abstract base classes) cost several times more each.
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def asset_records(assets: Sequence[AssetIn]) -> list[dict[str, Any]]:
    """The valuation-table rows of the assets, as records (every column of AssetIn), in request order."""
    return [a.model_dump() for a in assets]


def _asset_values(values: Mapping[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Valuer.value_records' rows as AssetValue documents (their values not yet `plain`)."""
    figures = [*_VALUE_FIGURES, *_SCORES.values(), "stars"]
    column = {c: values[c].tolist() for c in figures}
    return [
        {
            "asset_id": record["asset_id"],
            "asset_kind": record["asset_kind"],
            **{c: column[c][i] for c in _VALUE_FIGURES},
            "scores": {name: column[c][i] for name, c in _SCORES.items()},
            "stars": column["stars"][i],
        }
        for i, record in enumerate(records)
    ]


def _valued(
    valuer: Valuer, records: list[dict[str, Any]], level: float | None = None, *, explain: bool = False
) -> dict[str, Any]:
    """Valuer.value_records, refusing the request when any asset is refused (every problem listed)."""
    values, problems = valuer.value_records(records, level, explain=explain)
    if problems:
        raise InvalidData(_located(problems, "assets."), "assets")
    return values


def _located(problems: Sequence[Problem], prefix: str) -> list[Problem]:
    """Problems with their field named from the request's top (``assets.remaining_years``)."""
    return [
        p if p.field.startswith(prefix) else Problem(prefix + p.field, p.expected, p.got, p.row, p.record_id)
        for p in problems
    ]


def value_assets(valuer: Valuer, assets: Sequence[AssetIn], level: float) -> dict[str, Any]:
    """{"level", "assets": [AssetValue with its factors]}; InvalidData when any asset is refused."""
    records = asset_records(assets)
    values = _valued(valuer, records, level, explain=True)
    documents = _asset_values(values, records)
    for document, factors in zip(documents, values["factors"], strict=True):
        document["factors"] = factors
    return plain({"level": level, "assets": documents})


def _bundle(
    valuer: Valuer, records: list[dict[str, Any]], values: Mapping[str, Any], term_months: int
) -> dict[str, Any]:
    """The bundle figures (Valuer.bundle_of), from values already computed."""
    assets = {
        c: np.array([r[c] for r in records], dtype=object)
        for c in ("asset_id", "asset_kind", "patent_type", *STATUS_COLUMNS)
    }
    assets["remaining_years"] = np.array([r["remaining_years"] for r in records], dtype="float64")
    try:
        valuation = valuer.bundle_of(assets | {"value_cny": values["value_cny"]}, term_months)
    except InvalidData as e:  # e.g. an asset without a remaining term: it cannot be pledged
        raise InvalidData(_located(e.problems, "assets."), "bundle") from e
    return valuation.summary()


def value_bundle(valuer: Valuer, assets: Sequence[AssetIn], loan_term_months: int) -> dict[str, Any]:
    """{"assets": [AssetValue], "bundle": BundleFigures}; InvalidData when any asset is refused."""
    records = asset_records(assets)
    values = _valued(valuer, records)
    return plain(
        {
            "assets": _asset_values(values, records),
            "bundle": _bundle(valuer, records, values, loan_term_months),
        }
    )


def _policy_rule(reason: Reason) -> dict[str, str]:
    return {"code": reason.code, "feature": reason.feature, "zh": reason.zh, "en": reason.en}


def decide_application(
    valuer: Valuer,
    scorer: Any,
    request: ApplicationRequest,
    application_id: str,
    bank_id: str,
    policy: DecisionPolicy | None = None,
    subsidy_granted_before: float = 0.0,
) -> Decision:
    """The decision on one application: the bundle's valuation, PD, score, grade, recommendation (with the
    policy's decline rules that set it, `declined_by`, and its hold rules, `held_by`), credit line,
    expected loss and its split, subsidy and reasons (result), with the SHAP points of the score and the
    factors of each asset's value (explanation). Reason texts are kept in both languages.

    The scoring row is the one the model was trained on (scoring.data.request_scoring_table); the decision
    takes the models' single-record paths, one pass each: `decide_one` (PD, score, grade, recommendation,
    reasons and SHAP points together, the same PD as `decide_loans`) with the lending figures of
    scoring.decision.loan_terms, and the pledged assets' values with their factors in one pass
    (Valuer.value_records).

    `application_id` and `bank_id` fill the loan record's ids when the request has none. `policy` (default
    DecisionPolicy()) is stored in the result, so that a stored decision re-runs with the policy it had;
    so is `subsidy_granted_before`, the interest subsidy the enterprise's approvals were granted for the
    year (lending.records.subsidy_granted), which uses up the subsidy cap first."""
    policy = policy if policy is not None else DecisionPolicy()
    records = asset_records(request.assets)
    enterprise = request.enterprise.model_dump()
    loan = {
        **request.loan.model_dump(exclude={"bank_id"}),
        "application_id": request.application_id or application_id,
        "enterprise_id": request.enterprise.enterprise_id,
        "bank_id": request.loan.bank_id or bank_id,
    }
    try:
        row, valued, bundle = request_scoring_table(enterprise, records, loan, valuer, explain_assets=True)
    except InvalidData as e:
        raise InvalidData(_located(e.problems, _PROBLEM_PREFIX.get(e.what, "")), "application") from e
    require_features("scoring", scorer, row, "an application's row (scoring.data.request_scoring_table)")
    decision = scorer.decide_one(row, policy, top=MAX_REASONS, language="zh")
    enterprise_id = loan["enterprise_id"]
    terms = loan_term_columns(
        {**row, "enterprise_id": enterprise_id},
        np.array([decision["pd"]]),
        np.array([decision["grade"]]),
        already_granted={enterprise_id: subsidy_granted_before},
    )
    recommendation, held = policy.held(str(decision["recommendation"]), bundle.term_within_cap)
    own = scorer.own_reasons  # the model's own reason texts (its spec's), ahead of the built-in table
    cap_months = valuer.pledge_assumptions.max_term_months
    result = {
        "application_id": loan["application_id"],
        "enterprise_id": loan["enterprise_id"],
        "bank_id": loan["bank_id"],
        "amount_cny": loan["amount_cny"],
        "valuation": {
            "assets": _asset_values(valued, records),  # valued: the assets' figures, in request order
            "bundle": bundle.summary(),
        },
        "pd": decision["pd"],
        "score": decision["score"],
        "grade": decision["grade"],
        "recommendation": recommendation,
        "recommendation_label": {lang: DecisionPolicy.label(recommendation, lang) for lang in LANGUAGES},
        **{name: terms[name][0] for name in LOAN_FIGURES},
        "expected_loss_split": {share: terms[column][0] for share, column in LOSS_SHARES.items()},
        "subsidy_cap_cny": LendingPolicy().subsidy_cap_cny,
        "subsidy_granted_before_cny": subsidy_granted_before,
        "reasons": [
            {
                "code": r["code"],
                "feature": r["feature"],
                "points": r["points"],
                "zh": reason_for(r["feature"], own).zh,
                "en": reason_for(r["feature"], own).en,
            }
            for r in decision["reasons"]
        ],
        "declined_by": [_policy_rule(reason_for(feature, own)) for feature in decision["declined_by"]],
        "held_by": [_policy_rule(beyond_term_cap(bundle.loan_term_months, cap_months, own))] if held else [],
        "policy": policy.to_dict(),
    }
    explanation = {
        "score": {
            "base_points": decision["base_points"],
            "points": decision["points"],
            "values": {feature: row.get(feature) for feature in decision["points"]},
        },
        "assets": [
            {"asset_id": record["asset_id"], "factors": factors}
            for record, factors in zip(records, valued["factors"], strict=True)
        ],
    }
    return Decision(plain(result), plain(explanation))
