"""Command line: ``python -m scorer {serve,run-once,prepare-model,rescore,calendar}``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime

from sqlalchemy.exc import SQLAlchemyError

from scorer.config import ConfigError, Settings, database_url_from_env, load_settings

# The Procfile's web: line, as a module invocation.
WEB_COMMAND = ("gunicorn", "-c", "python:scorer.gunicorn_conf", "scorer.wsgi:app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate the database, then serve on $PORT with gunicorn")
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

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve()
        if args.command == "run-once":
            return _run_once()
        if args.command == "prepare-model":
            return _prepare_model(gate=not args.no_gate)
        if args.command == "rescore":
            return _rescore(args)
        return _calendar(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def _serve() -> int:
    # A malformed setting fails here; the token may still be in the vault, which each
    # worker reads after binding. The database must answer (one line if it does not).
    _check_database(Settings.from_env(build=True))
    _migrate()
    os.execv(sys.executable, [sys.executable, "-m", *WEB_COMMAND])
    return 0  # not reached


def _check_database(settings: Settings) -> None:
    """One line naming DATABASE_URL and the host when the database cannot be reached
    (ConfigError, printed by ``main``). Only the CLI checks: a web worker binds at once
    whatever the database does and health explains (see README, "When the database is
    down")."""
    from scorer.db import check_reachable

    check_reachable(settings.database_url)


def _migrate() -> None:
    from scorer.db import make_engine, migrate

    # Like the release phase: DATABASE_URL only, never the vault.
    engine = make_engine(database_url_from_env())
    migrate(engine)
    engine.dispose()


def _run_once() -> int:
    from scorer.model import ModelLoader, load_classifier
    from scorer.observability import configure_logging
    from scorer.process.service import Service

    configure_logging()
    settings = load_settings()
    _check_database(settings)
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
    from scorer.model.artifact import FidelityGateError, build_artifact
    from scorer.model.onnx_runtime import read_manifest
    from scorer.observability import configure_logging

    configure_logging()
    # The same model and revision the service will load: the vault's when the build has
    # the bootstrap keys (bin/post_compile), else the environment's.
    settings = load_settings(build=True)
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
        f"fp32_fraction={fidelity.get('fp32_fraction')}",
        file=sys.stderr,
    )
    return 0


def _instant(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rescore(args: argparse.Namespace) -> int:
    from scorer.db import make_engine, make_session_factory
    from scorer.store import queue_rescore

    settings = load_settings()
    _check_database(settings)
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

    from scorer import market

    end = args.end or args.start + timedelta(days=14)
    window = Settings.from_env(build=True).window  # MARKET_WINDOW and its bounds
    try:
        for line in market.calendar_lines(args.start, end, window, args.format):
            print(line)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
