"""What a job is: its schedule, what it runs on, and how it is declared."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import requests
from sqlalchemy.orm import Session, sessionmaker

from scorer.config.settings import Settings
from scorer.ingest.fetch import FetchPolicy, RateLimits
from scorer.ingest.tagging import Tagger
from scorer.scoring.cache import SentenceCache
from scorer.scoring.model import Classifier


class Schedule(StrEnum):
    CYCLE = "cycle"
    DAILY = "daily"


class Context(Protocol):
    """What the process hands a job (the ``Service`` is one)."""

    settings: Settings
    sessions: sessionmaker[Session]
    http: requests.Session
    policy: FetchPolicy
    rate_limits: RateLimits
    sentence_cache: SentenceCache
    stopping: threading.Event
    name: str  # this process, as score events record it (scored_by)

    @property
    def tagger(self) -> Tagger: ...

    @property
    def classifier(self) -> Classifier | None: ...

    def report(self, message: str) -> None: ...


@dataclass(frozen=True)
class Job:
    name: str  # also its key in a cycle's results
    schedule: Schedule
    run: Callable[[Context, datetime], object]
    needs_model: bool = False
    monitor: str | None = None  # its Sentry Crons monitor slug, if it checks in
