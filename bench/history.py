"""Benchmark the panel's history: buckets from the roll-ups against the same view
computed per request with GROUP BY over the raw events, on SQLite and Postgres.

One run (see bench/README.md): for each database, seed it with
``python -m scorer seed-demo`` (100 tickers, 100k events, 30 days), start two gunicorn
servers on loopback with the same workers and threads — ours
(``scorer.process.wsgi:app``) and the raw anchor (``bench/history_raw_app.py``) — and drive
both with wrk (16 connections) on two panel views, alternating anchor/ours for
several rounds: 30 days of 15m buckets for one ticker, and a year of session buckets.
A third kind, "bare", is the server's ceiling: the raw app's gunicorn sending the bytes
ours answered for the view, kept, with no query, auth or lookup; no app on this server
and these settings answers faster.
Reports req/s, p50 and p99 per round, medians and ratios, PASS/FAIL on the design's
targets, which are for the 30-day view (>= 5x the raw computation, p99 <= 20 ms).
The year of sessions is shown beside it with its ceiling (bare / raw): on 30 days of
seeded events its raw GROUP BY is cheap. Every load loop is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latest import (  # noqa: E402
    TOKEN,
    concurrency,
    get,
    server_env,
    start,
    stop,
    wait_until,
    write_paths_lua,
    wrk,
)

KINDS = ("raw", "ours", "ours-miss", "bare")
ANCHORS = ("raw", "bare")  # served by the raw app
RAW_APP = "bench.history_raw_app:app"
TARGET_VIEW = "15m x 30 days"  # the design card's row: the panel's 30-day view
VIEWS = {
    "15m x 30 days": ("15m", timedelta(days=30)),
    "session x 1 year": ("session", timedelta(days=365)),
}


def seed(url: str, reuse: bool) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    if reuse:
        from sqlalchemy import create_engine, text

        from scorer.config.settings import database_url

        engine = create_engine(database_url(url))
        try:
            with engine.connect() as conn:
                if conn.scalar(text("SELECT value FROM meta WHERE key = 'demo'")):
                    print("  reusing the seeded database", flush=True)
                    return
        except Exception:  # noqa: BLE001 -- no such table: seed it
            pass
        finally:
            engine.dispose()
    cmd = [sys.executable, "-m", "scorer", "seed-demo", "--tickers", "100", "--events", "100000"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(done.stderr)
    print("  " + done.stdout.strip(), flush=True)
    stats = subprocess.run(
        [sys.executable, "-m", "scorer", "db-stats"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if stats.returncode == 0:
        print("\n".join("  " + line for line in stats.stdout.splitlines()), flush=True)


def tickers(url: str) -> list[str]:
    from sqlalchemy import create_engine, text

    from scorer.config.settings import database_url

    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        names = list(conn.scalars(text("SELECT DISTINCT ticker FROM article_tickers ORDER BY 1")))
    engine.dispose()
    return names


def paths(kind: str, view: str, names: list[str], end: datetime) -> list[str]:
    """The request paths, one per ticker. "ours-miss" asks for 60 different ends per
    ticker (6,000 paths, past the ~220 views the response cache's 24 MB hold), so
    nearly every request renders from the roll-ups instead of hitting the cache."""
    interval, span = VIEWS[view]
    if kind == "bare":
        return [f"/bare/{interval}"]
    route = "/raw/history" if kind == "raw" else "/v1/scores/history"
    ends = [end - timedelta(minutes=k) for k in range(60 if kind == "ours-miss" else 1)]
    return [
        f"{route}?ticker={t}&interval={interval}&from={_z(e - span)}&to={_z(e)}"
        for e in ends
        for t in names
    ]


def _z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def run_db(
    name: str, url: str, args: argparse.Namespace, work: Path, model: Path
) -> dict[str, Any]:
    print(f"\n== {name} ==", flush=True)
    started = time.monotonic()
    seed(url, args.reuse_db)
    print(f"  ready in {time.monotonic() - started:.1f}s", flush=True)
    env = server_env(url, model)
    workers, threads = concurrency(env)
    bodies = work / f"{name}-bodies"
    bodies.mkdir(exist_ok=True)
    names = tickers(url)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    port = args.port
    procs = {
        "raw": start(
            "raw",
            port,
            {**env, "BENCH_BODIES": str(bodies)},
            workers,
            threads,
            work / f"{name}-raw.log",
            RAW_APP,
        ),
        "ours": start("ours", port + 1, env, workers, threads, work / f"{name}-ours.log"),
    }
    ports = {"raw": port, "ours": port + 1}
    out: dict[str, Any] = {}
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        gzipped = {**auth, "Accept-Encoding": "gzip"}
        for kind in ("raw", "ours"):
            probe = f"http://127.0.0.1:{ports[kind]}" + paths(kind, "15m x 30 days", names, end)[0]
            wait_until(lambda p=probe: get(p, auth)[0] == 200, 90, f"{kind} up")
            _, body = get(probe, auth)
            data = json.loads(body)["data"]
            packed = len(get(probe, gzipped)[1])
            print(
                f"  {kind}: {len(data)} buckets, {len(body)} bytes ({packed} with gzip asked) "
                "for one ticker's 30 days of 15m"
            )
        for view, (interval, _) in VIEWS.items():  # what "bare" sends: ours' bytes
            path = paths("ours", view, names, end)[0]
            status, kept = get(f"http://127.0.0.1:{ports['ours']}{path}", gzipped)
            assert status == 200, (status, kept[:200])
            (bodies / f"{interval}.gz").write_bytes(kept)
        for view in VIEWS:
            luas = {}
            for kind in KINDS:
                lua = work / f"{name}-{kind}-{view.split()[0]}.lua"
                write_paths_lua(lua, list(paths(kind, view, names, end)), args.accept_encoding)
                luas[kind] = lua
            rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            for n in range(1, args.rounds + 1):
                for kind in KINDS:
                    port = ports["raw" if kind in ANCHORS else "ours"]
                    wrk(port, luas[kind], args.warmup, args.connections)
                    r = wrk(port, luas[kind], args.seconds, args.connections)
                    rounds[kind].append(r)
                    print(
                        f"  {view:<17} round {n} {kind:<9} {r['rps']:8.0f} req/s  p50 "
                        f"{r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}",
                        flush=True,
                    )
            med = {
                k: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50_ms", "p99_ms")}
                for k, rs in rounds.items()
            }
            ratio = {
                kind: statistics.median(
                    o["rps"] / a["rps"] for a, o in zip(rounds["raw"], rounds[kind], strict=True)
                )
                for kind in ("ours", "ours-miss", "bare")
            }
            errors = sum(r["errors"] for rs in rounds.values() for r in rs)
            out[view] = {"median": med, "ratio": ratio, "errors": errors}
    finally:
        for proc in procs.values():
            stop(proc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "history")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL"),
        help="a Postgres database to seed (default: none, SQLite only)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=18531, help="raw; ours is port + 1")
    parser.add_argument(
        "--accept-encoding",
        default="gzip",
        help="the Accept-Encoding every request sends, as a browser does ('' for none); "
        "the raw anchor ignores it",
    )
    parser.add_argument("--reuse-db", action="store_true", help="keep a seeded database")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny-model"
    if not (model / "config.json").exists():
        from tests.helpers.tiny_model import build_tiny_model

        build_tiny_model(model)
    dbs = {"sqlite": f"sqlite:///{work / 'history.db'}"}
    if args.postgres_url:
        dbs["postgres"] = args.postgres_url
    if not args.reuse_db:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / 'history.db'}{suffix}").unlink(missing_ok=True)
    results = {name: run_db(name, url, args, work, model) for name, url in dbs.items()}

    print(
        f"\nmedians of {args.rounds} rounds, wrk -t2 -c{args.connections}, {args.seconds:g}s each, "
        f"Accept-Encoding: {args.accept_encoding or '(none)'}:"
    )
    print(
        "| database | view | raw GROUP BY req/s (p99 ms) | roll-ups req/s (p99 ms) | ratio "
        "| roll-ups, cache missed req/s (p99 ms) | ratio | server ceiling req/s (p99 ms) "
        "| ceiling / raw | verdict |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    failed = False
    for name, views in results.items():
        for view, r in views.items():
            raw, ours, miss, bare = (r["median"][k] for k in KINDS)
            ok = r["errors"] == 0
            verdict = "shown" if ok else "FAIL (errors)"
            if view == TARGET_VIEW:  # the design's targets
                ok = ok and r["ratio"]["ours"] >= 5 and ours["p99_ms"] <= 20
                verdict = "PASS" if ok else "FAIL"
            failed |= not ok
            print(
                f"| {name} | {view} | {raw['rps']:.0f} ({raw['p99_ms']:.1f}) "
                f"| {ours['rps']:.0f} ({ours['p99_ms']:.1f}) | {r['ratio']['ours']:.1f}x "
                f"| {miss['rps']:.0f} ({miss['p99_ms']:.1f}) | {r['ratio']['ours-miss']:.1f}x "
                f"| {bare['rps']:.0f} ({bare['p99_ms']:.1f}) | {r['ratio']['bare']:.1f}x "
                f"| {verdict} |"
            )
    print(
        f"targets ({TARGET_VIEW}): roll-ups >= 5x the raw GROUP BY in req/s, p99 <= 20 ms; "
        "the server ceiling bounds every ratio"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
