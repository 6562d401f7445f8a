"""Drift: PSI per feature and for the model output, labels at 0.1 / 0.25, HTML and JSON reports."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from features.spec import FeatureSpec
from models.monitor import OUTPUT_NAME, categorical_psi, drift_report, numeric_psi
from scoring.validation import psi

SPEC = FeatureSpec.from_dict(
    {
        "target": "defaulted",
        "features": [
            {"name": "revenue", "type": "numeric", "monotone": "decreasing"},
            {"name": "claims", "type": "numeric"},
            {"name": "industry", "type": "categorical"},
        ],
    }
)


def book(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    claims = rng.poisson(8, n).astype("float64")
    claims[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "revenue": rng.lognormal(16 + shift, 1.0, n),
            "claims": claims,
            "industry": rng.choice(["software", "biotech", "machinery"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_identical_data_is_stable_everywhere():
    ref = book(3000, 1)
    report = drift_report(ref, ref.copy(), SPEC, ref["revenue"] / 10, ref["revenue"] / 10)
    assert set(report.labels.values()) == {"stable"}
    assert report.table["psi"].max() == pytest.approx(0.0, abs=1e-12)
    assert list(report.table["variable"]) == ["revenue", "claims", "industry", OUTPUT_NAME]


def test_a_fresh_sample_of_the_same_book_is_stable():
    report = drift_report(book(3000, 1), book(3000, 2), SPEC)
    assert set(report.labels.values()) == {"stable"}


def test_a_shifted_feature_is_flagged_rebuild_and_only_it():
    ref, cur = book(3000, 1), book(3000, 2, shift=1.0)
    report = drift_report(ref, cur, SPEC, ref["revenue"], cur["revenue"])
    assert report.labels == {
        "revenue": "rebuild",
        "claims": "stable",
        "industry": "stable",
        OUTPUT_NAME: "rebuild",
    }


def mix(p: list[float]):
    def change(d: pd.DataFrame) -> pd.DataFrame:
        rng = np.random.default_rng(9)
        return d.assign(industry=rng.choice(["software", "biotech", "machinery"], len(d), p=p))

    return change


@pytest.mark.parametrize(
    "change, label",
    [
        (lambda d: d, "stable"),
        (mix([0.3, 0.4, 0.3]), "watch"),  # the mix moves: PSI about 0.17
        (lambda d: d.assign(industry="software"), "rebuild"),  # one category takes over
        # 10% in an industry never seen in training (rows the model refuses): its bin holds 1e-4 in training
        (
            lambda d: d.assign(industry=np.where(np.arange(len(d)) % 10 == 0, "shipping", d["industry"])),
            "rebuild",
        ),
    ],
)
def test_categorical_drift_counts_shares_and_unseen_categories(change, label):
    ref = book(3000, 1)
    report = drift_report(ref, change(book(3000, 2)), SPEC)
    assert report.labels["industry"] == label


def test_a_column_arriving_empty_is_drift():
    ref = book(3000, 1)
    cur = book(3000, 2).assign(claims=np.nan)
    figures = numeric_psi(ref["claims"], cur["claims"])
    assert figures["missing_current"] == 1.0 and figures["psi"] > 0.25


def test_without_missing_values_numeric_psi_is_scoring_validation_psi():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.3, 1.2, 1500)
    assert numeric_psi(a, b)["psi"] == pytest.approx(psi(a, b))
    assert categorical_psi(["x", "y", None], ["x", "y", None])["psi"] == 0.0


def test_a_feature_missing_from_a_table_is_refused():
    with pytest.raises(ValueError, match=r"missing: \['claims'\]"):
        drift_report(book(100, 1), book(100, 2).drop(columns="claims"), SPEC)


def test_reports_are_written_as_html_with_an_embedded_plot_and_as_json(tmp_path):
    ref, cur = book(2000, 1), book(2000, 2, shift=1.0)
    html_path, json_path = drift_report(ref, cur, SPEC, meta={"data": "book.csv"}).write(tmp_path)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["overall"] == "rebuild" and data["meta"]["data"] == "book.csv"
    assert {v["variable"]: v["label"] for v in data["variables"]}["revenue"] == "rebuild"
    page = html_path.read_text(encoding="utf-8")
    png = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<td>revenue</td>" in page
