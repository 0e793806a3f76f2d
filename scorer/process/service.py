"""The running service: one object that owns the engine, the model loader, the HTTP
session for feeds, the scheduler and its lock, the heartbeat and the scoring loop,
built from Settings for one role:

- ``all`` (a web process, the default): the API, the model and the scheduler, whose
  cycle ingests then scores; one Eco dyno does everything;
- ``read`` (a web process with ``WEB_ROLE=read``): the API only, no model, no
  scheduler, no feed fetching; health reports the workers' heartbeats;
- ``worker`` (``python -m scorer worker``): the model and the scheduler (the lock keeps
  one ingest cycle and one retention per deployment) and, on Postgres, a scoring loop
  that shares the queue with the other workers through claims (SQLite keeps a single
  writer: there only the lock holder scores).

This package is the composition root: it wires the library (``scorer``) and the
jobs (``jobs``) into a process. The library never imports it, nor ``jobs``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import bottle
import requests
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from jobs import jobs_on
from jobs.ingest import IngestResult
from jobs.job import Schedule
from jobs.retention import RetentionResult, policy_of, run_retention
from jobs.score import ScoreResult
from scorer import __version__
from scorer.api import create_app
from scorer.api.workers import WorkerBoard
from scorer.config.settings import Settings
from scorer.ingest.fetch import FetchPolicy, RateLimits, make_http_session
from scorer.ingest.kinds import KINDS
from scorer.ingest.tagging import Tagger, tagger_for
from scorer.market.calendar import NY
from scorer.market.crons import CronReporter
from scorer.market.lock import ProcessLock, SchedulerLock, make_lock
from scorer.market.trigger import make_scheduler, tick
from scorer.ops.observability import report_to_sentry
from scorer.scoring.cache import SentenceCache
from scorer.scoring.model import Classifier, ModelLoader, load_classifier
from scorer.scoring.model.base import runtime_health
from scorer.storage.capacity import capacity_error
from scorer.storage.db import make_engine, make_session_factory
from scorer.storage.heartbeat import Beat, beat, forget
from scorer.storage.outage import Outage, OutageWatch, cause_name, classify

log = logging.getLogger(__name__)

# A worker with nothing to score looks at the queue again this often (a cycle's new
# items on the lock holder wake its own loop at once).
IDLE_POLL = 5.0


class Role(StrEnum):
    ALL = "all"
    READ = "read"
    WORKER = "worker"


def process_name(settings: Settings) -> str:
    """This process as score events and heartbeats name it: the dyno on Heroku."""
    return (settings.dyno or f"{socket.gethostname()}:{os.getpid()}")[:64]


@dataclass
class CycleResult:
    ingest: IngestResult
    score: ScoreResult | None  # None when the model is not loaded yet
    outage: str | None = None  # the database was unreachable: the cycle stopped there

    def summary(self) -> str:
        i, s = self.ingest, self.score
        scored = "model not loaded" if s is None else f"scored={s.events} more={s.more}"
        line = (
            f"feeds={i.feeds} fetched={i.fetched} not_modified={i.not_modified} "
            f"skipped={i.skipped} items={i.items} new={i.new} copies={i.copies} "
            f"untagged={i.untagged} errors={len(i.errors)} {scored}"
        )
        return line if self.outage is None else f"{line} stopped: {self.outage}"


class Backoff:
    """Retry delays after database outages: ``first`` seconds, doubling per cycle that
    failed in a row, capped at ``most``; reset by a cycle that reaches the database."""

    def __init__(self, first: float = 15.0, most: float = 300.0) -> None:
        self.first, self.most, self.failures = first, most, 0

    def failed(self) -> float:
        """Record a failed cycle; return the delay before the next try."""
        self.failures += 1
        return float(min(self.first * 2.0 ** (self.failures - 1), self.most))

    def succeeded(self) -> None:
        self.failures = 0


class Service:
    """Everything one process needs. Building it starts nothing; ``start`` loads the
    model and starts the scheduler in the background, ``stop`` undoes both."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        loader: ModelLoader | None = None,
        crons: CronReporter | None = None,
        report: Callable[[str], None] | None = None,
        role: Role = Role.ALL,
    ) -> None:
        self.settings = settings
        self.role = role
        self.name = process_name(settings)  # built after gunicorn forks: this worker's pid
        # A web process keeps a connection per request thread; a worker needs one each
        # for its scoring loop, heartbeat and cycle (Essential-0 allows 20 in all).
        pool = 3 if role is Role.WORKER else 10
        self.engine = engine or make_engine(settings.database_url, pool_size=pool)
        self.sessions = make_session_factory(self.engine)
        self.loader = loader or ModelLoader(lambda: load_classifier(settings))
        self.http: requests.Session = make_http_session(f"Reasonator/{__version__}")
        self.crons = crons or CronReporter(settings.window, settings.poll_interval, None)
        # A read-only process never leads: its lock is never taken.
        self.lock: SchedulerLock = ProcessLock() if role is Role.READ else make_lock(self.engine)
        self.scheduler: BackgroundScheduler | None = None
        self.stopping = threading.Event()
        self._cycle_lock = threading.Lock()
        # One scoring pass at a time in this process: the loop's and the cycle's.
        self._score_mutex = threading.Lock()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tagger: Tagger | None = None
        # Repeated sentences skip the model (scorer/scoring/cache.py); one per process.
        self.sentence_cache = SentenceCache()
        self.backoff = Backoff(most=float(settings.poll_interval))
        self.policy = FetchPolicy(
            timeout=settings.fetch_timeout,
            deadline=settings.fetch_deadline,
            user_agents={
                name: agent for name, kind in KINDS.items() if (agent := settings.contact(kind))
            },
        )
        # Each kind's request rate (EDGAR's 10/s) holds across all of this process's cycles.
        self.rate_limits = RateLimits()
        # Where warnings for the operator go: Sentry when configured (tests pass a fake).
        self.report = report or (lambda message: report_to_sentry(settings, message))
        self.capacity_refused: str | None = None  # why the database refused a write
        # The database as the jobs and the API see it: one log line per change of state.
        self.outages = OutageWatch()
        self._retention_day: date | None = None

    @property
    def tagger(self) -> Tagger:
        """The watchlist's tagger, built on first use (reads the symbol directory once);
        says once which watchlist tickers the directory does not know."""
        if self._tagger is None:
            self._tagger = tagger_for(self.settings.watchlist)
            unknown = self._tagger.directory.unknown(self.settings.watchlist)
            if unknown:
                log.warning(
                    "watchlist tickers not in the symbol directory (tagged by feed, "
                    "structure, exchange or cashtag only, never by name): %s",
                    ", ".join(unknown),
                )
            for note in self.settings.notes():
                log.info("%s", note)
        return self._tagger

    @property
    def classifier(self) -> Classifier | None:
        """The loaded model, or None while it loads."""
        return self.loader.classifier

    def retention(self, now: datetime) -> RetentionResult:
        """One retention pass (also ``python -m scorer retention``)."""
        return run_retention(self.sessions, policy_of(self.settings), now=now, report=self.report)

    def app(self) -> bottle.Bottle:
        """The read API over this service's database and model (on a read-only
        process: the workers' model, from their heartbeats)."""
        if self.role is Role.READ:
            board = WorkerBoard(
                self.sessions,
                interval=self.settings.heartbeat_interval,
                grace=self.settings.worker_grace,
            )
            return create_app(self.settings, engine=self.engine, loader=board, role=lambda: "read")
        lock = self.lock
        return create_app(
            self.settings,
            engine=self.engine,
            loader=self.loader,
            role=lambda: "scheduler" if lock.held else "reader",
            outages=self.outages,
        )

    def start(self) -> None:
        """Load the model and start the scheduler, both in the background: the port is
        served at once. Call it in the process that serves (after gunicorn forks):
        the scheduler lock must belong to this process. A read-only process starts
        nothing: it only serves."""
        if self.role is Role.READ:
            return
        self.loader.start()
        threading.Thread(target=self._freeze_heap, name="gc-freeze", daemon=True).start()
        # The scheduler needs the market calendar (about a second to build).
        threading.Thread(target=self._start_scheduler, name="scheduler-start", daemon=True).start()
        self._spawn(self._heartbeat, "heartbeat")
        if self.role is Role.WORKER:
            self._spawn(self._score_loop, "score-loop")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def run_cycle(self, now: datetime | None = None) -> CycleResult:
        """One ingest then score pass, and retention once a (New York) day. Scoring
        waits for the model; ingest never does.

        A database outage stops the cycle at the first failed statement (one log line,
        no traceback); what was committed stays, the rest stays pending or is fetched
        again next time (a feed's new ETag is only saved with its items). A write the
        database refuses for capacity is reported once (log and Sentry); later cycles
        skip their writes instead of failing again every interval, until retention
        has brought the database back under its limits.
        """
        with self._cycle_lock:
            when = now or datetime.now(UTC)
            if self.capacity_refused is not None and not self._capacity_back(when):
                return CycleResult(IngestResult(errors=[self._refusal()]), None)
            try:
                result = self._cycle(when)
            except Exception as exc:
                reason = capacity_error(exc)
                if reason is not None:
                    self._refused(reason)
                    return CycleResult(IngestResult(errors=[self._refusal()]), None)
                outage = classify(exc)
                if outage is None:
                    raise
                return self._outage(outage, exc)
            self.capacity_refused = None
            self.backoff.succeeded()
            self.outages.succeeded()
            self._daily_retention(when)
            return result

    def _outage(self, outage: Outage, exc: Exception) -> CycleResult:
        delay = self.backoff.failed()
        cause = cause_name(exc)
        self.outages.failed(outage, exc, "the cycle")  # the WARNING, once per outage
        log.info(
            "database %s (%s), cycle stopped; %d failed in a row, retry in %.0fs",
            outage.value,
            cause,
            self.backoff.failures,
            delay,
        )
        self._schedule_retry(delay)
        return CycleResult(IngestResult(feeds=len(self.settings.feed_specs)), None, cause)

    def _refused(self, reason: str) -> None:
        if self.capacity_refused is None:
            message = f"the database refused a write for capacity: {reason}"
            log.error("%s; writes pause until retention frees room", message)
            self.report(message)
        self.capacity_refused = reason

    def _refusal(self) -> str:
        return f"writes paused: the database refused a write ({self.capacity_refused})"

    def _capacity_back(self, now: datetime) -> bool:
        """Run retention; True when the database is back under every limit."""
        try:
            done = self.retention(now)
        except Exception as exc:
            outage = classify(exc)
            if outage is None:
                log.warning("retention failed while writes are paused", exc_info=True)
            else:
                self.outages.failed(outage, exc, "retention")
            return False
        percents = [done.usage.get("bytes_percent"), done.usage.get("rows_percent")]
        return all(not isinstance(p, float) or p < 100 for p in percents)

    def _daily_retention(self, now: datetime) -> None:
        """The daily jobs, once per New York day, after that day's first cycle."""
        day = now.astimezone(NY).date()
        if self._retention_day == day:
            return
        self._retention_day = day
        for job in jobs_on(Schedule.DAILY):
            try:
                log.info("%s: %s", job.name, _summary(job.run(self, now)))
            except Exception as exc:  # the cycle's writes are done; it tries again tomorrow
                outage = classify(exc)
                if outage is None:
                    log.exception("%s failed", job.name)
                else:
                    self.outages.failed(outage, exc, job.name)

    def _cycle(self, when: datetime) -> CycleResult:
        """The cycle's jobs in order; those that need the model wait until it loads
        (no check-in meanwhile: Sentry's margin covers a boot)."""
        done: dict[str, object] = {}
        for job in jobs_on(Schedule.CYCLE):
            if job.needs_model and self.classifier is None:
                break
            # Scoring waits for this process's scoring loop to finish its batch.
            mutex = self._score_mutex if job.needs_model else contextlib.nullcontext()
            with mutex:
                if job.monitor is None:
                    done[job.name] = job.run(self, when)
                else:
                    with self.crons.job(job.monitor, when):
                        done[job.name] = job.run(self, when)
        ingested, scored = done["ingest"], done.get("score")
        assert isinstance(ingested, IngestResult)
        assert scored is None or isinstance(scored, ScoreResult)
        return CycleResult(ingested, scored)

    def stop(self) -> None:
        """Stop between batches: what is committed stays, the rest stays pending; then
        hand the scheduler lock to the next process. Safe to call twice."""
        self.stopping.set()
        self._wake.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.loader.stop()
        with self._cycle_lock:  # wait for a running cycle to reach a batch boundary
            pass
        for thread in self._threads:  # the scoring loop ends at a batch boundary too
            thread.join(25)
        if self.role is not Role.READ:
            self._forget()
        self.lock.release()
        self.http.close()
        self.engine.dispose()

    def _score_loop(self) -> None:
        """A worker's scoring: whatever is pending, claimed batch by batch, whenever
        the model is loaded (in or out of market hours: a re-score backlog goes on at
        night). On SQLite only the scheduler lock's holder writes."""
        shared = self.engine.dialect.name == "postgresql"
        while not self.stopping.is_set():
            if self.classifier is not None and (shared or self.lock.held):
                self._score_once()
            self._wake.wait(IDLE_POLL)
            self._wake.clear()

    def _score_once(self) -> None:
        now = datetime.now(UTC)
        for job in jobs_on(Schedule.CYCLE):
            if not job.needs_model or self.stopping.is_set():
                continue
            try:
                with self._score_mutex:
                    result = job.run(self, now)
            except Exception as exc:
                reason = capacity_error(exc)
                if reason is not None:  # reported once; retention (the lock holder's) frees room
                    self._refused(reason)
                elif (outage := classify(exc)) is not None:
                    self.outages.failed(outage, exc, job.name)  # the WARNING, once per outage
                else:
                    log.exception("%s failed", job.name)
                self.stopping.wait(self.backoff.failed())
                continue
            self.backoff.succeeded()
            if getattr(result, "events", 0):
                log.info("%s: %s", job.name, _summary(result))

    def _heartbeat(self) -> None:
        """Refresh this process's ``workers`` row every HEARTBEAT_INTERVAL seconds:
        a read-only web dyno's health is built from it. A failed beat is logged once
        per outage; the next one tries again."""
        started, failing = datetime.now(UTC), False
        while True:
            classifier = self.classifier
            fields, warnings = ({}, []) if classifier is None else runtime_health(classifier)
            me = Beat(
                self.name,
                "scheduler" if self.lock.held else "scorer",
                None if classifier is None else classifier.model_id,
                None if classifier is None else classifier.revision,
                {**fields, **({"warnings": warnings} if warnings else {})},
            )
            try:
                with self.sessions.begin() as session:
                    beat(session, me, started_at=started, now=datetime.now(UTC))
                failing = False
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                if not failing:
                    log.warning("heartbeat failed: %s", type(exc).__name__)
                failing = True
            if self.stopping.wait(self.settings.heartbeat_interval):
                return

    def _forget(self) -> None:
        """A clean stop removes this process's heartbeat: health counts it gone now."""
        try:
            with self.sessions.begin() as session:
                forget(session, self.name)
        except Exception as exc:  # noqa: BLE001 - it ages out instead
            log.warning("heartbeat not removed: %s", type(exc).__name__)

    def _schedule_retry(self, delay: float) -> None:
        """One extra run ``delay`` seconds from now, sooner than the next interval, so
        the jobs resume soon after the database returns; a later outage replaces it."""
        scheduler = self.scheduler
        if scheduler is None or not scheduler.running or self.stopping.is_set():
            return
        settings = self.settings
        scheduler.add_job(
            tick,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            args=(self.run_cycle,),
            kwargs={"window": settings.window, "leader": self.lock.try_acquire},
            id="database-retry",
            replace_existing=True,
            misfire_grace_time=settings.poll_interval,
        )

    def _start_scheduler(self) -> None:
        settings = self.settings
        # Take the lock now if it is free, so health's role is true from the start;
        # ticks ask again, which is how a reader takes over from a holder.
        self.lock.try_acquire()
        scheduler = make_scheduler(
            self.run_cycle,
            interval=settings.poll_interval,
            window=settings.window,
            leader=self.lock.try_acquire,
        )
        if self.stopping.is_set():
            return
        scheduler.start()
        self.scheduler = scheduler

    def _freeze_heap(self) -> None:
        """Once the model is loaded, move every object then alive out of the collector's
        sight (``gc.freeze``). Otherwise each automatic full collection scans them all,
        a pause for every request in flight (bench/README.md, "Levers")."""
        self.loader.wait()
        gc.collect()  # freeze what is alive, not garbage awaiting collection
        gc.freeze()


def _summary(result: object) -> str:
    """A job's result as one log line: its fields as key=value."""
    fields = getattr(result, "__dataclass_fields__", None)
    if fields is None:
        return str(result)
    return " ".join(f"{name}={getattr(result, name)}" for name in fields)
