"""The reference runtime: transformers + torch, loaded exactly like FinBERT.

Imported only when needed: ``import torch, transformers`` alone costs more memory
than an Eco dyno can spare (bench/README.md, "Levers").
"""

from __future__ import annotations

import numpy as np

from scorer.scoring.model.base import (
    BATCH_SIZE,
    MAX_TOKENS,
    RuntimeHealth,
    check_labels,
    length_sorted_batches,
    model_id_of,
    softmax,
)


class TransformersClassifier:
    """AutoTokenizer + AutoModelForSequenceClassification at a pinned revision."""

    def __init__(
        self, source: str, revision: str | None, *, threads: int, batch_size: int = BATCH_SIZE
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # noise in dyno logs
        # The hub client prints its records with a handler of its own and also passes
        # them on to ours: each line twice, once without a time. Ours alone is enough.
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.get_logger().handlers.clear()

        # Heroku dynos report the host's cores; more threads than our share only thrash.
        torch.set_num_threads(threads)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
        self.model = AutoModelForSequenceClassification.from_pretrained(source, revision=revision)
        self.model.eval()
        id2label = self.model.config.id2label
        self.labels = check_labels([id2label[i] for i in range(len(id2label))])
        self.model_id = model_id_of(source)
        self.revision = revision or "unknown"
        self.batch_size = batch_size

    def health(self) -> RuntimeHealth:
        """Health says no artifact is served, and how to build one."""
        return {"artifact": None}, [
            "no prepared artifact: serving with transformers (run prepare-model)"
        ]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Softmax probabilities, one row per text, in input order."""
        # Batch by token count, as the ONNX runtime does: characters are a poor proxy
        # for padding (numbers and tickers split into many tokens).
        lengths = [
            len(ids)
            for ids in self.tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        ]
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        with self._torch.inference_mode():
            for batch in length_sorted_batches(lengths, self.batch_size):
                enc = self.tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                logits = self.model(**enc).logits.float().numpy()
                out[batch] = softmax(logits.astype(np.float64))
        return out
