"""Tiny BERT classifiers built at test time: real loading and scoring code, no hub.

Random weights over a small vocabulary, FinBERT's label order
(0 positive, 1 negative, 2 neutral), saved with ``save_pretrained``.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "and",
    "for",
    "on",
    "with",
    "at",
    "by",
    "from",
    "as",
    "is",
    "are",
    "was",
    "were",
    "be",
    "has",
    "have",
    "had",
    "will",
    "shares",
    "stock",
    "stocks",
    "profit",
    "profits",
    "loss",
    "losses",
    "revenue",
    "sales",
    "earnings",
    "quarter",
    "year",
    "rise",
    "rises",
    "rose",
    "fall",
    "falls",
    "fell",
    "jump",
    "jumps",
    "surge",
    "surges",
    "drop",
    "drops",
    "plunge",
    "plunges",
    "gain",
    "gains",
    "record",
    "high",
    "low",
    "strong",
    "weak",
    "beat",
    "beats",
    "miss",
    "misses",
    "guidance",
    "outlook",
    "forecast",
    "cut",
    "cuts",
    "raise",
    "raises",
    "upgrade",
    "downgrade",
    "dividend",
    "buyback",
    "lawsuit",
    "investigation",
    "recall",
    "growth",
    "decline",
    "apple",
    "microsoft",
    "tesla",
    "nvidia",
    "amazon",
    "google",
    "meta",
    "company",
    "market",
    "investors",
    "analysts",
    "percent",
    "billion",
    "million",
    "new",
    "says",
    "said",
    "after",
    "amid",
    "over",
    "under",
    "than",
    "more",
    "less",
]

FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}


def write_tokenizer(path: Path) -> None:
    from transformers import BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *"$.,!?-0123456789"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5 takes the vocabulary itself (a ``vocab_file`` is silently ignored,
    # which leaves every word [UNK]).
    ids = {word: i for i, word in enumerate(vocab)}
    BertTokenizerFast(vocab=ids, do_lower_case=True).save_pretrained(path)


def build_tiny_model(
    path: Path, *, seed: int = 0, permutation: tuple[int, int, int] | None = None
) -> Path:
    """Save a tiny classifier to ``path``.

    With ``permutation`` the classifier rows are reordered and ``id2label`` with them:
    the same model under another label order, which must score identically.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    write_tokenizer(path)
    vocab_size = len((path / "vocab.txt").read_text().split())
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=3,
        initializer_range=0.5,
        id2label=FINBERT_LABELS,
        label2id={v: k for k, v in FINBERT_LABELS.items()},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        # Random init gives near-uniform probabilities; a larger classifier makes labels decisive.
        model.classifier.weight.mul_(4.0)
    if permutation is not None:
        order = list(permutation)  # new row i is old row order[i]
        with torch.no_grad():
            model.classifier.weight.copy_(model.classifier.weight[order].clone())
            model.classifier.bias.copy_(model.classifier.bias[order].clone())
        id2label = {i: FINBERT_LABELS[old] for i, old in enumerate(order)}
        model.config.id2label = id2label
        model.config.label2id = {v: k for k, v in id2label.items()}
    model.save_pretrained(path)
    return path
