"""numpy and pandas values as the plain Python values messages and JSON documents show: the one place for it.

- `plain`: a numpy scalar as the Python scalar it holds (NaN stays NaN), so that a message reads
  ``got -3.0``, not ``got np.float64(-3.0)``.
- `json_value`: any value as JSON values, recursively: numpy scalars as Python ones, NaN, NA, NaT and
  infinities as None, tuples and arrays as lists, dates as ISO text (a midnight timestamp as its date).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds, a timestamp as its text (a date's when it is midnight),
    mappings, lists and tuples (as lists) value by value; anything else as it is. NaN stays NaN.

    >>> plain(np.float64(-3.0)), plain(np.int64(2)), plain(pd.Timestamp("2024-03-01"))
    (-3.0, 2, '2024-03-01')
    >>> plain({"auc": np.float64(0.5), "folds": (np.int64(1), float("nan"))})
    {'auc': 0.5, 'folds': [1, nan]}
    """
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64):
        return value.item()
    if isinstance(value, pd.Timestamp | np.datetime64):
        return _stamp_text(pd.Timestamp(value))
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _stamp_text(stamp: pd.Timestamp) -> str | None:
    if stamp is pd.NaT:
        return None
    midnight = stamp.tzinfo is None and stamp == stamp.normalize()
    return stamp.date().isoformat() if midnight else stamp.isoformat()


def json_value(value: Any) -> Any:
    """`value` as JSON values (see the module docstring).

    >>> json_value({"a": np.float64(1.5), "b": [np.int64(2), float("nan")], "c": (pd.NA, np.bool_(True))})
    {'a': 1.5, 'b': [2, None], 'c': [None, True]}
    >>> json_value(pd.Timestamp("2024-03-01")), json_value(dt.date(2024, 3, 1))
    ('2024-03-01', '2024-03-01')
    """
    # The common exact types first: a decision's documents hold a few thousand values, and the generic
    # checks below (abstract base classes) cost several times more each.
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): json_value(v) for k, v in value.items()}
    if kind is list:
        return [json_value(v) for v in value]
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64):  # before the slower checks
        value = value.item()
        return value if type(value) is not float or math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp | np.datetime64 | dt.datetime):
        return _stamp_text(pd.Timestamp(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
