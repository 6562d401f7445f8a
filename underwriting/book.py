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
``loan.bank_id`` is the `bank_id` given. An id two applications carry refuses both; an asset whose
``application_id`` is no application's refuses the tables. Each application is decided with nothing granted
of its subsidy cap before it (no records are read).

The book is decided in chunks (`CHUNK` applications), each chunk in one pass of the models.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from features.errors import InvalidData, Problem
from features.schema import Enterprise, Id, LoanApplication, body_problems, columns, expected_text
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
    for path, option in ((input, "--input"), (assets, "--assets")):
        if path is not None and path.resolve() == output.resolve():
            problems.append(
                Problem("--output", f"a file other than {option} (it would be overwritten)", str(output))
            )
    if problems:
        raise InvalidData(problems, "decide's files")
    for path in (input, assets):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"no such file: {path}")


@dataclass
class Book:
    """A book's applications, read once: how many there are (for the progress bar), the ids more than one
    of them carries, and their bodies in order."""

    size: int
    repeated: set[str]
    bodies: Callable[[], Iterator[Any]]

    @classmethod
    def open(cls, input: Path, assets: Path | None = None) -> Book:
        if input.suffix.lower() == ".jsonl":  # read through once for the size and the ids, then as decided
            ids, size = [], 0
            for body in _lines(input):
                size += 1
                ids.append(body.get("application_id") if isinstance(body, Mapping) else None)
            return cls(size, _repeated(ids), lambda: _lines(input))
        applications, table_assets = _read_table(input), _read_table(assets)
        bodies = list(_table_bodies(applications, table_assets))
        return cls(len(bodies), _repeated([b["application_id"] for b in bodies]), lambda: iter(bodies))


def _lines(input: Path) -> Iterator[Any]:
    """The bodies of a JSON lines file: a dict each, or the text of a line that is not one (refused when it
    is read). A byte order mark is read past and blank lines are skipped (as an editor writes them)."""
    with input.open(encoding="utf-8-sig") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                yield _NotJson(f"{e.msg} at character {e.pos}")


def _repeated(ids: list[Any]) -> set[str]:
    seen: set[str] = set()
    repeated = set()
    for id_ in ids:
        if isinstance(id_, str):
            (repeated if id_ in seen else seen).add(id_)
    return repeated


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
    sized: Progress = lambda n: None,
) -> Outcome:
    """Decide every application of `input` and write one row each to `output` (see the module docstring);
    `sized(n)` is told how many applications the book holds once it is read, `progress(n)` of each chunk of
    n applications done. The output is written under a temporary name and takes its own only when the whole
    book is decided: a run that fails leaves no partial file and an earlier output as it was."""
    check_formats(input, output, assets)
    try:
        TypeAdapter(Id).validate_python(bank_id)
    except ValidationError as e:  # said once, not on every application that names no bank
        expected = expected_text(e.errors()[0]["msg"])
        raise InvalidData([Problem("--bank-id", expected, bank_id)], "decide's options") from None
    book = Book.open(input, assets)
    sized(book.size)
    outcome = Outcome()
    with _Writer(output) as writer:
        for chunk in _chunks(book.bodies()):
            results = _decided(chunk, valuer, scorer, bank_id, policies, book.repeated)
            writer.write(_rows(chunk, results, language, outcome))
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
    chunk: Chunk,
    valuer: Valuer,
    scorer: PDModelMixin,
    bank_id: str,
    policies: Policies | None,
    repeated: set[str],
) -> list[Decision | InvalidData]:
    """Each body of a chunk read, then those that are applications decided at once: for each body its
    Decision or the InvalidData that refuses it. An id that more than one application of the book carries
    refuses each of them: which one the bank meant is not ours to guess."""
    results: list[Decision | InvalidData | None] = []
    applications: dict[int, Application] = {}
    for row, body in chunk:
        try:
            if isinstance(body, _NotJson):
                raise InvalidData([Problem("line", "an application as one JSON object", body.why)])
            if isinstance(body, Mapping) and body.get("application_id") in repeated:
                expected = "an id no other application of the book carries"
                raise InvalidData([Problem("application_id", expected, body["application_id"])])
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
    return results  # type: ignore[return-value]


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
    named = [Problem(_asset_field(p), p.expected, p.got, row, str(application_id)) for p in problems]
    outcome.refused += named
    error = "; ".join(f"{p.field}: expected {p.expected}; got {p.got!r}" for p in named)
    # ids as text whatever was sent, so that a column holds one type (Parquet requires it)
    return {
        "application_id": str(application_id),
        "enterprise_id": None if enterprise_id is None else str(json_value(enterprise_id)),
        "error": error,
    }


