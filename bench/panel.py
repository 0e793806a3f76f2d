"""Benchmark a panel session while scores are written: ours (roll-ups and the
drill-down) against the same session without roll-ups, side by side.

A panel session, per ticker: open its 30-day 15m view, drill into 3 non-empty buckets
(the first page of each, ``--limit`` articles), and page twice (the next two pages of
the largest bucket; the second bucket's next page when the first has no third). Six
requests. For each database (as bench/history.py: ``seed-demo``, 100 tickers, 100k
events, 30 days), two gunicorn servers with the service's workers and threads:

- **ours** (``scorer.process.wsgi:app``): ``/v1/scores/history?interval=15m`` and the
  buckets' ``articles`` links, ``next_cursor`` for the pages;
- **without roll-ups** (bench/history_raw_app.py, bare Bottle): the view as one GROUP BY
  over the raw events, the drill-down as a plain query over the same instants (the
  bucket's range as ours takes it), paged by offset; no auth, no validation.

wrk ``-t2 -c16`` cycles through every ticker's session (100 sessions, 600 paths),
alternating the two for ``--rounds`` rounds, while ``bench/cycle_writer.py`` commits
score batches for other tickers (a burst, then ``--writer-pause``) during each
measurement. Reports req/s, sessions/s, p50, p99, ratios, and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.history import RAW_APP, WRITER_TICKERS, seed, tickers, writing, written  # noqa: E402
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

KINDS = ("without roll-ups", "ours")
SPAN = timedelta(days=30)


def _z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def sessions_of(
    port: int, names: list[str], end: datetime, limit: int
) -> tuple[list[str], list[str]]:
    """Each ticker's session as ours' paths and as the raw app's, found by walking ours."""
    from scorer.storage.buckets import bucket_of, source_range

    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}"
    ours: list[str] = []
    raw: list[str] = []
    view = f"ticker={{t}}&interval=15m&from={_z(end - SPAN)}&to={_z(end)}"
    for t in names:
        history = "/v1/scores/history?" + view.format(t=t)
        status, body = get(base + history, auth)
        assert status == 200, (status, body[:200])
        buckets = [b for b in json.loads(body)["data"] if b["count"] > 0]
        top = sorted(buckets, key=lambda b: -b["count"])[:3]
        if len(top) < 3:
            continue
        firsts = [f"{b['articles']}&limit={limit}" for b in top]
        pages: list[str] = []
        offsets: list[tuple[int, int]] = []  # (bucket, offset) of each next page
        for k, first in enumerate(firsts[:2]):
            url = first
            for page in (1, 2):
                status, body = get(base + url, auth)
                assert status == 200, (status, body[:200])
                cursor = json.loads(body)["next_cursor"]
                if cursor is None or len(pages) == 2:
                    break
                url = f"{first}&cursor={cursor}"
                pages.append(url)
                offsets.append((k, page * limit))
            if len(pages) == 2:
                break
        if len(pages) < 2:
            continue
        ours += [history, *firsts, *pages]
        ranges = []
        for b in top:
            start = datetime.fromisoformat(b["start"].replace("Z", "+00:00"))
            lo, hi = source_range("15m", bucket_of("15m", start))
            ranges.append(f"/raw/articles?ticker={t}&from={_z(lo)}&to={_z(hi)}&limit={limit}")
        raw += ["/raw/history?" + view.format(t=t), *ranges]
        raw += [f"{ranges[k]}&offset={offset}" for k, offset in offsets]
    return ours, raw


