"""Fidelity of an ONNX artifact against its fp32 transformers model.

Usage::

    python bench/fidelity.py --model ../shared/models/finsent-minilm [--artifact DIR]

Scores every sentence of the Financial PhraseBank test split with the fp32
torch model (one sentence at a time, like the old pipeline) and with
:class:`scorer.scoring.model.onnx_runtime.OnnxClassifier` (length-sorted batches, as served),
then checks the bounds: >= 98 % argmax agreement, mean |score diff| <= 0.02
with score = P(positive) - P(negative), accuracy within 1 point of fp32.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scorer.scoring.model.artifact import build_artifact
from scorer.scoring.model.onnx_runtime import OnnxClassifier, read_manifest

SHARED = Path(__file__).resolve().parents[2] / "shared"  # beside the checkout
DEFAULT_DATA = SHARED / "data" / "financial_phrasebank" / "test.csv"
MIN_AGREEMENT = 0.98
MAX_MEAN_DIFF = 0.02
MAX_ACCURACY_DROP = 0.01


def fp32_proba(model_dir: str, texts: list[str], max_length: int) -> np.ndarray:
    """Reference probabilities from the fp32 torch model, one text per forward pass."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(torch.softmax(model(**enc).logits, dim=-1)[0].numpy())
    return np.stack(rows)


def score(proba: np.ndarray, labels: list[str]) -> np.ndarray:
    """P(positive) - P(negative), looked up by label name, never by position."""
    return proba[:, labels.index("positive")] - proba[:, labels.index("negative")]


def compare(ref: np.ndarray, got: np.ndarray, gold: np.ndarray, labels: list[str]) -> bool:
    """Print the fidelity metrics and return whether all bounds hold."""
    agree = float((ref.argmax(1) == got.argmax(1)).mean())
    diff = np.abs(score(ref, labels) - score(got, labels))
    acc_ref = float((ref.argmax(1) == gold).mean())
    acc_got = float((got.argmax(1) == gold).mean())
    checks = {
        f"label agreement {agree:.2%} >= {MIN_AGREEMENT:.0%}": agree >= MIN_AGREEMENT,
        f"mean |score diff| {diff.mean():.4f} <= {MAX_MEAN_DIFF}": diff.mean() <= MAX_MEAN_DIFF,
        f"accuracy fp32 {acc_ref:.2%} vs artifact {acc_got:.2%} (drop <= 1 pt)": acc_ref - acc_got
        <= MAX_ACCURACY_DROP,
    }
    print(f"  max |score diff| {diff.max():.4f}")
    for text, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="fp32 model dir (save_pretrained)")
    parser.add_argument("--artifact", type=Path, help="built artifact dir (default: build one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    with open(args.data, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [row["sentence"] for row in rows]

    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        artifact = args.artifact
        if artifact is None:
            started = time.perf_counter()
            artifact = build_artifact(args.model, None, Path(tmp) / "artifact")
            print(f"built artifact in {time.perf_counter() - started:.0f}s")
        print("format:", read_manifest(artifact)["format"])
        clf = OnnxClassifier(artifact, threads=args.threads)
        label2id = {name: i for i, name in enumerate(clf.labels)}
        gold = np.array([label2id[row["label"]] for row in rows])
        passed = True
        for max_length in (64, 128):
            ref = fp32_proba(args.model, texts, max_length)
            started = time.perf_counter()
            got = clf.predict_proba(texts, max_length=max_length, batch_size=args.batch_size)
            rate = len(texts) / (time.perf_counter() - started)
            print(
                f"max_length {max_length} (artifact {rate:.0f} texts/s, batch {args.batch_size}):"
            )
            passed &= compare(ref, got, gold, clf.labels)
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
