"""The prepared (int8 ONNX) artifact: built once, found by the service, refused
when it does not match the configured model and revision."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from scorer.config.settings import Settings
from scorer.scoring.model import ArtifactMismatch, ModelLoader, load_classifier
from scorer.scoring.model.artifact import (
    BLOCKWISE_STEPS,
    FidelityGateError,
    build_artifact,
    heldout_sentences,
)
from scorer.scoring.model.onnx_runtime import (
    MANIFEST_KEYS,
    MANIFEST_NAME,
    OnnxClassifier,
    artifact_summary,
    read_manifest,
)
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.scoring.sentiment import Prediction, predict_articles

TEXTS = [
    ("$AAPL shares surge after record profit", "Analysts upgrade the stock."),
    ("Tesla stock plunges on recall", ""),
    ("Microsoft beats earnings", "Revenue rose 20 percent."),
    ("Nvidia shares fall amid investigation", ""),
    ("Meta cuts guidance", "The company said sales growth will decline."),
    ("Amazon sales growth strong", ""),
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artifact(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # No gate: these tests are about building and loading; the gate has its own below.
    return build_artifact(
        str(tiny_model), "rev-1", tmp_path_factory.mktemp("art") / "model", gate=False
    )


def _settings(tiny_model: Path, artifact: Path, revision: str = "rev-1") -> Settings:
    return replace(
        Settings.from_env({}),
        finbert_model=str(tiny_model),
        finbert_model_sha=revision,
        model_artifact_dir=artifact,
        model_threads=1,
    )


def test_the_artifact_records_its_source_and_revision(artifact: Path, tiny_model: Path) -> None:
    manifest = read_manifest(artifact)
    assert set(MANIFEST_KEYS) <= set(manifest)
    assert manifest["source_model"] == str(tiny_model) and manifest["revision"] == "rev-1"
    assert not [p for p in artifact.parent.iterdir() if ".building-" in p.name]


def test_the_artifact_scores_like_the_fp32_model(artifact: Path, tiny_model: Path) -> None:
    onnx = OnnxClassifier(artifact, threads=1)
    fp32 = TransformersClassifier(str(tiny_model), None, threads=1)

    assert onnx.labels == fp32.labels == ["positive", "negative", "neutral"]
    a, b = predict_articles(onnx, TEXTS), predict_articles(fp32, TEXTS)
    # A tiny random model has outsized activations (logits of +-30): where it is torn
    # between two labels, int8 noise flips it, which a trained model does not do
    # (bench/fidelity.py measures the real bound). Where fp32 is sure, the artifact
    # must agree with it and be close; a swapped label order or a broken export fails.
    sure = [(x, y) for x, y in zip(a, b, strict=True) if _margin(y) > 0.5]
    assert len(sure) >= 3
    for x, y in sure:
        assert x.label == y.label
        assert x.score == pytest.approx(y.score, abs=0.15)


def _margin(prediction: Prediction) -> float:
    """How much the top label's probability beats the next one's."""
    top, second = sorted(
        (prediction.p_positive, prediction.p_negative, prediction.p_neutral), reverse=True
    )[:2]
    return top - second


def test_the_noisiest_matmuls_are_blockwise_and_word_embeddings_int8_per_row(
    artifact: Path,
) -> None:
    import onnx
    from onnx import TensorProto

    graph = onnx.load(str(artifact / "model.onnx"), load_external_data=False).graph
    kept = read_manifest(artifact)["blockwise_nodes"]
    blockwise = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert sorted(n.name for n in blockwise) == sorted(kept) and kept
    assert all(n.input[5] for n in blockwise)  # the bias Add folded in
    types = {init.name: init.data_type for init in graph.initializer}
    tables = [n.input[0] for n in graph.node if n.op_type == "Gather" and "input_ids" in n.input]
    assert sorted(types[t] for t in tables) == [TensorProto.FLOAT, TensorProto.INT8]  # rows, scales
    assert "onnx-int8-dynamic+blockwise" in read_manifest(artifact)["format"]


def test_the_service_loads_a_matching_artifact(artifact: Path, tiny_model: Path) -> None:
    classifier = load_classifier(_settings(tiny_model, artifact))
    assert isinstance(classifier, OnnxClassifier)
    assert (classifier.model_id, classifier.revision) == (tiny_model.name, "rev-1")


def test_the_service_refuses_an_artifact_of_another_revision(
    artifact: Path, tiny_model: Path
) -> None:
    settings = _settings(tiny_model, artifact, revision="rev-2")
    with pytest.raises(ArtifactMismatch) as info:
        load_classifier(settings)
    assert str(info.value) == (
        f"artifact mismatch in {artifact}: revision differs: FINBERT_MODEL_SHA is rev-2, "
        f"artifact built from rev-1 (model {tiny_model} in both); fix: run 'python -m scorer "
        "prepare-model' (a local run) or redeploy (Heroku: the build prepares the configured "
        "model)"
    )

    loader = ModelLoader(lambda: load_classifier(settings))
    loader.stop()  # one attempt
    loader.run()
    assert not loader.ready and loader.reason is not None
    assert loader.reason.startswith("ArtifactMismatch: artifact mismatch in ")
    assert "revision differs: FINBERT_MODEL_SHA is rev-2, artifact built from rev-1" in (
        loader.reason
    )


def test_run_once_with_another_model_or_revision_exits_2_with_the_fix(
    artifact: Path,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scorer.process.cli import main

    for name, value in {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "FEEDS": "none",
        "FINBERT_MODEL": str(tiny_model),
        "FINBERT_MODEL_SHA": "rev-2",
        "MODEL_ARTIFACT_DIR": str(artifact),
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run-once"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(f"configuration error: artifact mismatch in {artifact}: revision")
    assert "python -m scorer prepare-model" in err[0] and "redeploy" in err[0]


@pytest.mark.parametrize(
    ("configured", "says"),
    [
        (
            ("org/other", "rev-1"),
            "model id differs: FINBERT_MODEL is org/other, artifact built from org/tiny "
            "(revision rev-1 in both)",
        ),
        (
            ("org/tiny", "rev-2"),
            "revision differs: FINBERT_MODEL_SHA is rev-2, artifact built from rev-1 "
            "(model org/tiny in both)",
        ),
        (
            ("org/other", "unknown"),
            "model id and revision differ: configured org/other@unknown, artifact built "
            "from org/tiny@rev-1",
        ),
    ],
)
def test_a_mismatch_says_which_of_model_and_revision_differs(
    configured: tuple[str, str], says: str
) -> None:
    from scorer.scoring.model.factory import mismatch_message

    message = mismatch_message(configured, ("org/tiny", "rev-1"), Path("/app/var/model"))
    assert message.startswith(f"artifact mismatch in /app/var/model: {says}; fix: run ")
    assert "\n" not in message


def test_without_an_artifact_the_service_loads_with_transformers(
    tiny_model: Path, tmp_path: Path
) -> None:
    classifier = load_classifier(_settings(tiny_model, tmp_path / "none", revision="unknown"))
    assert isinstance(classifier, TransformersClassifier)


def test_the_permuted_artifact_reads_labels_from_its_config(
    permuted_model: Path, tiny_model: Path, tmp_path: Path
) -> None:
    # No gate: a random tiny model's fidelity means nothing (its weights are 25x BERT's
    # scale); this is about label order. The gate has its own tests below.
    plain = OnnxClassifier(
        build_artifact(str(tiny_model), None, tmp_path / "a", gate=False), threads=1
    )
    permuted = OnnxClassifier(
        build_artifact(str(permuted_model), None, tmp_path / "b", gate=False), threads=1
    )
    assert plain.labels != permuted.labels
    a, b = predict_articles(plain, TEXTS), predict_articles(permuted, TEXTS)
    assert [p.label for p in a] == [p.label for p in b]


def test_prepare_model_builds_where_the_service_looks(
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from scorer.process.cli import main

    monkeypatch.setenv("ENV", "production")  # no token needed at build time
    monkeypatch.setenv("FINBERT_MODEL", str(tiny_model))
    monkeypatch.setenv("FINBERT_MODEL_SHA", "rev-9")
    monkeypatch.setenv("MODEL_ARTIFACT_DIR", str(tmp_path / "var" / "model"))

    assert main(["prepare-model", "--no-gate"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["revision"] == "rev-9"
    # The MatMuls kept out of per-tensor int8 are 8-bit blockwise, and it says so.
    assert "MatMuls kept blockwise" in captured.err and "kept fp32" not in captured.err
    assert "blockwise_fraction=" in captured.err
    assert out["fidelity"]["gate"] == "skipped"
    settings = Settings.from_env(complete=False)
    assert isinstance(load_classifier(settings), OnnxClassifier)


def _negate_matmul_weights(fp32_path: Path, int8_path: Path, blockwise: list[str]) -> None:
    """A deliberately broken quantizer: every weight MatMul not kept blockwise gets its
    weights negated (what a sign or zero-point bug would do)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32_path))
    weights = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights and node.name not in blockwise:
            init = weights[node.input[1]]
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(model, str(int8_path))


