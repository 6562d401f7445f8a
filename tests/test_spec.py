"""The feature spec contract: the documented YAML format parses, every bad spec or table is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InvalidData
from features.spec import FeatureColumn, FeatureSpec, infer_spec

# The format as documented for banks, comments included; it must keep parsing exactly like this.
DOCUMENTED_SPEC = """
target: defaulted        # scoring: 1 = default, 0 = repaid; valuation: positive amount in CNY
id: loan_id              # optional; carried through to every output
features:
  - {name: revenue, type: numeric}
  - {name: industry, type: categorical}
  - {name: overdue_days, type: numeric, monotone: increasing}   # or decreasing: direction of the effect
  - {name: equity_ratio, type: numeric, monotone: decreasing}
"""


def make_table(n: int = 6, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(n)],
            "revenue": rng.lognormal(13, 1, n),
            "industry": rng.choice(["C39", "I65", "M73"], n),
            "overdue_days": rng.integers(0, 90, n),
            "equity_ratio": rng.uniform(0, 1, n),
            "defaulted": [0, 1] * (n // 2),
        }
    )


@pytest.fixture
def spec() -> FeatureSpec:
    return FeatureSpec.from_yaml(DOCUMENTED_SPEC)


# ---------------------------------------------------------------- parsing


def test_documented_format_parses(spec):
    assert spec.target == "defaulted"
    assert spec.id == "loan_id"
    assert spec.task is None
    assert spec.features == (
        FeatureColumn("revenue", "numeric"),
        FeatureColumn("industry", "categorical"),
        FeatureColumn("overdue_days", "numeric", "increasing"),
        FeatureColumn("equity_ratio", "numeric", "decreasing"),
    )
    assert spec.feature_names == ("revenue", "industry", "overdue_days", "equity_ratio")
    assert spec.numeric == ("revenue", "overdue_days", "equity_ratio")
    assert spec.categorical == ("industry",)
    assert spec.extra == {}


def test_block_style_yaml_and_no_id_parse():
    spec = FeatureSpec.from_yaml("target: value_cny\nfeatures:\n  - name: claims\n    type: numeric\n")
    assert spec.id is None
    assert spec.feature_names == ("claims",)


def test_monotone_constraints_follow_feature_order(spec):
    assert spec.monotone_constraints() == [0, 0, 1, -1]


def test_unknown_top_level_keys_are_kept_in_extra():
    text = DOCUMENTED_SPEC + "task: scoring\nowner: risk-team\nnotes: {reviewed: 2024-05-01}\n"
    spec = FeatureSpec.from_yaml(text)
    assert spec.task == "scoring"
    assert spec.extra == {"owner": "risk-team", "notes": {"reviewed": pd.Timestamp("2024-05-01").date()}}
    assert spec.to_dict()["owner"] == "risk-team"


def test_a_top_level_key_close_to_a_known_one_is_warned_about(caplog):
    with caplog.at_level("WARNING", logger="features.spec"):
        FeatureSpec.from_yaml(DOCUMENTED_SPEC + "owner: risk-team\nidd: loan_id\n")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["feature spec: unknown key 'idd' kept and not used; did you mean 'id'?"]


def test_round_trip_through_yaml_file(tmp_path, spec):
    spec = FeatureSpec.from_dict({**spec.to_dict(), "task": "scoring", "owner": "risk-team"})
    path = spec.to_yaml(tmp_path / "spec.yaml")
    assert FeatureSpec.from_yaml(path) == spec
    assert FeatureSpec.from_yaml(str(path)) == spec
    assert FeatureSpec.from_yaml(path).extra == {"owner": "risk-team"}


def test_spec_is_hashable_and_immutable(spec):
    assert hash(spec) == hash(FeatureSpec.from_yaml(DOCUMENTED_SPEC))
    with pytest.raises(AttributeError):
        spec.target = "other"  # type: ignore[misc]


def test_missing_yaml_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        FeatureSpec.from_yaml(str(tmp_path / "absent.yaml"))


# ---------------------------------------------------------------- refusals of the spec itself

BAD_SPECS = [
    pytest.param(
        "target: y\nfeatures:\n  - {name: a, type: float}\n",
        r"features\[0\]\.type.*'float'",
        id="unknown type",
    ),
    pytest.param(
        "target: y\nfeatures:\n  - {name: a, type: numeric, monotone: up}\n",
        r"features\[0\]\.monotone.*'up'",
        id="unknown monotone",
    ),
    pytest.param(
        "target: y\nfeatures:\n  - {name: a, type: categorical, monotone: increasing}\n",
        r"no monotone direction on a categorical feature",
        id="monotone on categorical",
    ),
    pytest.param(
        "target: y\nfeatures:\n  - {name: a, type: numeric}\n  - {name: a, type: categorical}\n",
        r"features\[1\]\.name: expected feature names listed once; got 'a'",
        id="duplicate names",
    ),
    pytest.param(
        "target: y\nfeatures:\n  - {name: y, type: numeric}\n",
        r"the target not listed as a feature",
        id="target as feature",
    ),
    pytest.param(
        "target: y\nid: k\nfeatures:\n  - {name: k, type: categorical}\n",
        r"the id not listed as a feature",
        id="id as feature",
    ),
    pytest.param(
        "features:\n  - {name: a, type: numeric}\n",
        r"target: expected a `target:` key; got 'missing'",
        id="missing target",
    ),
    pytest.param(
        "target: y\n", r"features: expected a `features:` key; got 'missing'", id="missing features"
    ),
    pytest.param("target: y\nfeatures: []\n", r"at least one feature", id="empty features"),
    pytest.param("- just\n- a list\n", r"spec: expected a mapping", id="non-mapping yaml"),
    pytest.param("plain text", r"spec: expected a mapping", id="scalar yaml"),
    pytest.param("target: y\nfeatures: [\n", r"well-formed YAML", id="broken yaml"),
    pytest.param(
        "target: y\nfeatures:\n  - {name: a, type: numeric, monotonic: increasing}\n",
        r"only keys.*monotonic",
        id="misspelt monotone key",
    ),
    pytest.param(
        "target: y\ntask: pricing\nfeatures:\n  - {name: a, type: numeric}\n",
        r"task: expected one of \['scoring', 'valuation'\]",
        id="unknown task",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_SPECS)
def test_bad_spec_is_refused(text, message):
    with pytest.raises(InvalidData, match=message):
        FeatureSpec.from_yaml(text)


def test_every_spec_problem_is_listed_at_once():
    text = """
