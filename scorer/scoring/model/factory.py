"""Choose and load a runtime for the configured model."""

from __future__ import annotations

import logging
from pathlib import Path

from scorer.config.settings import ConfigError, Settings
from scorer.scoring.model.base import Classifier

log = logging.getLogger(__name__)


class ArtifactMismatch(RuntimeError):
    """The prepared artifact was built from another model or revision than configured.
    The CLI exits 2 with its one-line message (a setting and an artifact disagree)."""


class ModelNotFound(ConfigError):
    """FINBERT_MODEL names a local directory that does not exist."""


def check_model_path(model: str) -> None:
    """Raise ModelNotFound when ``model`` is a path (absolute, ``./``, ``../``, ``~`` or
    more than one ``/``) to nothing: otherwise the hub client answers "Repo id must be
    in the form…", which sends people looking for a hub id. A hub id is ``org/name``.
    The message shows the directory's name only: it reaches public health."""
    path = Path(model).expanduser()
    looks_local = model.startswith(("/", "./", "../", "~")) or model.count("/") > 1
    if looks_local and not path.is_dir():
        raise ModelNotFound(
            f"FINBERT_MODEL: no model directory named {path.name!r} "
            "(a local path that does not exist; a hub model id looks like 'org/name')"
        )


def mismatch_message(configured: tuple[str, str], built: tuple[str, str], where: Path) -> str:
    """One line: which of the model id and the revision differ (both values of each),
    and the fix for a local run and for Heroku."""
    (model, sha), (built_model, built_sha) = configured, built
    if model != built_model and sha != built_sha:
        what = (
            f"model id and revision differ: configured {model}@{sha}, "
            f"artifact built from {built_model}@{built_sha}"
        )
    elif model != built_model:
        what = (
            f"model id differs: FINBERT_MODEL is {model}, artifact built from {built_model} "
            f"(revision {sha} in both)"
        )
    else:
        what = (
            f"revision differs: FINBERT_MODEL_SHA is {sha}, artifact built from {built_sha} "
            f"(model {model} in both)"
        )
    return (
        f"artifact mismatch in {where}: {what}; fix: run 'python -m scorer prepare-model' "
        "(a local run) or redeploy (Heroku: the build prepares the configured model)"
    )


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
        from scorer.scoring.model.onnx_runtime import OnnxClassifier, read_manifest

        manifest = read_manifest(artifact_dir)
        built = (manifest["source_model"], manifest["revision"])
        if built != (model, model_sha):
            # Build and boot read FINBERT_MODEL(_SHA) the same way (vault first), so this
            # means the vault or config changed after the build: a redeploy rebuilds.
            raise ArtifactMismatch(mismatch_message((model, model_sha), built, artifact_dir))
        return OnnxClassifier(artifact_dir, threads=threads)
    check_model_path(model)
    log.warning(
        "no prepared artifact in %s: loading %s with transformers (about 1 GB for "
        "FinBERT; run 'python -m scorer prepare-model')",
        artifact_dir,
        model,
    )
    from scorer.scoring.model.transformers_runtime import TransformersClassifier

    return TransformersClassifier(model, revision, threads=threads)
