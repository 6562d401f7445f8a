"""Domain errors shared by every package: one problem per bad value, all listed at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

# Rows are positions in the table or list given: in a file with a header line, line 2 is row 0.
ROWS_COUNTED = "\n  (rows count from 0: row 0 is the first row of data)"


@dataclass(frozen=True)
class Problem:
    """One bad value: where it is, what was expected and what was got."""

    field: str
    expected: str
    got: object
    row: int | None = None
    record_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.record_id is not None:
            where.append(f"id {self.record_id}")
        location = f" ({', '.join(where)})" if where else ""
        return f"{self.field}: expected {self.expected}; got {self.got!r}{location}"


class InvalidData(ValueError):
    """Input refused; `problems` lists every bad value found, not just the first."""

    def __init__(self, problems: list[Problem], what: str = "input"):
        self.problems = list(problems)
        self.what = what
        super().__init__(self.describe(limit=50))

    def describe(self, limit: int | None = None, by_row: bool = False, per_kind: int | None = None) -> str:
        """ "<what> refused, N problem(s):" and one line per problem: the first `limit` (all for None), in
        row order with `by_row` (problems without a row first), else as found; with `per_kind`, at most that
        many of each kind (the same field and expectation: a yes/no target is one kind, however many rows),
        the rest counted; a last line says how rows are counted when a problem names one."""
        problems = (
            sorted(self.problems, key=lambda p: (p.row is not None, p.row or 0)) if by_row else self.problems
        )
        seen: Counter = Counter()
        listed, hidden = [], Counter()
        for p in problems:
            seen[p.field, p.expected] += 1
            if (limit is not None and len(listed) >= limit) or (
                per_kind is not None and seen[p.field, p.expected] > per_kind
            ):
                hidden[p.field] += 1
            else:
                listed.append(p)
        shown = "\n".join(f"  - {p}" for p in listed)
        fields = ", ".join(f"{field}: {n:,}" for field, n in hidden.most_common())
        more = f"\n  ... and {hidden.total():,} more ({fields})" if hidden else ""
        rows = ROWS_COUNTED if any(p.row is not None for p in problems) else ""
        return f"{self.what} refused, {len(problems)} problem(s):\n{shown}{more}{rows}"


class ModelMismatch(Exception):
    """A model reads features its input does not give: it was trained on another table (a bank's own book,
    say) and promoted by hand. Computing with it would read each such feature as missing."""


def require_features(task: str, fitted: Any, given: Collection[str], source: str) -> None:
    """ModelMismatch unless every feature of the model's spec is among `given`, the columns `source` gives."""
    absent = [f for f in fitted.spec.feature_names if f not in given]
    if absent:
        shown = ", ".join(absent[:8]) + (f" (and {len(absent) - 8} more)" if len(absent) > 8 else "")
        raise ModelMismatch(
            f"the {task} model reads features that {source} does not give: {shown}; it was trained on "
            f"another table: serve one trained on the programme's data (`ipcredit train {task} --promote`)"
        )


def first_per_field(problems: Iterable[Problem]) -> list[Problem]:
    """The problems, one per value (row and field): a value two checks refuse is listed once, the first's."""
    seen, out = set(), []
    for p in problems:
        if (p.row, p.field) not in seen:
            seen.add((p.row, p.field))
            out.append(p)
    return out
