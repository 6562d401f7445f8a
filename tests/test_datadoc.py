"""docs/data-model.md is generated from features/schema.py and must be current."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features import datadoc, schema
from features.portfolio import TABLE_MODELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-model.md"


def test_committed_data_model_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == datadoc.data_model_markdown(), (
        f"{DOC} is out of date with features/schema.py; regenerate it with `{datadoc.COMMAND}`"
    )


@pytest.mark.parametrize("table, model", list(TABLE_MODELS.items()))
def test_every_column_of_every_table_is_documented(table, model):
    text = datadoc.data_model_markdown()
    section = text.split(f"## `{table}`: {model.__name__}", 1)[1].split("\n## ", 1)[0]
    for col in schema.columns(model):
        assert f"| `{col.name}`" in section, f"{table}.{col.name} missing from its section"


def test_pledged_assets_is_explained_as_the_pledges_table():
    text = datadoc.data_model_markdown()
    assert "`pledged_assets` (records only)" in text
    assert "row of the `pledges` table" in text


@pytest.mark.parametrize("model", list(schema._ROW_RULES))
def test_every_cross_field_rule_is_read_from_the_code(model):
    rules = datadoc.row_rules(model)
    assert len(rules) == len(schema._ROW_RULES[model])
    names = {c.name for c in schema.columns(model)}
    for name, expected in rules:
        assert name in names and expected
        assert f"| `{name}` | {expected} |" in datadoc.data_model_markdown()


def test_a_rule_that_cannot_read_an_empty_table_is_reported(monkeypatch):
    broken = {schema.Patent: [lambda d: ("n_claims", "x", d["no_such_column"].to_numpy())]}
    monkeypatch.setattr(schema, "_ROW_RULES", broken)
    with pytest.raises(RuntimeError, match="rule 1 of Patent"):
        datadoc.row_rules(schema.Patent)


def test_chinese_names_come_from_the_code_comments():
    text = datadoc.data_model_markdown()
    assert "| `invention` | 发明 | 20-year term from filing |" in text
    assert "| `guarantee_company` | 融资担保公司 |  |" in text
    assert "| `lapse` |  | patent only: annuity unpaid | patent only |" in text


def test_empty_table_has_the_dtypes_validation_expects():
    for model in TABLE_MODELS.values():
        empty = datadoc._empty_table(model)
        assert isinstance(empty, pd.DataFrame) and len(empty) == 0
        schema.validate_table(empty, model)
