"""The spec's encoder: a flat table (or a request's records) as the model matrix its feature spec describes.

Both models read their inputs through it (valuation.model.ValueModel, scoring.model.ScoringModel), so the two
refuse a value by the same rules and encode a category the same way: it belongs to the features, below both.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from features.errors import InvalidData, Problem
from features.spec import FeatureSpec, category_of, category_text, levels_text
from features.values import plain

# Tables of at most this many rows are encoded record by record (SpecEncoder.encode).
RECORD_ROWS = 16


class SpecEncoder:
    """Turns a flat table into the model matrix the spec describes, and refuses rows it cannot use.

    Learned at fit: category levels. From the spec: the features that must have a value (`required`),
    the bounds outside which a value is impossible (`min` / `max`) and a categorical feature's valid values
    (`levels`). Any other feature may be missing: LightGBM learns where missing values go. A category
    training did not see is refused, unless the spec lists it among the feature's levels: then it is
    encoded as missing, which LightGBM routes as it routes any category a split did not see (a trademark
    of a Nice class absent from the training sample is valued, not refused).
    """

    def __init__(self, spec: FeatureSpec):
        self.spec = spec

    def fit(self, df: pd.DataFrame) -> SpecEncoder:
        self.categories_ = {c: sorted(category_text(df[c]).dropna().unique()) for c in self.spec.categorical}
        self.levels_ = {f.name: f.levels for f in self.spec.features if f.levels is not None}
        self.required_ = {f.name for f in self.spec.features if f.required}
        self.bounds_ = {
            f.name: (f.min, f.max)
            for f in self.spec.features
            if f.type == "numeric" and (f.min is not None or f.max is not None)
        }
        return self

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, list[Problem]]:
        """The model matrix of a table and every unusable value in it (`row_problems`); refused rows are
        encoded as far as they can be and are not to be predicted. A few rows (one request's assets) go
        through `record_row`, in plain Python: pandas' fixed cost per column operation would dominate."""
        if len(df) > RECORD_ROWS:
            problems = self.row_problems(df)
            good = np.ones(len(df), dtype=bool)
            good[[p.row for p in problems]] = False
            X = np.full((len(df), len(self.spec.feature_names)), np.nan)
            X[good] = self.transform(df[good]).to_numpy(dtype="float64")
            return X, problems
        self._check_columns(df.columns)
        names = list(df.columns)  # rows as dicts via one object array: to_dict costs a request ~3 ms
        return self.encode_records([dict(zip(names, r, strict=True)) for r in df.to_numpy(dtype=object)])

    def encode_records(self, records: Sequence[Mapping]) -> tuple[np.ndarray, list[Problem]]:
        """`encode` of records (a feature a record lacks is missing): each by `record_row` up to RECORD_ROWS
        records, as a table above (a book's assets: pandas' column operations beat a Python loop over many
        rows); the problems in the order `row_problems` lists them, ids as text."""
        if len(records) > RECORD_ROWS:
            names = list(dict.fromkeys([*self.spec.feature_names, *(k for r in records for k in r)]))
            return self.encode(pd.DataFrame.from_records(list(records), columns=names))
        rows = [self.record_row(r, i) for i, r in enumerate(records)]
        X = np.array([x for x, _ in rows]).reshape(len(records), len(self.spec.feature_names))
        order = {c: k for k, c in enumerate([*self.spec.numeric, *self.spec.categorical])}
        problems = sorted((p for _, found in rows for p in found), key=lambda p: (order[p.field], p.row))
        problems = [
            p if p.record_id is None else dataclasses.replace(p, record_id=str(p.record_id)) for p in problems
        ]
        return X, problems

    def encode_columns(self, columns: Mapping[str, Sequence]) -> tuple[np.ndarray, list[Problem]]:
        """`encode` of a table given as a mapping of column name to values, row for row (a batch of
        applications' rows, or one application's): record by record up to RECORD_ROWS rows, as a DataFrame
        above."""
        self._check_columns(columns)
        n = len(next(iter(columns.values()))) if columns else 0
        if n > RECORD_ROWS:
            return self.encode(pd.DataFrame({c: columns[c] for c in columns}))
        return self.encode_records([{c: values[i] for c, values in columns.items()} for i in range(n)])

    def _check_columns(self, names: Collection[str]) -> None:
        missing = [c for c in self.spec.feature_names if c not in names]
        if missing:
            raise InvalidData(
                [Problem(c, "a column of the model's feature spec", "no such column") for c in missing],
                "input table",
            )

    def row_problems(self, df: pd.DataFrame) -> list[Problem]:
        """Every unusable value, by field, row and id; the rows named here are not valued."""
        self._check_columns(df.columns)
        ids = df[self.spec.id].astype(str).to_numpy() if self.spec.id and self.spec.id in df else None
        problems = []

        def report(mask: np.ndarray, column: str, expected: str) -> None:
            for row in np.flatnonzero(mask):
                problems.append(
                    Problem(
                        column,
                        expected,
                        plain(df[column].iat[row]),
                        int(row),
                        None if ids is None else ids[row],
                    )
                )

        for c in self.spec.numeric:
            values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            given = df[c].notna().to_numpy()
            report(given & np.isnan(values), c, "a number")
            report(given & np.isinf(values), c, "a finite number")
            if c in self.required_:
                report(~given, c, "a value (required by the feature spec)")
            low, high = self.bounds_.get(c, (None, None))
            if low is not None:
                report(given & (values < low), c, f">= {low:g}")
            if high is not None:
                report(given & (values > high), c, f"<= {high:g}")
        for c in self.spec.categorical:
            valid = self._valid_levels(c)
            known = category_text(df[c]).isin(valid).fillna(False).to_numpy(dtype=bool)
            report(df[c].notna().to_numpy() & ~known, c, self._expected_level(c))
            if c in self.required_:
                report(df[c].isna().to_numpy(), c, "a value (required by the feature spec)")
        return problems

    def record_row(self, record: Mapping, row: int = 0) -> tuple[np.ndarray, list[Problem]]:
        """One record as a model row, checked by the same rules as `row_problems` (a test holds the two
        to agreement); plain Python, so one asset is encoded in microseconds instead of milliseconds."""
        if not hasattr(self, "category_codes_"):  # built lazily: older pickles lack it
            self.category_codes_ = {
                c: {v: i for i, v in enumerate(cats)} for c, cats in self.categories_.items()
            }
        record_id = record.get(self.spec.id) if self.spec.id else None
        x = np.empty(len(self.spec.feature_names))
        problems = []
        for j, c in enumerate(self.spec.feature_names):
            value = record.get(c)
            missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            if missing:
                x[j] = np.nan
                if c in self.required_:
                    problems.append(
                        Problem(c, "a value (required by the feature spec)", value, row, record_id)
                    )
                continue
            if c in self.categories_:
                category = category_of(value)
                code = self.category_codes_[c].get(category)
                if code is None and category not in self._valid_levels(c):
                    problems.append(Problem(c, self._expected_level(c), plain(value), row, record_id))
                x[j] = np.nan if code is None else code  # a level training did not see: missing
                continue
            if isinstance(value, str):  # a number as text (a CSV column holding a word), read as tables are
                number = pd.to_numeric(value, errors="coerce")
                value = value if math.isnan(number) else float(number)
            if not isinstance(value, numbers.Real):
                problems.append(Problem(c, "a number", value, row, record_id))
            elif not math.isfinite(value):
                problems.append(Problem(c, "a finite number", plain(value), row, record_id))
            elif (bound := self.bounds_.get(c, (None, None)))[0] is not None and value < bound[0]:
                problems.append(Problem(c, f">= {bound[0]:g}", plain(value), row, record_id))
            elif bound[1] is not None and value > bound[1]:
                problems.append(Problem(c, f"<= {bound[1]:g}", plain(value), row, record_id))
            x[j] = float(value) if isinstance(value, numbers.Real) else np.nan
        return x, problems

    def _valid_levels(self, column: str) -> Sequence[str]:
        """The values accepted in a categorical column: the spec's levels, else those seen in training."""
        return getattr(self, "levels_", {}).get(column) or self.categories_[column]  # older pickles: none

    def _expected_level(self, column: str) -> str:
        """What a refused category is told: the accepted values, and whether they are only those the model
        saw in training (a model whose spec lists no levels: retraining values the others)."""
        text = levels_text(self._valid_levels(column))
        if not getattr(self, "levels_", {}).get(column):
            text += " (the values this model saw in training; one trained on a spec that lists `levels` "
            text += "values the others)"
        return text

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in self.spec.feature_names:
            if c in self.categories_:
                codes = pd.Index(self.categories_[c], dtype="string").get_indexer(category_text(df[c]))
                out[c] = np.where(codes < 0, np.nan, codes).astype("float64")
            else:
                out[c] = pd.to_numeric(df[c]).to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(out, index=df.index)


def training_encoder(spec: FeatureSpec, df: pd.DataFrame, task: str) -> SpecEncoder:
    """The encoder learnt from a training table of `task` ("valuation" or "scoring"), or InvalidData
    listing every unusable value (rows are positions in `df`: check a whole table before splitting it, so
    that they are the user's rows)."""
    spec.check(df, task=task)
    encoder = SpecEncoder(spec).fit(df)
    problems = encoder.row_problems(df)
    if problems:
        raise InvalidData(problems, "training table")
    return encoder
