"""A bounded cache of recently scored sentences, so boilerplate skips the model.

Feeds repeat sentences: EDGAR's form titles ("8-K - Current report"), wire
disclaimers, a headline carried by two feeds. The cache holds the probabilities the
model gave a sentence, keyed by (model id, model revision, sentence text), and
hands them back the next time the sentence is scored, for as long as it is among
the ``size`` most recently used.

It never changes a score: a hit returns the probabilities this model revision
produced for this exact text. The int8 artifact quantizes activations per batch, so
the same sentence scored afresh in another batch could differ in the fourth
decimal (at most 1.4e-4 measured; bench/README.md, "Levers"); with the cache a
repeated sentence gets exactly its earlier figures instead, and a new revision
never sees an old revision's entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from scorer.scoring.model.base import Classifier

# Entries kept: about 100 bytes of text and 3 floats each, so ~1 MB at this size,
# and more than a day of the shipped feeds' sentences (bench/sentence_cache.py).
SENTENCE_CACHE_SIZE = 8192


class SentenceCache:
    """Least-recently-used map of (model id, revision, sentence) -> probabilities."""

    def __init__(self, size: int = SENTENCE_CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError("a sentence cache holds at least one sentence")
        self.size = size
        self.hits = 0  # sentences answered without the model
        self.misses = 0  # sentences the model scored
        self._rows: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # a cycle and a re-score may share the service's cache

    def __len__(self) -> int:
        return len(self._rows)

    def predict_proba(self, classifier: Classifier, sentences: Sequence[str]) -> np.ndarray:
        """``classifier.predict_proba(sentences)``, with known sentences from the cache.

        A sentence repeated within the call is scored once, too.
        """
        model = (classifier.model_id, classifier.revision)
        out = np.empty((len(sentences), len(classifier.labels)), dtype=np.float32)
        todo: dict[str, list[int]] = {}  # sentence -> its positions, for the model
        with self._lock:
            for i, sentence in enumerate(sentences):
                row = self._rows.get((*model, sentence))
                if row is None:
                    todo.setdefault(sentence, []).append(i)
                else:
                    self._rows.move_to_end((*model, sentence))
                    out[i] = row
        if todo:
            fresh = classifier.predict_proba(list(todo))
            for positions, row in zip(todo.values(), fresh, strict=True):
                out[positions] = row
        with self._lock:
            self.misses += len(todo)
            self.hits += len(sentences) - len(todo)
            for sentence, positions in todo.items():
                self._rows[(*model, sentence)] = out[positions[0]].copy()
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return out

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
