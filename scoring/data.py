"""The "IP + credit" scoring table: enterprise credit, the pledged IP as valued, and the loan's terms.

One row per loan application, every figure as of the application date: the enterprise's credit
features and the bundle aggregates (features.pipeline), then the valuation of each pledged asset
(valuation.Valuer: value, GB/T sub-scores) rolled up per application, the bundle's pledge and
liquidation value (valuation.pledge) and the loan-to-value on the pledge value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.errors import InvalidData, Problem
from features.pipeline import application_features, assemble_application_features
from features.portfolio import Portfolio
from features.schema import Enterprise, LoanApplication, parse_table
from features.spec import FeatureColumn, FeatureSpec
from features.transformers import ENTERPRISE_MONOTONE
from valuation.data import asset_rows
from valuation.pledge import bundle_value
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
CATEGORICAL = {"industry"}
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


def bundle_figures(assets: pd.DataFrame, term_months: pd.Series, valuer: Valuer) -> pd.DataFrame:
    """Per application: bundle, liquidation and pledge value (valuation.pledge rules) and the GB/T roll-up."""
    rows = []
    for application_id, group in assets.groupby("application_id", sort=False):
        bundle = bundle_value(
            group[["asset_id", "asset_kind", "patent_type", "value_cny", "remaining_years"]].assign(
                patent_type=lambda g: g["patent_type"].where(g["asset_kind"] == "patent")
            ),
            int(term_months[application_id]),
            valuer.bundle_assumptions,
            valuer.pledge_assumptions,
        )
        patents = group[group["asset_kind"] == "patent"]
        marks = group[group["asset_kind"] == "trademark"]
        rows.append(
            {
                ID: application_id,
                "bundle_value_cny": bundle.bundle_value_cny,
                "liquidation_value_cny": bundle.liquidation_value_cny,
                "pledge_value_cny": bundle.pledge_value_cny,
                "strongest_asset_value_cny": float(group["value_cny"].max()),
                "concentration_haircut": bundle.concentration_haircut,
                "legal_score_min": float(patents["legal_score"].min()) if len(patents) else np.nan,
                "technical_score_max": float(patents["technical_score"].max()) if len(patents) else np.nan,
                "economic_score_mean": float(patents["economic_score"].mean()) if len(patents) else np.nan,
                "stars_max": float(group["stars"].max()),
                "trademark_strength": float(marks["total_score"].max()) if len(marks) else np.nan,
                "income_value_cny": float(group["income_value_cny"].sum()),
            }
        )
    return pd.DataFrame(rows).set_index(ID)


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
    table["ltv_on_pledge"] = table["amount_cny"] / table["pledge_value_cny"].clip(lower=1.0)
    table["bundle_value_to_amount"] = table["bundle_value_cny"] / table["amount_cny"]
    table["log_bundle_value"] = np.log1p(table["bundle_value_cny"])
    table["log_amount"] = np.log(table["amount_cny"])
    return table.reset_index()


def request_scoring_table(
    enterprise: dict, assets: pd.DataFrame, loan: dict, valuer: Valuer
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One application received as records, as the scoring model sees it: (one-row scoring table, valued
    assets). `enterprise`: an Enterprise record (features.schema; its report date on or before the
    application date); `assets`: the pledged assets as valuation-table rows (the input of
    `ipcredit value`); `loan`: a LoanApplication record without the bundle. Bad input: InvalidData."""
    (loan_record,), loans = parse_table(
        LoanApplication,
        [
            {
                **loan,
                "pledged_assets": [
                    {"asset_kind": str(k), "asset_id": str(i)}
                    for k, i in zip(assets["asset_kind"], assets["asset_id"], strict=True)
                ],
            }
        ],
    )
    (enterprise_record,), snapshot = parse_table(Enterprise, [enterprise])
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
    snapshot = snapshot.assign(as_of=loans["application_date"].iloc[0])
    values, problems = valuer.value(assets)
    if problems:
        raise InvalidData(
            [Problem(f"assets.{p.field}", p.expected, p.got, p.row, p.record_id) for p in problems],
            "pledged assets",
        )
    valued = pd.concat(
        [
            assets[["asset_kind", "asset_id", "patent_type", "remaining_years"]].reset_index(drop=True),
            values.drop(columns=[c for c in ("asset_id", "error") if c in values]),
        ],
        axis=1,
    )
    valued.insert(0, "application_id", loan_record.application_id)
    features = assemble_application_features(
        loans,
        snapshot,
        valued[["application_id", "asset_kind", "asset_id", "patent_type", "remaining_years"]],
    )
    term = pd.Series({loan_record.application_id: loan_record.term_months})
    return assemble_scoring_table(features, valued, term, valuer), valued


def default_spec(table: pd.DataFrame) -> FeatureSpec:
    """The spec of the built-in scoring model over `scoring_table`'s columns."""
    features = tuple(
        FeatureColumn(
            name=c,
            type="categorical" if c in CATEGORICAL else "numeric",
            monotone=MONOTONE.get(c),
            min=0.0 if c in NON_NEGATIVE else None,
            required=c in REQUIRED,
        )
        for c in table.columns
        if c not in NOT_FEATURES
    )
    return FeatureSpec(target=TARGET, id=ID, features=features, task="scoring")
