"""Deciding a book: `ipcredit decide`'s code on 100,000 synthetic applications with explanations, beside the
raw boosters' contributions on the same rows, and one application decided in process beside the raw boosters
on that application's rows, side by side in one run.

- The book: the synthetic portfolio's applications (underwriting.examples), repeated with new ids (and the
  amount asked moved by a hundredth each round) up to `--applications`, written as the two Parquet tables of
  `ipcredit decide`'s table format. Decided by underwriting.book.decide_book, end to end: reading, checking,
  valuing every pledged asset with its factors, scoring with exact points, the lending figures, the documents,
  the Parquet output.
- The raw boosters: LightGBM's ``predict(pred_contrib=True)`` of every booster both models use (the valuation
  model's on the book's asset rows, the scoring model's two on its application rows), over the same matrices,
  encoded beforehand (not timed).
- One application: `underwriting.decision.decide_one` (as ``POST /v1/applications`` computes it, without
  HTTP and the records), median and p99 over `--single` applications, beside the raw boosters on that
  application's rows (its assets' and its own), taken the same way.

Targets (issue 16): the book at least 0.5x the raw boosters' rate; one application at most 3x the raw
boosters on its rows. The ratios depend on the models' size, the raw boosters' cost growing with their trees
and ours not: `--scoring-trees N` scores with a model of N trees per booster instead of the champion (trained
here on the portfolio without early stopping, for its speed only), beside the same valuation model.

    python benchmarks/decide.py --home /tmp/s4/.ipcredit --data /tmp/s4/data/portfolio
    python benchmarks/decide.py --applications 20000 --single 200        # a quicker run

`--home` is an IPCREDIT_HOME with both champions (`ipcredit up` makes one); without it a store is prepared
in a temporary folder as `ipcredit up` would (a few minutes).
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `ipcredit` sets it (cli/main.py)
ROOT = Path(__file__).resolve().parents[1]
# benchmarks/features.py would shadow the `features` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def book_tables(bodies: list[dict], n: int) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """The bodies repeated with new ids up to n applications, as the two tables and as bodies."""
    out = []
    for round_ in range(n // len(bodies) + 1):
        for body in bodies:
            if len(out) == n:
                break
            again = copy.deepcopy(body)
            again["application_id"] = f"B{round_:03d}-{body['application_id']}"
            again["loan"]["amount_cny"] = body["loan"]["amount_cny"] * (1 + round_ / 100)
            out.append(again)
    applications = pd.DataFrame(
        [{"application_id": b["application_id"], **b["enterprise"], **b["loan"]} for b in out]
    )
    assets = pd.DataFrame([{"application_id": b["application_id"], **a} for b in out for a in b["assets"]])
    return applications, assets, out


def raw_contributions(valuer, scorer, asset_rows: np.ndarray, application_rows: np.ndarray) -> float:
    """Seconds for every booster's pred_contrib over the given matrices."""
    boosters = [valuer.model.model_.booster_], scorer._boosters()
    start = time.perf_counter()
    for booster in boosters[0]:
        booster.predict(asset_rows, pred_contrib=True)
    for booster in boosters[1]:
        booster.predict(application_rows, pred_contrib=True)
    return time.perf_counter() - start


