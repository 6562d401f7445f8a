"""A book of applications in files, decided as the service decides each one: what `ipcredit decide` does.

Input, by the file's extension:

- JSON lines (``.jsonl``): one application a line, exactly the body ``POST /v1/applications`` takes
  (underwriting.applications.ApplicationRecord).
- CSV or Parquet (``.csv``, ``.parquet``): one application a row, with its pledged assets in a second table
  (`assets`), one asset a row. The applications' columns are the body's own names, unprefixed:
  ``application_id`` (links the assets; needed), the credit report's (``enterprise_id``, ``report_date``,
  ``industry``, ..., as features.schema.Enterprise), and the loan's (``application_date``, ``amount_cny``,
  ``term_months``, ..., ``bank_id``: as LoanTerms). The assets' columns: ``application_id`` and the asset's
  (valuation.assets.AssetRecord: ``asset_id``, ``asset_kind``, ...). A blank cell is a value left out; a
  whole number read as a decimal (a column with blanks) is a whole number where the field is one; 0 and 1
  are false and true where the field is a yes/no; ids are read as text. ``examples/`` holds a book in both
  forms.

Output, by the file's extension (CSV, Parquet or JSON lines): one row per application, in input order, every
figure under the service's names (underwriting.documents.decision_row), then ``error``: empty for a decision,
the problems that refused the application otherwise (each as the service names it; an asset's field as
``assets[1].claims``). An application without `application_id` is ``row-N`` (N its row, from 0); one without
``loan.bank_id`` is the `bank_id` given. Each application is decided with nothing granted of its subsidy cap
before it (no records are read).

The book is decided in chunks (`CHUNK` applications), each chunk in one pass of the models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from features.errors import InvalidData, Problem
from features.schema import Enterprise, LoanApplication, body_problems, columns
from features.values import json_value
from scoring.model import PDModelMixin
from underwriting.applications import Application, ApplicationRecord, LoanTerms
from underwriting.decision import Decision, Policies, decide
from underwriting.documents import decision_row
from valuation.assets import AssetRecord
from valuation.valuer import Valuer

CHUNK = 1000  # applications decided together: one pass of the models each
INPUTS = (".jsonl", ".csv", ".parquet")
OUTPUTS = (".csv", ".parquet", ".jsonl")
ID_COLUMNS = ("application_id", "enterprise_id", "asset_id", "bank_id")
# The kind of each table column whose cells are read into the body: whole numbers and yes/no flags.
_KINDS = {c.name: c.kind for model in (Enterprise, LoanApplication) for c in columns(model)}
_KINDS |= {"nice_class": "int"}
ENTERPRISE_FIELDS = tuple(c.name for c in columns(Enterprise))
LOAN_FIELDS = tuple(LoanTerms.model_fields)
ASSET_FIELDS = tuple(AssetRecord.model_fields)

Progress = Callable[[int], None]


@dataclass
class Outcome:
    """What a book's decision came to: how many applications, and the problems of the refused ones (each
    named with the application's row and id)."""

    rows: int = 0
    refused: list[Problem] = field(default_factory=list)

    @property
    def refused_rows(self) -> int:
        return len({p.row for p in self.refused})


def check_formats(input: Path, output: Path, assets: Path | None) -> None:
    """Refuse an unknown extension, or a table of applications without its assets, before any work."""
    problems = []
    if input.suffix.lower() not in INPUTS:
        problems.append(Problem("--input", f"a file ending in {', '.join(INPUTS)}", input.name))
    if output.suffix.lower() not in OUTPUTS:
        problems.append(Problem("--output", f"a file ending in {', '.join(OUTPUTS)}", output.name))
    table = input.suffix.lower() in (".csv", ".parquet")
    if table and assets is None:
        expected = "the table of the applications' assets (a table of applications names them by id)"
        problems.append(Problem("--assets", expected, None))
    if not table and assets is not None:
        problems.append(
            Problem("--assets", "nothing: a JSON lines file holds each application whole", str(assets))
        )
    if assets is not None and assets.suffix.lower() not in (".csv", ".parquet"):
        problems.append(Problem("--assets", "a file ending in .csv or .parquet", assets.name))
    if problems:
        raise InvalidData(problems, "decide's files")
    for path in (input, assets):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"no such file: {path}")


