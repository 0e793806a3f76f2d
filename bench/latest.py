"""Benchmark ``GET /v1/scores/latest`` against the bare anchor, side by side.

One run (see bench/README.md):

1. builds a database with the real schema (alembic) holding 100 tickers x
   1,000 articles = 100k score events: a SQLite file, and a throwaway database on the
   local Postgres (``--postgres-url``, dropped at the end; ``--databases`` picks);
2. starts two gunicorn processes on loopback: the bare anchor (bench/bare_app.py)
   and the real service (``scorer.process.wsgi:app`` with
   ``-c python:scorer.process.gunicorn_conf``,
   a tiny model so health comes up), with the same worker and thread counts;
3. drives each with wrk (16 connections, 10 random tickers of the 100 per request,
   drawn from 200 fixed lists), alternating anchor/ours for several rounds;
4. runs one more round of each while a separate process writes scoring batches
   (64 score events per transaction every 200 ms) into the same database;
5. measures ``/v1/articles`` (ours only: the anchor has no such route): the first
   page and the tenth (its cursor fetched by paging from the first), 50 per page.

Needs ``wrk`` (``apt-get install -y wrk``). Every load loop is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token-0123456789abcdef"
N_TICKERS, ARTICLES_PER_TICKER = 100, 1_000
N_LISTS, PER_REQUEST = 200, 10
LABELS = ("positive", "negative", "neutral")
MODEL_ID, REVISION = "bench/model", "r1"


# --- the database -----------------------------------------------------------------


def tickers() -> list[str]:
    rng = random.Random(7)
    names: set[str] = set()
    while len(names) < N_TICKERS:
        names.add(
            "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(2, 4)))
        )
    return sorted(names)


def _event(rng: random.Random, article_id: int, ticker: str, published: datetime) -> dict[str, Any]:
    p = [rng.random() for _ in range(3)]
    total = sum(p)
    pos, neg, neu = (x / total for x in p)
    return {
        "id": article_id,
        "article_id": article_id,
        "ticker": ticker,
        "model_id": MODEL_ID,
        "model_revision": REVISION,
        "method": "clauses-1",  # scorer.scoring.sentiment.METHOD, without importing it here
        "scope": "article",
        "label": LABELS[max(range(3), key=lambda i: (pos, neg, neu)[i])],
        "score": pos - neg,
        "p_positive": pos,
        "p_negative": neg,
        "p_neutral": neu,
        "sentences": 2,
        "published_at": published,
        "scored_at": published + timedelta(minutes=3),
    }


def _article(article_id: int, ticker: str, published: datetime) -> dict[str, Any]:
    return {
        "id": article_id,
        "dedup_key": f"bench-{article_id:08d}",
        "title": f"{ticker} shares move after quarterly update, story {article_id}",
        "summary": f"Analysts discuss {ticker} guidance, margins and the outlook. " * 3,
        "url": f"https://news.example/{ticker.lower()}/{article_id}",
        "source": "Bench Wire",
        "published_at": published,
        "seen_at": published + timedelta(minutes=1),
    }


def sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else None


def fresh_postgres(admin_url: str, name: str, *, drop_only: bool = False) -> str:
    """(Re)create the throwaway database ``name`` on the server of ``admin_url``."""
    from sqlalchemy import create_engine, make_url

    admin = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(str(admin.url)).set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    return url


def build_db(url: str) -> None:
    """Migrate (alembic, as the release phase does), then bulk-insert with Core."""
    from sqlalchemy import insert

    from scorer.storage.db import make_engine, migrate
    from scorer.storage.tables import Article, ArticleTicker, ScoreEvent

    path = sqlite_path(url)
    for suffix in ("", "-wal", "-shm", ".scheduler.lock") if path else ():
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(url)
    migrate(engine)

    rng = random.Random(11)
    names = tickers()
    now = datetime.now(UTC).replace(microsecond=0)
    articles, links, events = [], [], []
    for article_id in range(1, N_TICKERS * ARTICLES_PER_TICKER + 1):
        ticker = names[article_id % N_TICKERS]  # interleaved, as real news arrives
        published = now - timedelta(seconds=rng.randint(3_600, 90 * 86_400))
        articles.append(_article(article_id, ticker, published))
        links.append({"article_id": article_id, "ticker": ticker})
        events.append(_event(rng, article_id, ticker, published))
    with engine.begin() as conn:  # one transaction, executemany per table
        conn.execute(insert(Article), articles)
        conn.execute(insert(ArticleTicker), links)
        conn.execute(insert(ScoreEvent), events)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        if path:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.commit()
    engine.dispose()


def writer(url: str, seconds: float, interval: float, batch: int) -> None:
    """A scoring batch every ``interval``: ``batch`` new articles with their ticker and
    score event, one transaction each (as jobs/ingest.py + jobs/score.py commit),
    through scorer.storage.db.make_engine (WAL, busy timeout). Stops after ``seconds``."""
    from sqlalchemy import func, insert, select

    from scorer.storage.db import make_engine
    from scorer.storage.tables import Article, ArticleTicker, ScoreEvent

    engine = make_engine(url)
    with engine.connect() as conn:
        next_id = int(conn.scalar(select(func.max(Article.id))) or 0) + 1
    rng, names = random.Random(), tickers()
    commits: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        now = datetime.now(UTC)
        pairs = [(i, rng.choice(names)) for i in range(next_id, next_id + batch)]
        with engine.begin() as conn:
            conn.execute(insert(Article), [_article(i, t, now) for i, t in pairs])
            conn.execute(insert(ArticleTicker), [{"article_id": i, "ticker": t} for i, t in pairs])
            conn.execute(insert(ScoreEvent), [_event(rng, i, t, now) for i, t in pairs])
        next_id += batch
        commits.append(time.monotonic() - started)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    engine.dispose()
    commits.sort()
    print(
        json.dumps(
            {
                "batches": len(commits),
                "events": len(commits) * batch,
                "commit_ms_p50": round(1000 * commits[len(commits) // 2], 1) if commits else None,
                "commit_ms_max": round(1000 * commits[-1], 1) if commits else None,
            }
        ),
        flush=True,
    )


# --- servers and load ---------------------------------------------------------------


def server_env(url: str, model: Path, body: Path) -> dict[str, str]:
    """A clean environment: nothing inherited that could reach Sentry or another DB."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return {
        **keep,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "RACK_SERVICE_TOKEN": TOKEN,
        "FINBERT_MODEL": str(model),
        # No prepared ONNX artifact here: the tiny model loads with transformers (the
        # larger heap of the two runtimes), whatever sits in the default var/model.
        "MODEL_ARTIFACT_DIR": str(model.parent / "no-artifact"),
        "ENV": "development",
        "FEEDS": "none",  # loopback only: never the shipped catalogue's public feeds
        "POLL_INTERVAL": "3600",  # at most one (empty) cycle, and only inside market hours
        "MODEL_THREADS": "1",
        # The anchor's driver URL: a file path for sqlite3, a libpq URL for psycopg.
        "BENCH_DB": str(sqlite_path(url) or url.replace("postgresql+psycopg://", "postgresql://")),
        "BENCH_BODY": str(body),  # the ceiling's body: what ours answered (bench/bare_app.py)
    }


