"""The valuation table: one flat row per asset at a date, the format `ipcredit value` reads.

Built from a portfolio: patent and trademark features as of the valuation date (the union of both
kinds' columns, missing where a column does not apply), the owner's revenue and industry from its
latest credit report by then, and, for training, the observed appraisal or transaction value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.portfolio import Portfolio
from features.schema import LIVE_STATUSES, AssetKind, Industry, IpcSection, PatentType
from features.snapshot import enterprise_snapshot, patent_snapshot, trademark_snapshot
from features.spec import FeatureColumn, FeatureSpec
from features.transformers import PatentFeatures, TrademarkFeatures

TARGET = "value_cny"
ID = "asset_id"
OWNER_COLUMNS = ["owner_revenue_cny", "owner_industry", "owner_high_tech"]
# Directions the value must follow whatever the data say (a longer remaining life never lowers value).
MONOTONE = {
    "remaining_years": "increasing",
    "owner_revenue_cny": "increasing",
    "family_countries": "increasing",
}
# The categorical features and every valid value of each: a value the training sample lacks (a Nice class
# no trademark in it had) is still valued, as a category the model has not seen (SpecEncoder).
CATEGORICAL = {
    "asset_kind": [k.value for k in AssetKind],
    "patent_type": [t.value for t in PatentType],
    "ipc_section": [s.value for s in IpcSection],
    "nice_class": [str(n) for n in range(1, 46)],
    "owner_industry": [i.value for i in Industry],
}
# Without these an asset cannot be valued at all; any other feature may be missing.
REQUIRED = {"asset_kind", "owner_revenue_cny", "owner_industry"}


def asset_rows(portfolio: Portfolio, rows: pd.DataFrame) -> pd.DataFrame:
    """Flat valuation rows for (asset_kind, asset_id, as_of) rows, in the order given."""
    rows = rows.reset_index(drop=True)
    is_patent = (rows["asset_kind"] == "patent").to_numpy()
    parts = []
    for kind, mask, snap_fn, table, transformer in (
        ("patent", is_patent, patent_snapshot, portfolio.patents, PatentFeatures()),
        ("trademark", ~is_patent, trademark_snapshot, portfolio.trademarks, TrademarkFeatures()),
    ):
        if not mask.any():
            continue
        key = f"{kind}_id"
        subset = rows[mask].rename(columns={"asset_id": key})
        snap = snap_fn(subset, table, portfolio.events)
        feats = transformer.fit(snap).transform(snap)
        # Category codes are for models; the flat table keeps readable categories.
        if kind == "patent":
            feats["patent_type"] = snap["patent_type"].astype(str).to_numpy()
            feats["ipc_section"] = snap["ipc_main"].str[0].to_numpy()
            feats["status_as_of"] = snap["status_as_of"].to_numpy()
        else:
            feats["nice_class"] = snap["nice_class"].astype(str).to_numpy()
            feats["status_as_of"] = snap["status_as_of"].to_numpy()
        feats.insert(0, "enterprise_id", snap["enterprise_id"].to_numpy())
        feats.index = subset.index
        parts.append(feats)
    flat = pd.concat(parts).sort_index()
    owners = enterprise_snapshot(
        pd.DataFrame({"enterprise_id": flat["enterprise_id"], "as_of": rows["as_of"]}), portfolio.enterprises
    )
    out = pd.DataFrame(
        {
            "asset_id": rows["asset_id"],
            "asset_kind": rows["asset_kind"].astype(str),
            "as_of": pd.to_datetime(rows["as_of"]),
        }
    )
    out = out.join(flat)
    out["owner_patents_in_force"] = patents_in_force_at(portfolio, flat["enterprise_id"], rows["as_of"])
    out["owner_revenue_cny"] = owners["revenue_cny"].to_numpy(dtype="float64")
    out["owner_industry"] = owners["industry"].astype(str).to_numpy()
    out["owner_high_tech"] = owners["high_tech"].to_numpy(dtype="float64")
    return out


def patents_in_force_at(portfolio: Portfolio, owner_ids: pd.Series, as_of: pd.Series) -> np.ndarray:
    """How many patents each row's owner held in force on the row's date (granted, not yet lapsed,
    invalidated or expired), from dated events only; the income approach splits revenue over them."""
    patents = portfolio.patents
    events = portfolio.events
    ended = events[
        events["event_type"].astype(str).isin(["lapse", "invalidated"])
        & (events["asset_kind"].astype(str) == "patent")
    ]
    first_end = ended.groupby("asset_id", observed=True)["event_date"].min()
    end = pd.concat(
        [patents["expiry_date"], patents["patent_id"].map(first_end).astype(patents["expiry_date"].dtype)],
        axis=1,
    ).min(axis=1)
    never = np.iinfo(np.int64).max // 4

    def days(values: pd.Series) -> np.ndarray:
        d = values.to_numpy().astype("datetime64[D]")
        out = d.astype("int64")
        out[np.isnat(d)] = never
        return out

    owner_code = pd.Index(pd.unique(patents["enterprise_id"]))
    span = np.int64(1 << 20)
    codes = owner_code.get_indexer(patents["enterprise_id"]).astype("int64")
    starts = np.sort(codes * span + np.minimum(days(patents["grant_date"]), span - 1))
    ends = np.sort(codes * span + np.minimum(days(end), span - 1))
    row_code = owner_code.get_indexer(owner_ids).astype("int64")
    t = days(pd.Series(pd.to_datetime(as_of).to_numpy()))
    lo, hi = row_code * span, row_code * span + t
    count = (np.searchsorted(starts, hi, "right") - np.searchsorted(starts, lo, "left")) - (
        np.searchsorted(ends, hi, "right") - np.searchsorted(ends, lo, "left")
    )
    return np.where(row_code < 0, 0, count).astype("float64")


def training_table(portfolio: Portfolio) -> pd.DataFrame:
    """Every observed value (appraisal or transaction) with the asset's features at its date."""
    obs = portfolio.appraisals.sort_values(["asset_kind", "asset_id", "appraisal_date"])
    obs = obs.drop_duplicates(["asset_kind", "asset_id"], keep="last").reset_index(drop=True)
    rows = pd.DataFrame(
        {
            "asset_kind": obs["asset_kind"].astype(str),
            "asset_id": obs["asset_id"],
            "as_of": obs["appraisal_date"],
        }
    )
    table = asset_rows(portfolio, rows)
    table[TARGET] = obs["value_cny"].to_numpy(dtype="float64")
    table["source"] = obs["source"].astype(str).to_numpy()
    return table


