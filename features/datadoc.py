"""The data-model reference (docs/data-model.md), rendered from the record definitions.

Everything in the document comes from `features.schema`: the tables and their records from
`features.portfolio.TABLE_MODELS`, the columns from `schema.columns`, the enumerations and their
Chinese names from the comments beside their members, and the cross-field rules from
`schema._ROW_RULES`, each called on an empty table to read its field and expectation. Nothing is
written by hand, so the document cannot drift from the code; tests/test_datadoc.py checks that the
committed file is current. Regenerate it with::

    python -m features.datadoc > docs/data-model.md

>>> text = data_model_markdown()
>>> text.startswith("# Data model")
True
>>> "| `nice_class` |" in text
True
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from enum import StrEnum

import pandas as pd

from features import schema
from features.portfolio import TABLE_MODELS

COMMAND = "python -m features.datadoc > docs/data-model.md"

_KIND_NAMES = {
    "str": "text",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "date": "date",
    "enum": "code",
}
_EMPTY_DTYPES = {
    "str": "object",
    "enum": "object",
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "date": "datetime64[s]",
}
_CLASS_LINE = re.compile(r"^class (\w+)\(StrEnum\):")
_MEMBER_LINE = re.compile(r'^\s+([A-Z][A-Z0-9_]*)\s*=\s*"([^"]*)"\s*(?:#\s*(?P<comment>.*))?$')
_HAN = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"  # CJK punctuation, ideographs, full-width forms
_CJK = re.compile(f"[{_HAN}]+(?:[\\s'\"]*[{_HAN}]+)*")


# --- reading the schema -------------------------------------------------------------------------


def _enum_of(model: type[schema.Record], name: str) -> type[StrEnum] | None:
    """The StrEnum a field holds, if any (through `X | None` and `Annotated`)."""
    inner, _ = schema._unwrap(model.model_fields[name].annotation)
    if typing.get_origin(inner) is typing.Annotated:
        inner = typing.get_args(inner)[0]
    return inner if isinstance(inner, type) and issubclass(inner, StrEnum) else None


def _enum_comments() -> dict[str, dict[str, str]]:
    """Enum class name -> {value: the comment beside the member}, in source order of features/schema.py."""
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in inspect.getsource(schema).splitlines():
        header = _CLASS_LINE.match(line)
        if header:
            current = out.setdefault(header.group(1), {})
        elif line and not line[0].isspace():
            current = None
        elif current is not None:
            member = _MEMBER_LINE.match(line)
            if member:
                current[member.group(2)] = (member.group("comment") or "").strip()
    return out


def _enums() -> list[tuple[type[StrEnum], list[str]]]:
    """Every enumeration defined in features/schema.py, in source order, with the columns that use it."""
    defined = [getattr(schema, name) for name in _enum_comments()]
    used: dict[type[StrEnum], list[str]] = {e: [] for e in defined}
    for table, model in TABLE_MODELS.items():
        for col in schema.columns(model):
            enum = _enum_of(model, col.name)
            if enum is not None:
                used.setdefault(enum, []).append(f"{table}.{col.name}")
    return list(used.items())


def _split_chinese(comment: str) -> tuple[str, str]:
    """('发明', '20-year term from filing') from '发明, 20-year term from filing'."""
    match = _CJK.search(comment)
    if match is None:
        return "", comment
    rest = (comment[: match.start()] + comment[match.end() :]).strip()
    rest = re.sub(r"^[\s,;:]+|[\s,;:]+$", "", rest)
    rest = re.sub(r"\(\s*\)", "", rest).strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1].strip()
    return match.group(0), rest


def _empty_table(model: type[schema.Record]) -> pd.DataFrame:
    """A table with the model's columns, typed as validate_table expects, and no rows."""
    return pd.DataFrame({c.name: pd.Series([], dtype=_EMPTY_DTYPES[c.kind]) for c in schema.columns(model)})


