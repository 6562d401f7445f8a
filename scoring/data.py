"""The "IP + credit" scoring table: enterprise credit, the pledged IP as valued, and the loan's terms.

One row per loan application, every figure as of the application date: the enterprise's credit
features and the bundle aggregates (features.pipeline), then the valuation of each pledged asset
(valuation.Valuer: value, GB/T sub-scores) rolled up per application, the bundle's pledge and
liquidation value (valuation.pledge) and the loan-to-value on the pledge value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.errors import InvalidData, Problem
from features.pipeline import application_columns, application_features
from features.portfolio import Portfolio
from features.schema import Enterprise, LoanApplication, Table, enterprise_key, parse_records
from features.spec import FeatureColumn, FeatureSpec
from features.transformers import ENTERPRISE_MONOTONE, EnterpriseFeatures, column_floats, column_objects
from valuation.data import asset_rows
from valuation.pledge import STATUS_COLUMNS, BundleValuation, unpledgeable
from valuation.valuer import Valuer

TARGET = "defaulted_12m"
ID = "application_id"

# Directions credit practice knows (domain.md section 7): more overdue days never lowers PD, more pledge
# value per CNY lent never raises it.
MONOTONE = {
    **ENTERPRISE_MONOTONE,
    "ltv_on_pledge": "increasing",
    "amount_to_revenue": "increasing",
    "bundle_value_to_amount": "decreasing",
}
# The categorical features and every valid value of each (EnterpriseFeatures codes the industry by its
# place among all industries): one the training sample lacks is still scored, as an unseen category.
CATEGORICAL = {
    "industry": [str(code) for code in range(len(EnterpriseFeatures.known_categories["industry"]))]
}
# Columns that can only be zero or more; a ratio such as net margin or growth may well be negative.
NON_NEGATIVE = {
    "amount_cny",
    "term_months",
    "annual_rate",
    "guarantee_share",
    "insurance_share",
    "employees",
    "age_years",
    "overdue_count_24m",
    "max_overdue_days_24m",
    "court_judgements",
    "enforcement_count",
    "admin_penalties",
    "current_ratio",
    "rd_intensity",
    "rd_staff_share",
    "tax_to_revenue",
    "debt_to_revenue",
    "leverage",
    "n_assets",
    "n_patents",
    "n_trademarks",
    "n_inventions",
    "ltv_on_pledge",
    "bundle_value_to_amount",
    "strongest_asset_value_cny",
    "shortest_remaining_years",
    "mean_remaining_years",
}
# Without these an application cannot be scored; other features may be missing (LightGBM routes them).
REQUIRED = {
    "term_months",
    "annual_rate",
    "log_revenue",
    "ltv_on_pledge",
    "overdue_count_24m",
    "max_overdue_days_24m",
    "industry",
}
NOT_FEATURES = {TARGET, ID, "liquidation_value_cny", "pledge_value_cny", "bundle_value_cny", "amount_cny"}


def pledged_asset_values(portfolio: Portfolio, valuer: Valuer) -> pd.DataFrame:
    """Each pledged asset valued as of its application date (one row per pledge, pledges order)."""
    dates = portfolio.applications.set_index("application_id")["application_date"]
    pledges = portfolio.pledges.reset_index(drop=True)
    rows = pd.DataFrame(
        {
            "asset_kind": pledges["asset_kind"].astype(str),
            "asset_id": pledges["asset_id"],
            "as_of": pledges["application_id"].map(dates).to_numpy(),
        }
    )
    table = asset_rows(portfolio, rows)
    values, problems = valuer.value(table)
    if problems:  # pledged assets come from a validated portfolio; a refusal here is a model/data mismatch
        raise InvalidData(problems, "pledged assets")
    return pd.concat(
        [
            pledges[["application_id"]],
            table[["asset_kind", "asset_id", "patent_type", "remaining_years"]],
            values.drop(columns=[c for c in ("asset_id", "error") if c in values]),
        ],
        axis=1,
    )


_ROLLED_UP = ["legal_score", "technical_score", "economic_score", "stars", "total_score", "income_value_cny"]


def bundle_figures(assets: pd.DataFrame, term_months: pd.Series, valuer: Valuer) -> pd.DataFrame:
    """Per application: bundle, liquidation and pledge value (valuation.pledge rules) and the GB/T roll-up."""
    codes, applications = pd.factorize(assets[ID].to_numpy(dtype=object))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(applications) + 1))
    columns = _asset_columns(assets)
    rows = []
    for k, application_id in enumerate(applications):
        group = {c: v[order[bounds[k] : bounds[k + 1]]] for c, v in columns.items()}
        bundle = _bundle_valuation(group, int(term_months[application_id]), valuer)
        rows.append({ID: application_id, **_bundle_row(group, bundle)})
    return pd.DataFrame(rows).set_index(ID)


def _asset_columns(assets: Table) -> dict[str, np.ndarray]:
    """The valued assets' columns as arrays (kinds and ids as objects, figures as floats), taken once."""
    out = {c: column_objects(assets[c]) for c in ("asset_id", "asset_kind", "patent_type")}
    return out | {c: column_floats(assets[c]) for c in ["value_cny", "remaining_years", *_ROLLED_UP]}


