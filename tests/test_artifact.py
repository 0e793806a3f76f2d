"""The prepared (int8 ONNX) artifact: built once, found by the service, refused
when it does not match the configured model and revision."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scorer.config import Settings
from scorer.model import ArtifactMismatch, ModelLoader, load_classifier
from scorer.model.artifact import build_artifact
from scorer.model.onnx_runtime import MANIFEST_KEYS, OnnxClassifier, read_manifest
from scorer.model.transformers_runtime import TransformersClassifier
from scorer.sentiment import predict_articles

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
    return build_artifact(str(tiny_model), "rev-1", tmp_path_factory.mktemp("art") / "model")


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
    assert [p.label for p in a] == [p.label for p in b]
    for x, y in zip(a, b, strict=True):
        # A tiny random model has outsized activations: int8 is coarser here than on
        # a trained one (bench/fidelity.py measures the real bound).
        assert x.score == pytest.approx(y.score, abs=0.15)


def test_the_service_loads_a_matching_artifact(artifact: Path, tiny_model: Path) -> None:
    classifier = load_classifier(_settings(tiny_model, artifact))
    assert isinstance(classifier, OnnxClassifier)
    assert (classifier.model_id, classifier.revision) == (str(tiny_model), "rev-1")


def test_the_service_refuses_an_artifact_of_another_revision(
    artifact: Path, tiny_model: Path
) -> None:
    settings = _settings(tiny_model, artifact, revision="rev-2")
    with pytest.raises(ArtifactMismatch, match=r"mismatch.*rev-2.*rev-1.*redeploy"):
        load_classifier(settings)

    loader = ModelLoader(lambda: load_classifier(settings))
    loader.stop()  # one attempt
    loader.run()
    assert not loader.ready and loader.reason is not None
    assert loader.reason.startswith(
        "ArtifactMismatch: model revision mismatch: configured rev-2, artifact built from "
        "rev-1: redeploy"
    )


def test_without_an_artifact_the_service_loads_with_transformers(
    tiny_model: Path, tmp_path: Path
) -> None:
    classifier = load_classifier(_settings(tiny_model, tmp_path / "none", revision="unknown"))
    assert isinstance(classifier, TransformersClassifier)


def test_the_permuted_artifact_reads_labels_from_its_config(
    permuted_model: Path, tiny_model: Path, tmp_path: Path
) -> None:
    plain = OnnxClassifier(build_artifact(str(tiny_model), None, tmp_path / "a"), threads=1)
    permuted = OnnxClassifier(build_artifact(str(permuted_model), None, tmp_path / "b"), threads=1)
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

    assert main(["prepare-model"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["revision"] == "rev-9"
    settings = Settings.from_env(build=True)
    assert isinstance(load_classifier(settings), OnnxClassifier)
