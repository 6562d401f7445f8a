"""Small shared pieces of the valuation modules: asset types, input broadcasting and checks.

Kept private so that the public modules (income, indicators, pledge) stay the only entry points; each
check returns `Problem`s instead of raising, so a caller can list every bad value at once.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from features.errors import InvalidData, Problem
from features.schema import AssetKind, PatentType
from features.values import plain

TRADEMARK = AssetKind.TRADEMARK.value
PATENT_TYPES: tuple[str, ...] = tuple(t.value for t in PatentType)
#: The four asset types every per-type parameter is keyed by: the three patent types and the trademark.
ASSET_TYPES: tuple[str, ...] = (*PATENT_TYPES, TRADEMARK)


def positions(mask: Iterable[bool]) -> list[int]:
    flags = mask if isinstance(mask, np.ndarray) else np.fromiter(mask, dtype=bool)
    return np.flatnonzero(flags).tolist()


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
    if values.size == 0:
        return []
    least, most = values.min(), values.max()  # NaN when any value is
    if (
        np.isfinite(least)
        and np.isfinite(most)
        and (lo is None or (least > lo if lo_open else least >= lo))
        and (hi is None or (most < hi if hi_open else most <= hi))
    ):
        return []  # every value is fine: the usual case, decided without a mask
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


# --- columns as arrays ---------------------------------------------------------------------------------


def floats(column: pd.Series) -> np.ndarray:
    """`column.to_numpy(dtype="float64", na_value=np.nan)`."""
    return column.to_numpy(dtype="float64", na_value=np.nan)


def floats_as_is(column: pd.Series) -> np.ndarray:
    """`column.to_numpy(dtype="float64")`: as `floats`, except that pandas refuses an object column holding
    pd.NA (TypeError) instead of reading it as NaN."""
    return column.to_numpy(dtype="float64")


#: Up to this many values, a text column is converted value by value (see `raw`).
_FEW_VALUES = 64


def raw(column: pd.Series) -> np.ndarray:
    """`column.to_numpy()`."""
    if isinstance(column.dtype, pd.StringDtype):
        # The same object array (text, and the dtype's missing value). pandas' conversion costs about
        # 0.1 ms whatever the length when a value is missing; a few values are read one by one instead.
        if len(column) > _FEW_VALUES:
            return column.to_numpy(dtype=object)
        values = np.empty(len(column), dtype=object)
        values[:] = list(column.array)
        return values
    return column.to_numpy()


def text(column: pd.Series) -> np.ndarray:
    """`column.astype(str).to_numpy()`: each value as text, missing values NaN; a column of pandas' `str`
    dtype already is that, and is not converted again."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan:
        return raw(column)
    return column.astype(str).to_numpy()


def set_flags(column: pd.Series) -> np.ndarray:
    """`column.fillna(0).astype(bool).to_numpy()`: a 0/1 flag column, missing counted as not set."""
    if column.dtype == np.dtype("float64"):
        values = column.to_numpy()
        return (values != 0) & ~np.isnan(values)
    return column.fillna(0).astype(bool).to_numpy()


# Conversions that leave the values of a float column (float64 or Float64) as pandas' float reading of it.
_FLOAT_READINGS = (floats, floats_as_is, raw)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _record_column(values: list) -> np.ndarray:
    """Records' values of one column (Python scalars, None where missing) as the array pandas' column of
    them holds (`DataFrame.from_records(records)[name].to_numpy()`): numbers as int64 or, with a missing
    value or a float among them, float64 with NaN; flags as bool; text as objects with NaN where missing;
    anything else (mixed kinds, all missing) as the objects given."""
    kinds = {type(v) for v in values if v is not None}
    if int in kinds and any(type(v) is int and not -(2**63) <= v < 2**63 for v in values):
        kinds = {object}  # an integer beyond 64 bits: the objects, as pandas keeps them
    if kinds and kinds <= {int, float} and (float in kinds or None in values):
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if kinds in ({int}, {bool}):
        return np.array(values)
    out = np.empty(len(values), dtype=object)
    out[:] = [np.nan if v is None else v for v in values] if kinds == {str} else values
    return out


