"""The service under load: POST /v1/applications latency (p50, p99) and throughput at concurrency 1, 8 and 32,
beside `mlflow models serve` of the same scoring model (score only: no valuation, no explanations, no
records), and the peak memory of each serving process.

    python benchmarks/service.py                    # prepares a store in a temporary folder (~1 min)
    python benchmarks/service.py --home .ipcredit   # the store `ipcredit up` made
    python benchmarks/service.py --requests 1:200,8:400,32:400 --mlflow-requests 1:200,8:400,32:400
    python benchmarks/service.py --workers 2 --new-connections   # two service processes (two cores)

Both servers run in subprocesses on 127.0.0.1 only, one uvicorn process each (--workers for more), started
the way a bank would start them (`uvicorn --factory api.main:create_app`; `mlflow models serve
--env-manager local`). Every request counts: an answer other than 201 (200 for MLflow) or a failed
connection is an error. Request counts are bounded (default 10,000 to the service in all); each level runs
to its count and stops. Peak memory is the peak resident size (VmHWM) of the serving processes, summed.
CPU per request: the serving processes' CPU time (user + system) and the load client's over a level,
divided by its requests; on this 2-core machine their sum bounds the throughput.

Targets (issue 6): p50 < 15 ms and p99 < 50 ms at concurrency 1; >= 100 requests/s at concurrency 8;
no errors; the serving process under 1 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `ipcredit` sets it (cli/main.py)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"  # loopback only
DEFAULT_LEVELS = "1:1000,8:4000,32:5000"  # 10,000 requests to the service
DEFAULT_MLFLOW_LEVELS = "1:500,8:1000,32:1000"
BODIES = 20  # distinct applications sent in turn


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def levels(text: str) -> list[tuple[int, int]]:
    """ "1:1000,8:4000" -> [(1, 1000), (8, 4000)] (concurrency, requests)."""
    out = []
    for part in text.split(","):
        concurrency, count = (int(x) for x in part.split(":"))
        if concurrency < 1 or count < concurrency:
            raise SystemExit(f"each level needs concurrency >= 1 and requests >= concurrency; got {part!r}")
        out.append((concurrency, count))
    return out


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, MB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its children that are still running."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        direct = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
    return direct + [g for c in direct for g in children(c)]


@contextmanager
def server(command: list[str], env: dict[str, str], log: Path, ready_url: str, timeout: float = 300.0):
    """A server subprocess (its own process group), waited for until `ready_url` answers 200."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"{command[0]} exited with {process.returncode}; see {log}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{ready_url} not ready after {timeout:.0f} s; see {log}")
            time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the group: mlflow's uvicorn child too
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