def test_the_gate_refuses_a_broken_quantization_and_keeps_the_old_artifact(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = build_artifact(str(tiny_model), "rev-1", tmp_path / "model", gate=False)
    before = read_manifest(out)
    monkeypatch.setattr("scorer.scoring.model.artifact._quantize", _negate_matmul_weights)

    with pytest.raises(FidelityGateError, match=r"artifact refused") as info:
        build_artifact(str(tiny_model), "rev-2", tmp_path / "model")

    message = str(info.value)
    # Every step was tried, up to the documented limit, and the figures are named.
    assert message.count("blockwise: agreement") == len(BLOCKWISE_STEPS)
    assert "50% blockwise" in message and "held-out sentences" in message
    assert read_manifest(out) == before  # the old artifact is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging left behind


def test_the_gate_keeps_more_matmuls_blockwise_until_the_artifact_is_faithful(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil as _shutil

    def broken_unless_a_third_is_kept(fp32: Path, int8: Path, keep: list[str]) -> None:
        if len(keep) < 4:  # of the tiny model's 12 weight MatMuls
            _negate_matmul_weights(fp32, int8, keep)
        else:  # "quantizes" nothing: exactly the fp32 model
            _shutil.copy(fp32, int8)

    monkeypatch.setattr("scorer.scoring.model.artifact._quantize", broken_unless_a_third_is_kept)
    out = build_artifact(str(tiny_model), "rev-1", tmp_path / "model")

    fidelity = read_manifest(out)["fidelity"]
    assert fidelity["gate"] == "passed"
    assert fidelity["blockwise_fraction"] == round(1 / 3, 4)
    assert (fidelity["agreement"], fidelity["mean_abs_diff"]) == (1.0, 0.0)
    assert fidelity["sentences"] == len(heldout_sentences()) >= 150
    assert [a["blockwise_fraction"] for a in fidelity["attempts"]] == [0.1667, 0.25, 0.3333]
    assert fidelity["attempts"][0]["agreement"] < 0.98


def test_health_shows_the_gates_figures_and_warns_without_the_gate() -> None:
    passed = {"fidelity": {"gate": "passed", "agreement": 0.99, "mean_abs_diff": 0.008}}
    assert artifact_summary(passed) == (
        {"gate": "passed", "agreement": 0.99, "mean_abs_diff": 0.008},
        [],
    )
    summary, warnings = artifact_summary({"fidelity": {"gate": "skipped"}})
    assert summary == {"gate": "skipped"} and "--no-gate" in warnings[0]
    assert "predates the fidelity gate" in artifact_summary({})[1][0]
    blockwise = {"fidelity": {"gate": "passed", "blockwise_fraction": 0.1667}}
    assert artifact_summary(blockwise)[0] == {"gate": "passed", "fp32_fraction": 0.1667}


def test_an_artifact_written_under_the_old_key_names_reads_under_the_new(
    artifact: Path, tmp_path: Path
) -> None:
    import shutil as _shutil

    old = tmp_path / "old"
    _shutil.copytree(artifact, old)
    manifest = json.loads((old / MANIFEST_NAME).read_text())
    manifest["fp32_nodes"] = manifest.pop("blockwise_nodes")
    fidelity = {"gate": "passed", "fp32_fraction": 0.25, "attempts": [{"fp32_fraction": 0.25}]}
    manifest["fidelity"] = fidelity
    (old / MANIFEST_NAME).write_text(json.dumps(manifest))

    read = read_manifest(old)
    assert read["blockwise_nodes"] == read_manifest(artifact)["blockwise_nodes"]
    assert "fp32_nodes" not in read
    assert read["fidelity"] == {
        "gate": "passed",
        "blockwise_fraction": 0.25,
        "attempts": [{"blockwise_fraction": 0.25}],
    }
    assert OnnxClassifier(old, threads=1).labels == ["positive", "negative", "neutral"]


def test_prepare_model_takes_the_model_and_revision_from_the_vault(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scorer.process.cli import main
    from tests.helpers.fake_vault import FakeVault, serving

    folder = {"FINBERT_MODEL": str(tiny_model), "FINBERT_MODEL_SHA": "rev-from-vault"}
    with serving(FakeVault(folders={("prod", "/rack"): folder})) as vault:
        # The build has only the bootstrap keys (bin/post_compile on Heroku).
        for name, value in vault.env(ENV="production").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MODEL_ARTIFACT_DIR", str(tmp_path / "model"))
        assert main(["prepare-model", "--no-gate"]) == 0
        assert vault.calls["/api/v4/secrets"] == 1
    manifest = read_manifest(tmp_path / "model")
    assert (manifest["source_model"], manifest["revision"]) == (str(tiny_model), "rev-from-vault")
