"""Scoring on an Eco dyno: the service's scoring path against the naive pipeline.

Usage::

    python bench/scoring.py [--texts 1000] [--baseline-texts 300]
                            [--reference-model ../shared/models/finsent-minilm]
                            [--before REVISION]

``--before`` also runs the service path of an earlier commit's code (unpacked with
``git archive`` under var/bench/) on the same artifact and texts, alternating with
today's, and prints the two throughputs side by side: a change's cost in one run.

In one run, each measurement in a fresh process (so peak RSS is its own):

1. builds a FinBERT-sized model (BERT-base config, random weights, the
   bert-base-uncased tokenizer from the reference model) and its serving artifact
   with ``scorer.scoring.model.artifact.build_artifact`` (cached under var/bench/);
2. baseline: transformers' ``pipeline("text-classification")`` on the fp32 model,
   called one text at a time (torch threads set to 2);
3. service: the web stack imported, the artifact loaded by ``load_classifier``,
   the texts stored as articles and scored by ``jobs.score.score_pending``, as a
   cycle does; peak RSS (VmHWM) covers the whole process from start. Three
   variants: the artifact without the sentence cache (the verdict), the same with
   the cache (shown, not counted: these generated texts repeat far more sentences
   than real feeds), and with ``--before REVISION`` that commit's service path on
   the same artifact (a before/after of the code);
4. cold start: gunicorn as the Procfile runs it, timed to bind and to health 200;
5. fidelity of the same scheme on the reference model (bench/fidelity.py's check).

Texts are generated headline + summary pairs (seeded), like feed items.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "bench"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "models" / "finsent-minilm"
FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}
TARGET_SPEEDUP, TARGET_RSS_MB, TARGET_BIND_S, TARGET_READY_S = 10.0, 300.0, 2.0, 10.0

COMPANIES = [
    "Apple",
    "Microsoft",
    "Nvidia",
    "Tesla",
    "Amazon",
    "Alphabet",
    "Meta Platforms",
    "JPMorgan Chase",
    "Exxon Mobil",
    "Pfizer",
    "Boeing",
    "Intel",
    "Walmart",
    "Netflix",
]
HEADLINES = [
    "{co} shares {move} {pct}% after {event}",
    "{co} {verb} full-year outlook as {driver}",
    "{co} posts quarterly revenue of ${amt} billion, {cmp} estimates",
    "Analysts {rating} {co} citing {driver}",
    "{co} to cut {n} jobs in restructuring, sources say",
    "{co} wins ${amt} billion contract; stock {move} in premarket trading",
]
SUMMARIES = [
    "The company said {driver}, and management expects margins to {trend} in the second half.",
    "Revenue rose {pct}% from a year earlier while operating costs increased.",
    "Investors had expected weaker results after a difficult quarter for the sector.",
    "The stock has {trend2} {pct}% so far this year, compared with a {pct2}% move in the S&P 500.",
    "Regulators are reviewing the deal, which is expected to close early next year.",
    "Executives reiterated guidance on a call with analysts on {day}.",
]
FILL = {
    "move": ["jump", "fall", "surge", "slide", "rise", "drop"],
    "event": [
        "earnings beat",
        "a guidance cut",
        "a product recall",
        "an FTC probe",
        "record deliveries",
        "a credit downgrade",
    ],
    "verb": ["raises", "cuts", "reaffirms", "withdraws"],
    "driver": [
        "demand for AI chips stays strong",
        "consumer spending slows",
        "input costs ease",
        "currency headwinds persist",
        "cloud growth accelerates",
    ],
    "cmp": ["beating", "missing", "in line with"],
    "rating": ["upgrade", "downgrade", "initiate coverage of"],
    "trend": ["improve", "narrow", "stabilise"],
    "trend2": ["gained", "lost"],
    "day": ["Tuesday", "Wednesday", "Thursday"],
}


def make_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(headline, summary) pairs shaped like feed items: one to three summary sentences."""
    rnd = random.Random(seed)

    def fill(template: str) -> str:
        values = {k: rnd.choice(v) for k, v in FILL.items()}
        return template.format(
            co=rnd.choice(COMPANIES),
            pct=rnd.randint(1, 25),
            pct2=rnd.randint(1, 30),
            amt=rnd.randint(1, 120),
            n=rnd.randint(2, 40) * 100,
            **values,
        )

    return [
        (
            fill(rnd.choice(HEADLINES)),
            " ".join(fill(s) for s in rnd.sample(SUMMARIES, rnd.randint(1, 3))),
        )
        for _ in range(n)
    ]


