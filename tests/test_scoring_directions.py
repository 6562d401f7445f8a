"""The built-in scoring model responds to every risk driver it declares a direction for, and the way a
credit officer expects: each driver varied alone over its range, on a sample of held-out applications of
the default synthetic book (as `ipcredit up` trains on it), moves the PD the declared way (never against
it) for most of them (scoring.sensitivity; underwriting.table.DIRECTIONS gives each direction with its
reason)."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from features.spec import FeatureColumn, FeatureSpec
from features.synth import synthesize
from features.transformers import ENTERPRISE_MONOTONE
from scoring.sensitivity import responses
from scoring.train import train_scoring
from underwriting.table import DIRECTIONS, default_spec, scoring_table, with_outcome
from valuation.data import default_spec as valuation_spec
from valuation.data import in_force, training_table
from valuation.train import train_valuation

MOST = 0.5  # "most applications": more than half of the sample


@pytest.fixture(scope="module")
def trained():
    book = synthesize()  # the default book: 26,000 enterprises, seed 7
    values = training_table(book)
    values = values[in_force(values)].reset_index(drop=True)
    valuer = train_valuation(values, valuation_spec(values), params={"n_estimators": 80}).valuer
    table = with_outcome(scoring_table(book, valuer))
    return train_scoring(table, default_spec(table), seed=0, challenger=False)


@pytest.fixture(scope="module")
def found(trained):
    sample = trained.test.sample(300, random_state=0)
    return {r.feature: r for r in responses(trained.model, sample)}


@pytest.mark.heavy
def test_every_declared_driver_is_in_the_built_in_spec_and_the_enterprise_directions_agree(trained):
    declared = {c.name: c.monotone for c in trained.model.spec.features if c.monotone}
    assert declared == {feature: direction for feature, (direction, _) in DIRECTIONS.items()}
    assert {f: d for f, d in ENTERPRISE_MONOTONE.items()} == {f: declared[f] for f in ENTERPRISE_MONOTONE}
    assert all(reason for _, reason in DIRECTIONS.values())


@pytest.mark.heavy
@pytest.mark.parametrize("feature", sorted(DIRECTIONS))
def test_each_driver_moves_the_pd_the_declared_way_for_most_applications(found, feature):
    response = found[feature]
    assert response.against == 0.0, f"{feature}: the PD went against {response.direction} on some rows"
    assert response.moved > MOST, f"{feature}: the PD moved on {response.moved:.0%} of the sample"


def test_the_check_catches_a_model_that_goes_the_wrong_way():
    """A model whose PD falls with overdue payments (declared increasing), and one that ignores them."""
    spec = FeatureSpec(
        target="y",
        id="id",
        features=(FeatureColumn("overdue_count_24m", "numeric", "increasing"),),
        task="scoring",
    )
    rows = pd.DataFrame({"overdue_count_24m": np.arange(20.0) % 5})
    wrong = types.SimpleNamespace(
        spec=spec, predict_pd=lambda df: 0.1 / (1 + df["overdue_count_24m"].to_numpy())
    )
    flat = types.SimpleNamespace(spec=spec, predict_pd=lambda df: np.full(len(df), 0.02))
    (backwards,) = responses(wrong, rows)
    (unmoved,) = responses(flat, rows)
    assert backwards.against == 1.0 and backwards.moved == 0.0
    assert unmoved.against == 0.0 and unmoved.moved == 0.0


def test_the_docs_print_the_directions_as_the_code_has_them():
    from pathlib import Path

    from underwriting.table import directions_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "scoring-model.md").read_text(encoding="utf-8")
    assert directions_markdown() in doc, "regenerate the table in docs/scoring-model.md section 11"