def run_db(
    name: str, url: str, args: argparse.Namespace, work: Path, model: Path
) -> dict[str, Any]:
    print(f"\n== {name} ==", flush=True)
    started = time.monotonic()
    seed(url, args.reuse_db)
    print(f"  ready in {time.monotonic() - started:.1f}s", flush=True)
    env = server_env(url, model)
    workers, threads = concurrency(env)
    names = [t for t in tickers(url) if t not in WRITER_TICKERS]
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    ports = {"without roll-ups": args.port, "ours": args.port + 1}
    procs = {
        "without roll-ups": start(
            "raw", args.port, env, workers, threads, work / f"{name}-raw.log", RAW_APP
        ),
        "ours": start("ours", args.port + 1, env, workers, threads, work / f"{name}-ours.log"),
    }
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        probe = f"http://127.0.0.1:{ports['ours']}/v1/scores/history?ticker={names[0]}&interval=15m"
        wait_until(lambda: get(probe, auth)[0] == 200, 90, "ours up")
        raw_probe = f"http://127.0.0.1:{ports['without roll-ups']}/raw/history?ticker=A"
        wait_until(lambda: get(raw_probe)[0] in (200, 500), 90, "raw up")
        ours, raw = sessions_of(ports["ours"], names, end, args.limit)
        print(
            f"  {len(ours) // 6} sessions of 6 requests (limit {args.limit} per page)", flush=True
        )
        for path in raw[:6]:
            status, body = get(f"http://127.0.0.1:{ports['without roll-ups']}{path}")
            assert status == 200, (path, status, body[:200])
        luas = {}
        for kind, listed in (("ours", ours), ("without roll-ups", raw)):
            luas[kind] = work / f"{name}-{kind.split()[0]}.lua"
            write_paths_lua(luas[kind], listed, args.accept_encoding)
        rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for n in range(1, args.rounds + 1):
            for kind in KINDS:
                writer = writing(url, args.warmup + args.seconds + 1, args.writer_pause)
                wrk(ports[kind], luas[kind], args.warmup, args.connections)
                r = wrk(ports[kind], luas[kind], args.seconds, args.connections)
                r["writer"] = written(writer)
                rounds[kind].append(r)
                print(
                    f"  round {n} {kind:<16} {r['rps']:8.0f} req/s ({r['rps'] / 6:6.0f} sessions/s)"
                    f"  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}"
                    f"  writer {r['writer']}",
                    flush=True,
                )
    finally:
        for proc in procs.values():
            stop(proc)
    med = {
        k: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50_ms", "p99_ms")}
        for k, rs in rounds.items()
    }
    pairs = list(zip(rounds["without roll-ups"], rounds["ours"], strict=True))
    return {
        "median": med,
        "ratio": statistics.median(o["rps"] / a["rps"] for a, o in pairs),
        "p99_ratio": statistics.median(o["p99_ms"] / a["p99_ms"] for a, o in pairs),
        "batches": statistics.median(r["writer"]["batches"] for rs in rounds.values() for r in rs),
        "errors": sum(r["errors"] for rs in rounds.values() for r in rs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "panel")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--limit", type=int, default=4, help="articles per drill-down page")
    parser.add_argument("--port", type=int, default=18541, help="without roll-ups; ours is + 1")
    parser.add_argument("--accept-encoding", default="gzip")
    parser.add_argument("--reuse-db", action="store_true", help="keep a seeded database")
    parser.add_argument("--writer-pause", type=float, default=3.0, help="POLL_INTERVAL, short")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny-model"
    if not (model / "config.json").exists():
        from tests.helpers.tiny_model import build_tiny_model

        build_tiny_model(model)
    dbs = {"sqlite": f"sqlite:///{work / 'panel.db'}"}
    if args.postgres_url:
        dbs["postgres"] = args.postgres_url
    if not args.reuse_db:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / 'panel.db'}{suffix}").unlink(missing_ok=True)
    results = {name: run_db(name, url, args, work, model) for name, url in dbs.items()}
    print(
        f"\nmedians of {args.rounds} rounds, wrk -t2 -c{args.connections}, {args.seconds:g}s each, "
        f"while bench/cycle_writer.py writes (pause {args.writer_pause:g} s):"
    )
    print(
        "| database | without roll-ups req/s (sessions/s, p99 ms) | ours req/s (sessions/s, "
        "p99 ms) | ratio | p99 ratio | writer batches per round |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        a, o = r["median"]["without roll-ups"], r["median"]["ours"]
        print(
            f"| {name} | {a['rps']:.0f} ({a['rps'] / 6:.0f}, {a['p99_ms']:.1f}) | {o['rps']:.0f} "
            f"({o['rps'] / 6:.0f}, {o['p99_ms']:.1f}) | {r['ratio']:.1f}x | {r['p99_ratio']:.2f}x "
            f"| {r['batches']:.0f} |"
        )
    failed = any(r["errors"] for r in results.values())
    print(
        f"SUMMARY {'FAIL (errors)' if failed else 'shown'}: panel session while writing, ours vs "
        "without roll-ups: "
        + "; ".join(
            f"{n} {r['ratio']:.1f}x req/s, p99 {r['median']['ours']['p99_ms']:.1f} ms "
            f"({r['p99_ratio']:.2f}x)"
            for n, r in results.items()
        )
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
