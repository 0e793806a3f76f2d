"""jobs: every job declares its schedule, and the process runs whatever is declared."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import jobs
from jobs.job import Context, Job, Schedule
from scorer.config.settings import Settings
from scorer.process.service import Service
from scorer.scoring.model import ModelLoader

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # a Wednesday, in session


def test_every_job_module_declares_a_job_and_every_declared_job_is_listed() -> None:
    modules = [
        importlib.import_module(f"jobs.{info.name}")
        for info in pkgutil.iter_modules(jobs.__path__)
        if info.name != "job"
    ]
    declared = [m.JOB for m in modules if hasattr(m, "JOB")]
    assert len(declared) == len(modules), "a module in jobs/ without a JOB"
    assert set(declared) == set(jobs.JOBS)
    cycle = [j.name for j in jobs.jobs_on(Schedule.CYCLE)]
    # Whatever else is declared: a cycle stores what it fetched before it scores.
    assert cycle.index("ingest") < cycle.index("score")
    assert "retention" in [j.name for j in jobs.jobs_on(Schedule.DAILY)]


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    waiting = ModelLoader(lambda: pytest.fail("the model is never loaded here"))  # not started
    service = Service(replace(settings, feeds=()), loader=waiting)
    yield service
    service.stop()


def test_a_new_declared_job_runs_on_its_schedule_without_touching_the_process(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, datetime]] = []

    def record(name: str) -> Job:
        def run(context: Context, now: datetime) -> None:
            assert context is service
            ran.append((name, now))

        return Job(name, Schedule.CYCLE if name == "every" else Schedule.DAILY, run)

    # Before the model's jobs: the model never loads here, and those after it wait.
    monkeypatch.setattr(jobs, "JOBS", (record("every"), *jobs.JOBS, record("daily")))
    service.run_cycle(NOW)
    service.run_cycle(NOW + timedelta(minutes=5))
    service.run_cycle(NOW + timedelta(days=1))

    assert ran == [
        ("every", NOW),
        ("daily", NOW),
        ("every", NOW + timedelta(minutes=5)),
        ("every", NOW + timedelta(days=1)),
        ("daily", NOW + timedelta(days=1)),
    ]


def test_a_job_that_needs_the_model_waits_for_it_with_those_after_it(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    after = Job("after", Schedule.CYCLE, lambda context, now: ran.append("after"))
    monkeypatch.setattr(jobs, "JOBS", (*jobs.JOBS, after))
    assert service.classifier is None

    result = service.run_cycle(NOW)

    assert result.score is None and ran == []
