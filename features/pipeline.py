"""The feature pipeline over a portfolio: assets as of a date, and one row per loan application.

`application_features` is the scoring input of the foundation: the enterprise's credit snapshot,
the pledged bundle's aggregates and the loan's own terms, all as of the application date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.portfolio import Portfolio
from features.snapshot import enterprise_snapshot, patent_snapshot, trademark_snapshot
from features.transformers import (
    BundleFeatures,
    EnterpriseFeatures,
    PatentFeatures,
    Table,
    TrademarkFeatures,
    column_floats,
    column_objects,
    require_columns,
)


def patent_features(
    portfolio: Portfolio, rows: pd.DataFrame, transformer: PatentFeatures | None = None
) -> tuple[pd.DataFrame, PatentFeatures]:
    """Features of patents at dates: `rows` has `patent_id` and `as_of`. Fits a transformer unless one
    is given (a fitted one keeps the training categories)."""
    snap = patent_snapshot(rows, portfolio.patents, portfolio.events)
    transformer = transformer or PatentFeatures().fit(snap)
    return transformer.transform(snap), transformer


def trademark_features(
    portfolio: Portfolio, rows: pd.DataFrame, transformer: TrademarkFeatures | None = None
) -> tuple[pd.DataFrame, TrademarkFeatures]:
    snap = trademark_snapshot(rows, portfolio.trademarks, portfolio.events)
    transformer = transformer or TrademarkFeatures().fit(snap)
    return transformer.transform(snap), transformer


LOAN_COLUMNS = ["amount_cny", "term_months", "annual_rate", "guarantee_share", "insurance_share"]


def application_features(
    portfolio: Portfolio, value_column: str | None = None, asset_values: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per application: enterprise credit features, bundle aggregates and loan terms, all as of
    the application date, with `defaulted_12m` where an outcome is known.

    `asset_values` (columns asset_kind, asset_id, application_id and `value_column`) adds value-weighted
    bundle features once a valuation exists.
    """
    apps = portfolio.applications
    as_of = pd.DataFrame({"enterprise_id": apps["enterprise_id"], "as_of": apps["application_date"]})
    enterprises = enterprise_snapshot(as_of, portfolio.enterprises)

    pledged = portfolio.pledges.merge(apps[["application_id", "application_date"]], on="application_id")
    pledged = pledged.rename(columns={"application_date": "as_of"})
    is_patent = (pledged["asset_kind"] == "patent").to_numpy()
    pat = pledged[is_patent].rename(columns={"asset_id": "patent_id"})
    tm = pledged[~is_patent].rename(columns={"asset_id": "trademark_id"})
    pat_snap = patent_snapshot(pat, portfolio.patents, portfolio.events)
    pat_feat = PatentFeatures().fit(pat_snap).transform(pat_snap)
    tm_snap = trademark_snapshot(tm, portfolio.trademarks, portfolio.events)
    tm_feat = TrademarkFeatures().fit(tm_snap).transform(tm_snap)
    assets = pd.concat(
        [
            pd.DataFrame(
                {
                    "application_id": pat["application_id"].to_numpy(),
                    "asset_kind": "patent",
                    "asset_id": pat["patent_id"].to_numpy(),
                    "patent_type": pat_snap["patent_type"].to_numpy(),
                    "remaining_years": pat_feat["remaining_years"].to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "application_id": tm["application_id"].to_numpy(),
                    "asset_kind": "trademark",
                    "asset_id": tm["trademark_id"].to_numpy(),
                    "patent_type": None,
                    "remaining_years": tm_feat["remaining_years"].to_numpy(),
                }
            ),
        ],
        ignore_index=True,
    )
    if asset_values is not None:
        assets = assets.merge(asset_values, on=["application_id", "asset_kind", "asset_id"], how="left")
    out = assemble_application_features(apps, enterprises, assets, value_column)
    outcomes = portfolio.outcomes.set_index("application_id")["defaulted_12m"]
    out["defaulted_12m"] = outcomes.reindex(out.index).astype("float64")
    return out


def assemble_application_features(
    loans: Table, enterprises: Table, assets: Table, value_column: str | None = None
) -> pd.DataFrame:
    """The application features from their parts, wherever they came from (a portfolio, or one request):
    `loans` one row per application (application_id and the LoanApplication columns); `enterprises` the
    credit snapshot of each, row for row, with `as_of` (the application date); `assets` one row per pledged
    asset (application_id, asset_kind, asset_id, patent_type, remaining_years[, value_column])."""
    _, columns = application_columns(loans, enterprises, assets, value_column)
    return pd.DataFrame(columns, index=pd.Index(loans["application_id"], name="application_id"))


def application_columns(
    loans: Table, enterprises: Table, assets: Table, value_column: str | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`assemble_application_features` as (application ids, each feature as an array). The parts may also
    be mappings of column name to array (one request's records): one formula either way, and a single
    application is built without pandas' fixed cost per column."""
    enterprise_features = EnterpriseFeatures()
    require_columns(enterprises, enterprise_features.required, "EnterpriseFeatures")
    bundle_features = BundleFeatures(value_column=value_column)
    bundle_features.check_columns(assets)
    ids = column_objects(loans["application_id"])
    columns = {c: column_floats(loans[c]) for c in LOAN_COLUMNS}
    guarantee = column_objects(loans["guarantee"])
    columns["guarantee_company"] = (guarantee == "guarantee_company").astype("float64")
    columns["insurance"] = column_floats(loans["insurance"])
    columns |= enterprise_features.columns_of(enterprises)  # row for row with the loans
    # By id: an application without assets gets missing bundle figures.
    applications, bundle = bundle_features.columns_of(assets)
    where = _positions(applications, ids)
    columns |= {c: np.append(values, np.nan)[where] for c, values in bundle.items()}  # -1: NaN
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # extremes: inf or NaN, as in pandas
        columns["amount_to_revenue"] = columns["amount_cny"] / np.exp(columns["log_revenue"])
    return ids, columns


def _positions(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each wanted id is among `values` (-1 if absent): pandas' index lookup for a portfolio, a dict
    for one request's id (building a pandas index costs more than the lookup saves)."""
    if len(wanted) > 16:
        return pd.Index(values).get_indexer(wanted)
    at = {v: i for i, v in enumerate(values)}
    return np.array([at.get(v, -1) for v in wanted], dtype=np.intp)


def feature_summary(features: pd.DataFrame) -> pd.DataFrame:
    """Per column: non-missing share, mean, quartiles; what `ipcredit features` prints."""
    numeric = features.select_dtypes("number")
    return pd.DataFrame(
        {
            "present": numeric.notna().mean(),
            "mean": numeric.mean(),
            "p25": numeric.quantile(0.25),
            "median": numeric.median(),
            "p75": numeric.quantile(0.75),
        }
    )
