"""The operator's console's memory cost in a web process (issue 22: target < 5 MB).

Each run is a fresh process that builds the real app (``create_app`` on a migrated
SQLite file, a loader that never loads a model: what a web worker holds before the
model) with or without ``console.install``, serves the page and its files 50 times
(plain and gzipped, 200s and 304s) and reports its RSS (VmRSS) and the Python heap
(tracemalloc) the app holds. Runs alternate; the medians' difference is the cost.

    python bench/console_memory.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]

CHILD = r"""
import io, json, sys, tracemalloc
from pathlib import Path
from wsgiref.util import setup_testing_defaults

tracemalloc.start()
from scorer.api import console
if sys.argv[1] == "without":
    console.install = lambda app, files=None: None  # the app as it was before issue 22
from scorer.api import create_app
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.storage.db import make_engine, migrate

engine = make_engine(f"sqlite:///{sys.argv[2]}")
migrate(engine)
settings = Settings.from_env({"RACK_SERVICE_TOKEN": "bench-token-0123456789", "FEEDS": "none",
                              "TICKERS": "AAPL,MSFT"})
before = tracemalloc.get_traced_memory()[0]
app = create_app(settings, engine=engine, loader=ModelLoader(lambda: None))
served = 0
for _ in range(50):
    for path in sorted(console.PATHS):
        for extra in ({}, {"HTTP_ACCEPT_ENCODING": "gzip"}, {"HTTP_IF_NONE_MATCH": "*"}):
            environ = {}
            setup_testing_defaults(environ)
            environ.update({"PATH_INFO": path, **extra})
            status = []
            b"".join(app(environ, lambda s, h, *_: status.append(s)))
            served += status[0].startswith(("200", "304"))
held = tracemalloc.get_traced_memory()[0] - before
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(json.dumps({"rss_kb": rss, "heap_bytes": held, "served": served}))
"""


def run(kind: str, db: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    results: dict[str, list[dict[str, int]]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(rounds):
            for kind in ("without", "with") if i % 2 == 0 else ("with", "without"):
                results[kind].append(run(kind, Path(folder) / f"{kind}-{i}.db"))
    rss = {k: statistics.median(r["rss_kb"] for r in v) for k, v in results.items()}
    heap = {k: statistics.median(r["heap_bytes"] for r in v) for k, v in results.items()}
    served = results["with"][0]["served"]
    for kind in ("without", "with"):
        print(
            f"{kind:>7} console: RSS {rss[kind] / 1024:.1f} MB (median of {rounds}), "
            f"app heap {heap[kind] / 1024:.0f} kB"
        )
    extra_mb = (rss["with"] - rss["without"]) / 1024
    print(f"served {served} console requests per process (200s, gzipped, 304s)")
    verdict = "PASS" if extra_mb < 5 else "FAIL"
    print(
        f"{verdict}  the console adds {extra_mb:.2f} MB RSS, "
        f"{(heap['with'] - heap['without']) / 1024:.0f} kB of Python heap (target < 5 MB)"
    )


if __name__ == "__main__":
    main()