async def load(
    url: str,
    payloads: list[bytes],
    headers: dict,
    ok: int,
    concurrency: int,
    count: int,
    keepalive: bool = True,
) -> dict:
    """`count` POSTs to `url` from `concurrency` workers; latencies of the good ones, errors counted.
    Without `keepalive` every request opens a connection of its own, as many separate clients would: with
    several server processes, kept-alive connections stay with the process that accepted them, and the
    client's few connections, opened at once, were all accepted by one of two processes."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    turn = itertools.count()
    kept = concurrency if keepalive else 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=kept)
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:

        async def worker() -> None:
            while (i := next(turn)) < count:
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=payloads[i % len(payloads)], headers=headers)
                except httpx.HTTPError as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    continue
                if response.status_code == ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": count,
        "p50": float(np.percentile(ms, 50)) if ms.size else float("nan"),
        "p99": float(np.percentile(ms, 99)) if ms.size else float("nan"),
        "rps": count / elapsed,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def run_levels(name, url, payloads, headers, ok, plan, pid, keepalive: bool = True) -> list[dict]:
    asyncio.run(load(url, payloads, headers, ok, 1, min(20, len(payloads) * 2)))  # warm-up, not counted
    out = []
    for concurrency, count in plan:
        server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
        result = asyncio.run(load(url, payloads, headers, ok, concurrency, count, keepalive))
        # CPU per request bounds throughput: two cores give at most 2000 / (server + client ms) req/s.
        result["server_cpu_ms"] = 1000 * (cpu_seconds(pid) - server_cpu) / count
        result["client_cpu_ms"] = 1000 * (time.process_time() - client_cpu) / count
        result["peak_mb"] = peak_rss_mb(pid)
        out.append(result)
        print(
            f"  {name:<9} c={concurrency:<3} {count:>6} requests  p50 {result['p50']:8.1f} ms  "
            f"p99 {result['p99']:8.1f} ms  {result['rps']:7.1f} req/s  errors {result['errors']} "
            f"{result['error_kinds'] or ''}  peak {result['peak_mb']:.0f} MB  CPU per request: "
            f"server {result['server_cpu_ms']:.1f} ms, client {result['client_cpu_ms']:.1f} ms",
            flush=True,
        )
    return out


def prepare(home: Path, workdir: Path) -> None:
    """Models (as `ipcredit up` trains them) in `home`, the portfolio in workdir/data/portfolio."""
    from api.server import ensure_models

    previous = Path.cwd()
    os.chdir(workdir)
    try:
        ensure_models(lambda step: print(f"  prepare: {step}", flush=True))
    finally:
        os.chdir(previous)


def bodies(home: Path, portfolio: Path) -> list[bytes]:
    """Up to BODIES application bodies from the portfolio, else the example `ipcredit up` wrote."""
    if (portfolio / "manifest.json").exists():
        from features.portfolio import Portfolio
        from underwriting.examples import application_bodies

        found = list(application_bodies(Portfolio.load(portfolio), limit=BODIES))
        return [json.dumps(b).encode() for b in found]
    example = home / "example-application.json"
    if not example.exists():
        raise SystemExit(f"no portfolio in {portfolio} and no {example}: run `ipcredit up` or give --data")
    return [example.read_bytes()]


def scoring_rows(payloads: list[bytes]) -> tuple[list[bytes], str]:
    """The scoring model's input rows for the same applications (what the service builds before scoring),
    as MLflow /invocations bodies, and the scoring model's pinned URI."""
    from api.schemas import ApplicationRequest
    from api.serving import load_model
    from core.settings import champion_uri
    from models import registry
    from underwriting.decision import scoring_rows as rows_of

    valuation = load_model(champion_uri("valuation"), "valuation")
    scoring = load_model(champion_uri("scoring"), "scoring")
    columns = registry.load(scoring.uri, task="scoring").metadata.get_input_schema().input_names()
    applications = [
        ApplicationRequest.model_validate_json(payload).application(f"BENCH{i}", "bench")
        for i, payload in enumerate(payloads)
    ]
    rows = rows_of(applications, valuation.fitted)
    out = []
    for i in range(len(applications)):
        frame = pd.DataFrame([{c: rows[c][i] for c in columns if c in rows}])
        split = json.loads(frame.to_json(orient="split", index=False))
        out.append(json.dumps({"dataframe_split": split}).encode())
    return out, scoring.uri


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="IPCREDIT_HOME with both champions (default: a new one)")
    parser.add_argument("--data", type=Path, help="portfolio folder for the request bodies")
    parser.add_argument("--requests", default=DEFAULT_LEVELS, help="concurrency:count,... for the service")
    parser.add_argument(
        "--mlflow-requests", default=DEFAULT_MLFLOW_LEVELS, help="the same, mlflow models serve"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="skip the mlflow models serve comparison")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes of the service (default 1)")
    parser.add_argument(
        "--new-connections",
        action="store_true",
        help="a new connection per request to the service (spreads requests over --workers processes)",
    )
    args = parser.parse_args()
    service_plan, mlflow_plan = levels(args.requests), levels(args.mlflow_requests)

    with tempfile.TemporaryDirectory(prefix="ipcredit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        home = (args.home or tmp / "home").absolute()
        os.environ["IPCREDIT_HOME"] = str(home)
        for name in (
            "MLFLOW_TRACKING_URI",
            "MLFLOW_REGISTRY_URI",
            "IPCREDIT_VALUATION_URI",
            "IPCREDIT_SCORING_URI",
        ):
            os.environ.pop(name, None)
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'records.db'}"  # fresh records for this run
        print(f"store: {home}")
        prepare(home, tmp)
        portfolio = args.data or (tmp / "data" / "portfolio" if args.home is None else Path("data/portfolio"))
        payloads = bodies(home, portfolio)
        print(f"{len(payloads)} distinct applications, sent in turn")

        from lending.db import make_engine, migrate, session_factory, transaction
        from lending.keys import create_key

        engine = make_engine(os.environ["DATABASE_URL"])
        migrate(engine)
        with transaction(session_factory(engine)) as session:
            key = create_key(session, "Benchmark Bank", "bank")
        engine.dispose()

        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs uvicorn
        results = {}
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
        command += ["--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log"]
        command += ["--workers", str(args.workers)]
        print(f"ipcredit service on {HOST}:{port} ({args.workers} uvicorn worker process(es))")
        with server(command, env, tmp / "service.log", f"http://{HOST}:{port}/ready") as process:
            headers = {"X-API-Key": key, "Content-Type": "application/json"}
            url = f"http://{HOST}:{port}/v1/applications"
            results["ipcredit"] = run_levels(
                "ipcredit", url, payloads, headers, 201, service_plan, process.pid, not args.new_connections
            )
            service_peak = peak_rss_mb(process.pid)

        mlflow_peak = None
        if not args.no_mlflow:
            rows, scoring_uri = scoring_rows(payloads)
            port = free_port()
            command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", scoring_uri]
            command += ["--env-manager", "local", "--host", HOST, "--port", str(port)]
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
            print(f"mlflow models serve {scoring_uri} on {HOST}:{port}")
            with server(command, env, tmp / "mlflow.log", f"http://{HOST}:{port}/ping") as process:
                url = f"http://{HOST}:{port}/invocations"
                headers = {"Content-Type": "application/json"}
                results["mlflow"] = run_levels("mlflow", url, rows, headers, 200, mlflow_plan, process.pid)
                mlflow_peak = peak_rss_mb(process.pid)

    report(results, service_peak, mlflow_peak)


