"""Point-in-time snapshots: each asset and enterprise as it stood on a given date.

A bank values a patent on the day a loan is applied for, so every count, status and age is
computed from events dated on or before that day; the tables' current status columns (as
extracted) are never used. Rows are (asset, as_of) pairs, so the same asset can be seen at
several dates (pledged in two applications, say) in one call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.errors import InvalidData, Problem
from features.schema import AssetKind, EventType, LegalStatus, TrademarkStatus

PATENT_EVENT_COUNTS = {
    "forward_citations": EventType.CITATION_RECEIVED,
    "transfers": EventType.TRANSFER,
    "licences": EventType.LICENCE,
    "prior_pledges": EventType.PLEDGE,
    "invalidation_requests": EventType.INVALIDATION_REQUEST,
    "litigations": EventType.LITIGATION,
    "lapses": EventType.LAPSE,
    "invalidations": EventType.INVALIDATED,
}
TRADEMARK_EVENT_COUNTS = {
    "renewals": EventType.RENEWAL,
    "transfers": EventType.TRANSFER,
    "licences": EventType.LICENCE,
    "prior_pledges": EventType.PLEDGE,
    "oppositions": EventType.OPPOSITION,
    "invalidation_requests": EventType.INVALIDATION_REQUEST,
    "invalidations": EventType.INVALIDATED,
    "cancellations": EventType.CANCELLATION,
}


def _as_of_days(as_of: pd.Series | pd.Timestamp | str, n: int) -> np.ndarray:
    """As-of dates as integer days since the epoch, one per row."""
    if isinstance(as_of, pd.Series):
        values = pd.to_datetime(as_of).to_numpy()
    else:
        values = np.full(n, pd.Timestamp(as_of).to_datetime64())
    return values.astype("datetime64[D]").astype("int64")


def _days(values: pd.Series) -> np.ndarray:
    """Dates as integer days; missing dates as a very large number (never reached)."""
    d = values.to_numpy().astype("datetime64[D]")
    out = d.astype("int64")
    out[np.isnat(d)] = np.iinfo(np.int64).max // 2
    return out


def _codes_against(reference: pd.Series, values: pd.Series) -> np.ndarray:
    """Position of each value among the distinct reference values, -1 when absent. One joint
    factorisation: faster than an index lookup on a few million text ids."""
    joint, uniques = pd.factorize(pd.concat([reference, values.astype(reference.dtype)], ignore_index=True))
    ref_codes = joint[: len(reference)]
    n_known = ref_codes.max() + 1 if len(reference) else 0
    codes = joint[len(reference) :].astype("int64")
    codes[codes >= n_known] = -1
    return codes


def count_events_as_of(
    asset_ids: pd.Series,
    as_of_days: np.ndarray,
    events: pd.DataFrame,
    kind: AssetKind,
    counts: dict[str, EventType],
) -> pd.DataFrame:
    """For each row, how many events of each type the asset had on or before its as-of day.

    Vectorised: events are keyed by (asset code, day) and sorted, and each row's count is the
    distance between two binary searches, so later events cannot enter the count.
    """
    row_code, _ = pd.factorize(asset_ids)
    of_kind = (events["asset_kind"] == kind.value).to_numpy(dtype=bool)
    ev_code = _codes_against(asset_ids, events["asset_id"])
    keep = of_kind & (ev_code >= 0)
    type_codes, type_names = pd.factorize(events["event_type"])
    type_names = [str(t) for t in type_names]
    ev_code, ev_day, ev_type = ev_code[keep], _days(events["event_date"])[keep], type_codes[keep]
    span = np.int64(1 << 20)  # days since 1970 stay far below 2**20 (year 4840)
    row_lo = row_code.astype("int64") * span
    row_hi = row_lo + np.clip(as_of_days, 0, span - 1)
    out = {}
    for name, event_type in counts.items():
        code = type_names.index(event_type.value) if event_type.value in type_names else -1
        of_type = ev_type == code
        keys = np.sort(ev_code[of_type] * span + ev_day[of_type])
        out[name] = np.searchsorted(keys, row_hi, side="right") - np.searchsorted(keys, row_lo, side="left")
    return pd.DataFrame(out, index=asset_ids.index)


def _attach(rows: pd.DataFrame, table: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    """Static attributes of each row's asset; unknown ids are refused with their rows."""
    positions = _codes_against(table[key], rows[key])
    unknown = np.flatnonzero(positions < 0)
    if unknown.size:
        raise InvalidData(
            [Problem(key, f"an id present in the {what} table", rows[key].iat[i], int(i)) for i in unknown],
            f"{what} rows",
        )
    static = table.take(positions).reset_index(drop=True)
    static.index = rows.index
    return static


def _refuse_before_filing(
    rows: pd.DataFrame, filing_days: np.ndarray, as_of_days: np.ndarray, key: str
) -> None:
    early = np.flatnonzero(as_of_days < filing_days)
    if early.size:
        raise InvalidData(
            [
                Problem(
                    "as_of",
                    "a date on or after the filing date",
                    str(rows["as_of"].iat[i])[:10],
                    int(i),
                    str(rows[key].iat[i]),
                )
                for i in early
            ],
            "as-of rows",
        )


