"""The running service: one object that owns the engine, the model loader, the
HTTP session for feeds and the scheduler, built from Settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import bottle
import requests
from sqlalchemy import Engine

from jobs.ingest import IngestResult, ingest
from jobs.score import ScoreResult, score_pending
from scorer import __version__
from scorer.api import create_app
from scorer.config import Settings
from scorer.crons import CronReporter
from scorer.db import make_engine, make_session_factory
from scorer.feeds import make_http_session
from scorer.loader import ModelLoader
from scorer.sentiment import Classifier

log = logging.getLogger(__name__)


class ArtifactMismatch(RuntimeError):
    """The prepared artifact was built from another model or revision than configured."""


def load_classifier(settings: Settings) -> Classifier:
    """Load the prepared ONNX artifact if there is one, else the model with transformers.

    The artifact is what fits an Eco dyno (see README, "Memory budget"). One built
    from another model or revision is refused rather than silently served: scores
    would carry the wrong provenance.
    """
    if settings.model_revision is None:
        log.warning("FINBERT_MODEL_SHA is 'unknown': %s is unpinned", settings.finbert_model)
    artifact = settings.model_artifact_dir
    if (artifact / "artifact.json").exists():
        from scorer.onnx_runtime import OnnxClassifier, read_manifest

        manifest = read_manifest(artifact)
        built = (manifest["source_model"], manifest["revision"])
        wanted = (settings.finbert_model, settings.finbert_model_sha)
        if built != wanted:
            raise ArtifactMismatch(
                f"artifact in {artifact} was built from {built[0]}@{built[1]}, configured "
                f"{wanted[0]}@{wanted[1]}: run 'python -m scorer prepare-model'"
            )
        return OnnxClassifier(artifact, threads=settings.torch_threads)
    log.warning(
        "no prepared artifact in %s: loading %s with transformers (about 1 GB for "
        "FinBERT; run 'python -m scorer prepare-model')",
        artifact,
        settings.finbert_model,
    )
    from scorer.hf_model import TransformersClassifier

    return TransformersClassifier(
        settings.finbert_model, settings.model_revision, threads=settings.torch_threads
    )


@dataclass
class CycleResult:
    ingest: IngestResult
    score: ScoreResult | None  # None when the model is not loaded yet

    def summary(self) -> str:
        i, s = self.ingest, self.score
        scored = "model not loaded" if s is None else f"scored={s.events} more={s.more}"
        return (
            f"feeds={i.feeds} fetched={i.fetched} items={i.items} new={i.new} "
            f"untagged={i.untagged} errors={len(i.errors)} {scored}"
        )


class Service:
    """Everything one process needs; nothing starts until asked."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        loader: ModelLoader | None = None,
        crons: CronReporter | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url, pool_size=10)
        self.sessions = make_session_factory(self.engine)
        self.loader = loader or ModelLoader(lambda: load_classifier(settings))
        self.http: requests.Session = make_http_session(f"Reasonator/{__version__}")
        self.crons = crons or CronReporter(settings.window, settings.poll_interval, None)
        self.stopping = threading.Event()
        self._cycle_lock = threading.Lock()

    def app(self, role: Callable[[], str] = lambda: "scheduler") -> bottle.Bottle:
        return create_app(self.settings, sessions=self.sessions, loader=self.loader, role=role)

    def run_cycle(self, now: datetime | None = None) -> CycleResult:
        """One ingest then score pass. Scoring waits for the model; ingest never does."""
        with self._cycle_lock:
            when = now or datetime.now(UTC)
            with self.crons.job("reasonator-ingest", when):
                ingested = ingest(
                    self.sessions,
                    self.http,
                    self.settings.feeds,
                    self.settings.watchlist,
                    now=when,
                    timeout=self.settings.fetch_timeout,
                )
            classifier = self.loader.classifier
            if classifier is None:  # still loading: no check-in; Sentry's margin covers a boot
                return CycleResult(ingested, None)
            with self.crons.job("reasonator-score", when):
                scored = score_pending(
                    self.sessions,
                    classifier,
                    now=lambda: datetime.now(UTC),
                    batch_size=self.settings.score_batch_size,
                    stop=self.stopping,
                )
            return CycleResult(ingested, scored)

    def shutdown(self) -> None:
        """Stop between batches: what is committed stays, the rest stays pending."""
        self.stopping.set()
        self.loader.stop()
        with self._cycle_lock:  # wait for a running cycle to reach a batch boundary
            pass
        self.engine.dispose()
