"""Ingest 50 local feeds: the wall time of a cold pass (every feed answers 200 and
its items are tagged and stored) against an all-304 pass (nothing changed).

    python bench/ingest.py [--feeds 50] [--rounds 3]

A server on 127.0.0.1 serves the RSS fixtures of tests/fixtures/feeds, each feed with
its own links (so nothing is deduplicated away) and its own ETag, answering 304 to a
matching If-None-Match. A fresh SQLite database per round; the default (Dow 30)
watchlist. Prints medians and the ratio; PASS when the 304 pass costs under a fifth.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.ingest import ingest  # noqa: E402
from scorer.ingest.fetch import FetchPolicy, make_http_session  # noqa: E402
from scorer.ingest.sources import DEFAULT_CATALOGUE, FeedSpec, load_catalogue  # noqa: E402
from scorer.ingest.tagging import tagger_for  # noqa: E402
from scorer.storage.db import make_engine, make_session_factory, migrate  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
RSS = [
    "cnbc_finance_section_2026-08-14.xml",
    "yahoo_finance_rssindex_2026-08-14_dup_guids.xml",
    "seekingalpha_aapl_symbol_feed_2026-03-08.xml",
    "nasdaq_style.xml",
    "globenewswire_style.xml",
    "prnewswire_style.xml",
    "watchlist_news.xml",
    "investing_com_stock_news_nonrfc822_dates.xml",
]


def bodies(count: int) -> dict[str, bytes]:
    """Path -> feed body: fixtures in turn, every link made unique to its feed."""
    out = {}
    for i in range(count):
        raw = (FIXTURES / RSS[i % len(RSS)]).read_bytes()
        # Unique links and titles per feed: each feed's items are distinct stories.
        raw = re.sub(rb"<link>([^<]*)</link>", rb"<link>\1?feed=%d</link>" % i, raw)
        raw = re.sub(rb"<title>([^<]*)</title>", rb"<title>\1 (%d)</title>" % i, raw)
        out[f"/feed{i}.xml"] = raw
    return out


class Handler(BaseHTTPRequestHandler):
    feeds: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        body = self.feeds.get(path)
        if body is None:
            self.send_error(404)
            return
        etag = f'"{path}-v1"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def one_round(port: int, count: int) -> tuple[float, float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        sessions = make_session_factory(engine)
        http = make_http_session("reasonator-bench/1.0")
        specs = [FeedSpec(f"http://127.0.0.1:{port}/feed{i}.xml") for i in range(count)]
        tagger = tagger_for(load_catalogue(DEFAULT_CATALOGUE).watchlist)
        # One host here; the default per-host bound (2) would model 25 hosts' worth of
        # feeds badly, so let all 4 workers use it.
        policy = FetchPolicy(per_host=4)
        now = datetime.now(UTC)
        started = time.monotonic()
        cold = ingest(sessions, http, specs, tagger, now=now, policy=policy)
        cold_s = time.monotonic() - started
        started = time.monotonic()
        warm = ingest(sessions, http, specs, tagger, now=now, policy=policy)
        warm_s = time.monotonic() - started
        assert cold.fetched == count and warm.not_modified == count, (cold, warm)
        http.close()
        engine.dispose()
        return cold_s, warm_s, cold.items, cold.new


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    Handler.feeds = bodies(args.feeds)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    colds, warms = [], []
    for n in range(args.rounds):
        cold, warm, items, new = one_round(server.server_port, args.feeds)
        colds.append(cold)
        warms.append(warm)
        print(f"round {n + 1}: cold {cold:.3f} s ({items} items, {new} stored), 304 {warm:.3f} s")
    server.shutdown()
    cold, warm = statistics.median(colds), statistics.median(warms)
    ratio = warm / cold
    verdict = "PASS" if ratio < 0.2 else "FAIL"
    print(
        f"{args.feeds} feeds, median of {args.rounds}: cold pass {cold:.3f} s, "
        f"all-304 pass {warm:.3f} s = {ratio:.1%} of cold: {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
