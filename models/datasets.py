"""Where training tables come from: a bank's flat table with its spec, or the synthetic portfolio.

`training_data` is what `ipcredit train valuation|scoring` calls; it returns the table, its feature
spec and a description of the source for the run's data fingerprint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from features.io import read_table
from features.portfolio import Portfolio
from features.spec import FeatureSpec
from features.synth import synthesize
from underwriting import table as scoring_data
from valuation import data as valuation_data

log = logging.getLogger(__name__)

DEFAULT_PORTFOLIO = Path("data/portfolio")
TASKS = ("valuation", "scoring")


def portfolio_at(folder: Path | None, seed: int = 7) -> tuple[Portfolio, Path]:
    """The portfolio in `folder`; with no folder given, the default one, written first if absent."""
    target = folder or DEFAULT_PORTFOLIO
    if folder is None and not (target / "manifest.json").exists():
        log.warning("no data given: writing the synthetic portfolio to %s", target)
        synthesize(seed=seed).save(target)
    portfolio = Portfolio.load(target)
    portfolio.validate()
    return portfolio, target


def training_data(
    task: str, data: Path | None = None, spec_path: Path | None = None, *, valuer=None
) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """(table, spec, source) for a task. A file is a bank's flat table and needs its spec; a folder
    (or nothing) is a portfolio, whose built-in table and spec are used (a spec given overrides it).
    Scoring on a portfolio needs the fitted valuation (`valuer`) to value the pledged bundles."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    if data is not None and not data.exists():
        what = "a table file" if data.suffix else "a portfolio folder or a table file"
        raise FileNotFoundError(f"--data {data}: no such file or folder (expected {what})")
    if data is not None and data.is_file():
        if spec_path is None:
            raise ValueError(f"{data} is a flat table: give its feature spec with --spec SPEC.yaml")
        return read_table(data), FeatureSpec.from_yaml(spec_path), {"source": str(data), "kind": "flat table"}
    portfolio, folder = portfolio_at(data)
    source = {"source": str(folder), "kind": "portfolio", "manifest": portfolio.manifest}
    if task == "valuation":
        table = valuation_data.training_table(portfolio)
        table = table[valuation_data.in_force(table)].reset_index(drop=True)
        default_spec = valuation_data.default_spec
    else:
        if valuer is None:
            raise ValueError(
                "scoring on a portfolio needs a fitted valuation: train one first "
                "(`ipcredit train valuation`)"
            )
        table = scoring_data.scoring_table(portfolio, valuer)
        # A loan whose 12 months have not passed has no outcome yet: it is scored, not learnt from.
        learnt = scoring_data.with_outcome(table)
        source["loans_running_left_out"] = len(table) - len(learnt)
        table = learnt
        default_spec = scoring_data.default_spec
    spec = FeatureSpec.from_yaml(spec_path) if spec_path else default_spec(table)
    return table, spec, source
