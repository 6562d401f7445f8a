"""The "IP + credit" scoring table: enterprise credit, the pledged IP as valued, and the loan's terms.

One row per loan application, every figure as of the application date: the enterprise's credit
features and the bundle aggregates (features.pipeline), then the valuation of each pledged asset
(valuation.Valuer: value, GB/T sub-scores) rolled up per application, the bundle's pledge and
liquidation value (valuation.pledge) and the loan-to-value on the pledge value.

Where the two models meet, so it is underwriting's: `scoring_table` builds the training table of a
portfolio, `application_rows` the rows of applications received as records (underwriting.decision), by the
same formulas (features.pipeline.application_columns, `bundle_row`, `add_loan_to_value`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.errors import InvalidData
from features.pipeline import application_columns, application_features
from features.portfolio import Portfolio
from features.schema import Table
from features.spec import FeatureColumn, FeatureSpec
from features.transformers import EnterpriseFeatures, column_floats, column_objects
from valuation.data import asset_rows
from valuation.pledge import BundleValuation
from valuation.valuer import Valuer

TARGET = "defaulted_12m"
ID = "application_id"
DATE = "application_date"  # the vintage: out-of-time validation splits on it

# The direction of each risk driver the credit literature and practice agree on, with the reason; the
# built-in model is held to it by a monotone constraint (domain.md section 7: more overdue days never lowers
# PD). docs/scoring-model.md prints this table; tests/test_scoring_directions.py varies each driver alone
# and checks that the PD moves this way.
DIRECTIONS: dict[str, tuple[str, str]] = {
    "overdue_count_24m": (
        "increasing",
        "repayment history is the strongest bureau predictor: more missed payments, more risk",
    ),
    "max_overdue_days_24m": (
        "increasing",
        "a longer arrear is a deeper one (90 days is the default definition)",
    ),
    "court_judgements": (
        "increasing",
        "judgements against the firm are claims on its cash and signs of disputes",
    ),
    "enforcement_count": ("increasing", "enforcement (被执行) means a judgement the firm did not pay"),
    "dishonest_debtor": (
        "increasing",
        "the dishonest-debtor list (失信被执行人) names firms that refused to pay",
    ),
    "admin_penalties": ("increasing", "penalties signal weak compliance and cost cash"),
    "tax_grade_rank": (
        "increasing",
        "a worse tax credit grade (A best, D worst) tracks worse credit behaviour",
    ),
    "leverage": ("increasing", "liabilities over assets: less equity to absorb a loss (Altman, Ohlson)"),
    "debt_to_revenue": ("increasing", "more debt outstanding per CNY of sales to service it"),
    "cash_flow_margin": ("decreasing", "operating cash flow is what repays a loan"),
    "current_ratio": ("decreasing", "liquidity: current assets over current liabilities (Altman, Ohlson)"),
    "net_margin": ("decreasing", "profitability: a profitable firm services its debt"),
    "return_on_assets": (
        "decreasing",
        "profit over assets (Ohlson's NITA): the strongest ratio in bankruptcy models",
    ),
    "amount_to_revenue": ("increasing", "a loan large against sales is harder to repay"),
    "ltv_on_pledge": ("increasing", "a loan large against the pledge leaves less cover"),
    "legal_score_min": (
        "decreasing",
        "the weakest right's legal strength (GB/T 42748): a right that can fall, falls first",
    ),
    "technical_score_max": ("decreasing", "the strongest right's technical strength (GB/T 42748)"),
    "economic_score_mean": (
        "decreasing",
        "the rights' economic strength (GB/T 42748): a market for the technology",
    ),
    "shortest_remaining_years": (
        "decreasing",
        "longer remaining life: the pledge outlives the loan and its disposal; the right that expires first "
        "ends the cover",
    ),
}
MONOTONE = {feature: direction for feature, (direction, _) in DIRECTIONS.items()}


def directions_markdown() -> str:
    """DIRECTIONS as the Markdown table docs/scoring-model.md prints (a test keeps the two equal)."""
    rows = [
        f"| `{feature}` | {'PD rises with it' if direction == 'increasing' else 'PD falls with it'} | {why} |"
        for feature, (direction, why) in DIRECTIONS.items()
    ]
    return "\n".join(["| feature | direction | reason |", "| --- | --- | --- |", *rows])


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
    "log_revenue",
    "ltv_on_pledge",
    "overdue_count_24m",
    "max_overdue_days_24m",
    "industry",
}
# Not features: the target, the id and the vintage; the bundle's CNY figures and the amount (their ratios
# are features); the interest rate, which the bank sets from its own view of the risk (a model that read it
# would learn the bank's earlier judgement, and an applicant cannot act on it).
NOT_FEATURES = {
    TARGET,
    ID,
    DATE,
    "liquidation_value_cny",
    "pledge_value_cny",
    "bundle_value_cny",
    "amount_cny",
    "annual_rate",
    "stars_max",  # the rounded roll-up of the three GB/T scores, which are features themselves
    "bundle_value_to_amount",  # the reciprocal of the loan-to-value on the bundle: ltv_on_pledge says it
    # the same risk as shortest_remaining_years (correlation 0.84 on the book): two columns for one driver
    # split its effect, and neither then moves the PD on most applications (scoring.sensitivity)
    "mean_remaining_years",
}


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


ROLLED_UP = ["legal_score", "technical_score", "economic_score", "stars", "total_score", "income_value_cny"]


def bundle_figures(assets: pd.DataFrame, term_months: pd.Series, valuer: Valuer) -> pd.DataFrame:
    """Per application: bundle, liquidation and pledge value (valuation.pledge rules) and the GB/T roll-up."""
    applications = pd.unique(assets[ID].to_numpy(dtype=object))
    _, order, bounds = _groups(assets[ID].to_numpy(dtype=object), applications)
    columns = asset_columns(assets)
    rows = []
    for k, application_id in enumerate(applications):
        group = {c: v[order[bounds[k] : bounds[k + 1]]] for c, v in columns.items()}
        bundle = valuer.bundle_of(group, int(term_months[application_id]))
        rows.append({ID: application_id, **bundle_row(group, bundle)})
    return pd.DataFrame(rows).set_index(ID)


def asset_columns(assets: Table) -> dict[str, np.ndarray]:
    """The valued assets' columns as arrays (kinds and ids as objects, figures as floats), taken once."""
    out = {c: column_objects(assets[c]) for c in ("asset_id", "asset_kind", "patent_type")}
    return out | {c: column_floats(assets[c]) for c in ["value_cny", "remaining_years", *ROLLED_UP]}