def concurrency(env: dict[str, str]) -> tuple[int, int]:
    """The service's gunicorn workers and threads, read from its own config module."""
    code = "import scorer.process.gunicorn_conf as c; print(c.workers, c.threads)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    workers, threads = out.stdout.split()
    return int(workers), int(threads)


def start(
    kind: str,
    port: int,
    env: dict[str, str],
    workers: int,
    threads: int,
    log: Path,
    anchor: str = "bench.bare_app:app",
) -> subprocess.Popen[bytes]:
    """Ours ("ours": the Procfile's server) or the anchor app, with the same workers
    and threads, on loopback."""
    gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    if kind == "ours":  # the Procfile's command; --bind overrides the config's 0.0.0.0:$PORT
        cmd = [*gunicorn, "-c", "python:scorer.process.gunicorn_conf", "--threads", str(threads)]
        cmd += ["scorer.process.wsgi:app"]
    else:
        cmd = [*gunicorn, "-w", str(workers), "-k", "gthread", "--threads", str(threads)]
        cmd += [anchor]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # gunicorn master: graceful stop of its worker
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this script started
            proc.wait(timeout=5)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(check: Any, timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(0.25)
    print(f"  ! {what}: not within {timeout:.0f}s", flush=True)
    return False


LUA = r"""
-- Generated by bench/latest.py (also for bench/history.py): cycles through fixed
-- paths, counts non-2xx.
local paths = {%(paths)s}
local headers = {["Authorization"] = "Bearer %(token)s"%(extra)s}
local threads, reqs, i = {}, {}, 0
non2xx = 0  -- a global: done() reads it from each thread with thread:get

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for k, p in ipairs(paths) do
    reqs[k] = wrk.format("GET", p, headers)
  end
  i = (id * 67) %% #reqs  -- threads start at different lists
end

function request()
  i = i %% #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"non2xx":%%d,"socket_errors":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, bad, e.connect + e.read + e.write + e.timeout))
end
"""


def write_lua(path: Path, lists: list[list[str]]) -> None:
    paths = ",".join(f'"/v1/scores/latest?tickers={",".join(t)}"' for t in lists)
    path.write_text(LUA % {"paths": paths, "token": TOKEN, "extra": ""})


def write_paths_lua(path: Path, urls: list[str], accept_encoding: str = "") -> None:
    """A wrk script cycling through ``urls``; ``accept_encoding``: sent as a browser would."""
    extra = f', ["Accept-Encoding"] = "{accept_encoding}"' if accept_encoding else ""
    paths = ",".join(f'"{u}"' for u in urls)
    path.write_text(LUA % {"paths": paths, "token": TOKEN, "extra": extra})


def articles_pages(
    port: int, work: Path, args: argparse.Namespace, db_url: str
) -> dict[str, dict[str, Any]]:
    """/v1/articles, 50 per page: the first page, and the tenth (cursor from paging);
    then the first page again while the writer commits (each commit is a new first
    page: mostly rendered, not kept)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}/v1/articles?limit=50"
    url, cursor = base, None
    for _ in range(9):
        status, body = get(url, auth)
        assert status == 200, (status, body[:200])
        cursor = json.loads(body)["next_cursor"]
        url = f"{base}&cursor={cursor}"
    out = {}
    for name, path in (
        ("first page", "/v1/articles?limit=50"),
        ("tenth page", url[len(f"http://127.0.0.1:{port}") :]),
    ):
        lua = work / f"articles-{name.split()[0]}.lua"
        write_paths_lua(lua, [path])
        out[name] = r = measure(port, lua, args)
        print(fmt(f"articles {name}", r), flush=True)
    first = work / "articles-first.lua"
    out["first page while scoring"] = r = while_writing(port, first, db_url, args)
    print(fmt("articles first, scoring", r), flush=True)
    return out


def while_writing(port: int, lua: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """One measured wrk run while ``bench/latest.py writer`` commits scoring batches."""
    wrk(port, lua, args.warmup, args.connections)
    writing = subprocess.Popen(
        [sys.executable, __file__, "writer", url, "--seconds", f"{args.seconds + 1:g}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # the writer is committing before the load starts
    r = wrk(port, lua, args.seconds, args.connections)
    out, _ = writing.communicate(timeout=args.seconds + 30)
    r["writer"] = out.strip()
    return r


def wrk(port: int, lua: Path, seconds: float, connections: int) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(lua)]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 30
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    r = json.loads(line[6:])
    errors = r["non2xx"] + r["socket_errors"]
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "requests": r["requests"],
        "errors": errors,
        "non2xx": r["non2xx"],
    }


def measure(port: int, lua: Path, args: argparse.Namespace) -> dict[str, Any]:
    wrk(port, lua, args.warmup, args.connections)  # warm-up, discarded
    return wrk(port, lua, args.seconds, args.connections)


def fmt(name: str, r: dict[str, Any]) -> str:
    return (
        f"  {name:<26} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.2f} ms   "
        f"p99 {r['p99_ms']:6.2f} ms   max {r['max_ms']:7.2f} ms   "
        f"errors {r['errors']} (non-2xx {r['non2xx']}) of {r['requests']}"
    )


def check_responses(anchor: int, ours: int, lists: list[list[str]], body: Path) -> None:
    """Both answer 200 with every ticker of a list; ours needs the token. Ours's body
    for the first list is kept in ``body`` for the ceiling to send."""
    query = "/v1/scores/latest?tickers=" + ",".join(lists[0])
    status, raw = get(f"http://127.0.0.1:{anchor}{query}")
    assert status == 200 and len(json.loads(raw)["data"]) == PER_REQUEST, (status, raw[:200])
    status, data = get(f"http://127.0.0.1:{ours}{query}", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and len(json.loads(data)["data"]) == PER_REQUEST, (status, data[:200])
    assert get(f"http://127.0.0.1:{ours}{query}")[0] == 401
    body.write_bytes(data)
    print(f"  ours answers {len(data)} bytes for 10 tickers; 401 without the token", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "latest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, help="override gunicorn threads, for both")
    parser.add_argument("--reuse-db", action="store_true", help="skip building the SQLite file")
    parser.add_argument("--port", type=int, default=18431, help="anchor; ours is port + 1")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a server to create the throwaway database reasonator_bench_latest on",
    )
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("writer", help="internal: the scoring-batch writer")
    w.add_argument("url")
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--interval", type=float, default=0.2)
    w.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    if args.command == "writer":
        writer(args.url, args.seconds, args.interval, args.batch)
        return

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny-model"
    if not (model / "config.json").exists():
        from tests.helpers.tiny_model import build_tiny_model

        build_tiny_model(model)
    verdicts = []
    for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
        print(f"\n=== {kind} ===", flush=True)
        if kind == "sqlite":
            url = f"sqlite:///{work / 'latest.db'}"
            if not (args.reuse_db and (work / "latest.db").exists()):
                started = time.monotonic()
                build_db(url)
                print(f"built {url} in {time.monotonic() - started:.1f}s", flush=True)
            verdicts.append(f"{kind}: " + run(url, model, work, args))
            continue
        url = fresh_postgres(args.postgres_url, "reasonator_bench_latest")
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            started = time.monotonic()
            build_db(url)
            print(f"built reasonator_bench_latest in {time.monotonic() - started:.1f}s", flush=True)
            verdicts.append(f"{kind}: " + run(url, model, work, args))
        finally:
            fresh_postgres(args.postgres_url, "reasonator_bench_latest", drop_only=True)
    print("\n" + "\n".join(verdicts))


def run(url: str, model: Path, work: Path, args: argparse.Namespace) -> str:
    """One database: anchor vs ours, rounds, a round while scoring, articles pages."""
    rng = random.Random(3)
    names = tickers()
    lists = [rng.sample(names, PER_REQUEST) for _ in range(N_LISTS)]
    lua = work / "latest.lua"
    write_lua(lua, lists)

    body = work / "bare-body.json"
    env = server_env(url, model, body)
    workers, threads = concurrency(env)
    threads = args.threads or threads
    print(f"gunicorn for both: workers={workers} gthread threads={threads}", flush=True)
    anchor_port, ours_port = args.port, args.port + 1
    procs = [
        start("anchor", anchor_port, env, workers, threads, work / "anchor.log"),
        start("ours", ours_port, env, workers, threads, work / "ours.log"),
    ]
    try:
        wait_until(
            lambda: get(f"http://127.0.0.1:{anchor_port}/v1/scores/latest?tickers=X")[0] == 200,
            30,
            "anchor up",
        )
        # Health 200 means the model is loaded and the worker is idle again.
        healthy = wait_until(
            lambda: get(f"http://127.0.0.1:{ours_port}/v1/health")[0] == 200, 90, "ours healthy"
        )
        print(f"ours: health {'200' if healthy else 'still 503 (latest needs no model)'}")
        check_responses(anchor_port, ours_port, lists, body)
        return compare(anchor_port, ours_port, url, lua, work, args)
    finally:
        for proc in procs:
            stop(proc)


def compare(
    anchor_port: int, ours_port: int, url: str, lua: Path, work: Path, args: argparse.Namespace
) -> str:
    print(
        f"\nload: wrk -t2 -c{args.connections}, {args.warmup:g}s warm-up + "
        f"{args.seconds:g}s measured, 10 tickers/request from {N_LISTS} lists",
        flush=True,
    )
    # The ceiling: the anchor's gunicorn sending ours's body for one list, kept.
    ceiling_lua = work / "ceiling.lua"
    write_paths_lua(ceiling_lua, ["/bare/latest"])
    kinds = (("anchor", anchor_port, lua), ("ours", ours_port, lua))
    kinds += (("ceiling", anchor_port, ceiling_lua),)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in kinds}
    for n in range(1, args.rounds + 1):
        for name, port, script in kinds:
            results[name].append(r := measure(port, script, args))
            print(fmt(f"round {n} {name}", r), flush=True)

    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
        for name, rs in results.items()
    }
    ratios = [o["rps"] / a["rps"] for a, o in zip(results["anchor"], results["ours"], strict=True)]
    bounds = [
        c["rps"] / a["rps"] for a, c in zip(results["anchor"], results["ceiling"], strict=True)
    ]
    print("\nmedians:")
    for name in ("anchor", "ours", "ceiling"):
        m = med[name]
        print(
            f"  {name:<7} {m['rps']:8.0f} req/s   p50 {m['p50_ms']:6.2f} ms   "
            f"p99 {m['p99_ms']:6.2f} ms"
        )
    print(
        f"  ratio ours/anchor req/s: median {statistics.median(ratios):.2f} "
        f"(per round {', '.join(f'{x:.2f}' for x in ratios)}); "
        f"p99 ours/anchor {med['ours']['p99_ms'] / med['anchor']['p99_ms']:.2f}"
    )
    print(
        f"  ceiling/anchor req/s (the most any app on this server could show): median "
        f"{statistics.median(bounds):.2f} (per round {', '.join(f'{x:.2f}' for x in bounds)}); "
        f"ours/ceiling {med['ours']['rps'] / med['ceiling']['rps']:.2f}"
    )

    print("\nwhile scoring (64 events/transaction every 200 ms in a separate process):")
    scoring = {}
    for name, port in (("anchor", anchor_port), ("ours", ours_port)):
        scoring[name] = r = while_writing(port, lua, url, args)
        print(fmt(f"{name} while scoring", r) + f"\n    writer: {r['writer']}", flush=True)
    print(
        f"  ours p99 while scoring {scoring['ours']['p99_ms']:.1f} ms vs the anchor's idle "
        f"p99 {med['anchor']['p99_ms']:.1f} ms: "
        f"{'PASS' if scoring['ours']['p99_ms'] <= med['anchor']['p99_ms'] else 'FAIL'}"
    )

    print("\n/v1/articles, 50 per page (ours):")
    pages = articles_pages(ours_port, work, args, url)
    errors = sum(r["errors"] for rs in results.values() for r in rs)
    ratio = statistics.median(ratios)
    errors += sum(r["errors"] for r in scoring.values()) + sum(r["errors"] for r in pages.values())
    return (
        f"latest ours {med['ours']['rps']:.0f} req/s vs anchor {med['anchor']['rps']:.0f} "
        f"({ratio:.2f}x, {'PASS' if ratio >= 2 else 'FAIL'} >= 2x; ceiling "
        f"{statistics.median(bounds):.2f}x); "
        f"p99 {med['ours']['p99_ms']:.1f} ms vs {med['anchor']['p99_ms']:.1f} ms; "
        f"p99 while scoring {scoring['ours']['p99_ms']:.1f} ms (anchor idle "
        f"{med['anchor']['p99_ms']:.1f}); articles first page "
        f"{pages['first page']['rps']:.0f} req/s (p99 {pages['first page']['p99_ms']:.1f} ms), "
        f"tenth {pages['tenth page']['rps']:.0f} (p99 {pages['tenth page']['p99_ms']:.1f} ms), "
        f"first while scoring {pages['first page while scoring']['rps']:.0f}; errors {errors}"
    )


if __name__ == "__main__":
    main()
