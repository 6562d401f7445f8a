"""Feature spec: the YAML contract that tells training which columns of a user's flat table to use.

The format banks write (more top-level keys may be added; they are kept in ``extra``)::

    target: <column>        # scoring: 1 = default, 0 = repaid; valuation: positive amount in CNY
    id: <column>            # optional; carried through to every output
    features:
      - {name: <column>, type: numeric}
      - {name: <column>, type: categorical}
      - {name: <column>, type: numeric, monotone: increasing}   # or decreasing
      - {name: <column>, type: categorical, levels: [a, b, c]}  # every valid value, seen in training or not
      - {name: <column>, type: numeric, reason: {code: B01, zh: <中文>, en: <English>}}  # its reason code

Every refusal is an ``InvalidData`` that lists all problems found, never only the first.

>>> spec = FeatureSpec.from_yaml('''
... target: defaulted
... features:
...   - {name: overdue_days, type: numeric, monotone: increasing}
...   - {name: industry, type: categorical}
...   - {name: equity_ratio, type: numeric, monotone: decreasing}
... ''')
>>> spec.feature_names
('overdue_days', 'industry', 'equity_ratio')
>>> spec.monotone_constraints()
[1, 0, -1]
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from features.errors import InvalidData, Problem
from features.values import plain

logger = logging.getLogger(__name__)

FEATURE_TYPES = ("numeric", "categorical")
MONOTONE_DIRECTIONS = ("increasing", "decreasing")
TASKS = ("scoring", "valuation")
# Keys this module understands; any other top-level key is kept verbatim in FeatureSpec.extra.
KNOWN_TOP_LEVEL_KEYS = ("target", "id", "task", "features")
# Keys of one feature entry. Unknown ones are refused: a typo such as `monotonic:` would otherwise
# silently drop a monotone constraint the bank relies on.
KNOWN_FEATURE_KEYS = ("name", "type", "monotone", "min", "max", "required", "levels", "reason")
REASON_KEYS = ("code", "zh", "en")
REASON_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}$")  # R03, B01, BANK12
MAX_REASON_TEXT = 200
SCORING_TARGET_VALUES = (0, 1)
_MONOTONE_SIGN = {"increasing": 1, "decreasing": -1, None: 0}


# ---------------------------------------------------------------- categories as text


def category_text(values: pd.Series) -> pd.Series:
    """Categories as text, with whole numbers written without a decimal point: a class read back
    from CSV as 9.0 is the same category as 9."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        whole = numbers.notna() & (numbers == numbers.round())
        text = numbers.astype("string")
        text[whole] = numbers[whole].astype("int64").astype("string")
        return text
    return values.astype("string")


def category_of(value: object) -> str:
    """A single value as category text, by the rule of `category_text`."""
    if isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------- problems found in a spec


def _name_problems(value: object, field_name: str) -> list[Problem]:
    if isinstance(value, str) and value.strip():
        return []
    return [Problem(field_name, "a non-empty column name (string)", value)]


