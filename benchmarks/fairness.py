"""Fairness under load (issue 18 item 10): one bank's single applications, alone and beside another bank's
heavy batch of 1,000-asset valuations sent two at a time, on one service process.

    python benchmarks/fairness.py                    # prepares a store in a temporary folder (~1 min)
    python benchmarks/fairness.py --home .ipcredit --data data/portfolio
    IPCREDIT_INSTITUTION_MAX_ASSETS=0 python benchmarks/fairness.py --home ...   # the limit off
    python benchmarks/fairness.py --home ... --requests 10000 --concurrency 8   # issue 18's figure

Bank B sends `--requests` applications, `--concurrency` at a time (default one; POST /v1/applications),
first with the service to itself, then while bank A keeps `--heavy-concurrency` valuations of
`--heavy-assets` assets each in flight.
Bank A is a well-behaved client: on a 429 it waits the answer's Retry-After and sends again. Printed side by
side: bank B's p50 and p99 without and with the load, the ratio to its unloaded p99 (target: within 2x),
and what bank A got done (valuations answered, assets per second, 429s). The service's settings come from
the environment (IPCREDIT_INSTITUTION_MAX_ASSETS, IPCREDIT_COMPUTE_SLOTS: docs/api.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import HOST, ROOT, bodies, free_port, prepare, server  # noqa: E402 (the sibling benchmark)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def heavy_body(portfolio: Path, count: int) -> bytes:
    """A valuation of `count` distinct assets of the portfolio."""
    from features.portfolio import Portfolio
    from underwriting.applications import OWNER_FACTS
    from underwriting.examples import application_bodies

    assets: dict[str, dict] = {}
    for body in application_bodies(Portfolio.load(portfolio), limit=count):
        owner = {column: body["enterprise"][fact] for column, fact in OWNER_FACTS.items()}
        owner = {k: float(v) if isinstance(v, bool) else v for k, v in owner.items()}  # high_tech: 0.0/1.0
        for asset in body["assets"]:  # valued alone, an asset states its owner's facts
            assets.setdefault(asset["asset_id"], {**asset, **owner})
        if len(assets) >= count:
            break
    return json.dumps({"assets": list(assets.values())[:count]}).encode()


async def singles(url: str, payloads: list[bytes], headers: dict, count: int, concurrency: int = 1) -> dict:
    """`count` applications, `concurrency` at a time: latencies of the 201s, other answers counted."""
    latencies, errors = [], {}
    sent = iter(range(count))
    async with httpx.AsyncClient(timeout=120.0) as client:

        async def sender() -> None:
            for i in sent:
                started = time.perf_counter()
                response = await client.post(url, content=payloads[i % len(payloads)], headers=headers)
                if response.status_code == 201:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[response.status_code] = errors.get(response.status_code, 0) + 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    ms = np.array(latencies) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "errors": errors}


async def heavy_load(url: str, body: bytes, headers: dict, concurrency: int, stop: asyncio.Event) -> dict:
    """Valuations kept in flight until `stop`; a 429 is waited out as its Retry-After says."""
    done = {"answered": 0, "refused_429": 0, "other": 0, "seconds": 0.0}
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=300.0) as client:

        async def worker() -> None:
            while not stop.is_set():
                response = await client.post(url, content=body, headers=headers)
                if response.status_code == 201:
                    done["answered"] += 1
                elif response.status_code == 429:
                    done["refused_429"] += 1
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                else:
                    done["other"] += 1
                    done.setdefault("first_other", f"{response.status_code} {response.text[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    done["seconds"] = time.perf_counter() - started
    return done


async def beside_the_load(base: str, payloads, body, keys, args) -> tuple[dict, dict]:
    stop = asyncio.Event()
    load = asyncio.create_task(
        heavy_load(f"{base}/v1/valuations", body, keys["A"], args.heavy_concurrency, stop)
    )
    await asyncio.sleep(2.0)  # the batch under way before bank B sends
    b = await singles(f"{base}/v1/applications", payloads, keys["B"], args.requests, args.concurrency)
    stop.set()
    return b, await load


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="IPCREDIT_HOME with both champions (default: a new one)")
    parser.add_argument("--data", type=Path, help="portfolio folder for the request bodies")
    parser.add_argument("--requests", type=int, default=300, help="bank B's applications in each phase")
    parser.add_argument(
        "--heavy-assets", type=int, default=1000, help="assets in each of bank A's valuations"
    )
    parser.add_argument("--heavy-concurrency", type=int, default=2, help="bank A's valuations in flight")
    parser.add_argument("--concurrency", type=int, default=1, help="bank B's applications in flight")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ipcredit-fair-") as tmp_name:
        tmp = Path(tmp_name)
        home = (args.home or tmp / "home").absolute()
        os.environ["IPCREDIT_HOME"] = str(home)
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'records.db'}"
        if args.home is None:
            prepare(home, tmp)
        portfolio = args.data or tmp / "data" / "portfolio"
        payloads, heavy = bodies(home, portfolio), heavy_body(portfolio, args.heavy_assets)

        from lending.db import make_engine, migrate, session_factory, transaction
        from lending.keys import create_key

        engine = make_engine(os.environ["DATABASE_URL"])
        migrate(engine)
        with transaction(session_factory(engine)) as session:
            keys = {bank: create_key(session, f"Bank {bank}", "bank") for bank in "AB"}
        engine.dispose()
        headers = {b: {"X-API-Key": k, "Content-Type": "application/json"} for b, k in keys.items()}

        port = free_port()
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", HOST]
        command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
        base = f"http://{HOST}:{port}"
        limits = {
            k: v for k, v in os.environ.items() if k.startswith(("IPCREDIT_INSTITUTION", "IPCREDIT_COMPUTE"))
        }
        print(f"service on {base}; limits from the environment: {limits or 'the defaults'}", flush=True)
        with server(command, env, tmp / "service.log", f"{base}/ready"):
            asyncio.run(singles(f"{base}/v1/applications", payloads, headers["B"], 20))  # warm-up
            alone = asyncio.run(
                singles(f"{base}/v1/applications", payloads, headers["B"], args.requests, args.concurrency)
            )
            loaded, a = asyncio.run(beside_the_load(base, payloads, heavy, headers, args))
    report(alone, loaded, a, args)


def report(alone: dict, loaded: dict, a: dict, args) -> None:
    print()
    print(f"bank B: {args.requests} applications, {args.concurrency} at a time (POST /v1/applications)")
    print(
        f"bank A: {args.heavy_concurrency} valuations of {args.heavy_assets} assets in flight (beside only)"
    )
    print(f"{'':<24} {'p50 ms':>8} {'p99 ms':>8} {'errors':>8}")
    for name, r in (("bank B alone", alone), ("bank B beside bank A", loaded)):
        print(f"{name:<24} {r['p50']:>8.1f} {r['p99']:>8.1f} {str(r['errors'] or 0):>8}")
    ratio = loaded["p99"] / alone["p99"]
    print(f"bank B's p99 beside the load / alone: {ratio:.2f} (target: within 2x)")
    rate = a["answered"] * args.heavy_assets / a["seconds"]
    print(
        f"bank A: {a['answered']} valuations answered in {a['seconds']:.1f} s ({rate:,.0f} assets/s), "
        f"{a['refused_429']} answered 429 (waited out), {a['other']} other answers"
    )
    if a.get("first_other"):
        print(f"  the first other answer: {a['first_other']}")
    print(f"  target bank B's p99 within 2x of alone  {'met' if ratio <= 2 else 'MISSED'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
