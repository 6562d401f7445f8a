"""Synthetic portfolio at scale: 1,000,000 patents with their enterprises, time and peak memory.

Target (issue 2): under 60 s and under 4 GB peak on a 2-core machine, writing Parquet included.
Run: python benchmarks/synth.py [--patents 1000000] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/features.py would shadow the `features` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from features.synth import Assumptions, synthesize  # noqa: E402

PATENTS_PER_ENTERPRISE = 8.76  # measured mean of the default book: 227,649 patents of 26,000 enterprises


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=None, help="folder to write to (default: a temporary folder)")
    args = parser.parse_args()
    enterprises = int(args.patents / PATENTS_PER_ENTERPRISE)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        portfolio = synthesize(enterprises, seed=args.seed, assumptions=Assumptions())
        generated = time.perf_counter() - start
        portfolio.save(args.out or tmp)
        total = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB
    sizes = portfolio.manifest["sizes"]
    print(f"enterprises        {enterprises:>12,}")
    print(f"patents            {sizes['patents']:>12,}")
    print(f"trademarks         {sizes['trademarks']:>12,}")
    print(f"events             {sizes['events']:>12,}")
    print(f"credit reports     {sizes['enterprises']:>12,}")
    print(f"applications       {sizes['applications']:>12,}")
    print(f"generate           {generated:>10.1f} s")
    print(f"generate + write   {total:>10.1f} s   (target < 60 s)")
    print(f"peak memory        {peak_gb:>10.2f} GB  (target < 4 GB)")
    print(f"patents per second {sizes['patents'] / total:>12,.0f}")


if __name__ == "__main__":
    main()