def row_rules(model: type[schema.Record]) -> list[tuple[str, str]]:
    """(field, expected) of each cross-field rule of `model`, read by running the rule on an empty table."""
    out = []
    empty = schema._rule_arrays(_empty_table(model), schema.columns(model))  # as validate_table runs them
    for number, rule in enumerate(schema._ROW_RULES.get(model, []), start=1):
        try:
            name, expected, mask = rule(empty)
        except Exception as e:  # a rule that cannot run on an empty table must be fixed, not skipped
            raise RuntimeError(
                f"cross-field rule {number} of {model.__name__} could not run on an "
                f"empty {model.__name__} table; expected (field, expected, mask)"
            ) from e
        if len(mask) != 0:
            raise RuntimeError(
                f"cross-field rule {number} of {model.__name__} returned a mask of "
                f"{len(mask)} rows for an empty table; expected 0"
            )
        out.append((name, expected))
    return out


def _docstring(cls: type) -> str:
    """The class's own docstring (not an inherited one), on one line."""
    doc = cls.__dict__.get("__doc__")
    return " ".join(inspect.cleandoc(doc).split()) if doc else ""


# --- rendering ----------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    return f"{value:g}"


def _constraints(model: type[schema.Record], col: schema.Column) -> str:
    parts = []
    if col.allowed is not None:
        enum = _enum_of(model, col.name)
        values = ", ".join(f"`{v}`" for v in col.allowed)
        parts.append(f"{values} (see [{enum.__name__}](#{enum.__name__.lower()}))" if enum else values)
    if col.ge is not None and col.le is not None:
        parts.append(f"{_number(col.ge)} to {_number(col.le)}")
    else:
        if col.ge is not None:
            parts.append(f">= {_number(col.ge)}")
        if col.gt is not None:
            parts.append(f"> {_number(col.gt)}")
        if col.le is not None:
            parts.append(f"<= {_number(col.le)}")
    if col.pattern is not None:
        parts.append(f"matches `{col.pattern}`")
    if col.identifier:
        parts.append(f"an id of 1 to {schema.ID_MAX_LENGTH} characters, none invisible (see Identifiers)")
    if col.past:
        parts.append("not after today")
    return "; ".join(parts)