def patent_snapshot(rows: pd.DataFrame, patents: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Patents as of each row's date. `rows` has `patent_id` and `as_of`; the result has the
    static attributes, event counts up to `as_of` and the legal status on that day."""
    static = _attach(rows, patents, "patent_id", "patents").drop(columns=["legal_status"])
    as_of = _as_of_days(rows["as_of"], len(rows))
    _refuse_before_filing(rows, _days(static["filing_date"]), as_of, "patent_id")
    counts = count_events_as_of(rows["patent_id"], as_of, events, AssetKind.PATENT, PATENT_EVENT_COUNTS)
    granted = _days(static["grant_date"]) <= as_of
    status = np.select(
        [
            counts["invalidations"].to_numpy() > 0,
            counts["lapses"].to_numpy() > 0,
            _days(static["expiry_date"]) <= as_of,
            ~granted,
        ],
        [
            LegalStatus.INVALIDATED.value,
            LegalStatus.LAPSED.value,
            LegalStatus.EXPIRED.value,
            LegalStatus.PENDING.value,
        ],
        LegalStatus.VALID.value,
    )
    out = pd.concat([static, counts.drop(columns=["lapses", "invalidations"])], axis=1)
    out["grant_date"] = out["grant_date"].where(granted)  # a grant after the as-of date is not known yet
    out["status_as_of"] = status
    out["as_of"] = pd.to_datetime(rows["as_of"]) if isinstance(rows["as_of"], pd.Series) else rows["as_of"]
    return out


TRADEMARK_TERM_YEARS = 10


def trademark_snapshot(rows: pd.DataFrame, trademarks: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Trademarks as of each row's date (`rows` has `trademark_id` and `as_of`)."""
    static = _attach(rows, trademarks, "trademark_id", "trademarks").drop(columns=["status"])
    as_of = _as_of_days(rows["as_of"], len(rows))
    _refuse_before_filing(rows, _days(static["filing_date"]), as_of, "trademark_id")
    counts = count_events_as_of(
        rows["trademark_id"], as_of, events, AssetKind.TRADEMARK, TRADEMARK_EVENT_COUNTS
    )
    registered = _days(static["registration_date"]) <= as_of
    # The term runs 10 years from registration and 10 more for each renewal recorded by then.
    years = TRADEMARK_TERM_YEARS * (1 + counts["renewals"].to_numpy())
    expiry = _days(static["registration_date"]) + np.round(years * 365.25).astype("int64")
    status = np.select(
        [
            counts["invalidations"].to_numpy() > 0,
            counts["cancellations"].to_numpy() > 0,
            ~registered,
            expiry <= as_of,
        ],
        [
            TrademarkStatus.INVALIDATED.value,
            TrademarkStatus.CANCELLED.value,
            TrademarkStatus.PENDING.value,
            TrademarkStatus.EXPIRED.value,
        ],
        TrademarkStatus.REGISTERED.value,
    )
    out = pd.concat([static, counts.drop(columns=["invalidations", "cancellations"])], axis=1)
    out["registration_date"] = out["registration_date"].where(registered)
    out["expiry_as_of"] = pd.to_datetime(np.where(registered, expiry, 0).astype("datetime64[D]")).where(
        registered
    )
    out["status_as_of"] = status
    out["as_of"] = pd.to_datetime(rows["as_of"])
    return out


def enterprise_snapshot(rows: pd.DataFrame, enterprises: pd.DataFrame) -> pd.DataFrame:
    """The latest credit snapshot of each row's enterprise on or before its `as_of` date.

    A row whose enterprise has no snapshot by then is refused: scoring it would need data from
    after the application.
    """
    left = pd.DataFrame(
        {
            "_row": np.arange(len(rows)),
            "enterprise_id": rows["enterprise_id"].astype("string").to_numpy(),
            "as_of": pd.to_datetime(rows["as_of"]).to_numpy().astype("datetime64[ns]"),
        }
    )
    # Both keys as one text type: merge_asof refuses to match object against string columns.
    left["enterprise_id"] = left["enterprise_id"].astype("string")
    right = enterprises.assign(
        report_date=enterprises["report_date"].to_numpy().astype("datetime64[ns]"),
        enterprise_id=enterprises["enterprise_id"].astype("string"),
    )
    merged = pd.merge_asof(
        left.sort_values("as_of"),
        right.sort_values("report_date"),
        left_on="as_of",
        right_on="report_date",
        by="enterprise_id",
        direction="backward",
    )
    merged = merged.sort_values("_row").drop(columns="_row").reset_index(drop=True)
    missing = np.flatnonzero(merged["report_date"].isna().to_numpy())
    if missing.size:
        raise InvalidData(
            [
                Problem(
                    "enterprise_id",
                    "a credit snapshot dated on or before the as-of date",
                    "none",
                    int(i),
                    str(rows["enterprise_id"].iat[i]),
                )
                for i in missing
            ],
            "enterprise rows",
        )
    merged.index = rows.index
    return merged
