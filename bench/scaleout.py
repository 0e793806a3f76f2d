"""Scale-out on Postgres: a re-score backlog shared by 1 and by 2 worker processes.

Usage::

    python bench/scaleout.py [--pairs 5000] [--tickers-per-article 2] [--rounds 1]
                             [--postgres postgresql://postgres@127.0.0.1:5432/test]

In one run, on a database of its own on that server (dropped at the end):

1. the FinBERT-sized model (BERT-base config, random weights) and its serving
   artifact, as ``bench/scoring.py`` builds them (cached under var/bench/);
2. for 1 worker, then 2 (alternating per round): start that many
   ``python -m scorer worker`` processes with ``MODEL_THREADS=1`` (each model pass
   logged: this script's ``--child-worker`` wraps ``jobs.score.score_articles``), wait
   for their heartbeats to show the model loaded, store a backlog of ``--pairs``
   pending (article, ticker) pairs (unique sentences, so no worker's sentence cache
   helps), and time it from the first model pass to the last event committed;
3. duplicate model passes (an article through the model twice), the Postgres
   connections the workers held (``pg_stat_activity``, sampled), each worker's share
   of time in the model, and each worker's peak RSS;
4. a read-only web process (``WEB_ROLE=read``, gunicorn as the Procfile runs it): the
   peak RSS of its worker after the first requests (health and latest).

Figures are medians over rounds, with ``uptime`` load before and after: this machine
is shared, so they are from a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scoring import DEFAULT_REFERENCE, artifact_for, finbert_sized, make_texts  # noqa: E402

TARGET_SPEEDUP, TARGET_DUPLICATES, TARGET_READ_RSS_MB = 1.7, 0, 150.0
TICKERS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "JPM"]
TOKEN = "bench-token-0123456789abcdef"


def child_worker() -> int:
    """``python -m scorer worker`` with every model pass logged to PASS_LOG."""
    import jobs.score
    from scorer.process.cli import main

    original = jobs.score.score_articles
    log_path = os.environ["PASS_LOG"]

    def counted(classifier: Any, texts: Any, mentions: Any, cache: Any = None) -> Any:
        started = time.time()
        result = original(classifier, texts, mentions, cache)
        titles = [t for t, _ in texts]
        line = {"pid": os.getpid(), "t0": started, "t1": time.time(), "titles": titles}
        with open(log_path, "a") as out:
            out.write(json.dumps(line) + "\n")
        return result

    jobs.score.score_articles = counted  # type: ignore[assignment]
    return main(["worker"])


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def unique_texts(n: int) -> list[tuple[str, str]]:
    """Feed-like texts whose every sentence is unique (no sentence-cache hits)."""
    texts = []
    for i, (title, summary) in enumerate(make_texts(n)):
        sentences = [s for s in summary.split(". ") if s]
        marked = ". ".join(f"{s.rstrip('.')} (item {i}.{k})" for k, s in enumerate(sentences))
        texts.append((f"{title} (report {i})", marked + "."))
    return texts


def seed(engine: Any, articles: int, per_article: int) -> None:
    from sqlalchemy import insert

    from scorer.storage.tables import Article, ArticleTicker

    now = datetime.now(UTC)
    rows, tags = [], []
    for i, (title, summary) in enumerate(unique_texts(articles)):
        when = now - timedelta(seconds=articles - i)
        rows.append(
            {
                "id": i + 1,
                "dedup_key": f"bench-{i}",
                "title": title,
                "summary": summary,
                "url": None,
                "source": "Bench Wire",
                "published_at": when,
                "seen_at": when,
            }
        )
        for k in range(per_article):
            tags.append({"article_id": i + 1, "ticker": TICKERS[(i + k) % len(TICKERS)]})
    with engine.begin() as conn:
        conn.execute(insert(Article), rows)
        conn.execute(insert(ArticleTicker), tags)


def reset(engine: Any) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE articles, article_tickers, score_events, score_rollups, meta, "
                "workers RESTART IDENTITY CASCADE"
            )
        )


def count(engine: Any, sql: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def vmhwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_round(
    engine: Any, env: dict[str, str], workers: int, articles: int, per_article: int, tmp: Path
) -> dict[str, Any]:
    reset(engine)
    passes = tmp / f"passes-{workers}-{uuid.uuid4().hex[:6]}.jsonl"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child-worker"],
            cwd=ROOT,
            env={**env, "DYNO": f"worker.{n + 1}", "PASS_LOG": str(passes)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    try:
        deadline = time.monotonic() + 300
        loaded = "SELECT count(*) FROM workers WHERE model_id IS NOT NULL"
        while count(engine, loaded) < workers:
            assert time.monotonic() < deadline, "workers did not load their model"
            assert all(p.poll() is None for p in procs), "a worker exited"
            time.sleep(0.2)
        seed(engine, articles, per_article)
        pairs = articles * per_article
        connections = 0
        database = engine.url.database
        while (done := count(engine, "SELECT count(*) FROM score_events")) < pairs:
            assert all(p.poll() is None for p in procs), "a worker exited"
            connections = max(
                connections,
                count(
                    engine,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                    f"'{database}' AND pid <> pg_backend_pid()",
                ),
            )
            time.sleep(0.2)
        finished = time.time()
        rss = [vmhwm_mb(p.pid) for p in procs]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
    log = [json.loads(line) for line in passes.read_text().splitlines()]
    started = min(entry["t0"] for entry in log)
    titles = [t for entry in log for t in entry["titles"]]
    model_time: dict[int, float] = {}
    for entry in log:
        model_time[entry["pid"]] = model_time.get(entry["pid"], 0.0) + entry["t1"] - entry["t0"]
    seconds = finished - started
    by = count(engine, "SELECT count(DISTINCT scored_by) FROM score_events")
    return {
        "workers": workers,
        "pairs": done,
        "seconds": seconds,
        "pairs_per_s": done / seconds,
        "articles_per_s": articles / seconds,
        "duplicate_passes": len(titles) - len(set(titles)),
        "scorers": by,
        "model_share": statistics.mean(t / seconds for t in model_time.values()),
        "connections": connections,
        "peak_rss_mb": max(rss),
    }


def read_web_rss(env: dict[str, str]) -> dict[str, float]:
    """Peak RSS of a WEB_ROLE=read gunicorn worker after its first requests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web_env = {**env, "WEB_ROLE": "read", "PORT": str(port), "RACK_SERVICE_TOKEN": TOKEN}
    command = ["gunicorn", "-c", "python:scorer.process.gunicorn_conf", "scorer.process.wsgi:app"]
    master = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=web_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(f"{base}/v1/health")
                body = json.loads(urllib.request.urlopen(req, timeout=5).read())
            except urllib.error.HTTPError as exc:
                body = json.loads(exc.read())
            except OSError:
                body = {}
            if "workers" in body:
                break
            assert time.monotonic() < deadline, "the read web process did not answer"
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/v1/scores/latest?tickers=AAPL,MSFT", "/v1/articles?ticker=AAPL"):
            urllib.request.urlopen(urllib.request.Request(base + path, headers=auth), timeout=10)
        children = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit()
            and (p / "stat").exists()
            and int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master.pid
        ]
        return {
            "worker_peak_rss_mb": max(vmhwm_mb(pid) for pid in children),
            "master_peak_rss_mb": vmhwm_mb(master.pid),
        }
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--tickers-per-article", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--reference-model", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    from sqlalchemy import create_engine, text

    from scorer.storage.db import make_engine, migrate

    model = finbert_sized(args.reference_model)
    artifact = artifact_for(model, "finbert-sized-artifact")
    admin = create_engine(
        args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    name = f"reasonator_scaleout_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    tmp = ROOT / "var" / "bench" / "scaleout"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "FINBERT_MODEL": str(model),
        "FINBERT_MODEL_SHA": "unknown",
        "MODEL_ARTIFACT_DIR": str(artifact),
        "MODEL_THREADS": "1",
        "FEEDS": "none",
        "TICKERS": ",".join(TICKERS),
        "HEARTBEAT_INTERVAL": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MALLOC_ARENA_MAX": "2",
    }
    articles = -(-args.pairs // args.tickers_per_article)
    rows: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        migrate(engine)
        print(f"load before: {load()}  ({articles} articles x {args.tickers_per_article} tickers)")
        for r in range(args.rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                row = run_round(engine, env, workers, articles, args.tickers_per_article, tmp)
                rows[workers].append(row)
                print(f"  round {r + 1}, {workers} worker(s): {json.dumps(row)}  load {load()}")
        web = read_web_rss(env)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    report(rows, web)
    return 0


def report(rows: dict[int, list[dict[str, Any]]], web: dict[str, float]) -> None:
    def med(n: int, key: str) -> float:
        return float(statistics.median(row[key] for row in rows[n]))

    one, two = med(1, "pairs_per_s"), med(2, "pairs_per_s")
    speedup = two / one
    duplicates = sum(row["duplicate_passes"] for n in rows for row in rows[n])
    print(f"load after: {load()} (a shared machine: figures are from a loaded machine)")
    columns = "pairs/s | articles/s | duplicate passes | model share | connections | peak RSS MB"
    print(f"| workers | {columns} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in (1, 2):
        print(
            f"| {n} | {med(n, 'pairs_per_s'):.1f} | {med(n, 'articles_per_s'):.1f} | "
            f"{sum(r['duplicate_passes'] for r in rows[n])} | {med(n, 'model_share'):.0%} | "
            f"{med(n, 'connections'):.0f} | {med(n, 'peak_rss_mb'):.0f} |"
        )
    verdict = "PASS" if speedup >= TARGET_SPEEDUP else "FAIL"
    print(f"speed-up 2 vs 1 worker: {speedup:.2f}x ({verdict} >= {TARGET_SPEEDUP}x)")
    print(f"duplicate model passes: {duplicates} ({'PASS' if duplicates == 0 else 'FAIL'} == 0)")
    rss = web["worker_peak_rss_mb"]
    print(
        f"read-only web worker peak RSS after first requests: {rss:.0f} MB "
        f"({'PASS' if rss <= TARGET_READ_RSS_MB else 'FAIL'} <= {TARGET_READ_RSS_MB:.0f}); "
        f"gunicorn master {web['master_peak_rss_mb']:.0f} MB"
    )
    per_worker = two / 2
    connections = med(2, "connections") / 2
    print(
        f"per worker: {per_worker:.1f} pairs/s, ~{connections:.1f} Postgres connections; "
        f"N workers on N dynos ~ N x {per_worker:.1f} pairs/s while the model is the "
        f"cost ({med(2, 'model_share'):.0%} of a worker's time)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child-worker"]:
        sys.exit(child_worker())
    sys.exit(main())