def _bound_problems(type_: object, low: object, high: object, where: str) -> list[Problem]:
    """`min` and `max` are optional numbers on numeric features, with min <= max."""
    problems = []
    for key, value in (("min", low), ("max", high)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            problems.append(Problem(f"{where}.{key}", "a number or absent", value))
        elif type_ == "categorical":
            problems.append(Problem(f"{where}.{key}", "no bound on a categorical feature", value))
    if not problems and low is not None and high is not None and low > high:
        problems.append(Problem(f"{where}.max", f"a bound >= min ({low})", high))
    return problems


def _levels_problems(type_: object, levels: object, where: str) -> list[Problem]:
    """`levels` is optional on a categorical feature: a non-empty list of distinct values (text or
    numbers), each a valid value of the column."""
    if levels is None:
        return []
    if type_ != "categorical":
        return [Problem(f"{where}.levels", "levels only on a categorical feature", levels)]
    if (
        not isinstance(levels, list | tuple)
        or not levels
        or not all(isinstance(v, str) or (_is_number(v) and math.isfinite(v)) for v in levels)
    ):
        return [Problem(f"{where}.levels", "a non-empty list of values (text or finite numbers)", levels)]
    texts = [category_of(v) for v in levels]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    return [Problem(f"{where}.levels", "each level listed once", repeated)] if repeated else []


def _reason_problems(reason: object, where: str) -> list[Problem]:
    """`reason` is optional: the feature's reason code and its texts in Chinese and English, for the
    reasons a score gives (a bank's own column would otherwise be "R99 other factor")."""
    if reason is None:
        return []
    expected = f"a mapping of {', '.join(REASON_KEYS)}"
    if not isinstance(reason, Mapping) or set(map(str, reason)) != set(REASON_KEYS):
        return [Problem(f"{where}.reason", expected, reason)]
    problems = []
    if not (isinstance(reason["code"], str) and REASON_CODE.match(reason["code"])):
        expected = "a code of a capital letter and 1 to 7 capitals or digits (e.g. B01)"
        problems.append(Problem(f"{where}.reason.code", expected, reason["code"]))
    for language in ("zh", "en"):
        text = reason[language]
        if not (isinstance(text, str) and text.strip() and len(text) <= MAX_REASON_TEXT):
            expected = f"a text of 1 to {MAX_REASON_TEXT} characters"
            problems.append(Problem(f"{where}.reason.{language}", expected, text))
    return problems


def _column_problems(name: object, type_: object, monotone: object, where: str) -> list[Problem]:
    """Problems of one feature entry; `where` names it in messages (e.g. "features[2]")."""
    problems = _name_problems(name, f"{where}.name")
    if type_ not in FEATURE_TYPES:
        problems.append(Problem(f"{where}.type", f"one of {list(FEATURE_TYPES)}", type_))
    if monotone is not None and monotone not in MONOTONE_DIRECTIONS:
        problems.append(
            Problem(f"{where}.monotone", f"one of {list(MONOTONE_DIRECTIONS)} or absent", monotone)
        )
    elif monotone is not None and type_ == "categorical":
        problems.append(
            Problem(f"{where}.monotone", "no monotone direction on a categorical feature", monotone)
        )
    return problems


def _spec_problems(
    target: object,
    names: list[object],
    id_: object,
    task: object,
    extra: Mapping[str, Any],
    codes: list[object] | None = None,
) -> list[Problem]:
    """Problems of the spec as a whole, beyond the target's own name and the feature entries themselves
    (callers check those, so that a missing key is reported once, as missing)."""
    problems = _name_problems(id_, "id") if id_ is not None else []
    if task is not None and task not in TASKS:
        problems.append(Problem("task", f"one of {list(TASKS)} or absent", task))
    seen: set[object] = set()
    for position, name in enumerate(names):
        if not isinstance(name, str):
            continue  # already reported by _column_problems
        if name in seen:
            problems.append(Problem(f"features[{position}].name", "feature names listed once", name))
        seen.add(name)
        if name == target:
            problems.append(Problem(f"features[{position}].name", "the target not listed as a feature", name))
        if id_ is not None and name == id_:
            problems.append(Problem(f"features[{position}].name", "the id not listed as a feature", name))
    if id_ is not None and id_ == target:
        problems.append(Problem("id", "a column other than the target", id_))
    given: dict[object, int] = {}
    for position, code in enumerate(codes or []):
        if code is not None and given.setdefault(code, position) != position:
            expected = f"reason codes used once (features[{given[code]}] has it)"
            problems.append(Problem(f"features[{position}].reason.code", expected, code))
    clashing = sorted(set(extra) & set(KNOWN_TOP_LEVEL_KEYS))
    if clashing:
        problems.append(Problem("extra", "no key that is a spec field", clashing))
    return problems


# ---------------------------------------------------------------- the spec


@dataclass(frozen=True)
class FeatureColumn:
    """One model input: its column name, its type and, for numeric ones, a known direction of effect
    and the bounds outside which a value is impossible (a negative count, say) and is refused; for
    categorical ones, optionally every valid value (`levels`, kept as text): a level that training did not
    see is then accepted and modelled as an unseen category, where without `levels` it is refused."""

    name: str
    type: Literal["numeric", "categorical"]
    monotone: Literal["increasing", "decreasing"] | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False  # a row without a value here is refused; other features may be missing
    levels: tuple[str, ...] | None = None
    reason: dict[str, str] | None = field(default=None, hash=False)  # {"code", "zh", "en"}

    def __post_init__(self) -> None:
        where = f"feature {self.name!r}"
        problems = _column_problems(self.name, self.type, self.monotone, where)
        problems += _bound_problems(self.type, self.min, self.max, where)
        problems += _levels_problems(self.type, self.levels, where)
        problems += _reason_problems(self.reason, where)
        if not isinstance(self.required, bool):
            problems.append(Problem(f"{where}.required", "true or false", self.required))
        if problems:
            raise InvalidData(problems, what="feature column")
        if self.levels is not None:  # frozen: normalised through object.__setattr__
            object.__setattr__(self, "levels", tuple(category_of(v) for v in self.levels))
        if self.reason is not None:
            object.__setattr__(self, "reason", {k: self.reason[k].strip() for k in REASON_KEYS})

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.type}
        for key in ("monotone", "min", "max"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        if self.required:
            entry["required"] = True
        if self.levels is not None:
            entry["levels"] = list(self.levels)
        if self.reason is not None:
            entry["reason"] = dict(self.reason)
        return entry


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns are the target, the id and the features, and how each feature is treated."""

    target: str
    features: tuple[FeatureColumn, ...]
    id: str | None = None
    task: str | None = None
    # Unknown top-level keys of the YAML, kept so that nothing a bank wrote is lost on a round trip.
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so a list or a shared dict cannot alias in.
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "extra", copy.deepcopy(dict(self.extra)))
        problems = [
            Problem(f"features[{i}]", "a FeatureColumn", column)
            for i, column in enumerate(self.features)
            if not isinstance(column, FeatureColumn)
        ]
        names = [getattr(column, "name", None) for column in self.features]
        codes = [(getattr(column, "reason", None) or {}).get("code") for column in self.features]
        problems += _name_problems(self.target, "target")
        if not names:
            problems.append(Problem("features", "at least one feature", "none"))
        problems += _spec_problems(self.target, names, self.id, self.task, self.extra, codes)
        if problems:
            raise InvalidData(problems, what="feature spec")

    # ------------------------------------------------------------ views

    # Cached (the spec is frozen): a request's path reads them once per asset and per feature.
    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.features)

    @cached_property
    def numeric(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.features if column.type == "numeric")

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.features if column.type == "categorical")

    def monotone_constraints(self) -> list[int]:
        """+1 (increasing), -1 (decreasing) or 0 (free) per feature, in feature order."""
        return [_MONOTONE_SIGN[column.monotone] for column in self.features]

    # ------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target}
        if self.id is not None:
            out["id"] = self.id
        if self.task is not None:
            out["task"] = self.task
        out["features"] = [column.to_dict() for column in self.features]
        out.update(copy.deepcopy(self.extra))
        return out

    def to_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: object) -> FeatureSpec:
        """Build a spec from a parsed mapping, refusing with every problem found."""
        if not isinstance(d, Mapping):
            problem = Problem("spec", "a mapping of keys to values", _type_name(d))
            raise InvalidData([problem], what="feature spec")
        problems = [
            Problem(key, f"a `{key}:` key", "missing") for key in ("target", "features") if key not in d
        ]
        if "target" in d:
            problems += _name_problems(d["target"], "target")
        raw_features = d.get("features", [])
        if "features" in d and not isinstance(raw_features, list):
            problems.append(Problem("features", "a list of {name, type[, monotone]} entries", raw_features))
            raw_features = []
        elif "features" in d and not raw_features:
            problems.append(Problem("features", "at least one feature", "none"))
        names: list[object] = []
        codes: list[object] = []
        for position, entry in enumerate(raw_features):
            where = f"features[{position}]"
            if not isinstance(entry, Mapping):
                problems.append(Problem(where, "a mapping with name and type", entry))
                names.append(None)
                continue
            unknown = sorted(set(map(str, entry)) - set(KNOWN_FEATURE_KEYS))
            if unknown:
                problems.append(Problem(where, f"only keys {list(KNOWN_FEATURE_KEYS)}", unknown))
            problems += _column_problems(entry.get("name"), entry.get("type"), entry.get("monotone"), where)
            problems += _bound_problems(entry.get("type"), entry.get("min"), entry.get("max"), where)
            problems += _levels_problems(entry.get("type"), entry.get("levels"), where)
            problems += _reason_problems(entry.get("reason"), where)
            reason = entry.get("reason")
            codes.append(reason.get("code") if isinstance(reason, Mapping) else None)
            if not isinstance(entry.get("required", False), bool):
                problems.append(Problem(f"{where}.required", "true or false", entry.get("required")))
            names.append(entry.get("name"))
        extra = {key: value for key, value in d.items() if key not in KNOWN_TOP_LEVEL_KEYS}
        problems += _spec_problems(d.get("target"), names, d.get("id"), d.get("task"), extra, codes)
        if problems:
            raise InvalidData(problems, what="feature spec")
        if extra:
            logger.debug("feature spec keeps unknown top-level keys %s", sorted(extra))
            for key in extra:  # kept for the bank's own notes; a misspelt `id:` would silently drop the ids
                near = difflib.get_close_matches(str(key), KNOWN_TOP_LEVEL_KEYS, n=1, cutoff=0.6)
                if near:
                    message = "feature spec: unknown key %r kept and not used; did you mean %r?"
                    logger.warning(message, key, near[0])
        features = tuple(
            FeatureColumn(
                entry["name"],
                entry["type"],
                entry.get("monotone"),
                entry.get("min"),
                entry.get("max"),
                entry.get("required", False),
                entry.get("levels"),
                entry.get("reason"),
            )
            for entry in raw_features
        )
        return cls(target=d["target"], features=features, id=d.get("id"), task=d.get("task"), extra=extra)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> FeatureSpec:
        """Read a spec from a file path or from YAML text.

        A `Path`, or a one-line string ending in .yaml / .yml or naming an existing file, is read as a
        file (FileNotFoundError if it is missing); any other string is parsed as YAML text.
        """
        text = _read_yaml_source(path_or_text)
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidData([Problem("yaml", "well-formed YAML", str(e))], what="feature spec") from e
        return cls.from_dict(parsed)

    # ------------------------------------------------------------ checking a table against the spec

    def check(self, df: pd.DataFrame, task: str | None = None) -> None:
        """Refuse `df` with every problem found, or return None if it can be trained on.

        `task` ("scoring" or "valuation") defaults to the spec's own task. Rows in messages are
        0-based positions in `df`; the id, when the spec has one and the column is there, is given too.
        """
        task = task if task is not None else self.task
        problems = _task_problems(task, self.task)
        missing = [name for name in self._named_columns() if name not in df.columns]
        problems += [Problem(name, "a column of the table", "missing") for name in missing]
        ids = df[self.id] if self.id is not None and self.id in df.columns else None
        if ids is not None:
            problems += _id_problems(ids)
        if self.target in df.columns and task in TASKS:
            problems += _target_problems(df[self.target], task, ids)
        for name in self.numeric:
            if name in df.columns:
                problems += _numeric_feature_problems(df[name], ids)
        for column in self.features:
            if column.levels is not None and column.name in df.columns:
                problems += _level_problems(df[column.name], column.levels, ids)
        if problems:
            raise InvalidData(problems, what=f"table for {task or 'training'}")

    def _named_columns(self) -> list[str]:
        named = [self.target, *self.feature_names]
        return [self.id, *named] if self.id is not None else named


def infer_spec(df: pd.DataFrame, target: str, id: str | None = None) -> FeatureSpec:
    """A spec over every other column: numeric dtypes (bool included) numeric, all else categorical."""
    wanted = [name for name in (target, id) if name is not None]
    problems = [Problem(name, "a column of the table", "missing") for name in wanted if name not in df]
    if problems:
        raise InvalidData(problems, what="table to infer a feature spec from")
    features = tuple(
        FeatureColumn(str(name), "numeric" if pd.api.types.is_numeric_dtype(df[name]) else "categorical")
        for name in df.columns
        if name not in (target, id)
    )
    return FeatureSpec(target=target, features=features, id=id)


# ---------------------------------------------------------------- helpers


def _type_name(value: object) -> str:
    return f"{type(value).__name__}: {value!r}"[:200]


def _read_yaml_source(path_or_text: str | Path) -> str:
    if isinstance(path_or_text, Path):
        return path_or_text.read_text(encoding="utf-8")
    if not isinstance(path_or_text, str):
        raise InvalidData(
            [Problem("spec", "a path or YAML text", _type_name(path_or_text))], what="feature spec"
        )
    one_line = "\n" not in path_or_text
    looks_like_file = path_or_text.strip().endswith((".yaml", ".yml"))
    if one_line and (looks_like_file or Path(path_or_text).is_file()):
        return Path(path_or_text).read_text(encoding="utf-8")
    return path_or_text


def _task_problems(task: str | None, spec_task: str | None) -> list[Problem]:
    if task not in TASKS:
        return [Problem("task", f"one of {list(TASKS)}", task)]
    if spec_task is not None and task != spec_task:
        return [Problem("task", f"the spec's task {spec_task!r}", task)]
    return []


def _record_id(ids: pd.Series | None, position: int) -> str | None:
    if ids is None:
        return None
    value = ids.iloc[position]
    return None if pd.isna(value) else str(value)


def _positions(mask: Iterable[bool]) -> list[int]:
    return [position for position, flagged in enumerate(mask) if flagged]


def _id_problems(ids: pd.Series) -> list[Problem]:
    name = str(ids.name)
    problems = [
        Problem(name, "an id on every row", None, row=position) for position in _positions(ids.isna())
    ]
    repeated = ids.duplicated(keep="first") & ids.notna()
    problems += [
        Problem(name, "unique ids", plain(ids.iloc[i]), row=i, record_id=_record_id(ids, i))
        for i in _positions(repeated)
    ]
    return problems


def _is_number(value: object) -> bool:
    """A real number that is not a bool (True/False are not accepted as 1/0)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _bad_target_positions(target: pd.Series, task: str) -> list[int]:
    """Rows whose (non-missing) target is not allowed for the task; vectorised for numeric columns."""
    present = target.notna()
    if pd.api.types.is_numeric_dtype(target):
        values = target.astype("float64")
        if task == "scoring":
            allowed = values.isin([float(v) for v in SCORING_TARGET_VALUES])
        else:
            allowed = np.isfinite(values) & (values > 0)
        return _positions(present & ~allowed)
    # Text / object columns: judge each value, so "1" (a string) or True is refused, 1 or 1.0 accepted.
    if task == "scoring":

        def ok(value: object) -> bool:
            return _is_number(value) and value in SCORING_TARGET_VALUES
    else:

        def ok(value: object) -> bool:
            return _is_number(value) and math.isfinite(value) and value > 0

    return [position for position, value in enumerate(target) if not pd.isna(value) and not ok(value)]


def _target_problems(target: pd.Series, task: str, ids: pd.Series | None) -> list[Problem]:
    name = str(target.name)
    problems = [
        Problem(name, "a target on every row", None, row=position, record_id=_record_id(ids, position))
        for position in _positions(target.isna())
    ]
    if pd.api.types.is_bool_dtype(target):
        boolean = Problem(name, "integer or float 0/1 values, not booleans", f"{target.dtype} column")
        return problems + [boolean]
    if task == "scoring":
        expected = "0 or 1 (1 = default, 0 = repaid)"
    else:
        expected = "a strictly positive, finite amount"
    return problems + [
        Problem(name, expected, plain(target.iloc[i]), row=i, record_id=_record_id(ids, i))
        for i in _bad_target_positions(target, task)
    ]


def _level_problems(column: pd.Series, levels: tuple[str, ...], ids: pd.Series | None) -> list[Problem]:
    outside = column.notna().to_numpy() & ~category_text(column).isin(levels).fillna(False).to_numpy(
        dtype=bool
    )
    return [
        Problem(str(column.name), levels_text(levels), plain(column.iloc[i]), int(i), _record_id(ids, i))
        for i in np.flatnonzero(outside)
    ]


def levels_text(levels: Sequence[str], shown: int = 12) -> str:
    """ "one of a, b, c" for an expected value: more whole-number levels than `shown` as ranges, in order,
    so that every one is shown (Nice classes "1-24, 26-45"); others the first `shown` and how many more.

    >>> levels_text(["9", "10", "1", "2", "3", "45"], shown=4), levels_text(["b", "a"], shown=1)
    ('one of 1-3, 9-10, 45', 'one of b (and 1 more)')
    >>> levels_text(["1", "2", "3"])
    'one of 1, 2, 3'
    """
    if len(levels) > shown and all(
        str(level).isdecimal() and str(level) == str(int(level)) for level in levels
    ):
        runs: list[list[int]] = []
        for n in sorted({int(level) for level in levels}):
            if runs and n == runs[-1][1] + 1:
                runs[-1][1] = n
            else:
                runs.append([n, n])
        return "one of " + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    more = f" (and {len(levels) - shown} more)" if len(levels) > shown else ""
    return f"one of {', '.join(levels[:shown])}{more}"


def _numeric_feature_problems(column: pd.Series, ids: pd.Series | None) -> list[Problem]:
    if pd.api.types.is_numeric_dtype(column):
        return []
    name = str(column.name)
    expected = f"a numeric column (numeric dtype); found dtype {column.dtype}"
    # The cells that are not numbers, not even as text (a CSV column with one word in it is read as text
    # whole: its numbers are not the fault, the word is).
    bad = [
        Problem(name, "a number", plain(value), row=position, record_id=_record_id(ids, position))
        for position, value in enumerate(column)
        if not pd.isna(value) and not _is_number(value) and not _number_text(value)
    ]
    # Or every value is a number or missing, but the column is stored as text/object: still refused.
    return bad or [Problem(name, expected, f"{column.dtype} column")]


def _number_text(value: object) -> bool:
    """Text that reads as a finite or infinite number ("1100", "2.5e3")."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True
