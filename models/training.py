"""The training `ipcredit train valuation|scoring` runs, and `ipcredit up` with it: the table from its source
(models.datasets: a bank's flat table with its spec, or a portfolio), trained by the task's own code
(valuation.train, scoring.train), then logged, registered and gated (models.lifecycle).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from core.settings import champion_uri
from models import lifecycle, registry
from models.datasets import training_data
from models.lifecycle import Registration, RunOptions
from scoring.train import train_scoring
from scoring.validation import write_report
from valuation.train import train_valuation

Progress = Callable[[str], None]


def is_flat_table(data: Path | None) -> bool:
    """Whether `--data` names a bank's flat table (a file), rather than a portfolio folder."""
    return data is not None and (data.is_file() or data.suffix.lower() in (".csv", ".parquet"))


def train(
    task: str,
    data: Path | None = None,
    spec: Path | None = None,
    *,
    options: RunOptions = RunOptions(),  # noqa: B008 - frozen, so one shared default is safe
    valuation_uri: str = champion_uri("valuation"),
    progress: Progress = lambda step: None,
) -> Registration:
    """Train the task's model on `data` (default: the synthetic portfolio, written first when absent) and
    log, register and gate it. Scoring on a portfolio values its pledged bundles with the valuation model at
    `valuation_uri`; a bank's flat table carries its own features. `progress(step)` is told each step."""
    progress("loading data")
    if task == "valuation":
        table, feature_spec, source = training_data("valuation", data, spec)
        progress(f"training and logging ({len(table):,} rows)")
        return lifecycle.train_and_log(
            "valuation", table, feature_spec, train_valuation, data_source=source, options=options
        )
    valuer = None if is_flat_table(data) else registry.load_fitted(valuation_uri, task="valuation")
    table, feature_spec, source = training_data(task, data, spec, valuer=valuer)
    progress(f"training on {len(table):,} rows, logging and registering")
    with tempfile.TemporaryDirectory() as folder:
        return lifecycle.train_and_log(
            "scoring",
            table,
            feature_spec,
            train_scoring,
            data_source=source,
            options=options,
            report_files=lambda trained: write_report(trained.report, folder),
        )


def held_out_summary(task: str, metrics: dict) -> str:
    """What the held-out rows say of a trained model, in one plain paragraph: `ipcredit up` and
    `ipcredit train` print it beside the gate's decision, so a weak model is never reported as fine."""
    if task == "valuation":
        kinds = {k: v for k, v in metrics["model"].items() if k != "all"}
        parts = [
            f"{kind}: median error {m['median_ape']:.0%}, {metrics['level']:.0%} interval covers "
            f"{m['coverage']:.1%}"
            + (f", cross-check flags {m['cross_check_flagged']:.1%}" if "cross_check_flagged" in m else "")
            for kind, m in kinds.items()
        ]
        return f"held out ({metrics['rows_test']:,} assets): " + "; ".join(parts)
    m = metrics["lightgbm"]
    return (
        f"held out, {metrics['split']['text']}: AUC {m['auc']:.3f}, KS {m['ks']:.3f}, ECE {m['ece']:.4f} "
        f"(exact PDs would show {m['ece_chance']:.4f}); grades (Jeffreys test at 5%): {metrics['grades']}; "
        f"weaknesses: {metrics['weaknesses']}"
    )