def matrices(valuer, scorer, applications) -> tuple[np.ndarray, np.ndarray]:
    """The models' input matrices of the applications: every asset's row and every application's row."""
    from features.schema import Enterprise
    from underwriting.applications import own_facts
    from underwriting.decision import scoring_rows

    rows = scoring_rows(applications, valuer)
    X_scoring, problems = scorer.encoder_.encode_columns(rows)
    records = []
    for a in applications:
        report = Enterprise.model_validate(a.enterprise)
        records += [own_facts(report, asset) for asset in a.assets]
    X_assets, problems_assets = valuer.model.encoder_.encode_records(records)
    assert not problems and not problems_assets
    return X_assets, X_scoring


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="IPCREDIT_HOME with both champions (default: a new one)")
    parser.add_argument("--data", type=Path, help="portfolio folder (default: data/portfolio of the run)")
    parser.add_argument("--applications", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=300, help="applications decided one at a time")
    parser.add_argument(
        "--scoring-trees", type=int, help="a scoring model of this many trees per booster, not the champion"
    )
    args = parser.parse_args()
    workdir = tempfile.TemporaryDirectory(prefix="ipcredit-decide-bench-")
    home = args.home or Path(workdir.name) / ".ipcredit"
    os.environ["IPCREDIT_HOME"] = str(home)
    data = args.data or Path(workdir.name) / "data" / "portfolio"

    from api.schemas import ApplicationRequest
    from core.settings import champion_uri
    from features.portfolio import Portfolio
    from models import registry
    from underwriting import book
    from underwriting.decision import decide_one
    from underwriting.examples import application_bodies

    if args.home is None:
        from api.server import ensure_models

        previous = Path.cwd()
        os.chdir(workdir.name)
        try:
            ensure_models(lambda step: print(f"  prepare: {step}", flush=True))
        finally:
            os.chdir(previous)
    valuer = registry.load_fitted(champion_uri("valuation"), task="valuation")
    scorer = registry.load_fitted(champion_uri("scoring"), task="scoring")
    portfolio = Portfolio.load(data)
    if args.scoring_trees:
        from scoring.model import ScoringModel
        from underwriting.table import default_spec, scoring_table

        table = scoring_table(portfolio, valuer)
        params = {"n_estimators": args.scoring_trees, "n_jobs": 2}
        scorer = ScoringModel(default_spec(table), params=params, calibration="none").fit(table)
    bodies = list(application_bodies(portfolio, with_ids=True))
    tables, assets, chosen = book_tables(bodies, args.applications)
    folder = Path(workdir.name)
    tables.to_parquet(folder / "applications.parquet", index=False)
    assets.to_parquet(folder / "assets.parquet", index=False)
    applications = [
        ApplicationRequest.model_validate(b).application(b["application_id"], "bench") for b in chosen
    ]
    print(
        f"book: {len(chosen):,} applications ({len(assets):,} pledged assets; {len(bodies):,} distinct from "
        f"the portfolio); valuation model {valuer.model.model_.n_estimators} trees, scoring model "
        f"{[b.num_trees() for b in scorer._boosters()]} trees",
        flush=True,
    )

    X_assets, X_scoring = matrices(valuer, scorer, applications)
    gc.collect()
    gc.freeze()  # as `ipcredit decide` does once its models are loaded
    raw_contributions(valuer, scorer, X_assets[:1000], X_scoring[:1000])  # warm
    raw = raw_contributions(valuer, scorer, X_assets, X_scoring)
    start = time.perf_counter()
    outcome = book.decide_book(
        folder / "applications.parquet",
        folder / "decided.parquet",
        valuer,
        scorer,
        assets=folder / "assets.parquet",
    )
    decided = time.perf_counter() - start
    assert outcome.refused == [], outcome.refused[:3]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(chosen)
    print(f"\n{n:,} applications, with explanations (asset factors and score points):")
    print(f"  raw boosters pred_contrib      {n / raw:>10,.0f} applications/s  ({raw:6.1f} s)")
    print(f"  ipcredit decide (book, files)  {n / decided:>10,.0f} applications/s  ({decided:6.1f} s)")
    print(f"  ratio                          {raw / decided:10.2f} x the raw boosters   (target >= 0.5)")
    print(f"  peak memory of this process    {peak:10,.0f} MB")

    one_times, raw_times = [], []
    offsets = np.cumsum([0] + [len(a.assets) for a in applications])
    for i, application in enumerate(applications[: args.single]):
        decide_one(application, valuer, scorer)  # the first of each is as warm as the rest
        start = time.perf_counter()
        decide_one(application, valuer, scorer)
        one_times.append(time.perf_counter() - start)
        asset_rows, own_row = X_assets[offsets[i] : offsets[i + 1]], X_scoring[i : i + 1]
        raw_contributions(valuer, scorer, asset_rows, own_row)
        raw_times.append(raw_contributions(valuer, scorer, asset_rows, own_row))
    one, raw_one = np.array(one_times) * 1e3, np.array(raw_times) * 1e3
    print(f"\none application in process, {len(one)} applications:")
    for label, times in (("raw boosters on its rows", raw_one), ("underwriting decide_one", one)):
        print(f"  {label:<30} median {np.median(times):7.2f} ms   p99 {np.percentile(times, 99):7.2f} ms")
    print(
        f"  ratio                          median {np.median(one) / np.median(raw_one):7.2f} x   "
        f"p99 {np.percentile(one, 99) / np.percentile(raw_one, 99):7.2f} x   (target <= 3)"
    )
    workdir.cleanup()


if __name__ == "__main__":
    main()
