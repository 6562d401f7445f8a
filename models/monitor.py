"""Drift: the population stability index (PSI) of every feature and of the model output, against training.

PSI = sum over bins (a - e) ln(a / e), e and a the shares of the reference (training) and current rows in
each bin, an empty bin counted as a share of 1e-4. Bins:

- numeric: the reference's deciles (scoring.validation.psi_table cuts them), plus one bin for missing
  values (their share is part of the distribution: a column that starts arriving empty is drift);
- categorical: one bin per reference category, one for categories the reference never had, one for missing.

Read with scoring.validation.psi_label: below 0.1 "stable", 0.1 to 0.25 "watch", above 0.25 "rebuild".

`drift_report` compares two tables; `monitor_model(uri, current)` compares a table with the training
sample logged with a registered model (``reference/reference.parquet``, models.lifecycle), after scoring it
with that model. `DriftReport.write(folder)` writes ``drift_report.html`` (a table and a bar plot of PSI per
feature, embedded as PNG, English labels) and ``drift_report.json`` (the same figures).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from features.spec import FeatureSpec, category_text
from features.values import json_value
from models import registry
from models.store import ModelCorrupt
from models.tasks import get_task
from scoring.validation import PSI_EPSILON, psi_label, psi_table

OUTPUT_NAME = "model output"
REPORT_FILES = ("drift_report.html", "drift_report.json")
COLOURS = {"stable": "#4c9a2a", "watch": "#e0a100", "rebuild": "#c0392b"}


@dataclass(frozen=True)
class DriftReport:
    """PSI per feature and for the model output; `table` has one row per variable: variable, kind
    ("numeric", "categorical" or "output"), psi, label, rows_reference, rows_current, missing_reference,
    missing_current (shares)."""

    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return dict(zip(self.table["variable"], self.table["label"], strict=True))

    def to_dict(self) -> dict[str, Any]:
        rows = [{k: json_value(v) for k, v in row.items()} for row in self.table.to_dict(orient="records")]
        worst = self.table["label"].map({"stable": 0, "watch": 1, "rebuild": 2}).max()
        return {
            "meta": self.meta,
            "thresholds": {"watch": 0.1, "rebuild": 0.25},
            "overall": ["stable", "watch", "rebuild"][int(worst)] if len(self.table) else "stable",
            "variables": rows,
        }

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        html_path, json_path = folder / REPORT_FILES[0], folder / REPORT_FILES[1]
        json_path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        html_path.write_text(_html(self), encoding="utf-8")
        return html_path, json_path


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: FeatureSpec,
    model_output_ref: Any = None,
    model_output_cur: Any = None,
    *,
    bins: int = 10,
    meta: dict[str, Any] | None = None,
) -> DriftReport:
    """PSI of each spec feature present in both tables, and of the model output when both are given
    (arrays, Series, or the model's output tables: their `value_cny` or `pd` column is used)."""
    missing = [c for c in spec.feature_names if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"drift needs every feature in both tables; missing: {missing}")
    rows = []
    for f in spec.features:
        if f.type == "categorical":
            rows.append(_row(f.name, "categorical", categorical_psi(reference[f.name], current[f.name])))
        else:
            rows.append(_row(f.name, "numeric", numeric_psi(reference[f.name], current[f.name], bins)))
    if model_output_ref is not None and model_output_cur is not None:
        ref, cur = _output_values(model_output_ref), _output_values(model_output_cur)
        rows.append(_row(OUTPUT_NAME, "output", numeric_psi(ref, cur, bins)))
    meta = {"created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **(meta or {})}
    meta.setdefault("rows_reference", len(reference))
    meta.setdefault("rows_current", len(current))
    return DriftReport(pd.DataFrame(rows), meta)


def monitor_model(uri: str, current: pd.DataFrame, *, bins: int = 10) -> DriftReport:
    """Score `current` with the model at `uri` and compare it, and its output, with the training sample
    logged with the model (reference/reference.parquet of the model's run)."""
    model = registry.load(uri)
    run_id = model.metadata.run_id
    if run_id is None:
        raise ModelCorrupt(f"model {uri} has no run: its training reference cannot be found")
    try:
        path = download_artifacts(run_id=run_id, artifact_path="reference/reference.parquet")
    except (MlflowException, OSError) as e:
        raise ModelCorrupt(f"model {uri}: its training reference could not be read ({e})") from e
    reference = pd.read_parquet(path)
    spec = registry.load_spec(model)
    task = (model.metadata.metadata or {}).get(registry.TASK_METADATA_KEY)
    output = registry.predict(model, current)
    column = get_task(task).output_column
    return drift_report(
        reference,
        current,
        spec,
        reference["model_output"],
        output[column],
        bins=bins,
        meta={"model": uri, "run_id": run_id, "task": task},
    )


# ---------------------------------------------------------------- PSI


def numeric_psi(expected: Any, actual: Any, bins: int = 10) -> dict[str, float]:
    """PSI over the expected's quantile bins (scoring.validation.psi_table) plus a missing-value bin.
    Without missing values on either side it equals scoring.validation.psi.

    >>> round(numeric_psi(np.arange(100.0), np.arange(100.0))["psi"], 6)
    0.0
    """
    e = pd.to_numeric(pd.Series(expected), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    a = pd.to_numeric(pd.Series(actual), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    e_ok, a_ok = np.isfinite(e), np.isfinite(a)
    if e_ok.any() and a_ok.any():
        table = psi_table(e[e_ok], a[a_ok], bins)
        e_share = table["expected_share"].to_numpy() * e_ok.mean()
        a_share = table["actual_share"].to_numpy() * a_ok.mean()
    else:  # one side has no numbers: a single bin of "some number"
        e_share, a_share = np.array([e_ok.mean()]), np.array([a_ok.mean()])
    e_share = np.append(e_share, 1 - e_ok.mean())
    a_share = np.append(a_share, 1 - a_ok.mean())
    return {
        "psi": _psi(e_share, a_share),
        "missing_reference": 1 - e_ok.mean(),
        "missing_current": 1 - a_ok.mean(),
    }


def categorical_psi(expected: Any, actual: Any) -> dict[str, float]:
    """PSI over the expected's categories, plus one bin for unseen categories and one for missing values.

    >>> categorical_psi(["a", "b", "a"], ["a", "b", "a"])["psi"]
    0.0
    """
    e, a = category_text(pd.Series(expected)), category_text(pd.Series(actual))
    levels = sorted(e.dropna().unique())
    e_share, a_share = [], []
    for level in levels:
        e_share.append(float((e == level).mean()))
        a_share.append(float((a == level).mean()))
    e_share.append(float((e.notna() & ~e.isin(levels)).mean()))  # always 0: the expected defines the levels
    a_share.append(float((a.notna() & ~a.isin(levels)).mean()))
    e_share.append(float(e.isna().mean()))
    a_share.append(float(a.isna().mean()))
    return {
        "psi": _psi(np.array(e_share), np.array(a_share)),
        "missing_reference": float(e.isna().mean()),
        "missing_current": float(a.isna().mean()),
    }


def _psi(e_share: np.ndarray, a_share: np.ndarray) -> float:
    both_empty = (e_share == 0) & (a_share == 0)
    e_adj = np.where(e_share > 0, e_share, PSI_EPSILON)[~both_empty]
    a_adj = np.where(a_share > 0, a_share, PSI_EPSILON)[~both_empty]
    return max(float(np.sum((a_adj - e_adj) * np.log(a_adj / e_adj))), 0.0)


def _row(name: str, kind: str, figures: dict[str, float]) -> dict[str, Any]:
    return {
        "variable": name,
        "kind": kind,
        "psi": figures["psi"],
        "label": psi_label(figures["psi"]),
        "missing_reference": float(figures["missing_reference"]),
        "missing_current": float(figures["missing_current"]),
    }


def _output_values(output: Any) -> Any:
    if isinstance(output, pd.DataFrame):
        for column in ("value_cny", "pd", "model_output"):
            if column in output.columns:
                return output[column]
        raise ValueError(f"a model output table needs a value_cny or pd column; got {list(output.columns)}")
    return output


# ---------------------------------------------------------------- HTML


def _plot(report: DriftReport) -> str:
    """Horizontal bars of PSI per variable with the 0.1 and 0.25 lines, as base64 PNG (Agg canvas)."""
    table = report.table.iloc[::-1]
    names = [n if str(n).isascii() else f"feature {i + 1}" for i, n in enumerate(table["variable"])]
    figure = Figure(figsize=(7, 0.3 * len(table) + 1.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.barh(names, table["psi"], color=[COLOURS[label] for label in table["label"]])
    for x, style in ((0.1, "--"), (0.25, "-")):
        ax.axvline(x, color="grey", linestyle=style, linewidth=1)
    ax.set(xlabel="PSI (0.1 watch, 0.25 rebuild)", title="Population stability per variable")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _html(report: DriftReport) -> str:
    d = report.to_dict()
    rows = "\n".join(
        f"<tr><td>{html.escape(str(r['variable']))}</td><td>{r['kind']}</td><td>{r['psi']:.4f}</td>"
        f'<td style="color:{COLOURS[r["label"]]}">{r["label"]}</td>'
        f"<td>{r['missing_reference']:.1%}</td><td>{r['missing_current']:.1%}</td></tr>"
        for r in d["variables"]
    )
    meta = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in d["meta"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head>
<body><h1>Drift report: {d["overall"]}</h1>
<p>Population stability index against the training data: below 0.1 stable, 0.1 to 0.25 watch,
above 0.25 rebuild.</p>
<ul>{meta}</ul>
<img alt="PSI per variable" src="data:image/png;base64,{_plot(report)}">
<table><tr><th>variable</th><th>kind</th><th>PSI</th><th>label</th><th>missing (training)</th>
<th>missing (current)</th></tr>
{rows}
</table></body></html>
"""
