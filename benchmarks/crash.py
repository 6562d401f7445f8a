"""Durability under `kill -9` (issue 18's closing figure): applications sent at a concurrency while the
service is killed with SIGKILL several times and started again; afterwards every acknowledged decision (a 201
the client received) must be in the records, whole, and nothing may be half stored.

    python benchmarks/crash.py --home .ipcredit --data data/portfolio      # 5 kills, 8 in flight
    python benchmarks/crash.py --kills 5 --concurrency 8 --seconds 6        # seconds of load between kills

Each application carries its own `application_id`, so a retry after a kill cannot decide twice. Printed: the
201s acknowledged, those found in the records (and found whole: result, explanation, request, model
versions and code all there, the stored id the one answered), records no client saw acknowledged (a kill
between the commit and the answer: allowed), and half records (any document missing: must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import HOST, ROOT, bodies, free_port, prepare, server  # noqa: E402 (the sibling benchmark)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


async def send_until(url: str, payloads: list[bytes], headers: dict, concurrency: int, seconds: float, ids):
    """Applications with fresh ids for `seconds` (or until the service dies): {application_id: record id}
    of those acknowledged with 201, and the count of requests that got no answer."""
    acknowledged, unanswered = {}, 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def sender() -> None:
            nonlocal unanswered
            while time.monotonic() < deadline:
                ref = next(ids)
                body = json.loads(payloads[hash(ref) % len(payloads)]) | {"application_id": ref}
                try:
                    response = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError:  # killed mid-request: no answer, nothing acknowledged
                    unanswered += 1
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code == 201:
                    acknowledged[ref] = response.json()["id"]

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return acknowledged, unanswered


def audit(database_url: str, acknowledged: dict[str, str]) -> dict[str, int]:
    """What the records hold of the acknowledged decisions, and any half record."""
    from sqlalchemy import select

    from lending.db import make_engine, session_factory, transaction
    from lending.tables import Application

    engine = make_engine(database_url)
    with transaction(session_factory(engine)) as session:
        stored = {
            row.application_ref: row
            for row in session.scalars(select(Application).where(Application.application_ref.is_not(None)))
        }
        half = sum(
            1
            for row in stored.values()
            if not (row.result and row.explanation and row.request and row.model_versions and row.code)
        )
        found = [ref for ref in acknowledged if ref in stored]
        whole = [ref for ref in found if stored[ref].id == acknowledged[ref] and stored[ref].result]
        out = {
            "acknowledged": len(acknowledged),
            "found": len(found),
            "found whole, under the id answered": len(whole),
            "stored, never acknowledged": len(set(stored) - set(acknowledged)),
            "half records": half,
            "records": len(stored),
        }
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="IPCREDIT_HOME with both champions (default: a new one)")
    parser.add_argument("--data", type=Path, help="portfolio folder for the request bodies")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of load before each kill")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ipcredit-crash-") as tmp_name:
        tmp = Path(tmp_name)
        home = (args.home or tmp / "home").absolute()
        os.environ["IPCREDIT_HOME"] = str(home)
        database_url = os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'records.db'}")
        if args.home is None:
            prepare(home, tmp)
        payloads = bodies(home, args.data or tmp / "data" / "portfolio")

        from lending.db import make_engine, migrate, session_factory, transaction
        from lending.keys import create_key

        engine = make_engine(database_url)
        migrate(engine)
        with transaction(session_factory(engine)) as session:
            key = create_key(session, "Crash Bank", "bank")
        engine.dispose()
        headers = {"X-API-Key": key}
        ids = (f"CRASH-{os.getpid()}-{i}" for i in itertools.count())

        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
        acknowledged, unanswered = {}, 0
        for kill in range(args.kills + 1):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", HOST]
            command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
            base = f"http://{HOST}:{port}"
            with server(command, env, tmp / f"service-{kill}.log", f"{base}/ready") as process:
                url = f"{base}/v1/applications"
                if kill < args.kills:  # kill -9 while the load runs, at a point that moves each round
                    loop = asyncio.new_event_loop()
                    loop.call_later(args.seconds * (0.5 + 0.1 * kill), os.killpg, process.pid, signal.SIGKILL)
                    got, lost = loop.run_until_complete(
                        send_until(url, payloads, headers, args.concurrency, args.seconds, ids)
                    )
                    loop.close()
                    process.wait()
                else:  # the last round: no kill, the service shut down as usual
                    got, lost = asyncio.run(send_until(url, payloads, headers, args.concurrency, 2.0, ids))
                acknowledged |= got
                unanswered += lost
                print(f"round {kill + 1}: {len(got)} acknowledged, {lost} without an answer", flush=True)
        figures = audit(database_url, acknowledged)
    print(
        f"\n{args.kills} kill -9 under load ({args.concurrency} in flight), {unanswered} requests unanswered"
    )
    for name, value in figures.items():
        print(f"  {name:<38} {value:>7,}")
    lost = figures["acknowledged"] - figures["found whole, under the id answered"]
    print(f"  target: acknowledged writes lost 0: {'met' if lost == 0 else f'MISSED ({lost})'}")
    print(f"  target: half records 0: {'met' if figures['half records'] == 0 else 'MISSED'}")


if __name__ == "__main__":
    main()
