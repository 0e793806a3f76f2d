"""Tagging and ticker-level scores on the labelled headlines and the fixture feeds.

    python bench/tagging.py                        # with ../shared/models/finsent-minilm
    python bench/tagging.py --model DIR            # another model directory
    python bench/tagging.py --no-model             # tagging only (no torch needed)
    python bench/tagging.py --all --no-model       # the fixture table, every directory ticker

Prints, from one run:

1. tag precision and recall on tests/data/headlines.toml, micro-averaged over
   (headline, ticker) pairs, overall and per kind of headline;
2. on the contrastive headlines, per (headline, ticker): whether the ticker's label
   (``score_articles`` with the tagger's mentions, as the score job runs it) equals the
   model's label on that ticker's own clause, against the article-level label;
3. per fixture feed (tests/fixtures/feeds, as market-wide feeds): items, tagged items,
   tags by reason, items naming several watched tickers, and among those how often a
   ticker's label differs from the article's.

Targets (issue 17): precision >= 0.95, recall >= 0.90, contrastive agreement >= 85 %.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scorer.ingest.parse import FeedError, parse_feed  # noqa: E402
from scorer.ingest.sources import FeedSpec  # noqa: E402
from scorer.ingest.tagging import Tagger, tagger_for  # noqa: E402
from scorer.ingest.tickers import REASONS, default_directory  # noqa: E402
from scorer.scoring.model.base import LABELS, Classifier  # noqa: E402
from scorer.scoring.sentiment import score_articles  # noqa: E402

HEADLINES = ROOT / "tests" / "data" / "headlines.toml"
FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
REFERENCE = ROOT.parent / "shared" / "models" / "finsent-minilm"
MIN_PRECISION, MIN_RECALL, MIN_AGREEMENT = 0.95, 0.90, 0.85


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, expected: set[str], got: set[str]) -> None:
        self.tp += len(expected & got)
        self.fp += len(got - expected)
        self.fn += len(expected - got)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_set(path: Path = HEADLINES) -> tuple[frozenset[str], list[dict]]:  # type: ignore[type-arg]
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return frozenset(data["set"]["watchlist"]), data["headline"]


def tag_table(tagger: Tagger, headlines: list[dict]) -> tuple[Counts, list[str]]:  # type: ignore[type-arg]
    overall, by_kind = Counts(), {}
    errors = []
    for h in headlines:
        expected = set(h["tickers"])
        got = {t.ticker for t in tagger.tag(h["title"], h.get("summary", ""))}
        overall.add(expected, got)
        for kind in h["kinds"]:
            by_kind.setdefault(kind, [Counts(), 0])
            by_kind[kind][0].add(expected, got)
            by_kind[kind][1] += 1
        if expected != got:
            missed, extra = sorted(expected - got), sorted(got - expected)
            errors.append(
                f"  {h['id']}: missed {missed or '-'}, extra {extra or '-'}: {h['title']}"
            )
    print("| headlines | kind | tags expected | false tags | missed | precision | recall |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for kind, (c, n) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(
            f"| {n} | {kind} | {c.tp + c.fn} | {c.fp} | {c.fn} | {c.precision:.3f} "
            f"| {c.recall:.3f} |"
        )
    print(
        f"| **{len(headlines)}** | **all** | {overall.tp + overall.fn} | {overall.fp} | "
        f"{overall.fn} | **{overall.precision:.3f}** | **{overall.recall:.3f}** |"
    )
    return overall, errors


def contrastive_table(
    classifier: Classifier,
    tagger: Tagger,
    headlines: list[dict],  # type: ignore[type-arg]
) -> tuple[float, float, list[str]]:
    items = [h for h in headlines if "clauses" in h]
    articles = [(h["title"], h.get("summary", "")) for h in items]
    finders = [
        tagger.finder({t.ticker for t in tagger.tag(title, summary)}) for title, summary in articles
    ]
    scored = score_articles(classifier, articles, finders)
    pairs = [(h, ticker, clause) for h in items for ticker, clause in h["clauses"].items()]
    probs = classifier.predict_proba([clause for _, _, clause in pairs])
    own = [classifier.labels[int(row.argmax())] for row in probs]
    by_id = {h["id"]: s for h, s in zip(items, scored, strict=True)}
    ticker_agree = article_agree = 0
    scopes: Counter[str] = Counter()
    misses = []
    for (h, ticker, clause), label in zip(pairs, own, strict=True):
        result = by_id[h["id"]]
        mine = result.for_ticker(ticker)
        scopes[mine.scope] += 1
        ticker_agree += mine.label == label
        article_agree += result.article.label == label
        if mine.label != label:
            misses.append(
                f"  {h['id']} {ticker}: ticker {mine.label} ({mine.scope}), own clause "
                f"{label}: {clause!r}"
            )
    n = len(pairs)
    print(f"\n{len(items)} contrastive headlines, {n} (headline, ticker) pairs:\n")
    print("| label equals the model's on the ticker's own clause | pairs | share |")
    print("|---|---:|---:|")
    print(f"| ticker-level (scope: {dict(scopes)}) | {ticker_agree} | {ticker_agree / n:.1%} |")
    print(f"| article-level | {article_agree} | {article_agree / n:.1%} |")
    return ticker_agree / n, article_agree / n, misses


def fixture_table(tagger: Tagger, classifier: Classifier | None) -> None:
    print("\nFixture feeds (market-wide: no feed ticker):\n")
    head = "| feed | items | tagged | " + " | ".join(REASONS) + " | multi-ticker |"
    rule = "|---|---:|---:|" + "---:|" * len(REASONS) + "---:|"
    if classifier is not None:
        head, rule = head + " ticker label ≠ article |", rule + "---:|"
    print(head + "\n" + rule)
    totals: Counter[str] = Counter()
    for path in sorted(FIXTURES.glob("*.xml")):
        spec = FeedSpec(f"https://fixtures.test/{path.name}")
        try:
            items = parse_feed(path.read_bytes(), spec=spec, watchlist=tagger).items
        except FeedError as exc:
            print(f"| {path.stem} | not a feed: {str(exc)[:40]} |" + " |" * (len(REASONS) + 2))
            continue
        reasons = Counter(tag.tagged_by for item in items for tag in item.tags)
        multi = [item for item in items if len(item.tags) > 1]
        tagged = sum(1 for item in items if item.tags)
        cells = " | ".join(str(reasons[r]) for r in REASONS)
        row = f"| {path.stem} | {len(items)} | {tagged} | {cells} | {len(multi)} |"
        totals.update({"items": len(items), "tagged": tagged, "multi": len(multi), **reasons})
        if classifier is not None:
            differ = pairs = 0
            if multi:
                articles = [(item.title, item.summary) for item in multi]
                finders = [tagger.finder({t.ticker for t in item.tags}) for item in multi]
                for item, s in zip(
                    multi, score_articles(classifier, articles, finders), strict=True
                ):
                    for tag in item.tags:
                        pairs += 1
                        differ += s.for_ticker(tag.ticker).label != s.article.label
            totals.update({"pairs": pairs, "differ": differ})
            row += f" {differ}/{pairs} |"
        print(row)
    cells = " | ".join(str(totals[r]) for r in REASONS)
    row = f"| **all** | {totals['items']} | {totals['tagged']} | {cells} | {totals['multi']} |"
    if classifier is not None:
        row += f" {totals['differ']}/{totals['pairs']} |"
    print(row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REFERENCE, help="a model directory")
    parser.add_argument("--no-model", action="store_true", help="tagging only")
    parser.add_argument("--errors", action="store_true", help="list each miss")
    parser.add_argument(
        "--all",
        action="store_true",
        help="only the fixture table, watching every ticker of the directory",
    )
    args = parser.parse_args()
    if not args.no_model and not (args.model / "config.json").is_file():
        parser.error(f"--model: no model directory at {args.model} (or pass --no-model)")
    watchlist, headlines = load_set()
    if args.all:
        everything = frozenset(c.ticker for c in default_directory().companies.values())
        print(f"watchlist: every ticker of the directory ({len(everything)})")
        fixture_table(tagger_for(everything), None)
        return 0
    started = time.monotonic()
    tagger = tagger_for(watchlist)
    print(f"{HEADLINES.relative_to(ROOT)}: {len(headlines)} headlines, {len(watchlist)} tickers")
    print(f"(tagger built in {time.monotonic() - started:.2f} s)\n")
    overall, tag_errors = tag_table(tagger, headlines)
    classifier: Classifier | None = None
    agreement = None
    misses: list[str] = []
    if not args.no_model:
        from scorer.scoring.model.transformers_runtime import TransformersClassifier

        classifier = TransformersClassifier(str(args.model), None, threads=2)
        assert sorted(classifier.labels) == sorted(LABELS)
        agreement, _, misses = contrastive_table(classifier, tagger, headlines)
    fixture_table(tagger, classifier)
    if args.errors:
        print("\nTagging misses:\n" + "\n".join(tag_errors or ["  none"]))
        if classifier is not None:
            print("Contrastive misses:\n" + "\n".join(misses or ["  none"]))
    checks = [
        (overall.precision >= MIN_PRECISION, f"tag precision {overall.precision:.3f} (>= 0.95)"),
        (overall.recall >= MIN_RECALL, f"tag recall {overall.recall:.3f} (>= 0.90)"),
    ]
    if agreement is not None:
        checks.append(
            (agreement >= MIN_AGREEMENT, f"contrastive agreement {agreement:.1%} (>= 85%)")
        )
    print()
    for ok, text in checks:
        print(("PASS  " if ok else "FAIL  ") + text)
    failed = sum(not ok for ok, _ in checks)
    print(f"{len(checks) - failed} of {len(checks)} targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