NOT_FEATURES = {"asset_id", "as_of", "enterprise_id", "status_as_of", TARGET, "source"}
# Owner facts the income approach needs beside the model's features.
INCOME_COLUMNS = ["owner_revenue_cny", "owner_industry", "owner_high_tech", "owner_patents_in_force"]
# What a valuer reads besides its spec's features (when present): the kind, and the owner's facts. A fitted
# valuer is given these and its features, nothing else (models.tasks logs them as the model's inputs).
EXTRA_INPUTS = ("asset_kind", *INCOME_COLUMNS)


def default_spec(table: pd.DataFrame) -> FeatureSpec:
    """The spec of the built-in valuation model over a table made by `asset_rows`."""
    features = []
    for name in table.columns:
        if name in NOT_FEATURES:
            continue
        kind = "categorical" if name in CATEGORICAL else "numeric"
        # every numeric input of the valuation table is a count, an age, a share, a score or an amount
        low = 0.0 if kind == "numeric" else None
        features.append(
            FeatureColumn(
                name=name,
                type=kind,
                monotone=MONOTONE.get(name),
                min=low,
                required=name in REQUIRED,
                levels=CATEGORICAL.get(name),
            )
        )
    return FeatureSpec(target=TARGET, id=ID, features=tuple(features), task="valuation")


def in_force(table: pd.DataFrame) -> np.ndarray:
    """Rows whose asset is a right in force (or pending) at its date; an ended right is worth nothing."""
    return table["status_as_of"].isin(LIVE_STATUSES).to_numpy()
