"""What this CPU allows a FinBERT-sized model: the 10x target against the GEMM peaks.

Usage::

    python bench/ceiling.py [--texts 300] [--threads 2] [--rows 1024]

Nearly all of a BERT-base forward pass is matrix products (attention's own products
are ~3 % at these lengths). So scoring the same texts can be at most
``int8 GEMM peak / the naive pipeline's achieved rate`` times faster than the naive
pipeline, however the graph is fused or batched, unless fewer operations are done
(a smaller model, fewer tokens, or skipped sentences). In one run, each in a fresh
process, this measures:

1. the peak of one large product of BERT-base's shapes (``rows`` x 768 x 3072) in
   ONNX Runtime, fp32 and dynamically quantized int8 (``MatMulInteger``, what the
   serving artifact runs), and in torch fp32 (the naive pipeline's engine);
2. the naive pipeline (``bench/scoring.py``'s baseline: ``pipeline`` one text at a
   time, fp32) on the same generated texts, converted to operations per second from
   the texts' exact token counts;
3. the operations the service does for the same texts (its sentences, each a
   sequence of its own, unpadded: the least any batching can do).

Prints the ceiling (int8 peak / naive achieved, in texts) beside the target (>= 10x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scoring import (  # noqa: E402
    DEFAULT_REFERENCE,
    WORK,
    answer_child,
    finbert_sized,
    joined,
    make_texts,
    run_child,
)

HIDDEN, FFN, LAYERS, HEADS = 768, 3072, 12, 12  # BERT-base (FinBERT)
TARGET = 10.0


def ops_per_sequence(tokens: int) -> int:
    """Multiply-adds x 2 of one BERT-base encoder pass over ``tokens`` tokens: Q, K, V
    and output projections, the two feed-forward products, and attention's QK^T and
    AV. Embeddings, softmax, norms and the classifier head are left out (a few %)."""
    n = tokens
    projections = 4 * n * HIDDEN * HIDDEN
    feed_forward = 2 * n * HIDDEN * FFN
    attention = 2 * n * n * HIDDEN
    return 2 * LAYERS * (projections + feed_forward + attention)


def child_gemm(kind: str, rows: int, threads: int) -> dict[str, float]:
    """GEMM rate of ``[rows, 768] x [768, 3072]``, median of 20 runs after a warm-up."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, HIDDEN), dtype=np.float32)
    w = rng.standard_normal((HIDDEN, FFN), dtype=np.float32) * 0.02
    if kind == "torch-fp32":
        import torch

        torch.set_num_threads(threads)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)

        def run() -> None:
            torch.matmul(tx, tw)

    else:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "gemm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, HIDDEN])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, FFN])],
            [numpy_helper.from_array(w, "w")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "fp32.onnx")
        onnx.save(model, path)
        if kind == "ort-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = os.path.join(tmp, "int8.onnx")
            quantize_dynamic(path, quantized, weight_type=QuantType.QInt8, per_channel=True)
            path = quantized
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run() -> None:
            session.run(None, {"x": x})

    for _ in range(3):
        run()
    times = []
    for _ in range(20):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {"gops": 2 * rows * HIDDEN * FFN / seconds / 1e9}


def child_tokens(model: str, n: int) -> dict[str, float]:
    from tokenizers import Tokenizer

    from scorer.scoring.segments import texts_of

    tokenizer = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    pairs = make_texts(n)
    # The pipeline truncates at 512 tokens; the service at MAX_TOKENS per sentence.
    from scorer.scoring.model.base import MAX_TOKENS

    whole = [min(len(e.ids), 512) for e in tokenizer.encode_batch(joined(pairs))]
    sentences = [s for title, summary in pairs for s in texts_of(title, summary)]
    parts = [min(len(e.ids), MAX_TOKENS) for e in tokenizer.encode_batch(sentences)]
    return {
        "naive_gop_per_text": sum(map(ops_per_sequence, whole)) / n / 1e9,
        "service_gop_per_text": sum(map(ops_per_sequence, parts)) / n / 1e9,
        "tokens_per_text": statistics.mean(whole),
        "sentences_per_text": len(sentences) / n,
    }


def child_naive(model: str, n: int, threads: int) -> dict[str, object]:
    from bench.scoring import child_baseline

    return child_baseline(model, n, threads)


CHILDREN = {"gemm": child_gemm, "tokens": child_tokens, "naive": child_naive}


def measure(name: str, *args: object) -> dict[str, float]:
    return {k: float(v) for k, v in run_child(name, *args, script=__file__).items()}  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300, help="texts for the naive pipeline")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1024, help="GEMM rows (tokens in a batch)")
    parser.add_argument("--reference-model", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return answer_child(CHILDREN, args.child)

    WORK.mkdir(parents=True, exist_ok=True)
    model = finbert_sized(args.reference_model)
    gemm = {k: measure("gemm", k, args.rows, args.threads)["gops"] for k in GEMMS}
    tokens = measure("tokens", str(model), args.texts)
    naive = measure("naive", str(model), args.texts, args.threads)
    naive_rate = float(naive["texts_per_s"])
    achieved = naive_rate * tokens["naive_gop_per_text"]
    service_gop = tokens["service_gop_per_text"]
    ceiling = gemm["ort-int8"] / service_gop / naive_rate

    print(f"\n{args.threads} threads, GEMM [{args.rows} x {HIDDEN}] x [{HIDDEN} x {FFN}]:")
    for kind in GEMMS:
        print(f"  {kind:<10} {gemm[kind]:7.0f} GOP/s")
    print(
        f"texts: {tokens['tokens_per_text']:.1f} tokens each as the pipeline sees them, "
        f"{tokens['sentences_per_text']:.2f} sentences as the service scores them"
    )
    print(
        f"naive pipeline: {naive_rate:.1f} texts/s x {tokens['naive_gop_per_text']:.2f} GOP "
        f"= {achieved:.0f} GOP/s, {achieved / gemm['torch-fp32']:.0%} of torch's fp32 GEMM peak"
    )
    print(
        f"service: {service_gop:.2f} GOP per text (its sentences, unpadded); at the int8 "
        f"GEMM peak {gemm['ort-int8'] / service_gop:.1f} texts/s"
    )
    verdict = "reachable" if ceiling >= TARGET else "UNREACHABLE"
    print(
        f"\nceiling: {ceiling:.1f}x the naive pipeline with every product at the int8 peak "
        f"(target >= {TARGET:g}x): {verdict} with this model on this CPU"
    )
    return 0


GEMMS = ("torch-fp32", "ort-fp32", "ort-int8")

if __name__ == "__main__":
    sys.exit(main())
