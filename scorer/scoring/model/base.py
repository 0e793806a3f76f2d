"""What every runtime shares: the Classifier protocol and the helpers that make a
batch of sentences into probabilities the same way in each runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MAX_TOKENS = 64  # FinBERT's training length: each sentence is truncated to it
BATCH_SIZE = 16  # sentences per model call (bench/README.md has the sweep behind it)
# The three FinBERT classes, in the order scores, roll-ups and the API list them.
LABELS = ("positive", "negative", "neutral")
REQUIRED_LABELS = frozenset(LABELS)


class Classifier(Protocol):
    """What scoring needs from a loaded model, whatever its runtime."""

    model_id: str
    revision: str
    labels: list[str]  # index -> label name, from config.id2label

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


def model_id_of(source: str) -> str:
    """The model id score events record for ``FINBERT_MODEL``: a hub id as it is, a
    local directory by its name (``../shared/models/finsent-minilm`` ->
    ``finsent-minilm``), so the id does not change with where the directory sits (a
    build directory, a checkout) and shows no filesystem path. A path is what
    ``check_model_path`` calls one (absolute, ``./``, ``../``, ``~``, more than one
    ``/``), or an existing directory."""
    looks_local = source.startswith(("/", "./", "../", "~")) or source.count("/") > 1
    if looks_local or Path(source).is_dir():
        return Path(source).expanduser().name or source
    return source


# What a runtime adds to health: (fields of the body, warnings). A runtime declares it
# with a ``health()`` method; one without says nothing.
RuntimeHealth = tuple[dict[str, Any], list[str]]


def runtime_health(classifier: Classifier) -> RuntimeHealth:
    """The health fields and warnings the classifier's runtime declares."""
    declared = getattr(classifier, "health", None)
    return declared() if callable(declared) else ({}, [])


def check_labels(labels: Sequence[str]) -> list[str]:
    """Normalise the model's label names and insist on the three FinBERT classes."""
    names = [label.lower() for label in labels]
    if set(names) != REQUIRED_LABELS:
        raise ValueError(f"model labels {names} are not positive/negative/neutral")
    return names


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return probs


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, so padding is small."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
