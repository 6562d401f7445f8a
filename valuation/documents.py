"""What a valuation answers, as JSON documents: each asset's figures, and a bundle's.

- `value_assets`: each asset's value, interval, income-approach value and cross-check, GB/T sub-scores and
  stars, and the factors that explain the value (valuation.valuer.Valuer).
- `value_bundle`: the same per asset, then the bundle, liquidation value by route and pledge value.

The assets are records of valuation-table rows (valuation.assets.AssetRecord's fields), in the order given;
any refused asset refuses the request, every problem listed with its field named from the request's top
(``assets.remaining_years``) and its row. Documents hold only JSON values: a figure that does not apply (the
technical score of a trademark, a missing income value) is None, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from features.errors import InvalidData, Problem
from features.values import json_value
from valuation.pledge import STATUS_COLUMNS, BundleValuation
from valuation.valuer import Valuer

# Valuer.value's columns in an asset's document, in its order.
VALUE_FIGURES = (
    "value_cny",
    "value_low_cny",
    "value_high_cny",
    "income_value_cny",
    "income_ratio",
    "cross_check_flag",
)
SCORES = {
    "legal": "legal_score",
    "technical": "technical_score",
    "economic": "economic_score",
    "total": "total_score",
    "market": "market_score",
}

BUNDLE_COLUMNS = ("asset_id", "asset_kind", "patent_type", "remaining_years", *STATUS_COLUMNS)


def asset_documents(values: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Valuer.value_records' figures as one document per asset (its values not yet JSON values)."""
    figures = [*VALUE_FIGURES, *SCORES.values(), "stars"]
    column = {c: values[c].tolist() for c in figures}
    return [
        {
            "asset_id": record["asset_id"],
            "asset_kind": record["asset_kind"],
            **{c: column[c][i] for c in VALUE_FIGURES},
            "scores": {name: column[c][i] for name, c in SCORES.items()},
            "stars": column["stars"][i],
        }
        for i, record in enumerate(records)
    ]


def located(problems: Sequence[Problem], prefix: str = "assets.") -> list[Problem]:
    """Problems with their field named from the request's top (``assets.remaining_years``)."""
    return [
        p if p.field.startswith(prefix) else Problem(prefix + p.field, p.expected, p.got, p.row, p.record_id)
        for p in problems
    ]


def _valued(
    valuer: Valuer, records: Sequence[Mapping[str, Any]], level: float | None = None, *, explain: bool = False
) -> dict[str, Any]:
    """Valuer.value_records, refusing the request when any asset is refused (every problem listed)."""
    values, problems = valuer.value_records(records, level, explain=explain)
    if problems:
        raise InvalidData(located(problems), "assets")
    return values


def value_assets(valuer: Valuer, records: Sequence[Mapping[str, Any]], level: float) -> dict[str, Any]:
    """{"level", "assets": [each asset's figures with its factors]}; InvalidData when any is refused."""
    values = _valued(valuer, records, level, explain=True)
    documents = asset_documents(values, records)
    for document, factors in zip(documents, values["factors"], strict=True):
        document["factors"] = factors
    return json_value({"level": level, "assets": documents})


def bundle_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The asset records' columns a bundle is made of (Valuer.bundle_of reads them with the values)."""
    columns = {c: np.array([r.get(c) for r in records], dtype=object) for c in BUNDLE_COLUMNS}
    columns["remaining_years"] = columns["remaining_years"].astype("float64")
    return columns


def bundle_of(
    valuer: Valuer, records: Sequence[Mapping[str, Any]], values: Mapping[str, Any], term_months: int
) -> BundleValuation:
    """The bundle of assets valued already (Valuer.bundle_of); InvalidData naming the assets' fields."""
    try:
        return valuer.bundle_of(bundle_columns(records) | {"value_cny": values["value_cny"]}, term_months)
    except InvalidData as e:  # e.g. an asset without a remaining term: it cannot be pledged
        raise InvalidData(located(e.problems), "bundle") from e


def value_bundle(
    valuer: Valuer, records: Sequence[Mapping[str, Any]], loan_term_months: int
) -> dict[str, Any]:
    """{"assets": [each asset's figures], "bundle": the bundle's}; InvalidData when any asset is refused."""
    values = _valued(valuer, records)
    bundle = bundle_of(valuer, records, values, loan_term_months)
    return json_value({"assets": asset_documents(values, records), "bundle": bundle.summary()})
