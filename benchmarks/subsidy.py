"""The subsidy read's cost against the enterprise's history (issue 18 item 11): `subsidy_granted` (one row of
subsidy_totals) beside the walk it replaced (every application of the enterprise, with a review lookup each),
at 0, 1,000 and 50,000 prior applications of one enterprise, a tenth of them approved.

    python benchmarks/subsidy.py                               # SQLite, in a temporary folder
    python benchmarks/subsidy.py --postgres postgresql+psycopg://ipcredit:ipcredit@127.0.0.1:5432/ipcredit_test
    python benchmarks/subsidy.py --history 0,1000,50000 --reads 2000

Each read is a short read transaction of its own (lending.db.reading), as the service's application route
makes it; the figures are the median and p99 of `--reads` reads, in milliseconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lending.db import make_engine, migrate, reading, session_factory, transaction  # noqa: E402
from lending.keys import authenticate, create_key  # noqa: E402
from lending.records import subsidy_granted  # noqa: E402
from lending.tables import ALL_BANKS, Application, Review, Status, SubsidyTotal  # noqa: E402
from lending.testing import scratch_url  # noqa: E402

USCC = "91350100M000100Y43"
YEAR = 2026


def the_walk(session, enterprise: str, year: int) -> float:
    """The read before revision 0006: a sum over the enterprise's applications joined to their reviews."""
    granted = session.scalar(
        select(func.coalesce(func.sum(Review.interest_subsidy_cny), 0.0))
        .join(Application, Review.application_id == Application.id)
        .where(Application.enterprise_id == enterprise, Review.subsidy_year == year)
    )
    return float(granted)


def add_history(factory, principal, reviewer, count: int) -> None:
    """`count` more applications of the enterprise, a tenth approved (granting 10 CNY each)."""
    for start in range(0, count, 5000):
        ids = [str(uuid.uuid4()) for _ in range(min(5000, count - start))]
        rows = [
            {
                "id": i,
                "institution_id": principal.institution_id,
                "status": Status.APPROVED if n % 10 == 0 else Status.PENDING_REVIEW,
                "request": {"loan": {"application_date": f"{YEAR}-01-01"}},
                "result": {"recommendation": "approve", "interest_subsidy_cny": 10.0},
                "explanation": {},
                "model_versions": {"scoring": {"version": "1"}},
                "enterprise_id": USCC,
            }
            for n, i in enumerate(ids)
        ]
        reviews = [
            {
                "application_id": i,
                "reviewer_key_id": reviewer.key_id,
                "decision": "approve",
                "interest_subsidy_cny": 10.0,
                "subsidy_year": YEAR,
            }
            for n, i in enumerate(ids)
            if n % 10 == 0
        ]
        with transaction(factory) as session:
            session.execute(insert(Application), rows)
            session.execute(insert(Review), reviews)
            granted = 10.0 * len(reviews)
            for scope in (ALL_BANKS, principal.institution_id):  # as the approvals would have kept them
                total = session.get(SubsidyTotal, (USCC, YEAR, scope))
                if total is None:
                    session.add(
                        SubsidyTotal(enterprise_id=USCC, year=YEAR, institution_id=scope, granted_cny=0.0)
                    )
                    session.flush()
                    total = session.get(SubsidyTotal, (USCC, YEAR, scope))
                total.granted_cny += granted


def timed(factory, read, reads: int) -> tuple[float, float, float]:
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        with reading(factory) as session:
            value = read(session)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), value


def run(url: str, history: list[int], reads: int) -> list[tuple]:
    engine = make_engine(url)
    migrate(engine)
    factory = session_factory(engine)
    with transaction(factory) as session:
        bank = authenticate(session, create_key(session, "Bank", "bank"))
        reviewer = authenticate(session, create_key(session, "Programme", "evaluator"))
    out, held = [], 0
    try:
        for count in history:
            add_history(factory, bank, reviewer, count - held)
            held = count
            now = timed(factory, lambda s: subsidy_granted(s, USCC, YEAR, bank.institution_id), reads)
            walk = timed(factory, lambda s: the_walk(s, USCC, YEAR), max(20, reads // 10))
            assert now[2] == walk[2], (now, walk)  # the same figure, both ways
            out.append((count, now, walk))
    finally:
        engine.dispose()
    return out


def report(backend: str, rows: list[tuple]) -> None:
    print(f"\n{backend}: subsidy_granted, one enterprise (a unified social credit code), ms per read")
    print(f"{'prior':>8} | {'one row p50':>11} {'p99':>7} | {'the walk p50':>12} {'p99':>8} | granted")
    for count, now, walk in rows:
        cells = f"{now[0]:>11.3f} {now[1]:>7.3f} | {walk[0]:>12.3f} {walk[1]:>8.3f}"
        print(f"{count:>8,} | {cells} | {now[2]:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--history", default="0,1000,50000", help="prior applications, in increasing order")
    parser.add_argument("--reads", type=int, default=1000, help="reads timed at each history")
    parser.add_argument("--postgres", help="a PostgreSQL URL: run there too (in a scratch schema)")
    args = parser.parse_args()
    history = [int(x) for x in args.history.split(",")]
    with tempfile.TemporaryDirectory(prefix="ipcredit-subsidy-") as tmp:
        report("SQLite", run(f"sqlite:///{Path(tmp) / 'records.db'}", history, args.reads))
        if args.postgres:
            import os

            os.environ["IPCREDIT_TEST_POSTGRES_URL"] = args.postgres
            with scratch_url("postgresql", Path(tmp)) as url:
                report("PostgreSQL", run(url, history, args.reads))


if __name__ == "__main__":
    main()
