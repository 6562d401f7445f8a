"""Example request bodies made from a portfolio (the synthetic one by default): what `ipcredit up` prints
as its example request, what the benchmark sends and what the API tests post.

An application body holds the enterprise's latest credit report on or before the application date, its
pledged assets as valuation-table rows as of that date (valuation.data.asset_rows) and the loan's terms.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from api.schemas import AssetIn
from features.portfolio import Portfolio

LOAN_FIELDS = (
    "application_date",
    "amount_cny",
    "term_months",
    "annual_rate",
    "guarantee",
    "guarantee_share",
    "insurance",
    "insurance_share",
)


def _json(value: Any) -> Any:
    """A table cell as a JSON value (missing as None, dates as ISO text, numpy scalars as Python ones)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def asset_bodies(portfolio: Portfolio, application: pd.Series) -> list[dict[str, Any]]:
    """The assets pledged in `application` (a row of portfolio.applications) as AssetIn bodies."""
    from valuation.data import asset_rows

    pledges = portfolio.pledges[portfolio.pledges["application_id"] == application["application_id"]]
    rows = pd.DataFrame(
        {
            "asset_kind": pledges["asset_kind"].astype(str).to_numpy(),
            "asset_id": pledges["asset_id"].to_numpy(),
            "as_of": application["application_date"],
        }
    )
    out = []
    for record in asset_rows(portfolio, rows).to_dict(orient="records"):
        body = {name: _json(record.get(name)) for name in AssetIn.model_fields}
        if body["nice_class"] is not None:  # text in the valuation table, an integer in the API
            body["nice_class"] = int(body["nice_class"])
        out.append(body)
    return out


def enterprise_body(portfolio: Portfolio, application: pd.Series) -> dict[str, Any]:
    """The enterprise's latest credit report on or before the application date."""
    reports = portfolio.enterprises
    mine = reports[
        (reports["enterprise_id"] == application["enterprise_id"])
        & (reports["report_date"] <= application["application_date"])
    ].sort_values("report_date")
    return {name: _json(value) for name, value in mine.iloc[-1].to_dict().items()}


def application_bodies(portfolio: Portfolio) -> Iterator[dict[str, Any]]:
    """ApplicationRequest bodies of the portfolio's applications, in order, leaving out those with an asset
    that has no remaining term yet (a pending mark): the service requires one."""
    for _, application in portfolio.applications.iterrows():
        assets = asset_bodies(portfolio, application)
        if any(a["remaining_years"] is None for a in assets):
            continue
        yield {
            "enterprise": enterprise_body(portfolio, application),
            "assets": assets,
            "loan": {name: _json(application[name]) for name in LOAN_FIELDS},
        }