def _bundle_valuation(group: dict[str, np.ndarray], term_months: int, valuer: Valuer) -> BundleValuation:
    """One application's bundle by the valuation.pledge rules (Valuer.bundle_of takes the columns it uses,
    the assets' status among them where the group has it: a request's records)."""
    return valuer.bundle_of(group, term_months)


def _bundle_row(group: dict[str, np.ndarray], bundle: BundleValuation) -> dict[str, float]:
    """The scoring figures of one application's bundle: its values and the roll-up of its assets' scores."""
    patents, marks = group["asset_kind"] == "patent", group["asset_kind"] == "trademark"

    def over(values: np.ndarray, reduce) -> float:  # missing values skipped; NaN when none is left
        present = values[~np.isnan(values)]
        return float(reduce(present)) if present.size else np.nan

    return {
        "bundle_value_cny": bundle.bundle_value_cny,
        "liquidation_value_cny": bundle.liquidation_value_cny,
        "pledge_value_cny": bundle.pledge_value_cny,
        "strongest_asset_value_cny": over(group["value_cny"], np.max),
        "concentration_haircut": bundle.concentration_haircut,
        "legal_score_min": over(group["legal_score"][patents], np.min),
        "technical_score_max": over(group["technical_score"][patents], np.max),
        "economic_score_mean": over(group["economic_score"][patents], np.mean),
        "stars_max": over(group["stars"], np.max),
        "trademark_strength": over(group["total_score"][marks], np.max),
        # unknown when any asset's is: a sum over some of the assets would read as a smaller bundle
        "income_value_cny": float(np.sum(group["income_value_cny"])),
    }


def _add_loan_to_value(table) -> None:
    """The loan-to-value figures, added to a table (DataFrame) or to one row's mapping of values. An
    extreme amount gives inf or NaN here, as pandas does, and the scoring model's checks refuse it."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        _loan_to_value(table)


def _loan_to_value(table) -> None:
    table["ltv_on_pledge"] = table["amount_cny"] / np.maximum(table["pledge_value_cny"], 1.0)
    table["bundle_value_to_amount"] = table["bundle_value_cny"] / table["amount_cny"]
    table["log_bundle_value"] = np.log1p(table["bundle_value_cny"])
    table["log_amount"] = np.log(table["amount_cny"])


def scoring_table(portfolio: Portfolio, valuer: Valuer) -> pd.DataFrame:
    """The flat scoring table (one row per application, `defaulted_12m` the target)."""
    apps = portfolio.applications.set_index("application_id")
    assets = pledged_asset_values(portfolio, valuer)
    return assemble_scoring_table(application_features(portfolio), assets, apps["term_months"], valuer)


def assemble_scoring_table(
    features: pd.DataFrame, valued_assets: pd.DataFrame, term_months: pd.Series, valuer: Valuer
) -> pd.DataFrame:
    """Application features (features.pipeline, indexed by application_id) joined with the valued bundle
    of each and the loan-to-value figures; the one place both the batch table and a request are built."""
    table = features.join(bundle_figures(valued_assets, term_months, valuer))
    _add_loan_to_value(table)
    return table.reset_index()


def request_scoring_table(
    enterprise: dict,
    assets: Sequence[Mapping[str, Any]],
    loan: dict,
    valuer: Valuer,
    *,
    explain_assets: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], BundleValuation]:
    """One application received as records, as the scoring model sees it: (the scoring row as a mapping
    of column to value, in the batch table's column order; the assets' values, Valuer.value_records'
    columns in the assets' order, with their factors if `explain_assets`; the bundle's valuation).
    `enterprise`: an Enterprise record (features.schema; its report date on or before the application
    date); `assets`: the pledged assets as records of valuation-table rows (the input of `ipcredit value`;
    None where a value is missing), the applicant's own agreeing with its report (`_not_the_applicant_s`);
    `loan`: a LoanApplication record without the bundle. Bad input: InvalidData.

    The same formulas as the batch table (application_columns, _bundle_row, _add_loan_to_value), over the
    records' values as arrays rather than one-row DataFrames (a request pays pandas' fixed cost per
    operation, not its speed per row); tests/test_scoring_flow.py holds the row equal to the batch's."""
    pledged = [{"asset_kind": str(a.get("asset_kind")), "asset_id": str(a.get("asset_id"))} for a in assets]
    loan_record = parse_records(LoanApplication, [{**loan, "pledged_assets": pledged}])[0]
    enterprise_record = parse_records(Enterprise, [enterprise])[0]
    if enterprise_record.report_date > loan_record.application_date:
        raise InvalidData(
            [
                Problem(
                    "enterprise.report_date",
                    f"a credit report dated on or before the application date {loan_record.application_date}",
                    str(enterprise_record.report_date),
                )
            ],
            "application",
        )
    # The assets as arrays, taken once.
    parts = {
        c: np.array([a.get(c) for a in assets], dtype=object)
        for c in ("asset_kind", "asset_id", "patent_type", "remaining_years", *STATUS_COLUMNS)
    }
    # Every problem of the pledged assets at once, in row order: the applicant's, the pledge's, the values'.
    values, problems = valuer.value_records(assets, explain=explain_assets)
    problems = _not_the_applicant_s(enterprise_record, assets, loan_record.application_date) + [
        Problem(f"assets.{p.field}", p.expected, p.got, p.row, p.record_id)
        for p in (*unpledgeable(parts), *problems)
    ]
    if problems:
        raise InvalidData(sorted(problems, key=lambda p: (p.row is not None, p.row or 0)), "pledged assets")
    status = {c: parts[c] for c in STATUS_COLUMNS}
    group = _asset_columns(parts | {c: values[c] for c in ("value_cny", *_ROLLED_UP)})
    asset_table = {ID: np.full(len(assets), loan_record.application_id, dtype=object)} | group

    def one(record: dict) -> dict[str, np.ndarray]:
        return {k: np.array([v], dtype=object) for k, v in record.items()}

    _, features = application_columns(
        one(loan_record.model_dump(exclude={"pledged_assets"})),
        one({**enterprise_record.model_dump(), "as_of": loan_record.application_date}),
        asset_table,
    )
    bundle = _bundle_valuation(group | status, loan_record.term_months, valuer)
    row = {
        ID: loan_record.application_id,
        **{c: v[0] for c, v in features.items()},
        **_bundle_row(group, bundle),
    }
    _add_loan_to_value(row)
    return row, values, bundle


