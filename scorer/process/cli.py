"""Command line: ``python -m scorer {serve,worker,run-once,prepare-model,rescore,calendar,rollups,
retention,db-stats,seed-demo}``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from scorer.config.settings import ConfigError, Purpose, Settings, load_settings

# The Procfile's web: line, as a module invocation.
WEB_COMMAND = ("gunicorn", "-c", "python:scorer.process.gunicorn_conf", "scorer.process.wsgi:app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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
        type=_instant,
        help="articles published at or after this ISO date/time (UTC)",
    )
    rescore.add_argument(
        "--until",
        type=_instant,
        default=None,
        help="...and at or before this one (default: no bound)",
    )
    cal = sub.add_parser("calendar", help="print NYSE sessions and polling windows")
    cal.add_argument("--from", dest="start", type=date.fromisoformat, default=date.today())
    cal.add_argument("--to", dest="end", type=date.fromisoformat, default=None)
    cal.add_argument("--format", choices=("text", "json"), default="text")
    _add_data_commands(sub)

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve()
        if args.command == "worker":
            from scorer.process.worker import run_worker

            return run_worker()
        if args.command == "run-once":
            return _run_once()
        if args.command == "prepare-model":
            return _prepare_model(gate=not args.no_gate)
        if args.command == "rescore":
            return _rescore(args)
        if args.command in DATA_COMMANDS:
            return DATA_COMMANDS[args.command](args)
        return _calendar(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def _serve() -> int:
    # A malformed setting fails here; the token may still be in the vault, which each
    # worker reads after binding. The database must answer (one line if it does not).
    _check_database(load_settings(Purpose.SERVE))
    _migrate()
    os.execv(sys.executable, [sys.executable, "-m", *WEB_COMMAND])
    return 0  # not reached


def _check_database(settings: Settings) -> None:
    """One line naming DATABASE_URL and the host when the database cannot be reached
    (ConfigError, printed by ``main``). Only the CLI checks: a web worker binds at once
    whatever the database does and health explains (see README, "When the database is
    down")."""
    from scorer.storage.db import check_reachable

    check_reachable(settings.database_url)


def _ready_database(settings: Settings) -> None:
    """Reachable (else one line, as above) and at the latest migration: a command run
    against a database an older version made (a laptop's reasonator.db) upgrades it
    instead of failing on a missing table. On Heroku the release phase already did."""
    from scorer.storage.db import make_engine, migrate

    _check_database(settings)
    engine = make_engine(settings.database_url)
    migrate(engine)
    engine.dispose()


def _migrate() -> None:
    from scorer.storage.db import make_engine, migrate

    # Like the release phase: DATABASE_URL only, never the vault.
    engine = make_engine(load_settings(Purpose.MIGRATE).database_url)
    migrate(engine)
    engine.dispose()


def _run_once() -> int:
    from scorer.ops.observability import configure_logging
    from scorer.process.service import Service
    from scorer.scoring.model import ModelLoader, load_classifier

    configure_logging()
    settings = load_settings(Purpose.CLI)
    _ready_database(settings)
    # Load in this thread, once: a CLI run should fail loudly, not retry in the background.
    classifier = load_classifier(settings)
    service = Service(settings, loader=ModelLoader.loaded(classifier))
    try:
        result = service.run_cycle()
    except SQLAlchemyError as exc:
        # The message may carry the statement, never the URL; the class says enough.
        print(json.dumps({"error": f"database failed: {type(exc).__name__}"}))
        service.stop()
        return 1
    print(
        json.dumps(
            {
                "ingest": asdict(result.ingest),
                "score": None if result.score is None else asdict(result.score),
            }
        )
    )
    service.stop()
    # 0 when the cycle ran, feed errors or not (they are in the JSON); 1 only when feeds
    # were tried and none answered (no network, every URL wrong).
    return 1 if result.ingest.errors and result.ingest.answered == 0 else 0


def _prepare_model(*, gate: bool) -> int:
    from scorer.ops.observability import configure_logging
    from scorer.scoring.model.artifact import FidelityGateError, build_artifact
    from scorer.scoring.model.onnx_runtime import read_manifest

    configure_logging()
    # The same model and revision the service will load: the vault's when the build has
    # the bootstrap keys (bin/post_compile), else the environment's.
    settings = load_settings(Purpose.BUILD)
    try:
        out = build_artifact(
            settings.finbert_model,
            settings.model_revision,
            settings.model_artifact_dir,
            gate=gate,
        )
    except FidelityGateError as exc:
        print(f"prepare-model: {exc}", file=sys.stderr)
        return 1
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


def _instant(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rescore(args: argparse.Namespace) -> int:
    from scorer.storage.db import make_engine, make_session_factory
    from scorer.storage.store import queue_rescore

    settings = load_settings(Purpose.CLI)
    _ready_database(settings)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine).begin() as session:
        job = queue_rescore(
            session,
            settings.finbert_model,
            settings.finbert_model_sha,
            since=args.since,
            until=args.until,
            now=datetime.now(UTC),
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
    engine.dispose()
    return 0


def _calendar(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from scorer.market import calendar

    end = args.end or args.start + timedelta(days=14)
    # MARKET_WINDOW and its bounds: the vault's when one is configured, as serve's are.
    window = load_settings(Purpose.CALENDAR).window
    try:
        for line in calendar.calendar_lines(args.start, end, window, args.format):
            print(line)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_data_commands(sub: Any) -> None:
    rollups = sub.add_parser("rollups", help="history roll-ups: rebuild them from the events")
    action = rollups.add_subparsers(dest="action", required=True)
    rebuild = action.add_parser("rebuild", help="recompute the roll-ups from the score events")
    rebuild.add_argument(
        "--since",
        type=_instant,
        default=None,
        help="only buckets from this instant's session on (default: all that detail covers)",
    )
    sub.add_parser("retention", help="prune old detail and buckets once, as the daily job does")
    sub.add_parser("db-stats", help="rows and bytes per table, and the share of each limit")
    demo = sub.add_parser(
        "seed-demo", help="fill the database with synthetic articles, scores and roll-ups"
    )
    demo.add_argument("--tickers", type=int, default=100, help="how many tickers (default 100)")
    demo.add_argument("--events", type=int, default=100_000, help="score events (default 100000)")
    demo.add_argument("--days", type=int, default=30, help="over the sessions of the last N days")
    demo.add_argument(
        "--force", action="store_true", help="add demo data to a database holding real data"
    )


def _rollups(args: argparse.Namespace) -> int:
    import time

    from scorer.storage.db import make_engine, make_session_factory
    from scorer.storage.store import rebuild_rollups

    settings = load_settings(Purpose.CLI)
    _ready_database(settings)
    engine = make_engine(settings.database_url)
    started = time.monotonic()
    print("rebuilding roll-ups from the score events…", file=sys.stderr, flush=True)
    with make_session_factory(engine).begin() as session:
        since, rows = rebuild_rollups(session, args.since)
    engine.dispose()
    where = "all sessions" if since is None else f"sessions from {since.date()}"
    print(f"rollups rebuilt: {rows} buckets over {where} in {time.monotonic() - started:.1f}s")
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    import time

    from scorer.storage.db import make_engine, make_session_factory
    from scorer.storage.demo import DemoRefused, seed

    settings = load_settings(Purpose.CLI)
    _ready_database(settings)
    engine = make_engine(settings.database_url)
    started = time.monotonic()
    try:
        with make_session_factory(engine).begin() as session:
            result = seed(
                session,
                n_tickers=args.tickers,
                n_events=args.events,
                days=args.days,
                now=datetime.now(UTC),
                force=args.force,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
    except DemoRefused as exc:
        print(f"seed-demo refused: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"seed-demo: {result.events:,} score events on {result.articles:,} articles for "
        f"{result.tickers} tickers over {result.sessions} sessions, {result.buckets:,} roll-up "
        f"rows, in {time.monotonic() - started:.1f}s"
    )
    return 0


def _retention(_args: argparse.Namespace) -> int:
    from scorer.ops.observability import configure_logging, init_sentry
    from scorer.process.service import Service

    configure_logging()
    settings = load_settings(Purpose.CLI)
    _ready_database(settings)
    init_sentry(settings)
    service = Service(settings)
    try:
        done = service.retention(datetime.now(UTC))
    finally:
        service.stop()
    print(json.dumps(asdict(done)))
    return 0


def _db_stats(_args: argparse.Namespace) -> int:
    from scorer.storage.capacity import measure
    from scorer.storage.db import make_engine, make_session_factory

    settings = load_settings(Purpose.CLI)
    _ready_database(settings)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        usage = measure(session, settings.db_size_budget, settings.db_row_limit, detailed=True)
    engine.dispose()
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


DATA_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "rollups": _rollups,
    "seed-demo": _seed_demo,
    "retention": _retention,
    "db-stats": _db_stats,
}


if __name__ == "__main__":
    sys.exit(main())
