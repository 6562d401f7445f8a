"""Does the model respond to every risk it names, and the way a credit officer expects?

For each feature the spec gives a direction (`monotone`), each sampled application is scored again with
that feature alone set to each value of a grid over the feature's range in the sample (its 1st to 99th
percentile; a yes/no feature: no, then yes), everything else as it was. A row *moved the declared way* when
its PD never went against the direction along the grid and ended at least `MIN_MOVE` (relative) away from
where it started; it *went against* when any step of the grid lowered a PD that should rise (or the
reverse). The monotone constraints should make "against" zero; "moved" says whether the model uses the
feature at all. tests/test_scoring_directions.py and benchmarks/scoring.py read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

GRID = 9
MIN_MOVE = 0.01  # 1% of the PD, end to end: less is no response a credit officer would see
SIGN = {"increasing": 1.0, "decreasing": -1.0}


@dataclass(frozen=True)
class Response:
    """How the PDs of the sampled rows responded to one feature varied alone."""

    feature: str
    direction: str
    low: float
    high: float
    moved: float  # share of rows whose PD moved the declared way
    against: float  # share of rows whose PD went against it somewhere on the grid
    median_change: float  # median relative change of the PD from low to high, signed as declared


def responses(model, rows: pd.DataFrame, grid: int = GRID) -> list[Response]:
    """The Response of each feature with a declared direction in `model.spec`, over `rows`."""
    out = []
    for column in model.spec.features:
        if column.monotone is None or column.name not in rows:
            continue
        values = pd.to_numeric(rows[column.name], errors="coerce").dropna().to_numpy(dtype="float64")
        if values.size == 0:
            continue
        if set(np.unique(values)) <= {0.0, 1.0}:
            points = np.array([0.0, 1.0])
        else:
            low, high = np.quantile(values, [0.01, 0.99])
            points = np.linspace(low, high, grid) if high > low else np.array([low])
        if points.size < 2:
            continue
        varied = pd.concat([rows.assign(**{column.name: v}) for v in points], ignore_index=True)
        pd_ = model.predict_pd(varied).reshape(points.size, len(rows))
        sign = SIGN[column.monotone]
        steps = np.diff(pd_, axis=0) * sign
        against = (steps < -1e-12 * np.maximum(pd_[:-1], 1e-12)).any(axis=0)
        change = (pd_[-1] - pd_[0]) * sign / np.maximum(pd_[0], 1e-12)
        out.append(
            Response(
                column.name,
                column.monotone,
                float(points[0]),
                float(points[-1]),
                float(np.mean(~against & (change >= MIN_MOVE))),
                float(np.mean(against)),
                float(np.median(change)),
            )
        )
    return out


def response_table(found: list[Response]) -> pd.DataFrame:
    """The responses as a table, one row per feature."""
    return pd.DataFrame([r.__dict__ for r in found])
