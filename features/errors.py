"""Domain errors shared by every package: one problem per bad value, all listed at once."""

from __future__ import annotations

from dataclasses import dataclass


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
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{what} refused, {len(self.problems)} problem(s):\n{shown}{more}")
