"""Small shared pieces of the valuation modules: asset types, input broadcasting and checks.

Kept private so that the public modules (income, indicators, pledge) stay the only entry points; each
check returns `Problem`s instead of raising, so a caller can list every bad value at once.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from features.errors import InvalidData, Problem
from features.schema import AssetKind, PatentType

TRADEMARK = AssetKind.TRADEMARK.value
PATENT_TYPES: tuple[str, ...] = tuple(t.value for t in PatentType)
#: The four asset types every per-type parameter is keyed by: the three patent types and the trademark.
ASSET_TYPES: tuple[str, ...] = (*PATENT_TYPES, TRADEMARK)


def plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read `got -3.0`, not `np.float64(-3.0)`."""
    return value.item() if isinstance(value, np.generic) else value


def positions(mask: Iterable[bool]) -> list[int]:
    return [i for i, flagged in enumerate(mask) if flagged]


def broadcast(values: ArrayLike, n: int, name: str, dtype: str = "float64") -> np.ndarray:
    """`values` as a 1-d array of length n (a scalar or a single value is repeated); any other length is
    refused, not recycled."""
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values, dtype=dtype)
    if arr.ndim == 0 or arr.shape == (1,):
        return np.full(n, arr.reshape(-1)[0], dtype=dtype)
    if arr.ndim != 1 or arr.size != n:
        raise InvalidData([Problem(name, f"a scalar or {n} values (one per row)", f"shape {arr.shape}")])
    return arr


def range_problems(
    name: str,
    values: np.ndarray,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    ids: Sequence[Any] | None = None,
) -> list[Problem]:
    """One problem per value that is missing, infinite or outside [lo, hi] (bounds open where asked)."""
    bad = ~np.isfinite(values)
    if lo is not None:
        bad |= (values <= lo) if lo_open else (values < lo)
    if hi is not None:
        bad |= (values >= hi) if hi_open else (values > hi)
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    low, high = "-inf" if lo is None else lo, "inf" if hi is None else hi
    expected = f"a finite number in {left}{low}, {high}{right}"
    return [
        Problem(name, expected, plain(values[i]), row=i, record_id=None if ids is None else str(ids[i]))
        for i in positions(bad)
    ]


def mapping_problems(
    name: str,
    mapping: Mapping[str, Any],
    keys: Iterable[str],
    *,
    lo: float | None = None,
    hi: float | None = None,
) -> list[Problem]:
    """A parameter keyed by industry / asset type / route must cover every key with a number in range."""
    problems = []
    keys = list(keys)
    for key in keys:
        if key not in mapping:
            problems.append(Problem(f"{name}[{key!r}]", "a value for every key", "missing"))
            continue
        value = mapping[key]
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
        if ok and lo is not None:
            ok = value >= lo
        if ok and hi is not None:
            ok = value <= hi
        if not ok:
            problems.append(Problem(f"{name}[{key!r}]", f"a number in [{lo}, {hi}]", value))
    unknown = sorted(set(mapping) - set(keys))
    if unknown:
        problems.append(Problem(name, f"only the keys {keys}", unknown))
    return problems


def scalar_problem(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> list[Problem]:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if ok:
        return []
    left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
    return [Problem(name, f"a number in {left}{lo}, {hi}{right}", value)]


def with_overrides(obj: Any, **changes: Any) -> Any:
    """A copy of a frozen assumptions dataclass with `changes` applied; a mapping-valued change is merged
    into the current mapping, so a bank can override one industry or one asset type and keep the rest."""
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise InvalidData(
            [Problem(k, f"one of {sorted(names)}", "unknown parameter") for k in unknown],
            what=type(obj).__name__,
        )
    merged = {}
    for key, value in changes.items():
        current = getattr(obj, key)
        both_maps = isinstance(current, Mapping) and isinstance(value, Mapping)
        merged[key] = {**current, **value} if both_maps else value
    return dataclasses.replace(obj, **merged)


def decode_patent_type(values: ArrayLike, categories: Sequence[str] | None = None) -> np.ndarray:
    """Patent types as text. `PatentFeatures` encodes `patent_type` as float codes into its fitted
    `categories_["patent_type"]`; pass those categories when the training data lacked a type, since the
    default (all types, sorted: design, invention, utility_model) only matches a fit that saw all three.
    Text values are passed through. Unknown or missing codes become None."""
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if arr.dtype.kind in "OUT" or isinstance(values, pd.Series) and pd.api.types.is_string_dtype(values):
        out = np.array(
            [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in arr],
            dtype=object,
        )
        return out
    cats = list(categories) if categories is not None else sorted(PATENT_TYPES)
    codes = arr.astype("float64")
    out = np.full(codes.size, None, dtype=object)
    ok = np.isfinite(codes) & (codes >= 0) & (codes < len(cats)) & (codes == np.floor(codes))
    out[ok] = np.asarray(cats, dtype=object)[codes[ok].astype(int)]
    return out


def require_columns(X: Any, needed: Sequence[str], who: str) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{who} expects a pandas DataFrame of features; got {type(X).__name__}")
    missing = [c for c in needed if c not in X.columns]
    if missing:
        raise InvalidData(
            [Problem(c, "a column of the feature frame", "no such column") for c in missing], what=who
        )
