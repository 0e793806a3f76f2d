"""Sweep the ONNX runtime's batch size, thread count and maximum tokens on one artifact.

Each setting runs in a fresh process (peak RSS is per process): the service's
sentences of ``bench/scoring.py``'s generated texts, scored by ``OnnxClassifier``
with ``batch_size``, ``threads`` and ``max_length`` (tokens); sentences/s and VmHWM.
The artifact defaults to the FinBERT-sized one ``bench/scoring.py`` builds under ``var/bench/``.

    python bench/sweep.py [--artifact DIR] [--texts 400] [--batches 8,16,32,64] [--threads 1,2]
                          [--max-tokens 64] [--rounds 1]

With ``--rounds`` above 1 the settings are run in turn, round after round, and each
figure is the median of its rounds.

Prints one line per setting and a table sorted by throughput. The machine is shared
and noisy: run it twice and compare orders, not absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scoring import make_texts, vmhwm_mb  # noqa: E402

DEFAULT_ARTIFACT = ROOT / "var" / "bench" / "finbert-sized-artifact"


def child(artifact: str, texts: int, batch: int, threads: int, tokens: int) -> dict[str, float]:
    from scorer.scoring.model.onnx_runtime import OnnxClassifier
    from scorer.scoring.segments import texts_of

    sentences = [s for t, s_ in make_texts(texts) for s in texts_of(t, s_)]
    classifier = OnnxClassifier(Path(artifact), threads=threads)
    classifier.predict_proba(sentences[:32], batch_size=batch, max_length=tokens)  # warm-up
    started = time.perf_counter()
    classifier.predict_proba(sentences, batch_size=batch, max_length=tokens)
    seconds = time.perf_counter() - started
    return {"sentences_per_s": len(sentences) / seconds, "peak_rss_mb": vmhwm_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", default=str(DEFAULT_ARTIFACT))
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--batches", default="8,16,32,64")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--max-tokens", default="64")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--child", nargs=5, metavar=("ARTIFACT", "TEXTS", "BATCH", "THREADS", "TOKENS")
    )
    args = parser.parse_args()
    if args.child:
        artifact, texts, batch, threads, tokens = args.child
        print(json.dumps(child(artifact, int(texts), int(batch), int(threads), int(tokens))))
        return 0
    if not (Path(args.artifact) / "artifact.json").is_file():
        print(f"no artifact in {args.artifact}: run bench/scoring.py first", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    settings = [
        (int(b), int(t), int(k))
        for k in args.max_tokens.split(",")
        for t in args.threads.split(",")
        for b in args.batches.split(",")
    ]
    runs: dict[tuple[int, int, int], list[tuple[float, float]]] = {s: [] for s in settings}
    for r in range(1, args.rounds + 1):
        for batch, threads, tokens in settings:
            out = subprocess.run(
                [sys.executable, __file__, "--child", args.artifact, str(args.texts), str(batch),
                 str(threads), str(tokens)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[(batch, threads, tokens)].append(
                (result["sentences_per_s"], result["peak_rss_mb"])
            )
            print(
                f"[round {r}] batch {batch:>3} threads {threads} tokens {tokens}: "
                f"{result['sentences_per_s']:.1f} sentences/s, peak "
                f"{result['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    rows = [
        (*key, statistics.median(r for r, _ in got), max(p for _, p in got))
        for key, got in runs.items()
    ]
    print(
        "\n| batch | threads | max tokens | sentences/s | peak RSS MB |\n"
        "| ---: | ---: | ---: | ---: | ---: |"
    )
    for batch, threads, tokens, rate, peak in sorted(rows, key=lambda r: -r[3]):
        print(f"| {batch} | {threads} | {tokens} | {rate:.1f} | {peak:.0f} |")
    best = max(rows, key=lambda r: r[3])
    print(
        f"sweep: {len(rows)} settings x {args.rounds} rounds; fastest batch {best[0]} threads "
        f"{best[1]} tokens {best[2]}: {best[3]:.1f}/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
