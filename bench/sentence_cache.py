"""How often the sentence cache would answer instead of the model, on real feeds.

Usage::

    python bench/sentence_cache.py [--feeds ../shared/fixtures/feeds] [--size 8192]

Parses every feed file of the directory (the real captures in ``../shared``), makes
each item's sentences as scoring does (``texts_of``), and passes them, feed
by feed in file order, through a ``SentenceCache`` in front of a stand-in model
that only counts what it is asked. Prints the sentences, the hits, the hit rate and
the sentences repeated most. No model runs: this measures what a cache saves, the
model's cost per sentence is in ``bench/sweep.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scorer.ingest.parse import FeedError, parse_feed  # noqa: E402
from scorer.ingest.sources import FeedSpec  # noqa: E402
from scorer.scoring.cache import SENTENCE_CACHE_SIZE, SentenceCache  # noqa: E402
from scorer.scoring.segments import texts_of  # noqa: E402

DEFAULT_FEEDS = ROOT.parent / "shared" / "fixtures" / "feeds"


class _Counter:
    """A stand-in classifier: uniform probabilities, counts the sentences it scores."""

    def __init__(self) -> None:
        self.model_id, self.revision = "count", "1"
        self.labels = ["positive", "negative", "neutral"]
        self.scored = 0

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.scored += len(texts)
        return np.full((len(texts), 3), 1 / 3, dtype=np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=Path, default=DEFAULT_FEEDS)
    parser.add_argument("--size", type=int, default=SENTENCE_CACHE_SIZE)
    args = parser.parse_args()
    if not args.feeds.is_dir():
        print(f"no feed directory at {args.feeds}", file=sys.stderr)
        return 2
    cache, model = SentenceCache(args.size), _Counter()
    seen: Counter[str] = Counter()
    print("| feed | items | sentences | from the cache |\n| --- | ---: | ---: | ---: |")
    for path in sorted(args.feeds.glob("*.xml")):
        spec = FeedSpec(url=f"https://fixtures.invalid/{path.name}")
        try:
            items = parse_feed(path.read_bytes(), spec=spec, watchlist=frozenset()).items
        except FeedError:
            continue  # not a feed (a sitemap, an empty document): nothing is scored
        hits = cache.hits
        sentences = [s for item in items for s in texts_of(item.title, item.summary)]
        cache.predict_proba(model, sentences)
        seen.update(sentences)
        print(f"| {path.name} | {len(items)} | {len(sentences)} | {cache.hits - hits} |")
    total = cache.hits + cache.misses
    print(
        f"\n{total} sentences, {cache.misses} scored by the model, {cache.hits} from the cache: "
        f"hit rate {cache.hit_rate:.1%} (cache of {args.size})"
    )
    print("most repeated:")
    for sentence, count in seen.most_common(5):
        print(f"  {count:>4} x {sentence[:70]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
