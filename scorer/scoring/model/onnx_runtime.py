"""Serve a BERT sequence classifier with ONNX Runtime, without torch at run time.

Why this module exists: importing torch and transformers alone costs more memory
than a 512 MB Heroku Eco dyno can spare next to the web app (figures in
bench/README.md, where measurements live so they can be re-run). At run time this
module only needs numpy, onnxruntime and tokenizers. The artifact is built once, at build time, by
:func:`scorer.scoring.model.artifact.build_artifact`.

An *artifact* is a directory holding::

    model.onnx             quantized graph (see ``scorer.scoring.model.artifact.ARTIFACT_FORMAT``)
    model.onnx.data        its weights (external data, memory-mapped by ORT)
    tokenizer.json         fast-tokenizer definition (+ tokenizer_config.json)
    config.json            the Hugging Face config, incl. id2label
    artifact.json          manifest: source model, revision, format, sha256, ...
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from scorer.scoring.model.base import (
    BATCH_SIZE,
    MAX_TOKENS,
    RuntimeHealth,
    check_labels,
    length_sorted_batches,
    model_id_of,
    softmax,
)

MANIFEST_NAME = "artifact.json"
MODEL_NAME = "model.onnx"
# Weights live next to the graph: ORT memory-maps external data instead of
# parsing a protobuf copy and then copying it again (bench/README.md, "Levers").
DATA_NAME = "model.onnx.data"
MANIFEST_KEYS = ("source_model", "revision", "format", "created_at", "onnxruntime", "sha256")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")

_ORT_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """Return the artifact's manifest, raising ``ValueError`` if it is missing or incomplete."""
    path = Path(artifact_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f"{path} is missing: not a built artifact")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} must hold a JSON object")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ValueError(f"{path} lacks keys: {', '.join(missing)}")
    return _renamed(manifest)


# Keys of artifacts built before they said what they hold: the nodes kept out of
# per-tensor int8 were named "fp32" (and were fp32 before issue 12; the format says).
_OLD_KEYS = {"fp32_nodes": "blockwise_nodes", "fp32_fraction": "blockwise_fraction"}


def _renamed(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest under today's key names, whatever names it was written with."""

    def rename(part: dict[str, Any]) -> dict[str, Any]:
        return {_OLD_KEYS.get(key, key): value for key, value in part.items()}

    out = rename(manifest)
    if isinstance(out.get("fidelity"), dict):
        fidelity = rename(out["fidelity"])
        if isinstance(fidelity.get("attempts"), list):
            fidelity["attempts"] = [
                rename(a) if isinstance(a, dict) else a for a in fidelity["attempts"]
            ]
        out["fidelity"] = fidelity
    return out


def _session_options(threads: int) -> ort.SessionOptions:
    """Session options tuned for a small, shared CPU box with a tight memory cap."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Without ORT's arena every batch mallocs and frees its activations from two
    # threads, and glibc fragmentation raises peak RSS (bench/README.md, "Levers").
    opts.enable_cpu_mem_arena = True
    # Memory patterns cache one plan per input shape; length-sorted batches
    # have many shapes, so they would only add to RSS.
    opts.enable_mem_pattern = False
    # Spinning worker threads burn CPU that a shared dyno does not have.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class OnnxClassifier:
    """Sequence classifier served from an artifact (built by
    :mod:`scorer.scoring.model.artifact`)."""

    def __init__(self, artifact_dir: Path, *, threads: int) -> None:
        artifact_dir = Path(artifact_dir)
        manifest = read_manifest(artifact_dir)
        self.manifest: dict[str, Any] = manifest
        self.model_id: str = model_id_of(manifest["source_model"])
        self.revision: str = manifest["revision"]
        config = json.loads((artifact_dir / "config.json").read_text(encoding="utf-8"))
        id2label = {int(k): v for k, v in config["id2label"].items()}
        self.labels: list[str] = check_labels([id2label[i] for i in range(len(id2label))])

        self._tokenizer = Tokenizer.from_file(str(artifact_dir / "tokenizer.json"))
        # Padding is done here per batch, never by the tokenizer.
        self._tokenizer.no_padding()
        self._pad_id = self._find_pad_id(artifact_dir)
        # enable_truncation mutates the tokenizer, so encode calls are serialised.
        self._tok_lock = threading.Lock()
        self._max_length: int | None = None

        self._session = ort.InferenceSession(
            str(artifact_dir / MODEL_NAME),
            sess_options=_session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self._inputs = {
            i.name: _ORT_INT_TYPES.get(i.type, np.int64) for i in self._session.get_inputs()
        }

    def _find_pad_id(self, artifact_dir: Path) -> int:
        """Pad id from tokenizer_config.json's pad_token, falling back to BERT's 0."""
        cfg_path = artifact_dir / "tokenizer_config.json"
        pad_token = "[PAD]"
        if cfg_path.is_file():
            pad_token = (
                json.loads(cfg_path.read_text(encoding="utf-8")).get("pad_token") or pad_token
            )
            if isinstance(pad_token, dict):  # older configs store an AddedToken dict
                pad_token = pad_token.get("content", "[PAD]")
        pad_id = self._tokenizer.token_to_id(pad_token)
        return 0 if pad_id is None else pad_id

    def _encode(self, texts: list[str], max_length: int) -> list[Any]:
        with self._tok_lock:
            if self._max_length != max_length:
                self._tokenizer.enable_truncation(max_length)
                self._max_length = max_length
            return self._tokenizer.encode_batch(texts)

    def health(self) -> RuntimeHealth:
        """Health's ``artifact``: the fidelity gate's figures, with its warnings."""
        summary, warnings = artifact_summary(self.manifest)
        return {"artifact": summary}, warnings

    def predict_proba(
        self, texts: list[str], *, max_length: int = MAX_TOKENS, batch_size: int = BATCH_SIZE
    ) -> np.ndarray:
        """Softmax probabilities, shape [len(texts), len(self.labels)], rows in input order.

        Texts are sorted by token length and batched so each batch is padded only
        to its own longest text: padding tokens cost as much compute as real ones.
        """
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        encodings = self._encode(list(texts), max_length)
        for idx in length_sorted_batches([len(e.ids) for e in encodings], batch_size):
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                enc = encodings[i]
                n = len(enc.ids)
                ids[row, :n] = enc.ids
                types[row, :n] = enc.type_ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            feeds = {
                k: v.astype(self._inputs[k], copy=False)
                for k, v in feeds.items()
                if k in self._inputs
            }
            (logits,) = self._session.run(["logits"], feeds)
            out[idx] = softmax(logits)
        return out


def artifact_summary(manifest: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What health shows of the served artifact: the fidelity gate's figures, and a
    warning when it was built without the gate."""
    fidelity = manifest.get("fidelity") or {"gate": "not recorded"}
    summary = {
        key: fidelity[key]
        for key in ("gate", "agreement", "mean_abs_diff", "sentences")
        if key in fidelity
    }
    if "blockwise_fraction" in fidelity:  # health's name for it predates the scheme
        summary["fp32_fraction"] = fidelity["blockwise_fraction"]
    warnings = []
    if summary["gate"] == "skipped":
        warnings.append(
            "artifact built with --no-gate: its fidelity to the fp32 model was not measured"
        )
    elif summary["gate"] != "passed":
        warnings.append("artifact predates the fidelity gate: rebuild it with prepare-model")
    return summary, warnings