target: y
id: y
features:
  - {name: a, type: float}
  - {name: b, type: categorical, monotone: increasing}
  - {name: a, type: numeric, monotone: sideways}
"""
    with pytest.raises(InvalidData) as caught:
        FeatureSpec.from_yaml(text)
    fields = [problem.field for problem in caught.value.problems]
    assert fields == [
        "features[0].type",
        "features[1].monotone",
        "features[2].monotone",
        "features[2].name",
        "id",
    ]


def test_direct_construction_is_checked_too():
    with pytest.raises(InvalidData, match="the target not listed as a feature"):
        FeatureSpec(target="a", features=(FeatureColumn("a", "numeric"),))
    with pytest.raises(InvalidData, match="type"):
        FeatureColumn("a", "text")  # type: ignore[arg-type]


# ---------------------------------------------------------------- checking a table


def test_good_table_passes(spec):
    assert spec.check(make_table(), task="scoring") is None


def test_float_targets_and_categorical_of_any_dtype_pass(spec):
    table = make_table().astype({"defaulted": "float64"})
    table["industry"] = [1, 2, 3, 1, 2, 3]
    spec.check(table, task="scoring")


def test_missing_columns_are_all_named(spec):
    table = make_table().drop(columns=["industry", "defaulted"])
    with pytest.raises(InvalidData, match=r"industry: expected a column of the table") as caught:
        spec.check(table, task="scoring")
    assert {problem.field for problem in caught.value.problems} == {"industry", "defaulted"}


def test_text_in_numeric_feature_names_every_offending_cell(spec):
    table = make_table().astype({"revenue": "object"})
    table.loc[3, "revenue"] = "1,200 万"
    table.loc[5, "revenue"] = "n/a"
    with pytest.raises(InvalidData) as caught:
        spec.check(table, task="scoring")
    assert [str(p) for p in caught.value.problems] == [
        "revenue: expected a number; got '1,200 万' (row 3, id L3)",
        "revenue: expected a number; got 'n/a' (row 5, id L5)",
    ]


def test_a_csv_column_with_one_word_names_the_word_not_its_numbers(spec):
    """Read from a CSV, a column with one word in it is text whole: the word is the fault."""
    table = make_table().astype({"revenue": "str"})
    table.loc[4, "revenue"] = "lots"
    with pytest.raises(InvalidData) as caught:
        spec.check(table, task="scoring")
    assert [str(p) for p in caught.value.problems] == [
        "revenue: expected a number; got 'lots' (row 4, id L4)"
    ]


def test_numbers_stored_as_text_are_refused(spec):
    table = make_table().astype({"revenue": "str"})
    with pytest.raises(
        InvalidData, match=r"revenue: expected a numeric column \(numeric dtype\); found dtype"
    ):
        spec.check(table, task="scoring")


def test_duplicate_and_missing_ids_are_refused(spec):
    table = make_table()
    table.loc[2, "loan_id"] = "L0"
    table.loc[4, "loan_id"] = None
    duplicate = r"loan_id: expected unique ids; got 'L0' \(row 2, id L0\)"
    with pytest.raises(InvalidData, match=duplicate) as caught:
        spec.check(table, task="scoring")
    assert [problem.row for problem in caught.value.problems] == [4, 2]


def test_missing_target_values_are_refused(spec):
    table = make_table().astype({"defaulted": "float64"})
    table.loc[1, "defaulted"] = np.nan
    missing = r"defaulted: expected a target on every row; got None \(row 1, id L1\)"
    with pytest.raises(InvalidData, match=missing):
        spec.check(table, task="scoring")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            [0, 1, 2, 0, 1, -1], r"got 2 \(row 2, id L2\)(.|\n)*got -1 \(row 5", id="other integers"
        ),
        pytest.param([0.0, 1.0, 0.5, 0.0, 1.0, 0.0], r"got 0.5 \(row 2", id="fractions"),
        pytest.param(["0", "1", "1", "0", "0", "1"], r"got '0' \(row 0", id="strings"),
        pytest.param([True, False, True, False, True, False], r"not booleans", id="booleans"),
        pytest.param(
            pd.array([True, False, True, False, True, False], dtype="boolean"),
            r"not booleans",
            id="nullable booleans",
        ),
    ],
)
def test_scoring_target_must_be_numeric_zero_or_one(spec, values, message):
    table = make_table()
    table["defaulted"] = values
    with pytest.raises(InvalidData, match=message):
        spec.check(table, task="scoring")


def test_scoring_target_reports_every_offending_row(spec):
    table = make_table()
    table["defaulted"] = [0, 2, 1, 3, 1, 4]
    with pytest.raises(InvalidData) as caught:
        spec.check(table, task="scoring")
    assert [(problem.row, problem.got) for problem in caught.value.problems] == [(1, 2), (3, 3), (5, 4)]


def test_valuation_target_must_be_positive_and_finite(spec):
    table = make_table()
    table["defaulted"] = [1.5e6, 0.0, -3.0, np.inf, 2e5, 7e4]
    with pytest.raises(InvalidData, match=r"strictly positive, finite amount") as caught:
        spec.check(table, task="valuation")
    assert [problem.row for problem in caught.value.problems] == [1, 2, 3]


def test_valuation_target_passes_with_amounts(spec):
    table = make_table()
    table["defaulted"] = [1.5e6, 2e5, 3e5, 8e5, 2e5, 7e4]
    spec.check(table, task="valuation")


def test_task_is_required_and_known(spec):
    with pytest.raises(InvalidData, match=r"task: expected one of \['scoring', 'valuation'\]; got None"):
        spec.check(make_table())
    with pytest.raises(InvalidData, match=r"got 'pricing'"):
        spec.check(make_table(), task="pricing")


def test_task_defaults_to_the_specs_own_and_must_agree():
    spec = FeatureSpec.from_yaml(DOCUMENTED_SPEC + "task: scoring\n")
    spec.check(make_table())
    with pytest.raises(InvalidData, match=r"task: expected the spec's task 'scoring'; got 'valuation'"):
        spec.check(make_table(), task="valuation")


def test_all_table_problems_are_listed_at_once(spec):
    table = make_table().drop(columns=["industry"])
    table["revenue"] = table["revenue"].astype("str")
    table.loc[0, "defaulted"] = 7
    table.loc[1, "loan_id"] = "L0"
    with pytest.raises(InvalidData) as caught:
        spec.check(table, task="scoring")
    assert sorted(problem.field for problem in caught.value.problems) == [
        "defaulted",
        "industry",
        "loan_id",
        "revenue",
    ]


# ---------------------------------------------------------------- infer_spec


def test_infer_spec_types_columns_by_dtype():
    spec = infer_spec(make_table(), target="defaulted", id="loan_id")
    assert spec.numeric == ("revenue", "overdue_days", "equity_ratio")
    assert spec.categorical == ("industry",)
    assert spec.monotone_constraints() == [0, 0, 0, 0]
    spec.check(make_table(), task="scoring")


def test_infer_spec_refuses_unknown_target_or_id():
    with pytest.raises(InvalidData, match=r"target_col: expected a column(.|\n)*key: expected a column"):
        infer_spec(make_table(), target="target_col", id="key")


def test_numeric_bounds_are_accepted_kept_and_checked():
    spec = FeatureSpec.from_yaml(
        "target: y\nfeatures:\n  - {name: claims, type: numeric, min: 0}\n"
        "  - {name: share, type: numeric, min: 0, max: 1}\n"
    )
    assert (spec.features[0].min, spec.features[1].max) == (0, 1)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(InvalidData, match=r"features\[0\]\.max: expected a bound >= min"):
        FeatureSpec.from_yaml("target: y\nfeatures:\n  - {name: a, type: numeric, min: 2, max: 1}\n")
    with pytest.raises(InvalidData, match=r"features\[0\]\.min: expected no bound on a categorical feature"):
        FeatureSpec.from_yaml("target: y\nfeatures:\n  - {name: a, type: categorical, min: 0}\n")
    with pytest.raises(InvalidData, match=r"features\[0\]\.min: expected a number or absent"):
        FeatureSpec.from_yaml("target: y\nfeatures:\n  - {name: a, type: numeric, min: zero}\n")


def test_levels_are_kept_as_text_and_round_trip():
    spec = FeatureSpec.from_yaml(
        "target: y\nfeatures:\n  - {name: nice_class, type: categorical, levels: [1, 2, 35]}\n"
        "  - {name: city, type: categorical}\n"
    )
    assert spec.features[0].levels == ("1", "2", "35")
    assert spec.features[1].levels is None
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            "{name: a, type: numeric, levels: [1, 2]}",
            r"features\[0\]\.levels: expected levels only on a categ",
        ),
        ("{name: a, type: categorical, levels: []}", r"features\[0\]\.levels: expected a non-empty list"),
        ("{name: a, type: categorical, levels: x}", r"features\[0\]\.levels: expected a non-empty list"),
        ("{name: a, type: categorical, levels: [true]}", r"features\[0\]\.levels: expected a non-empty list"),
        (
            "{name: a, type: categorical, levels: [1, '1', 2]}",
            r"expected each level listed once; got \['1'\]",
        ),
    ],
)
def test_bad_levels_are_refused(entry, message):
    with pytest.raises(InvalidData, match=message):
        FeatureSpec.from_yaml(f"target: y\nfeatures:\n  - {entry}\n")


def test_a_training_value_outside_the_levels_is_refused_by_row_and_id():
    spec = FeatureSpec.from_yaml(
        "target: y\nid: k\nfeatures:\n  - {name: c, type: categorical, levels: [1, 2, 3]}\n"
    )
    table = pd.DataFrame({"k": ["a", "b", "c", "d"], "c": [1.0, 7.0, None, 3.0], "y": [0, 1, 0, 1]})
    with pytest.raises(InvalidData) as refused:
        spec.check(table, task="scoring")
    assert [str(p) for p in refused.value.problems] == ["c: expected one of 1, 2, 3; got 7.0 (row 1, id b)"]


def test_a_feature_may_give_its_reason_code_and_texts():
    spec = FeatureSpec.from_yaml(
        "target: y\nfeatures:\n"
        "  - {name: late_days, type: numeric,\n"
        "     reason: {code: B01, zh: ' 近期逾期天数较多 ', en: Recent late days}}\n"
        "  - {name: city, type: categorical}\n"
    )
    assert spec.features[0].reason == {"code": "B01", "zh": "近期逾期天数较多", "en": "Recent late days"}
    assert FeatureSpec.from_dict(spec.to_dict()) == spec and hash(spec) == hash(
        FeatureSpec.from_dict(spec.to_dict())
    )


@pytest.mark.parametrize(
    "reasons, message",
    [
        (["{code: B01, zh: 逾期}"], r"features\[0\]\.reason: expected a mapping of code, zh, en"),
        (["{code: b1, zh: 逾期, en: Late}"], r"features\[0\]\.reason\.code: expected a code of a capital"),
        (["{code: B01, zh: '', en: Late}"], r"features\[0\]\.reason\.zh: expected a text of 1 to 200"),
        (
            ["{code: B01, zh: 逾期, en: Late}", "{code: B01, zh: 负债, en: Debt}"],
            r"features\[1\]\.reason\.code: expected reason codes used once \(features\[0\] has it\)",
        ),
    ],
)
def test_bad_reasons_are_refused(reasons, message):
    entries = "".join(f"  - {{name: f{i}, type: numeric, reason: {r}}}\n" for i, r in enumerate(reasons))
    with pytest.raises(InvalidData, match=message):
        FeatureSpec.from_yaml(f"target: y\nfeatures:\n{entries}")
