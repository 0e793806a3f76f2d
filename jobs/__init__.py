"""The jobs: each a plain function doing one step and returning what it did, declared
here with its schedule. The process (``scorer/process/service.py``) runs whatever is
declared: it never names a job.

To add a job: write its function in a module here, give that module a ``JOB``
(``jobs.job.Job(name, schedule, run)``, ``run`` taking the process's ``Context`` and ``now``),
and list it in ``JOBS`` below. Its schedule says when it runs:

- ``Schedule.CYCLE``: every ``POLL_INTERVAL`` seconds while the market window is open,
  in the order of ``JOBS``; a job that ``needs_model`` waits (with those after it)
  until the model has loaded;
- ``Schedule.DAILY``: once per New York day, after that day's first cycle (also when
  a cycle finds the database refusing writes for capacity).
"""

from __future__ import annotations

from jobs import ingest, retention, score
from jobs.job import Job, Schedule

JOBS: tuple[Job, ...] = (ingest.JOB, score.JOB, retention.JOB)


def jobs_on(schedule: Schedule) -> tuple[Job, ...]:
    """The declared jobs of ``schedule``, in the order they run."""
    return tuple(job for job in JOBS if job.schedule is schedule)
