"""Per fixture feed: items, tagged items, and tags by reason, for a watchlist.

    python bench/tagging_table.py                      # the default (Dow 30) watchlist
    python bench/tagging_table.py --watchlist AAPL,WMT,JAX
    python bench/tagging_table.py --all                # every ticker of the directory

Parses every feed in tests/fixtures/feeds (as a market-wide feed: no feed ticker) and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scorer.ingest.parse import FeedError, parse_feed  # noqa: E402
from scorer.ingest.sources import DEFAULT_CATALOGUE, FeedSpec, load_catalogue  # noqa: E402
from scorer.ingest.tagging import Tagger  # noqa: E402
from scorer.ingest.tickers import REASONS, default_directory, parse_tickers  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "feeds"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watchlist", help="comma-separated tickers (default: the Dow 30)")
    parser.add_argument("--all", action="store_true", help="every ticker of the directory")
    args = parser.parse_args()
    directory = default_directory()
    if args.all:
        watchlist = frozenset(c.ticker for c in directory.companies.values())
    elif args.watchlist:
        watchlist = frozenset(parse_tickers(args.watchlist))
    else:
        watchlist = load_catalogue(DEFAULT_CATALOGUE).watchlist
    started = time.monotonic()
    tagger = Tagger(watchlist, directory)
    built = time.monotonic() - started
    print(f"watchlist: {len(watchlist)} tickers (tagger built in {built:.2f} s)\n")
    print("| feed | items | tagged | " + " | ".join(REASONS) + " | tickers |")
    print("|---|---:|---:|" + "---:|" * len(REASONS) + "---|")
    totals: Counter[str] = Counter()
    for path in sorted(FIXTURES.glob("*.xml")):
        spec = FeedSpec(f"https://fixtures.test/{path.name}")
        try:
            items = parse_feed(path.read_bytes(), spec=spec, watchlist=tagger).items
        except FeedError as exc:
            print(f"| {path.stem} | not a feed: {str(exc)[:40]} |" + " |" * (len(REASONS) + 2))
            continue
        reasons = Counter(tag.tagged_by for item in items for tag in item.tags)
        tickers = Counter(tag.ticker for item in items for tag in item.tags)
        tagged = sum(1 for item in items if item.tags)
        totals.update({"items": len(items), "tagged": tagged, **reasons})
        top = ", ".join(f"{t} {n}" for t, n in tickers.most_common(4))
        cells = " | ".join(str(reasons[r]) for r in REASONS)
        print(f"| {path.stem} | {len(items)} | {tagged} | {cells} | {top} |")
    cells = " | ".join(str(totals[r]) for r in REASONS)
    print(f"| **all** | {totals['items']} | {totals['tagged']} | {cells} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