def _field_table(model: type[schema.Record]) -> list[str]:
    lines = [
        "| field | meaning | type | unit | allowed values / bounds | required | known at application |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for col in schema.columns(model):
        key = " (key)" if col.name in model.key else ""
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{col.name}`{key}",
                    col.description,
                    _KIND_NAMES[col.kind],
                    col.unit or "",
                    _constraints(model, col),
                    "yes" if col.required else "no (may be empty)",
                    "yes" if col.at_application else "no",
                )
            )
            + " |"
        )
    return lines


def _list_fields(model: type[schema.Record]) -> list[str]:
    """Record-only fields holding a list of sub-records (the pledged bundle), and where a table keeps them."""
    table_names = {c.name for c in schema.columns(model)}
    lines = []
    for name, info in model.model_fields.items():
        if name in table_names:
            continue
        inner, _ = schema._unwrap(info.annotation)
        item = typing.get_args(inner)[0]
        held_in = [t for t, m in TABLE_MODELS.items() if issubclass(m, item) and m is not model]
        min_items = [getattr(m, "min_length", None) for m in info.metadata]
        at_least = next((n for n in min_items if n is not None), None)
        item_fields = ", ".join(f"`{c.name}` ({c.description})" for c in schema.columns(item))
        lines.append(
            f"`{name}` (records only): {info.description.rstrip('.')}. A list of {item.__name__} "
            f"items with {item_fields}"
            + (f"; at least {at_least} when given" if at_least else "")
            + ". "
            + (
                f"It is not a column: in a portfolio each item is a row of the `{held_in[0]}` table, "
                f"linked by `application_id`."
                if held_in
                else "It is not a column."
            )
        )
    return lines


def _table_section(table: str, model: type[schema.Record]) -> list[str]:
    if model.key:
        keys = ", ".join(f"`{k}`" for k in model.key)
        key_line = (
            f"Key: {keys}; no two rows may share it."
            if len(model.key) == 1
            else f"Key: {keys} together; no two rows may share the combination."
        )
    else:
        key_line = "Key: none; identical rows are allowed (each row is one occurrence)."
    out = [f"## `{table}`: {model.__name__}", "", _docstring(model), "", key_line, "", *_field_table(model)]
    extra = _list_fields(model)
    if extra:
        out += ["", *extra]
    return out + [""]


def _enum_section(enum: type[StrEnum], used_by: list[str], comments: dict[str, str]) -> list[str]:
    out = [f"### {enum.__name__}", ""]
    doc = _docstring(enum)
    if doc:
        out += [doc, ""]
    columns_text = ", ".join(f"`{c}`" for c in used_by) if used_by else "no table column"
    out += [f"Used by: {columns_text}.", ""]
    with_kinds = enum is schema.EventType
    head = "| value | Chinese name | note |" + (" applies to |" if with_kinds else "")
    out += [head, "| --- | --- | --- |" + (" --- |" if with_kinds else "")]
    for member in enum:
        chinese, note = _split_chinese(comments.get(member.value, ""))
        row = [f"`{member.value}`", chinese, note]
        if with_kinds:
            row.append(
                "patent only"
                if member in schema.PATENT_ONLY_EVENTS
                else "trademark only"
                if member in schema.TRADEMARK_ONLY_EVENTS
                else "patent and trademark"
            )
        out.append("| " + " | ".join(_cell(x) for x in row) + " |")
    return out + [""]


def _rules_section() -> list[str]:
    out = [
        "## Cross-field rules",
        "",
        "Rules that tie several fields of one row together. `validate_table` runs them on every row of a "
        "table and `parse_records` on each record; a row that breaks one is reported with the field "
        "below, its row number, its id and the value got.",
        "",
        "| table | field reported | expected |",
        "| --- | --- | --- |",
    ]
    for table, model in TABLE_MODELS.items():
        for name, expected in row_rules(model):
            out.append(f"| `{table}` | `{name}` | {_cell(expected)} |")
    return out + [""]


def data_model_markdown() -> str:
    """docs/data-model.md: every table, its fields, the enumerations and the cross-field rules."""
    out = [
        "# Data model",
        "",
        f"<!-- Generated from features/schema.py by `{COMMAND}`; do not edit by hand. -->",
        "",
        "A portfolio (a bank's book, or the synthetic one) is a folder of Parquet tables, one per record "
        "type below, plus `manifest.json` (see `features/portfolio.py`). Each record class in "
        "`features/schema.py` is the single definition of its fields; `validate_table` checks a whole table "
        "against it and `parse_records` checks records (dicts, dates as ISO `YYYY-MM-DD` text). Nothing is "
        "coerced: a number column must hold numbers, a boolean column booleans, a date column dates. A "
        "refusal (`InvalidData`) lists the problems found, each with its field, row, id, expected and got.",
        "",
        "**Identifiers.** An id (`Id`) is 1 to 64 characters, as written and in Unicode NFKC; one with a "
        "control, format, surrogate, private-use or unassigned character or a line break, or a space at "
        "either end, is refused, the character and its position named (`features.schema.id_problem`). Asset "
        "and enterprise ids are case-blind: they compare by their key (`id_key`: NFKC, case folded, upper "
        "case); application and bank ids compare as written.",
        "",
        "*Known at application* says whether a field's value is known when the loan is applied for; a field "
        "marked *no* (an outcome, or a status taken when the data were extracted) must not be used as a "
        "scoring input. Dates marked *not after today* are refused when they lie in the future.",
        "",
        "| table | record | key | rows |",
        "| --- | --- | --- | --- |",
    ]
    for table, model in TABLE_MODELS.items():
        keys = ", ".join(f"`{k}`" for k in model.key) or "none"
        out.append(
            f"| [`{table}`](#{table}-{model.__name__.lower()}) | {model.__name__} | {keys} | "
            f"{_cell(_docstring(model))} |"
        )
    out.append("")
    for table, model in TABLE_MODELS.items():
        out += _table_section(table, model)
    out += [
        "## Enumerations",
        "",
        "Codes are stored as the text values below. Chinese names and notes are taken from "
        "the comments beside each member in `features/schema.py`.",
        "",
    ]
    comments = _enum_comments()
    for enum, used_by in _enums():
        out += _enum_section(enum, used_by, comments.get(enum.__name__, {}))
    out += _rules_section()
    out += [
        "Links between tables (every id used exists in the table that defines it; every application "
        "has at least one pledged asset) are checked by `Portfolio.validate` in "
        "`features/portfolio.py`.",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    sys.stdout.write(data_model_markdown())


if __name__ == "__main__":
    main()