def _floats_of(values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        return values.astype("float64")
    return np.array([np.nan if _missing(v) else v for v in values], dtype="float64")


def _text_of(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [np.nan if _missing(v) else str(v) for v in values]
    return out


def _text_or_as_is(values: np.ndarray) -> np.ndarray:
    """A text column (objects, NaN where missing) as it is; any other column's values as text."""
    if values.dtype == object and all(type(v) is str or (type(v) is float and v != v) for v in values):
        return values
    return _text_of(values)


def _flags_of(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.dtype("float64"):
        return (values != 0) & ~np.isnan(values)
    if values.dtype == object:
        raise TypeError("objects: pandas' fillna decides what is missing")
    return values.astype(bool)


# The pandas conversions as the same conversions of a record column (`_record_column`); a conversion not
# listed here, or one these refuse (TypeError, ValueError), is done by pandas on the column as a Series.
_ON_RECORD_COLUMNS: dict[Callable, Callable[[np.ndarray], np.ndarray]] = {
    floats: _floats_of,
    floats_as_is: _floats_of,
    raw: lambda values: values,
    text: _text_or_as_is,
    set_flags: _flags_of,
}


class Columns:
    """The columns of a table as numpy arrays, for formulas written over whole columns.

    On a request's few rows, pandas' fixed cost per operation (a column read, a conversion, a boolean
    subset of the frame) is what takes the time, not the arithmetic. Each (column, conversion) is therefore
    done once on the whole frame and kept; `take` restricts to some rows (asset kinds, rows not refused)
    without copying the frame, and its restrictions share what was converted. The float columns, most of
    a feature frame, are read together in one operation. A conversion that fails on the whole column (an
    unconvertible value may sit in a row not asked for, e.g. a refused row) is done on the rows asked for
    alone, so it fails exactly when converting those rows of the frame would.

    `index` gives the frame's labels of the rows (for record ids and output frames).

    `Columns.of_records` stands for the frame of some records (`DataFrame.from_records`) without building
    it: a request's assets, read as that frame's columns would be, value for value and type for type.
    """

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray | None = None, *, _cache: dict | None = None):
        self.frame = frame
        self.rows = rows
        self._cache: dict = {} if _cache is None else _cache

    @classmethod
    def of_records(cls, records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Columns:
        """The columns `names` of records (mappings of Python scalars; a name a record lacks is None), as
        those of `DataFrame.from_records(records, columns=names)` with its default index."""
        columns = cls(None)  # type: ignore[arg-type]  # no frame: the records' columns stand for it
        columns._records = {name: _record_column([r.get(name) for r in records]) for name in names}
        columns._length = len(records)
        return columns

    _records: dict[str, np.ndarray] | None = None  # the record columns, when made by `of_records`
    _length = 0

    def __len__(self) -> int:
        if self.rows is not None:
            return len(self.rows)
        return len(self.frame) if self._records is None else self._length

    def __contains__(self, name: object) -> bool:
        return name in self.frame.columns if self._records is None else name in self._records

    @property
    def index(self) -> pd.Index:
        return self._index if self.rows is None else self._index[self.rows]

    @property
    def _index(self) -> pd.Index:
        return self.frame.index if self._records is None else pd.RangeIndex(self._length)

    @property
    def labels(self) -> Sequence[str]:
        """Each row's label in the frame as text (`[str(i) for i in index]`), read only for the rows
        asked for: the record ids problems name."""
        return _Labels(self._index, self.rows)

    def take(self, rows: np.ndarray) -> Columns:
        """The same columns restricted to `rows` (positions, or a boolean mask over these rows)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        part = Columns(self.frame, rows if self.rows is None else self.rows[rows], _cache=self._cache)
        part._records, part._length = self._records, self._length
        return part

    def get(self, name: str, convert: Callable[[pd.Series], np.ndarray] = floats) -> np.ndarray:
        """`convert(frame[name])` on these rows; a missing column is a KeyError, as `frame[name]` gives."""
        key = (name, convert)
        whole = self._cache.get(key)
        if whole is None and self._records is not None and convert in _ON_RECORD_COLUMNS:
            try:
                whole = self._cache[key] = _ON_RECORD_COLUMNS[convert](self._records[name])
            except (TypeError, ValueError, OverflowError):
                pass  # as pandas fails or not (below), on the whole column or on these rows
        if whole is None and convert in _FLOAT_READINGS:
            whole = self._float_columns().get(name)
        if whole is None:
            series = self._series(name)
            try:
                whole = convert(series)
            except (TypeError, ValueError, OverflowError):
                if self.rows is None:
                    raise
                return convert(series.iloc[self.rows])
            self._cache[key] = whole
        return whole if self.rows is None else whole[self.rows]

    def _float_columns(self) -> dict[str, np.ndarray]:
        """The frame's float columns as arrays, read in one operation (empty when they do not read as one
        float64 array, or have repeated names: then each column is read alone)."""
        key = (None, "float columns")
        if key not in self._cache and self._records is not None:
            self._cache[key] = {}
        if key not in self._cache:
            block = self.frame.select_dtypes(include=[np.float64])
            values, names = block.to_numpy(), block.columns.tolist()
            single = values.dtype == np.dtype("float64") and len(set(names)) == len(names)
            self._cache[key] = {c: values[:, j] for j, c in enumerate(names)} if single else {}
        return self._cache[key]

    def _series(self, name: str) -> pd.Series:
        key = (name, None)
        if key not in self._cache:
            self._cache[key] = (
                self.frame[name]
                if self._records is None
                else pd.Series(self._records[name], index=self._index, name=name)
            )
        return self._cache[key]


class _Labels(Sequence[str]):
    def __init__(self, index: pd.Index, rows: np.ndarray | None):
        self._index, self._rows = index, rows

    def __len__(self) -> int:
        return len(self._index) if self._rows is None else len(self._rows)

    def __getitem__(self, i):  # type: ignore[override]
        if not isinstance(i, numbers.Integral):
            raise TypeError(f"row labels are read one at a time; got {type(i).__name__}")
        return str(self._index[i if self._rows is None else self._rows[i]])


def require_columns(X: Any, needed: Sequence[str], who: str) -> None:
    """`needed` columns in X (a DataFrame of features, or Columns), or InvalidData naming them."""
    if isinstance(X, Columns) and X._records is None:
        X = X.frame  # Columns over something else than a DataFrame are refused as that thing
    if not isinstance(X, pd.DataFrame | Columns):
        raise TypeError(f"{who} expects a pandas DataFrame of features; got {type(X).__name__}")
    missing = [c for c in needed if c not in X]
    if missing:
        raise InvalidData(
            [Problem(c, "a column of the feature frame", "no such column") for c in missing], what=who
        )