def bundle_row(group: dict[str, np.ndarray], bundle: BundleValuation) -> dict[str, float]:
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


def add_loan_to_value(table) -> None:
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
    """The flat scoring table: one row per application, with its date (the vintage) and `defaulted_12m`,
    the target (missing for a loan whose 12 months have not passed)."""
    apps = portfolio.applications.set_index("application_id")
    assets = pledged_asset_values(portfolio, valuer)
    table = assemble_scoring_table(application_features(portfolio), assets, apps["term_months"], valuer)
    table.insert(1, DATE, apps["application_date"].reindex(table[ID]).to_numpy())
    return table


def with_outcome(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a model learns from: loans whose outcome is known (a running loan's is not yet)."""
    return table[table[TARGET].notna()].reset_index(drop=True)


def assemble_scoring_table(
    features: pd.DataFrame, valued_assets: pd.DataFrame, term_months: pd.Series, valuer: Valuer
) -> pd.DataFrame:
    """Application features (features.pipeline, indexed by application_id) joined with the valued bundle
    of each and the loan-to-value figures: a portfolio's scoring table (a request's rows are built from its
    records by `application_rows`, with the same formulas; tests/test_underwriting.py holds them equal)."""
    table = features.join(bundle_figures(valued_assets, term_months, valuer))
    add_loan_to_value(table)
    return table.reset_index()


def application_rows(
    loans: Table, enterprises: Table, assets: Mapping[str, np.ndarray], bundles: Sequence[BundleValuation]
) -> dict[str, np.ndarray]:
    """The scoring rows of applications received as records, in the batch table's column order: `loans`
    and `enterprises` row for row (LoanApplication columns; Enterprise columns with `as_of`, the application
    date), `assets` the valued pledged assets of all of them (`application_id`, the asset columns and
    Valuer.value's figures), `bundles` each application's bundle valuation. The same formulas as
    `scoring_table` (application_columns, bundle_row, add_loan_to_value), over arrays rather than
    DataFrames (one application pays pandas' fixed cost per operation, not its speed per row);
    tests/test_underwriting.py holds a row equal to the batch's."""
    ids, features = application_columns(loans, enterprises, assets)
    _, order, bounds = _groups(column_objects(assets[ID]), ids)
    columns = asset_columns(assets)
    rolled = [
        bundle_row({c: v[order[bounds[k] : bounds[k + 1]]] for c, v in columns.items()}, bundle)
        for k, bundle in enumerate(bundles)
    ]
    rows = {ID: ids, **features}
    rows |= {c: np.array([r[c] for r in rolled], dtype="float64") for c in (rolled[0] if rolled else ())}
    add_loan_to_value(rows)
    return rows


def _groups(asset_applications: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each asset's application's position among `ids`, the assets in that order, each application's
    bounds in it): the assets of application k are order[bounds[k]:bounds[k + 1]], in their given order."""
    at = {application_id: k for k, application_id in enumerate(ids)}
    codes = np.array([at[a] for a in asset_applications], dtype=np.intp)
    order = np.argsort(codes, kind="stable")
    return codes, order, np.searchsorted(codes[order], np.arange(len(ids) + 1))


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