def count(input: Path) -> int:
    """How many applications the input holds (for the progress bar)."""
    if input.suffix.lower() == ".jsonl":
        with input.open(encoding="utf-8") as lines:
            return sum(1 for _ in lines)
    return len(_read_table(input))


def bodies(input: Path, assets: Path | None = None) -> Iterator[Any]:
    """The application bodies of the input, in order: a dict each, or the text of a line that is not one
    (refused when it is read)."""
    if input.suffix.lower() == ".jsonl":
        with input.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    yield _NotJson(f"{e.msg} at character {e.pos}")
        return
    yield from _table_bodies(_read_table(input), _read_table(assets))


@dataclass(frozen=True)
class _NotJson:
    why: str


def decide_book(
    input: Path,
    output: Path,
    valuer: Valuer,
    scorer: PDModelMixin,
    *,
    assets: Path | None = None,
    language: str = "zh",
    bank_id: str = "offline",
    policies: Policies | None = None,
    progress: Progress = lambda n: None,
) -> Outcome:
    """Decide every application of `input` and write one row each to `output` (see the module docstring);
    `progress(n)` is told of each chunk of n applications done."""
    check_formats(input, output, assets)
    outcome = Outcome()
    with _Writer(output) as writer:
        for chunk in _chunks(bodies(input, assets)):
            writer.write(_rows(*_decided(chunk, valuer, scorer, bank_id, policies), language, outcome))
            progress(len(chunk))
    return outcome


Chunk = list[tuple[int, Any]]  # (row, body) of CHUNK applications


def _chunks(items: Iterator[Any]) -> Iterator[Chunk]:
    chunk: Chunk = []
    for row, body in enumerate(items):
        chunk.append((row, body))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _decided(
    chunk: Chunk, valuer: Valuer, scorer: PDModelMixin, bank_id: str, policies: Policies | None
) -> tuple[Chunk, list[Decision | InvalidData]]:
    """Each body of a chunk read, then those that are applications decided at once: the chunk, and for
    each of its bodies its Decision or the InvalidData that refuses it."""
    results: list[Decision | InvalidData | None] = []
    applications: dict[int, Application] = {}
    for row, body in chunk:
        try:
            if isinstance(body, _NotJson):
                raise InvalidData([Problem("line", "an application as one JSON object", body.why)])
            record = ApplicationRecord.model_validate(body)
        except ValidationError as e:
            results.append(InvalidData(body_problems(e.errors())))
            continue
        except InvalidData as e:
            results.append(e)
            continue
        applications[len(results)] = record.application(f"row-{row}", bank_id)
        results.append(None)
    decided = decide(list(applications.values()), valuer, scorer, policies)
    for at, decision in zip(applications, decided, strict=True):
        results[at] = decision
    return chunk, results  # type: ignore[return-value]


def _rows(
    chunk: Chunk, results: list[Decision | InvalidData], language: str, outcome: Outcome
) -> list[dict[str, Any]]:
    """The output rows of a decided chunk, and its refusals on the outcome."""
    rows = []
    for (row, body), result in zip(chunk, results, strict=True):
        if isinstance(result, InvalidData):
            rows.append(_refused(row, body, result.problems, outcome))
        else:
            rows.append({**decision_row(result.result, result.explanation, language), "error": ""})
    outcome.rows += len(chunk)
    return rows


