"""Choose and load a runtime for the configured model."""

from __future__ import annotations

import logging

from scorer.config import Settings
from scorer.model.base import Classifier

log = logging.getLogger(__name__)


class ArtifactMismatch(RuntimeError):
    """The prepared artifact was built from another model or revision than configured."""


def load_classifier(settings: Settings) -> Classifier:
    """Load the prepared ONNX artifact if there is one, else the model with transformers.

    The artifact is what fits an Eco dyno (see README, "Memory budget"). One built
    from another model or revision is refused rather than silently served: scores
    would carry the wrong provenance.
    """
    model, model_sha, revision = (
        settings.finbert_model,
        settings.finbert_model_sha,
        settings.model_revision,
    )
    artifact_dir, threads = settings.model_artifact_dir, settings.model_threads
    if revision is None:
        log.warning("FINBERT_MODEL_SHA is 'unknown': %s is unpinned", model)
    if (artifact_dir / "artifact.json").exists():
        from scorer.model.onnx_runtime import OnnxClassifier, read_manifest

        manifest = read_manifest(artifact_dir)
        built = (manifest["source_model"], manifest["revision"])
        if built != (model, model_sha):
            # Build and boot read FINBERT_MODEL(_SHA) the same way (vault first), so this
            # means the vault or config changed after the build: a redeploy rebuilds.
            raise ArtifactMismatch(
                f"model revision mismatch: configured {model_sha}, artifact built from "
                f"{built[1]}: redeploy (the build prepares the configured revision); "
                f"configured model {model}, artifact's {built[0]} in {artifact_dir}"
            )
        return OnnxClassifier(artifact_dir, threads=threads)
    log.warning(
        "no prepared artifact in %s: loading %s with transformers (about 1 GB for "
        "FinBERT; run 'python -m scorer prepare-model')",
        artifact_dir,
        model,
    )
    from scorer.model.transformers_runtime import TransformersClassifier

    return TransformersClassifier(model, revision, threads=threads)