def _cells(r: dict) -> str:
    return f"{r['requests']:>8} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['rps']:>7.1f} {r['errors']:>6}"


def report(results: dict, service_peak: float, mlflow_peak: float | None) -> None:
    print()
    print("ipcredit: POST /v1/applications (valuation, score, lending figures, SHAP, record)")
    print("mlflow:   POST /invocations of the same scoring model (score only)")
    names = f"{'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'errors':>6}"
    print(f"{'':>3} | {'ipcredit':^{len(names)}} | {'mlflow':^{len(names)}}")
    print(f"{'c':>3} | {names} | {names}")
    mlflow = {r["concurrency"]: r for r in results.get("mlflow", [])}
    for r in results["ipcredit"]:
        m = mlflow.get(r["concurrency"])
        print(f"{r['concurrency']:>3} | {_cells(r)} | {_cells(m) if m else '-'}")
    total = sum(r["requests"] for r in results["ipcredit"])
    errors = sum(r["errors"] for r in results["ipcredit"])
    print(f"ipcredit: {total:,} requests, {errors} errors; serving process peak memory {service_peak:.0f} MB")
    if mlflow_peak is not None:
        m_total = sum(r["requests"] for r in results["mlflow"])
        m_errors = sum(r["errors"] for r in results["mlflow"])
        print(
            f"mlflow:   {m_total:,} requests, {m_errors} errors; serving processes peak {mlflow_peak:.0f} MB"
        )
    by_c = {r["concurrency"]: r for r in results["ipcredit"]}
    checks = []
    if 1 in by_c:
        checks.append(("p50 < 15 ms at c=1", by_c[1]["p50"] < 15, f"{by_c[1]['p50']:.1f} ms"))
        checks.append(("p99 < 50 ms at c=1", by_c[1]["p99"] < 50, f"{by_c[1]['p99']:.1f} ms"))
    if 8 in by_c:
        checks.append((">= 100 req/s at c=8", by_c[8]["rps"] >= 100, f"{by_c[8]['rps']:.1f} req/s"))
    checks.append(("no errors", errors == 0, f"{errors}"))
    checks.append(("serving process < 1 GB", service_peak < 1024, f"{service_peak:.0f} MB"))
    for name, met, got in checks:
        print(f"  target {name:<24} {'met' if met else 'MISSED':<6} ({got})")


if __name__ == "__main__":
    main()
