"""``python -m tests.helpers.counted_worker``: ``python -m scorer worker`` with every
model pass logged, for the tests that count passes per pair across real processes.

Each pass (one batch's articles through the model, inside the transaction that holds
their claim) appends one JSON line ``{"pid": ..., "titles": [...]}`` to ``PASS_LOG``,
flushed and synced before the batch goes on. With ``HOLD_AFTER=n`` the process
stops for good inside its n-th pass, claim held, until it is killed: the test then
knows its SIGKILL lands mid-batch.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import jobs.score
from scorer.process.cli import main

_score_articles = jobs.score.score_articles
_passes = 0


def _counted(classifier: Any, texts: Any, mentions: Any, cache: Any = None) -> Any:
    global _passes
    result = _score_articles(classifier, texts, mentions, cache)
    _passes += 1
    line = json.dumps({"pid": os.getpid(), "titles": [title for title, _ in texts]})
    with open(os.environ["PASS_LOG"], "a") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())
    if _passes == int(os.environ.get("HOLD_AFTER", "0")):
        threading.Event().wait()  # hold the claim until SIGKILL
    return result


jobs.score.score_articles = _counted  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main(["worker"]))