def joined(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{title}. {summary}" for title, summary in pairs]


def vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- children: each runs in its own process and prints one JSON line -----------------


def child_baseline(model: str, n: int, threads: int) -> dict[str, object]:
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    pipe = pipeline("text-classification", model=model, tokenizer=model, device="cpu")
    texts = joined(make_texts(n))
    for text in texts[:4]:  # warm-up
        pipe(text, truncation=True)
    started = time.perf_counter()
    for text in texts:
        pipe(text, truncation=True)
    seconds = time.perf_counter() - started
    return {"texts": n, "texts_per_s": n / seconds, "peak_rss_mb": vmhwm_mb()}


def child_service(artifact: str, n: int, threads: int, cache: int = 0) -> dict[str, object]:
    from dataclasses import replace
    from datetime import UTC, datetime

    # What the web process imports: the app, the scheduler, the jobs.
    import scorer.process.web  # noqa: F401
    from jobs.score import score_pending
    from scorer.config.settings import Settings
    from scorer.ingest.items import FeedItem
    from scorer.ingest.tickers import tags_of
    from scorer.scoring.cache import SentenceCache
    from scorer.scoring.model import load_classifier
    from scorer.scoring.model.onnx_runtime import read_manifest
    from scorer.storage.db import make_engine, make_session_factory, migrate
    from scorer.storage.store import store_items

    manifest = read_manifest(Path(artifact))
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(
            Settings.from_env({}),
            database_url=f"sqlite:///{tmp}/bench.db",
            finbert_model=manifest["source_model"],
            finbert_model_sha=manifest["revision"],
            model_artifact_dir=Path(artifact),
            model_threads=threads,
        )
        engine = make_engine(settings.database_url)
        migrate(engine)
        sessions = make_session_factory(engine)
        classifier = load_classifier(settings)
        now = datetime.now(UTC)
        items = [
            FeedItem(
                dedup_key=f"k{i}",
                title=title,
                summary=summary,
                url=None,
                published_at=now,
                source="bench",
                tags=tags_of({"AAPL"}),
            )
            for i, (title, summary) in enumerate(make_texts(n))
        ]
        with sessions.begin() as session:
            store_items(session, items, now=now)
        sentence_cache = SentenceCache() if cache else None
        started = time.perf_counter()
        result = score_pending(
            sessions,
            classifier,
            now=lambda: now,
            batch_size=settings.score_batch_size,
            cache=sentence_cache,
        )
        seconds = time.perf_counter() - started
        engine.dispose()
    return {
        "texts": result.articles,
        "texts_per_s": result.articles / seconds,
        "peak_rss_mb": vmhwm_mb(),
        "torch_imported": "torch" in sys.modules,
        "cache_hit_rate": sentence_cache.hit_rate if sentence_cache else None,
    }


def child_tokens(model: str, n: int) -> dict[str, object]:
    from tokenizers import Tokenizer

    from scorer.scoring.segments import texts_of

    tokenizer = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    pairs = make_texts(n)
    whole = [len(e.ids) for e in tokenizer.encode_batch(joined(pairs))]
    sentences = [s for title, summary in pairs for s in texts_of(title, summary)]
    per_sentence = [len(e.ids) for e in tokenizer.encode_batch(sentences)]
    return {
        "mean_tokens_per_text": statistics.mean(whole),
        "sentences_per_text": len(sentences) / n,
        "mean_tokens_per_sentence": statistics.mean(per_sentence),
    }


def child_fidelity(reference: str, artifact: str) -> dict[str, object]:
    import csv

    import numpy as np

    from bench.fidelity import DEFAULT_DATA, fp32_proba, score
    from scorer.scoring.model.onnx_runtime import OnnxClassifier

    with open(DEFAULT_DATA, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [row["sentence"] for row in rows]
    clf = OnnxClassifier(Path(artifact), threads=2)
    gold = np.array([clf.labels.index(row["label"]) for row in rows])
    ref = fp32_proba(reference, texts, 64)
    got = clf.predict_proba(texts, max_length=64)
    diff = np.abs(score(ref, clf.labels) - score(got, clf.labels))
    return {
        "sentences": len(texts),
        "agree": float((ref.argmax(1) == got.argmax(1)).mean()),
        "mean_diff": float(diff.mean()),
        "max_diff": float(diff.max()),
        "acc_fp32": float((ref.argmax(1) == gold).mean()),
        "acc_artifact": float((got.argmax(1) == gold).mean()),
    }


CHILDREN = {
    "baseline": child_baseline,
    "service": child_service,
    "tokens": child_tokens,
    "fidelity": child_fidelity,
}


def answer_child(children: dict[str, Callable[..., object]], argv: list[str]) -> int:
    """The child side of ``run_child``: run ``children[name]`` and print its JSON line."""
    name, *rest = argv
    print(json.dumps(children[name](*(int(a) if a.isdigit() else a for a in rest))))
    return 0


def run_child(
    name: str, *args: object, script: str = __file__, root: Path = ROOT
) -> dict[str, object]:
    """One measurement in a fresh interpreter (``script --child name args``) on the code
    at ``root``, with the environment the Procfile sets."""
    env = {**os.environ, "PYTHONPATH": str(root), "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(
        [sys.executable, script, "--child", name, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- set-up and cold start -------------------------------------------------------------


def checkout(revision: str) -> Path:
    """The tree of ``revision`` (a commit of this repository), unpacked once under
    var/bench/, to run its own service path beside today's."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True
    )
    if commit.returncode != 0:
        raise SystemExit(f"bench/scoring.py: --before {revision!r} is not a commit here")
    out = WORK / f"tree-{commit.stdout.strip()}"
    if not (out / "bench" / "scoring.py").exists():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit.stdout.strip()], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def finbert_sized(reference: Path) -> Path:
    """BERT-base config, random weights (seeded), FinBERT's labels, the reference tokenizer."""
    path = WORK / "finbert-sized"
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # our lines say what runs
    torch.manual_seed(0)
    config = BertConfig(
        num_labels=3, id2label=FINBERT_LABELS, label2id={v: k for k, v in FINBERT_LABELS.items()}
    )
    BertForSequenceClassification(config).eval().save_pretrained(path)
    AutoTokenizer.from_pretrained(str(reference)).save_pretrained(path)
    return path


def artifact_for(model: Path, name: str) -> Path:
    from scorer.scoring.model.artifact import build_artifact
    from scorer.scoring.model.onnx_runtime import MANIFEST_NAME

    out = WORK / name
    if not (out / MANIFEST_NAME).exists():
        started = time.perf_counter()
        build_artifact(str(model), None, out)
        print(f"  built {name} in {time.perf_counter() - started:.0f}s")
    return out


def cold_start(artifact: Path, model: Path) -> dict[str, float]:
    """Start gunicorn as the Procfile does; time the bind and the first health 200."""
    from scorer.process.cli import WEB_COMMAND

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{tmp}/cold.db",
            "FINBERT_MODEL": str(model),
            "FINBERT_MODEL_SHA": "unknown",
            "MODEL_ARTIFACT_DIR": str(artifact),
            "FEEDS": "",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", *WEB_COMMAND],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bound = ready = float("nan")
        try:
            while time.monotonic() - started < 60:
                try:
                    if bound != bound:  # nan: not bound yet
                        socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                        bound = time.monotonic() - started
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=5)
                    ready = time.monotonic() - started
                    break
                except (OSError, urllib.error.HTTPError):
                    time.sleep(0.02)
        finally:
            proc.terminate()
            proc.wait(30)
    return {"bind_s": bound, "health_200_s": ready}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument(
        "--baseline-texts",
        type=int,
        default=300,
        help="the first N of the same texts for the (slow) naive baseline",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-model", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument(
        "--before",
        metavar="REVISION",
        help="also run the service path of this commit's code, alternating, for a before/after",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return answer_child(CHILDREN, args.child)

    WORK.mkdir(parents=True, exist_ok=True)
    print(
        f"bench/scoring.py: {os.cpu_count()} cores, {args.threads} threads, "
        f"{args.rounds} rounds alternating baseline / service"
    )
    model = finbert_sized(args.reference_model)
    artifact = artifact_for(model, "finbert-sized-artifact")
    tokens = run_child("tokens", model, args.texts)
    print(
        f"texts: {args.texts} headline+summary pairs, {tokens['mean_tokens_per_text']:.1f} "
        f"tokens each on average; {tokens['sentences_per_text']:.2f} sentences of "
        f"{tokens['mean_tokens_per_sentence']:.1f} tokens as scored"
    )

    old = checkout(args.before) if args.before else None
    base, serv, cached, before = [], [], [], []
    for n in range(args.rounds):
        print(f"  round {n + 1} of {args.rounds}...", flush=True)
        base.append(run_child("baseline", model, args.baseline_texts, args.threads))
        serv.append(run_child("service", artifact, args.texts, args.threads, 0))
        if old is not None:
            script = str(old / "bench" / "scoring.py")
            before.append(
                run_child("service", artifact, args.texts, args.threads, 0, script=script, root=old)
            )
        cached.append(run_child("service", artifact, args.texts, args.threads, 1))
    colds = [cold_start(artifact, model) for _ in range(args.rounds)]

    def med(rows: list[dict[str, object]], key: str) -> float:
        return statistics.median(float(r[key]) for r in rows)  # type: ignore[arg-type]

    b_tps, s_tps = med(base, "texts_per_s"), med(serv, "texts_per_s")
    print("\ntexts/s (peak MB)  baseline        | service         | service+cache")
    for i, row in enumerate(zip(base, serv, cached, strict=True)):
        print(
            f"  round {i + 1}        "
            + " | ".join(f"{r['texts_per_s']:>6.1f} ({r['peak_rss_mb']:>4.0f} MB)" for r in row)
        )
    rss = max(float(s["peak_rss_mb"]) for s in serv + cached)  # type: ignore[arg-type]
    c_tps, hit_rate = med(cached, "texts_per_s"), med(cached, "cache_hit_rate")
    print(
        f"with the sentence cache: {c_tps:.1f} texts/s = {c_tps / b_tps:.1f}x, {hit_rate:.0%} of "
        "sentences from the cache: these generated texts repeat far more than real feeds "
        "(bench/sentence_cache.py), so it is shown, not counted"
    )
    if before:
        was_tps = med(before, "texts_per_s")
        print(
            f"before/after ({args.before} vs this tree, same artifact, no cache, alternating): "
            + ", ".join(
                f"{float(b['texts_per_s']):.1f} vs {float(s['texts_per_s']):.1f}"  # type: ignore[arg-type]
                for b, s in zip(before, serv, strict=True)
            )
            + f" texts/s; medians {was_tps:.1f} vs {s_tps:.1f} = {s_tps / was_tps:.2f}x"
        )
    bind = statistics.median(c["bind_s"] for c in colds)
    ready = statistics.median(c["health_200_s"] for c in colds)
    checks = [
        (
            f"throughput: service {s_tps:.1f} vs pipeline {b_tps:.1f} texts/s (medians, "
            "no sentence cache) = "
            f"{s_tps / b_tps:.1f}x (target >= {TARGET_SPEEDUP:.0f}x)",
            s_tps / b_tps >= TARGET_SPEEDUP,
        ),
        (
            f"peak RSS of the serving process: {rss:.0f} MB worst of {2 * args.rounds} (baseline "
            f"{med(base, 'peak_rss_mb'):.0f} MB; target <= {TARGET_RSS_MB:.0f})",
            rss <= TARGET_RSS_MB,
        ),
        (
            f"torch imported by the serving process: {any(s['torch_imported'] for s in serv)}",
            not any(s["torch_imported"] for s in serv),
        ),
        (
            f"cold start: bind {bind:.2f}s (<= {TARGET_BIND_S:.0f}), health 200 {ready:.2f}s "
            f"(<= {TARGET_READY_S:.0f}), medians of {args.rounds}",
            bind <= TARGET_BIND_S and ready <= TARGET_READY_S,
        ),
    ]
    if (args.reference_model / "config.json").exists():
        ref_artifact = artifact_for(args.reference_model, "reference-artifact")
        fid = run_child("fidelity", args.reference_model, ref_artifact)
        checks.append(
            (
                f"fidelity on {fid['sentences']} PhraseBank sentences: {float(fid['agree']):.2%} "  # type: ignore[arg-type]
                f"labels agree (>= 98%), mean |score diff| {float(fid['mean_diff']):.4f} "  # type: ignore[arg-type]
                f"(<= 0.02, max {float(fid['max_diff']):.3f}), accuracy fp32 "  # type: ignore[arg-type]
                f"{float(fid['acc_fp32']):.2%} vs {float(fid['acc_artifact']):.2%}",  # type: ignore[arg-type]
                float(fid["agree"]) >= 0.98
                and float(fid["mean_diff"]) <= 0.02  # type: ignore[arg-type]
                and float(fid["acc_fp32"]) - float(fid["acc_artifact"]) <= 0.01,  # type: ignore[arg-type]
            )
        )
    else:
        checks.append((f"fidelity: no reference model at {args.reference_model}", False))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
