"""Feature pipeline throughput: every patent of a 1,000,000-patent portfolio, as of its valuation date.

Times the full path a valuation batch takes: the point-in-time snapshot (static attributes plus
event counts up to each row's date, over ~4.5 million events) and the PatentFeatures transform.
Target (issue 2): 200,000 rows/s or more on a 2-core machine.
Run: python benchmarks/features.py [--patents 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# This script shares its name with the `features` package: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd  # noqa: E402

from features.snapshot import patent_snapshot  # noqa: E402
from features.synth import synthesize  # noqa: E402
from features.transformers import PatentFeatures  # noqa: E402

PATENTS_PER_ENTERPRISE = 9.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patents", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    portfolio = synthesize(int(args.patents / PATENTS_PER_ENTERPRISE), seed=11)
    rows = pd.DataFrame(
        {"patent_id": portfolio.patents["patent_id"], "as_of": portfolio.truth["patents"]["valuation_date"]}
    )
    transformer = PatentFeatures().fit(
        patent_snapshot(rows.head(10_000), portfolio.patents, portfolio.events)
    )
    best = {"snapshot": float("inf"), "transform": float("inf"), "total": float("inf")}
    for _ in range(args.repeats):
        start = time.perf_counter()
        snap = patent_snapshot(rows, portfolio.patents, portfolio.events)
        mid = time.perf_counter()
        features = transformer.transform(snap)
        end = time.perf_counter()
        for name, seconds in (("snapshot", mid - start), ("transform", end - mid), ("total", end - start)):
            best[name] = min(best[name], seconds)
    n = len(rows)
    print(f"rows               {n:>12,}   events {len(portfolio.events):,}   features {features.shape[1]}")
    for name, seconds in best.items():
        print(f"{name:<18} {seconds:>10.2f} s   {n / seconds:>12,.0f} rows/s")
    print(
        f"target             {'>= 200,000 rows/s':>28}   "
        f"{'met' if n / best['total'] >= 200_000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
