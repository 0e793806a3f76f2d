"""Loads the model in the background, after the web server has bound its port,
and retries with backoff when loading fails (hub down, bad revision, bad files)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from scorer.scoring.model.base import Classifier

log = logging.getLogger(__name__)


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for health: the exception's type and first line, bounded.

    Loading errors name model ids, paths and revisions, never our secrets (the model is
    loaded without credentials), but they can be long: keep the first line only.
    """
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


class ModelLoader:
    """Holds the classifier once loaded; health reads ``ready`` and ``reason``."""

    def __init__(
        self,
        load: Callable[[], Classifier],
        *,
        first_backoff: float = 5.0,
        max_backoff: float = 300.0,
    ) -> None:
        self._load = load
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.classifier: Classifier | None = None
        self.reason: str | None = None
        self.attempts = 0

    @classmethod
    def loaded(cls, classifier: Classifier) -> ModelLoader:
        """A loader that already holds ``classifier`` (CLI runs, tests)."""
        loader = cls(lambda: classifier)
        loader.run()
        return loader

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        """Start loading in a daemon thread; returns at once."""
        self._thread = threading.Thread(target=self.run, name="model-loader", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Try to load until it works or ``stop`` is called."""
        backoff = self._first_backoff
        while True:
            self.attempts += 1
            try:
                classifier = self._load()
            except Exception as exc:  # noqa: BLE001 - any failure means "retry later"
                self.reason = describe_failure(exc)
                log.error(
                    "model load failed (attempt %d), retrying in %.0fs: %s",
                    self.attempts,
                    backoff,
                    self.reason,
                )
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self.classifier, self.reason = classifier, None
            self._ready.set()
            log.info("model loaded: %s @ %s", classifier.model_id, classifier.revision)
            return

    def wait(self, timeout: float | None = None) -> Classifier:
        """Block until loaded (CLI use); raise TimeoutError with the last reason."""
        if not self._ready.wait(timeout):
            raise TimeoutError(f"model not loaded: {self.reason or 'still loading'}")
        assert self.classifier is not None
        return self.classifier

    def stop(self) -> None:
        self._stop.set()