def _asset_field(problem: Problem) -> str:
    """An asset's field named with its position, ``assets[1].claims`` (``assets[1]`` for the asset
    itself); any other field as it is."""
    if problem.row is None:
        return problem.field
    rest = problem.field.removeprefix("assets").removeprefix(".")
    return f"assets[{problem.row}]" + (f".{rest}" if rest else "")


# ---------------------------------------------------------------------------------------------------------
# tables in, rows out


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV (ids as text, ISO dates kept as text) or Parquet table."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=True)
    table = pd.read_parquet(path)
    for c in table.columns.intersection(ID_COLUMNS):  # ids as text here too (a bank's ids may be numbers)
        table[c] = [None if pd.isna(v) else str(json_value(v)) for v in table[c]]
    return table


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
    # An asset of no application would be left out of its bundle unseen (a mistyped id): refused, every one.
    known_ids = set(applications["application_id"])
    orphans = [
        Problem("assets.application_id", "the id of an application of the applications table", id_, row)
        for row, id_ in enumerate(assets["application_id"])
        if id_ not in known_ids
    ]
    if orphans:
        raise InvalidData(orphans, "tables of applications")
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
        elif kind == "bool" and type(value) in (int, float) and value in (0, 1):
            value = bool(value)  # 0 and 1, or 0.0 and 1.0 in a column with blanks
        out[name] = value
    return out


class _Writer:
    """Rows written as they come, in one format, under a temporary name that becomes the output's when the
    book is done (nothing is left of a run that fails). The columns are those of the first decided row (a
    refused row has fewer), so rows are held until one is decided. Parquet is written a chunk a file, then
    joined under the types all chunks agree on (a figure that is blank through a whole first chunk is of no
    type there)."""

    def __init__(self, path: Path):
        self.path, self.suffix = path, path.suffix.lower()
        self.partial = path.with_name(f".{path.name}.partial")
        self.columns: list[str] | None = None
        self.held: list[dict[str, Any]] = []
        self.parts: list[Path] = []

    def __enter__(self) -> _Writer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial.unlink(missing_ok=True)
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

    def __exit__(self, failed: type[BaseException] | None, *exc: Any) -> None:
        try:
            if failed is None:
                if self.columns is None:  # nothing decided: the refused rows' columns
                    self.columns = ["application_id", "enterprise_id", "error"]
                    self._write(self.held)
                if self.parts:
                    self._join_parts()
                self.partial.replace(self.path)
        finally:
            self.partial.unlink(missing_ok=True)
            for part in self.parts:
                part.unlink(missing_ok=True)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        columns = self.columns
        if self.suffix == ".jsonl":
            with self.partial.open("a", encoding="utf-8") as out:
                out.writelines(
                    json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n" for row in rows
                )
        elif self.suffix == ".csv":  # each value as Python writes it: a whole number stays one in every chunk
            with self.partial.open("a", encoding="utf-8", newline="") as out:
                writer = csv.writer(out, lineterminator="\n")
                if out.tell() == 0:
                    writer.writerow(columns)
                writer.writerows([row.get(c) for c in columns] for row in rows)
        else:
            part = self.partial.with_name(f"{self.partial.name}.{len(self.parts)}")
            pq.write_table(pa.table({c: [row.get(c) for row in rows] for c in columns}), part)
            self.parts.append(part)

    def _join_parts(self) -> None:
        schema = pa.unify_schemas([pq.read_schema(p) for p in self.parts], promote_options="permissive")
        with pq.ParquetWriter(self.partial, schema) as out:
            for part in self.parts:
                out.write_table(pq.read_table(part).cast(schema))
