"""Applications made from a portfolio (the synthetic one by default), as the bodies `POST /v1/applications`
takes and `ipcredit decide` reads: what `ipcredit up` prints as its example request, what the benchmarks
decide and what the tests post.

An application body holds the enterprise's latest credit report on or before the application date, its
pledged assets as valuation-table rows as of that date (valuation.data.asset_rows) and the loan's terms. The
owner's facts are stated once, in the report: the applicant's own assets leave them out (the portfolio
pledges no third party's right). The whole portfolio is read in one pass (its assets' snapshots and its
reports together), not application by application.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from features.portfolio import Portfolio
from features.snapshot import enterprise_snapshot
from features.values import json_value
from underwriting.applications import OWNER_FACTS, LoanTerms
from valuation.assets import AssetRecord
from valuation.data import asset_rows

# The loan's terms an example states (the bank's id is the book's, given apart).
LOAN_FIELDS = tuple(name for name in LoanTerms.model_fields if name != "bank_id")


def application_bodies(
    portfolio: Portfolio, limit: int | None = None, *, with_ids: bool = False
) -> Iterator[dict[str, Any]]:
    """ApplicationRecord bodies of the portfolio's applications (the first `limit`), in order, leaving out
    those with an asset that has no remaining term yet (a pending mark): the service requires one. A body
    names its portfolio's application_id `with_ids`; otherwise none (the service's record id is then its
    id, and the same body may be sent again)."""
    applications = portfolio.applications
    if limit is not None:  # a few more than asked: some are left out
        applications = applications.head(2 * limit + 10)
    pledges = portfolio.pledges.merge(
        applications[["application_id", "application_date"]], on="application_id", how="inner", sort=False
    )
    rows = pd.DataFrame(
        {
            "asset_kind": pledges["asset_kind"].astype(str).to_numpy(),
            "asset_id": pledges["asset_id"].to_numpy(),
            "as_of": pledges["application_date"].to_numpy(),
        }
    )
    assets = asset_rows(portfolio, rows)
    assets["application_id"] = pledges["application_id"].to_numpy()
    fields = [name for name in AssetRecord.model_fields if name in assets.columns and name not in OWNER_FACTS]
    by_application: dict[Any, list[dict[str, Any]]] = {}
    for record in assets[["application_id", *fields]].to_dict(orient="records"):
        body = {
            name: json_value(record.get(name)) for name in AssetRecord.model_fields if name not in OWNER_FACTS
        }
        if body["nice_class"] is not None:  # text in the valuation table, an integer in the API
            body["nice_class"] = int(body["nice_class"])
        by_application.setdefault(record["application_id"], []).append(body)
    reports = enterprise_snapshot(
        pd.DataFrame(
            {"enterprise_id": applications["enterprise_id"], "as_of": applications["application_date"]}
        ),
        portfolio.enterprises,
    )
    report_fields = list(portfolio.enterprises.columns)
    made = 0
    for (_, application), report in zip(
        applications.iterrows(), reports[report_fields].to_dict(orient="records"), strict=True
    ):
        if limit is not None and made >= limit:
            return
        bundle = by_application.get(application["application_id"], [])
        if not bundle or any(a["remaining_years"] is None for a in bundle):
            continue
        made += 1
        yield {
            **({"application_id": str(application["application_id"])} if with_ids else {}),
            "enterprise": {name: json_value(value) for name, value in report.items()},
            "assets": bundle,
            "loan": {name: json_value(application[name]) for name in LOAN_FIELDS},
        }