# An asset's owner facts (which value it) and the applicant's credit report (which scores it) describe one
# enterprise when the asset is the applicant's own: they must agree, or a pledge could be valued on a revenue
# the credit report does not show.
_OWNER_FACTS = {
    "owner_revenue_cny": "revenue_cny",
    "owner_industry": "industry",
    "owner_high_tech": "high_tech",
}


def _not_the_applicant_s(
    enterprise: Enterprise, assets: Sequence[Mapping[str, Any]], date: Any
) -> list[Problem]:
    """Problems (field `assets.<column>`) of pledged assets whose figures are dated after the application
    (`as_of`), and of the applicant's own assets (no `enterprise_id`, or the applicant's) whose owner facts
    differ from its credit report. An asset of another enterprise, a third party pledging for the applicant
    (第三人出质), keeps its owner's facts."""
    problems = []
    for i, asset in enumerate(assets):
        where = {"row": i, "record_id": None if asset.get("asset_id") is None else str(asset["asset_id"])}
        as_of = asset.get("as_of")
        if as_of is not None and pd.Timestamp(as_of) > pd.Timestamp(date):
            expected = f"a valuation date on or before the application date {date}"
            problems.append(Problem("assets.as_of", expected, str(as_of), **where))
        owner = asset.get("enterprise_id")
        if owner is not None and enterprise_key(str(owner)) != enterprise_key(enterprise.enterprise_id):
            continue
        for column, report in _OWNER_FACTS.items():
            given, known = asset.get(column), getattr(enterprise, report)
            if given is None or known is None:
                continue
            same = bool(given) == bool(known) if report == "high_tech" else given == known
            if not same:
                expected = f"the applicant's {report}, {known} (the asset is the applicant's own)"
                problems.append(Problem(f"assets.{column}", expected, given, **where))
    return problems


def default_spec(table: pd.DataFrame) -> FeatureSpec:
    """The spec of the built-in scoring model over `scoring_table`'s columns."""
    features = tuple(
        FeatureColumn(
            name=c,
            type="categorical" if c in CATEGORICAL else "numeric",
            monotone=MONOTONE.get(c),
            min=0.0 if c in NON_NEGATIVE else None,
            required=c in REQUIRED,
            levels=CATEGORICAL.get(c),
        )
        for c in table.columns
        if c not in NOT_FEATURES
    )
    return FeatureSpec(target=TARGET, id=ID, features=features, task="scoring")
