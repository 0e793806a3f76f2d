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
"While writing" (the 30-day view only): raw and ours again while ``bench/cycle_writer.py``
commits score batches for other tickers as a market-hours cycle does (a burst, then
``--writer-pause``); each batch renews the roll-ups' version, so ours renders again.
Its targets (issue 20): >= 5x the raw GROUP BY under the same writes, p99 <= 1.5x the
bare kind's p99 of the same round.
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

from bench.cycle_writer import TICKERS as WRITER_TICKERS  # noqa: E402
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
# The same paths as raw, ours and bare, while writing: bare-writing is the server's
# ceiling under the same writes (the writer and the database take CPU from any server).
WRITING = ("raw-writing", "ours-writing", "bare-writing")
ANCHORS = ("raw", "bare", "raw-writing", "bare-writing")  # served by the raw app
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
    if kind.startswith("bare"):
        return [f"/bare/{interval}"]
    route = "/raw/history" if kind.startswith("raw") else "/v1/scores/history"
    ends = [end - timedelta(minutes=k) for k in range(60 if kind == "ours-miss" else 1)]
    return [
        f"{route}?ticker={t}&interval={interval}&from={_z(e - span)}&to={_z(e)}"
        for e in ends
        for t in names
    ]


def writing(url: str, seconds: float, pause: float) -> subprocess.Popen[str]:
    """The cycle writer, running for ``seconds`` (it prints its summary when done)."""
    cmd = [sys.executable, str(ROOT / "bench" / "cycle_writer.py"), "--url", url]
    cmd += ["--seconds", f"{seconds:g}", "--pause", f"{pause:g}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def written(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else {"batches": 0}


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
    names = [t for t in tickers(url) if t not in WRITER_TICKERS]  # the writer's are others
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
            kinds = KINDS + WRITING if view == TARGET_VIEW else KINDS
            luas = {}
            for kind in kinds:
                lua = work / f"{name}-{kind}-{view.split()[0]}.lua"
                write_paths_lua(lua, list(paths(kind, view, names, end)), args.accept_encoding)
                luas[kind] = lua
            rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
            for n in range(1, args.rounds + 1):
                for kind in kinds:
                    port = ports["raw" if kind in ANCHORS else "ours"]
                    writer = None
                    if kind in WRITING:
                        writer = writing(url, args.warmup + args.seconds + 1, args.writer_pause)
                    wrk(port, luas[kind], args.warmup, args.connections)
                    r = wrk(port, luas[kind], args.seconds, args.connections)
                    if writer is not None:
                        r["writer"] = written(writer)
                    rounds[kind].append(r)
                    wrote = f"  writer {r['writer']}" if writer is not None else ""
                    print(
                        f"  {view:<17} round {n} {kind:<12} {r['rps']:8.0f} req/s  p50 "
                        f"{r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}"
                        + wrote,
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
            if view == TARGET_VIEW:  # under the same writes; p99 against bare's, round by round
                pairs = zip(rounds["raw-writing"], rounds["ours-writing"], strict=True)
                ratio["ours-writing"] = statistics.median(o["rps"] / a["rps"] for a, o in pairs)
                pairs = zip(rounds["bare"], rounds["ours-writing"], strict=True)
                ratio["p99-writing"] = statistics.median(
                    o["p99_ms"] / a["p99_ms"] for a, o in pairs
                )
                pairs = zip(rounds["bare-writing"], rounds["ours-writing"], strict=True)
                ratio["p99-both-writing"] = statistics.median(
                    o["p99_ms"] / a["p99_ms"] for a, o in pairs
                )
                ratio["batches"] = statistics.median(
                    r["writer"]["batches"] for k in WRITING for r in rounds[k]
                )
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
    parser.add_argument("--databases", default="sqlite,postgres", help="which of them to run")
    parser.add_argument(
        "--writer-pause",
        type=float,
        default=3.0,
        help="seconds the cycle writer pauses between bursts (POLL_INTERVAL, short for a bench)",
    )
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
    dbs = {name: url for name, url in dbs.items() if name in args.databases.split(",")}
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
    print(
        f"\nwhile writing ({TARGET_VIEW}; bench/cycle_writer.py: bursts of 8 batches of 64 "
        f"pairs for other tickers, {args.writer_pause:g} s pause):"
    )
    print(
        "| database | raw while writing req/s (p99 ms) | roll-ups while writing req/s (p99 ms) "
        "| ratio | roll-ups idle req/s (p99 ms) | bare p99 ms | p99 / bare p99 "
        "| bare while writing p99 ms | p99 / that | batches per round | verdict |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, views in results.items():
        r = views[TARGET_VIEW]
        raw, ours = r["median"]["raw-writing"], r["median"]["ours-writing"]
        idle, bare = r["median"]["ours"], r["median"]["bare"]
        bare_w = r["median"]["bare-writing"]
        ok = (
            r["errors"] == 0
            and r["ratio"]["ours-writing"] >= 5
            and r["ratio"]["p99-writing"] <= 1.5
        )
        failed |= not ok
        print(
            f"| {name} | {raw['rps']:.0f} ({raw['p99_ms']:.1f}) | {ours['rps']:.0f} "
            f"({ours['p99_ms']:.1f}) | {r['ratio']['ours-writing']:.1f}x | {idle['rps']:.0f} "
            f"({idle['p99_ms']:.1f}) | {bare['p99_ms']:.1f} | {r['ratio']['p99-writing']:.2f}x "
            f"| {bare_w['p99_ms']:.1f} | {r['ratio']['p99-both-writing']:.2f}x "
            f"| {r['ratio']['batches']:.0f} | {'PASS' if ok else 'FAIL'} |"
        )
    print(
        "targets while writing: >= 5x the raw GROUP BY under the same writes, p99 <= 1.5x "
        "bare's (the idle bare kind of the same round; beside it, bare under the same writes)"
    )
    summary = {
        name: f"{v[TARGET_VIEW]['ratio']['ours-writing']:.1f}x raw, "
        f"p99 {v[TARGET_VIEW]['ratio']['p99-writing']:.2f}x bare "
        f"({v[TARGET_VIEW]['ratio']['p99-both-writing']:.2f}x bare under the same writes)"
        for name, v in results.items()
    }
    print(
        f"SUMMARY {'FAIL' if failed else 'PASS'}: "
        + "; ".join(f"{n} {text}" for n, text in summary.items())
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