def _refused(row: int, body: Any, problems: list[Problem], outcome: Outcome) -> dict[str, Any]:
    """A refused application's output row, and its problems (an asset's field as ``assets[1].claims``) on
    the outcome."""
    ids = body if isinstance(body, Mapping) else {}
    application_id = ids.get("application_id") or f"row-{row}"
    enterprise = ids.get("enterprise")
    enterprise_id = (
        enterprise.get("enterprise_id") if isinstance(enterprise, Mapping) else ids.get("enterprise_id")
    )
    named = [
        Problem(
            f"assets[{p.row}].{p.field.removeprefix('assets.')}" if p.row is not None else p.field,
            p.expected,
            p.got,
            row,
            str(application_id),
        )
        for p in problems
    ]
    outcome.refused += named
    error = "; ".join(f"{p.field}: expected {p.expected}; got {p.got!r}" for p in named)
    return {"application_id": str(application_id), "enterprise_id": json_value(enterprise_id), "error": error}


# ---------------------------------------------------------------------------------------------------------
# tables in, rows out


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV (ids as text, ISO dates kept as text) or Parquet table."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=True)
    return pd.read_parquet(path)


def _table_bodies(applications: pd.DataFrame, assets: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """One body per application row, its assets (by application_id) in the assets table's order. A column
    that is not a documented one refuses the table (a misspelt `amount` would otherwise go unread)."""
    known = {
        "applications": {"application_id", *ENTERPRISE_FIELDS, *LOAN_FIELDS},
        "assets": set(ASSET_FIELDS),
    }
    problems = []
    for name, table in (("applications", applications), ("assets", assets)):
        if "application_id" not in table.columns:
            problems.append(Problem(f"{name}.application_id", "a column of the table", "no such column"))
        problems += [
            Problem(f"{name}.{c}", "a column of the format (underwriting.book)", "an unknown column")
            for c in table.columns
            if c not in known[name] | {"application_id"}
        ]
    if problems:
        raise InvalidData(problems, "tables of applications")
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for record in assets.to_dict(orient="records"):
        grouped.setdefault(record.pop("application_id"), []).append(_cells(record))
    report = [c for c in applications.columns if c in ENTERPRISE_FIELDS]
    loan = [c for c in applications.columns if c in LOAN_FIELDS]
    for record in applications.to_dict(orient="records"):
        cells = _cells(record)
        yield {
            "application_id": cells["application_id"],
            "enterprise": {c: cells[c] for c in report},
            "assets": grouped.get(record["application_id"], []),
            "loan": {c: cells[c] for c in loan if cells[c] is not None or c != "bank_id"},
        }


def _cells(record: Mapping[str, Any]) -> dict[str, Any]:
    """A table row's cells as the body's values (see the module docstring)."""
    out = {}
    for name, value in record.items():
        value = json_value(value)
        kind = _KINDS.get(name)
        if kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif kind == "bool" and isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            value = bool(value)
        out[name] = value
    return out


class _Writer:
    """Rows written as they come, in one format: the columns are those of the first decided row (a refused
    row has fewer), so rows are held until one is decided."""

    def __init__(self, path: Path):
        self.path, self.suffix = path, path.suffix.lower()
        self.columns: list[str] | None = None
        self.held: list[dict[str, Any]] = []
        self.parquet: pq.ParquetWriter | None = None
        self.started = False

    def __enter__(self) -> _Writer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        return self

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.columns is None:
            decided = next((r for r in rows if not r["error"]), None)
            if decided is None:
                self.held += rows
                return
            self.columns = list(decided)
            rows, self.held = [*self.held, *rows], []
        self._write(rows)

    def __exit__(self, *exc: Any) -> None:
        if self.columns is None:  # nothing decided: the refused rows' columns
            self.columns = ["application_id", "enterprise_id", "error"]
            self._write(self.held)
        if self.parquet is not None:
            self.parquet.close()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        rows = [{c: row.get(c) for c in self.columns} for row in rows]
        if self.suffix == ".jsonl":
            with self.path.open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        elif self.suffix == ".csv":
            frame = pd.DataFrame(rows, columns=self.columns)
            frame.to_csv(self.path, mode="a", header=not self.started, index=False)
        elif self.parquet is None:  # the first rows set the columns' types (pandas infers them)
            table = pa.Table.from_pandas(pd.DataFrame(rows, columns=self.columns), preserve_index=False)
            self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table)
        else:
            self.parquet.write_table(pa.Table.from_pylist(rows, schema=self.parquet.schema))
        self.started = True
