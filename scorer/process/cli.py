"""Command line: ``python -m scorer {serve,worker,run-once,prepare-model,rescore,calendar,rollups,
retention,db-stats,seed-demo}``.

Every command is a ``Command`` (what it runs, the settings purpose it reads, whether it
needs the database) and runs through ``execute``, the one place that checks the
arguments, reads the settings, sets up logging and Sentry, readies the database, and
turns any failure into an exit code and one line on stderr (docs/operations.md,
"Exit codes"): 2 for a bad argument or setting, 1 for an outage or a failure, never a
traceback unless ``--debug`` asks for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from scorer.config.settings import ConfigError, Purpose, Settings, load_settings
from scorer.market import calendar as market
from scorer.process import cli_args as arg
from scorer.process.cli_errors import Outage, failure, report_unexpected
from scorer.storage import demo

log = logging.getLogger(__name__)

# The Procfile's web: line, as a module invocation.
WEB_COMMAND = ("gunicorn", "-c", "python:scorer.process.gunicorn_conf", "scorer.process.wsgi:app")


@dataclass(frozen=True)
class Context:
    """What a command gets: its settings, the engine (reachable and migrated) when it
    needs the database, and the time it started."""

    settings: Settings
    engine: Engine | None
    now: datetime

    @property
    def db(self) -> Engine:
        assert self.engine is not None, "a command with database=False has no engine"
        return self.engine


@dataclass(frozen=True)
class Command:
    run: Callable[[Context, argparse.Namespace], int]
    purpose: Purpose
    database: bool = True  # reachable and at the latest migration before ``run``
    # Checks across arguments or against the clock, before anything is read or written.
    check: Callable[[argparse.Namespace, datetime], None] | None = None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return execute(COMMANDS[args.command], args, debug=args.debug)


def execute(
    command: Command, args: argparse.Namespace, *, debug: bool = False, now: datetime | None = None
) -> int:
    """Run ``command``: the one preamble and the one error wrapper of every command.
    ``now`` (the clock by default) is what the checks and the command see."""
    from scorer.ops.observability import configure_logging, init_sentry

    configure_logging(logging.DEBUG if debug else logging.INFO)
    now = now or datetime.now(UTC)
    settings: Settings | None = None
    try:
        if command.check is not None:
            command.check(args, now)
        settings = load_settings(command.purpose)
        init_sentry(settings)
        with _database(settings, ready=command.database) as engine:
            return command.run(Context(settings, engine, now), args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that reports every failure
        code, line, unexpected = failure(exc, settings, f"python -m scorer {args.command}")
        if unexpected:
            report_unexpected(exc, settings)
        print(line, file=sys.stderr, flush=True)
        return code


@contextmanager
def _database(settings: Settings, *, ready: bool) -> Iterator[Engine | None]:
    """The engine, once the database answers (DatabaseUnavailable or ConfigError
    otherwise) and is migrated: a command run against a database an older version made
    (a laptop's reasonator.db) upgrades it instead of failing on a missing table. On
    Heroku the release phase already did. Disposed afterwards."""
    if not ready:
        yield None
        return
    from scorer.storage.db import check_reachable, make_engine, migrate

    check_reachable(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = arg.Parser(
        prog="python -m scorer",
        description="Reasonator's commands. Exit codes: 0 done, 1 an outage or a failure, "
        "2 a bad argument or setting (docs/operations.md, 'Exit codes').",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log at debug level and print the traceback of an unexpected error",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="migrate the database, then serve on $PORT with gunicorn")
    sub.add_parser("worker", help="score and run the scheduler until SIGTERM (Procfile: worker)")
    sub.add_parser("run-once", help="run one ingest + score cycle now and print what it did")
    prepare = sub.add_parser(
        "prepare-model",
        help="build the serving artifact (int8 ONNX) from "
        "FINBERT_MODEL at FINBERT_MODEL_SHA (the vault's, when configured) into "
        "MODEL_ARTIFACT_DIR, refused unless faithful to the fp32 model",
    )
    prepare.add_argument(
        "--no-gate",
        action="store_true",
        help="skip the fidelity gate (synthetic models whose labels mean nothing); "
        "recorded in artifact.json, and health warns",
    )
    rescore = sub.add_parser(
        "rescore", help="queue re-scoring of stored articles under the configured model revision"
    )
    rescore.add_argument(
        "--since",
        required=True,
        type=arg.instant,
        help="articles published at or after this ISO date/time (UTC unless it says), "
        "not in the future",
    )
    rescore.add_argument(
        "--until",
        type=arg.instant,
        default=None,
        help="...and at or before this one, not before --since (default: no bound)",
    )
    _add_calendar(sub)
    _add_data_commands(sub)
    return parser


def _add_calendar(sub: Any) -> None:
    day = arg.day_in(market.RANGE_START, market.RANGE_END)
    cal = sub.add_parser("calendar", help="print NYSE sessions and polling windows")
    cal.add_argument(
        "--from", dest="start", type=day, default=None, help="first day (default: today)"
    )
    cal.add_argument(
        "--to", dest="end", type=day, default=None, help="last day (default: 14 days on)"
    )
    cal.add_argument("--format", choices=("text", "json"), default="text")


def _add_data_commands(sub: Any) -> None:
    rollups = sub.add_parser("rollups", help="history roll-ups: rebuild them from the events")
    action = rollups.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = action.add_parser("rebuild", help="recompute the roll-ups from the score events")
    rebuild.add_argument(
        "--since",
        type=arg.instant,
        default=None,
        help=f"only buckets from this instant's session on, from {market.RANGE_START} "
        "(New York time) to now (default: all that detail covers)",
    )
    sub.add_parser("retention", help="prune old detail and buckets once, as the daily job does")
    sub.add_parser("db-stats", help="rows and bytes per table, and the share of each limit")
    seed = sub.add_parser(
        "seed-demo", help="fill the database with synthetic articles, scores and roll-ups"
    )
    seed.add_argument(
        "--tickers",
        type=arg.whole(1, demo.MAX_TICKERS),
        default=100,
        help=f"how many tickers, 1 to {demo.MAX_TICKERS:,} (default 100)",
    )
    seed.add_argument(
        "--events",
        type=arg.whole(1, demo.MAX_EVENTS),
        default=100_000,
        help=f"score events, 1 to {demo.MAX_EVENTS:,} (default 100000)",
    )
    seed.add_argument(
        "--days",
        type=arg.whole(1, demo.MAX_DAYS),
        default=30,
        help=f"over the sessions of the last N days, 1 to {demo.MAX_DAYS:,}; at least one "
        "session must have opened in them (default 30)",
    )
    seed.add_argument(
        "--force", action="store_true", help="add demo data to a database holding real data"
    )


def _serve(ctx: Context, _args: argparse.Namespace) -> int:
    # A malformed setting fails before this; the token may still be in the vault, which
    # each worker reads after binding. The database answered and is migrated (as the
    # release phase does, DATABASE_URL from the environment alone).
    ctx.db.dispose()
    os.execv(sys.executable, [sys.executable, "-m", *WEB_COMMAND])
    return 0  # not reached


def _run_once(ctx: Context, _args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from scorer.process.service import Service
    from scorer.scoring.model import ModelLoader, load_classifier

    # Load in this thread, once: a CLI run should fail loudly, not retry in the background.
    classifier = load_classifier(ctx.settings)
    service = Service(ctx.settings, engine=ctx.db, loader=ModelLoader.loaded(classifier))
    try:
        result = service.run_cycle()
    except SQLAlchemyError as exc:
        # The message may carry the statement, never the URL; the class says enough.
        # The wrapper adds the line on stderr (an outage or a failure) and exits 1.
        print(json.dumps({"error": f"database failed: {type(exc).__name__}"}))
        raise
    finally:
        service.stop()
    print(
        json.dumps(
            {
                "ingest": asdict(result.ingest),
                "score": None if result.score is None else asdict(result.score),
            }
        )
    )
    # 0 when the cycle ran, feed errors or not (they are in the JSON); 1 only when feeds
    # were tried and none answered (no network, every URL wrong).
    return 1 if result.ingest.errors and result.ingest.answered == 0 else 0


def _prepare_model(ctx: Context, args: argparse.Namespace) -> int:
    from scorer.scoring.model.artifact import FidelityGateError, build_artifact
    from scorer.scoring.model.onnx_runtime import read_manifest

    # The same model and revision the service will load: the vault's when the build has
    # the bootstrap keys (bin/post_compile), else the environment's.
    settings = ctx.settings
    _check_build_settings(settings)
    try:
        out = build_artifact(
            settings.finbert_model,
            settings.model_revision,
            settings.model_artifact_dir,
            gate=not args.no_gate,
        )
    except FidelityGateError as exc:
        print(f"prepare-model: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # what transformers raises for a model it cannot fetch
        raise _build_failure(settings, exc) from exc
    manifest = read_manifest(out)
    fidelity = manifest.get("fidelity", {})
    print(json.dumps({"artifact": str(out), **manifest}))
    print(
        f"prepare-model: {manifest['source_model']}@{manifest['revision']} gate="
        f"{fidelity.get('gate')} agreement={fidelity.get('agreement', 'n/a')} "
        f"mean_abs_diff={fidelity.get('mean_abs_diff', 'n/a')} "
        f"blockwise_fraction={fidelity.get('blockwise_fraction')}",
        file=sys.stderr,
    )
    return 0


def _check_build_settings(settings: Settings) -> None:
    """ConfigError for a local model path to nothing (or to a directory holding no
    model), or an artifact directory that cannot be written, before the minutes of a
    build."""
    from scorer.scoring.model.factory import check_model_path

    check_model_path(settings.finbert_model)
    local = Path(settings.finbert_model).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        raise ConfigError(
            f"FINBERT_MODEL: the directory {local.name!r} holds no model (no config.json; "
            "write one with save_pretrained)"
        )
    # The build creates missing directories: the nearest one that exists must take them.
    existing = settings.model_artifact_dir.resolve().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ConfigError(
            f"MODEL_ARTIFACT_DIR: cannot write {settings.model_artifact_dir.name!r}: "
            f"{existing} is not a writable directory"
        )


def _build_failure(settings: Settings, exc: OSError) -> Exception:
    """An OSError of the build, as what it means: the artifact directory cannot be
    written (a setting), the model hub did not answer (an outage), or the hub or the
    directory has no such model (a setting)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    target = str(settings.model_artifact_dir.resolve().parent)
    if exc.filename and str(exc.filename).startswith(target):
        reason = exc.strerror or type(exc).__name__
        return ConfigError(f"MODEL_ARTIFACT_DIR: cannot write into {target}: {reason}")
    if "connect" in first.lower() or "timed out" in first.lower():
        return Outage(f"the model hub did not answer for {settings.finbert_model}: {first}")
    return ConfigError(f"FINBERT_MODEL: cannot load {settings.finbert_model}: {first}")


def _check_rescore(args: argparse.Namespace, now: datetime) -> None:
    arg.not_after("--since", args.since, now, "no article was published after it yet")
    arg.in_order(("--since", args.since), ("--until", args.until))


def _rescore(ctx: Context, args: argparse.Namespace) -> int:
    from scorer.scoring.model.base import model_id_of
    from scorer.storage.db import make_session_factory
    from scorer.storage.store import queue_rescore

    settings = ctx.settings
    with make_session_factory(ctx.db).begin() as session:
        job = queue_rescore(
            session,
            model_id_of(settings.finbert_model),  # the id the score job records
            settings.finbert_model_sha,
            since=args.since,
            until=args.until,
            now=ctx.now,
        )
        print(
            json.dumps(
                {
                    "job": job.id,
                    "model_id": job.model_id,
                    "model_revision": job.model_revision,
                    "pairs": job.pairs,
                }
            )
        )
    return 0


def _check_calendar(args: argparse.Namespace, now: datetime) -> None:
    args.start = args.start or now.astimezone(market.NY).date()
    args.end = args.end or min(args.start + timedelta(days=14), market.RANGE_END)
    arg.in_order(("--from", args.start), ("--to", args.end))


def _calendar(ctx: Context, args: argparse.Namespace) -> int:
    # MARKET_WINDOW and its bounds: the vault's when one is configured, as serve's are.
    for line in market.calendar_lines(args.start, args.end, ctx.settings.window, args.format):
        print(line)
    return 0


def _check_rollups(args: argparse.Namespace, now: datetime) -> None:
    since = args.since
    if since is not None and since.astimezone(market.NY).date() < market.RANGE_START:
        raise arg.UsageError(
            f"--since {arg.shown(since)} is before the market calendar's first day "
            f"{market.RANGE_START} (New York time); leave --since out to rebuild every session"
        )
    arg.not_after("--since", since, now, "there are no score events after it to rebuild from")


def _rollups(ctx: Context, args: argparse.Namespace) -> int:
    from scorer.storage.db import make_session_factory
    from scorer.storage.store import rebuild_rollups

    started = time.monotonic()
    print("rebuilding roll-ups from the score events…", file=sys.stderr, flush=True)
    with make_session_factory(ctx.db).begin() as session:
        since, rows = rebuild_rollups(session, args.since)
    where = "all sessions" if since is None else f"sessions from {since.date()}"
    print(f"rollups rebuilt: {rows} buckets over {where} in {time.monotonic() - started:.1f}s")
    return 0


def _check_seed_demo(args: argparse.Namespace, now: datetime) -> None:
    try:
        demo.demo_sessions(args.days, now)
    except demo.NoSession as exc:
        raise arg.UsageError(f"--days {args.days}: {exc}") from None


def _seed_demo(ctx: Context, args: argparse.Namespace) -> int:
    from scorer.storage.db import make_session_factory

    started = time.monotonic()
    with make_session_factory(ctx.db).begin() as session:
        result = demo.seed(
            session,
            n_tickers=args.tickers,
            n_events=args.events,
            days=args.days,
            now=ctx.now,
            force=args.force,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    print(
        f"seed-demo: {result.events:,} score events on {result.articles:,} articles for "
        f"{result.tickers} tickers over {result.sessions} sessions, {result.buckets:,} roll-up "
        f"rows, in {time.monotonic() - started:.1f}s"
    )
    return 0


def _retention(ctx: Context, _args: argparse.Namespace) -> int:
    from scorer.process.service import Service

    service = Service(ctx.settings, engine=ctx.db)
    try:
        done = service.retention(ctx.now)
    finally:
        service.stop()
    print(json.dumps(asdict(done)))
    return 0


def _db_stats(ctx: Context, _args: argparse.Namespace) -> int:
    from scorer.storage.capacity import measure
    from scorer.storage.db import make_session_factory

    settings = ctx.settings
    with make_session_factory(ctx.db)() as session:
        usage = measure(session, settings.db_size_budget, settings.db_row_limit, detailed=True)
    print(f"{'table':<20} {'rows':>12} {'bytes':>14}")
    for name, (rows, size) in usage.tables.items():
        print(f"{name:<20} {rows:>12,} {'?' if size is None else f'{size:,}':>14}")
    print(f"{'total':<20} {usage.rows or 0:>12,} {usage.bytes:>14,}")

    def limit(name: str, used: int, cap: int | None, pct: float | None) -> str:
        if not cap:
            return f"{name}: {used:,} (no limit set)"
        return f"{name}: {used:,} of {cap:,} = {pct:.1f}%"

    print(limit("storage", usage.bytes, usage.budget, usage.bytes_percent))
    print(limit("rows", usage.rows or 0, usage.row_limit, usage.rows_percent))
    return 0


def _worker(_ctx: Context, _args: argparse.Namespace) -> int:
    from scorer.process.worker import run_worker

    return run_worker()  # reads its settings itself, retrying the vault with backoff


COMMANDS: dict[str, Command] = {
    "serve": Command(_serve, Purpose.SERVE),
    "worker": Command(_worker, Purpose.BOOTSTRAP, database=False),
    "run-once": Command(_run_once, Purpose.CLI),
    "prepare-model": Command(_prepare_model, Purpose.BUILD, database=False),
    "rescore": Command(_rescore, Purpose.CLI, check=_check_rescore),
    "calendar": Command(_calendar, Purpose.CALENDAR, database=False, check=_check_calendar),
    "rollups": Command(_rollups, Purpose.CLI, check=_check_rollups),
    "retention": Command(_retention, Purpose.CLI),
    "db-stats": Command(_db_stats, Purpose.CLI),
    "seed-demo": Command(_seed_demo, Purpose.CLI, check=_check_seed_demo),
}


if __name__ == "__main__":
    sys.exit(main())
