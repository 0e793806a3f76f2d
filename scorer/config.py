"""Settings: read once from the environment, validated, frozen.

This is the only module that reads ``os.environ``. Every setting is documented in
the README (a test keeps the two in step).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scorer import market
from scorer.feeds import TICKER_RE, FeedSpec, parse_feed_list

ENVIRONMENTS = ("development", "staging", "production")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


# Inside the app directory, so Heroku's build (bin/post_compile) puts it in the slug.
DEFAULT_ARTIFACT_DIR = Path(__file__).resolve().parent.parent / "var" / "model"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with. Secrets are kept out of ``repr``."""

    database_url: str = field(default="sqlite:///reasonator.db", repr=False)
    finbert_model: str = "ProsusAI/finbert"
    finbert_model_sha: str = "unknown"
    service_token: str | None = field(default=None, repr=False)
    sentry_dsn: str | None = field(default=None, repr=False)
    env: str = "development"
    flag_reasonator: bool = False
    port: int = 8000
    web_concurrency: int = 1
    feeds: tuple[FeedSpec, ...] = ()
    tickers: frozenset[str] = frozenset()
    poll_interval: int = 300
    score_batch_size: int = 64
    torch_threads: int = 2
    fetch_timeout: float = 10.0
    window: market.Window = market.REGULAR
    model_artifact_dir: Path = DEFAULT_ARTIFACT_DIR

    @property
    def model_revision(self) -> str | None:
        """The revision to load, or None for unpinned (``FINBERT_MODEL_SHA=unknown``)."""
        return None if self.finbert_model_sha == "unknown" else self.finbert_model_sha

    @property
    def watchlist(self) -> frozenset[str]:
        """Tickers to tag: the configured list plus every per-ticker feed's ticker."""
        return self.tickers | {f.ticker for f in self.feeds if f.ticker}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, build: bool = False) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); raise ConfigError.

        ``build=True`` is for build-time commands (``prepare-model``), which run where
        the service's secrets are not available and need none.
        """
        env = dict(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        deployment = (get("ENV") or "development").lower()
        if deployment not in ENVIRONMENTS:
            raise ConfigError(f"ENV must be one of {', '.join(ENVIRONMENTS)}, got {deployment!r}")
        token = get("RACK_SERVICE_TOKEN")
        if not build:
            _check_token(token, strict=deployment != "development")
        try:
            feeds = parse_feed_list(get("FEEDS") or "")
        except ValueError as exc:
            raise ConfigError(f"FEEDS: {exc}") from None
        return cls(
            database_url=database_url(get("DATABASE_URL")),
            finbert_model=get("FINBERT_MODEL") or cls.finbert_model,
            finbert_model_sha=_revision(get("FINBERT_MODEL_SHA")),
            service_token=token,
            sentry_dsn=get("SENTRY_DSN"),
            env=deployment,
            flag_reasonator=_flag("FLAG_REASONATOR", get("FLAG_REASONATOR")),
            port=_int("PORT", get("PORT"), 8000, 1, 65535),
            web_concurrency=_web_concurrency(get),
            feeds=feeds,
            tickers=_tickers(get("TICKERS")),
            poll_interval=_int("POLL_INTERVAL", get("POLL_INTERVAL"), 300, 30, 3600),
            score_batch_size=_int("SCORE_BATCH_SIZE", get("SCORE_BATCH_SIZE"), 64, 1, 1024),
            torch_threads=_int("TORCH_THREADS", get("TORCH_THREADS"), 2, 1, 64),
            fetch_timeout=float(_int("FETCH_TIMEOUT", get("FETCH_TIMEOUT"), 10, 1, 120)),
            window=_window(get),
            model_artifact_dir=Path(get("MODEL_ARTIFACT_DIR") or DEFAULT_ARTIFACT_DIR),
        )


def database_url(raw: str | None) -> str:
    """Map ``DATABASE_URL`` to a SQLAlchemy URL: unset means the SQLite file, and
    Heroku's ``postgres://`` means Postgres through psycopg 3."""
    if not raw:
        return "sqlite:///reasonator.db"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    if raw.startswith(("postgresql+psycopg://", "sqlite:")):
        return raw
    # Never echo the value: it carries the database password.
    raise ConfigError("DATABASE_URL must be a postgres://, postgresql:// or sqlite: URL")


def _check_token(token: str | None, *, strict: bool) -> None:
    if token is None:
        if strict:
            raise ConfigError("RACK_SERVICE_TOKEN is required outside development")
        return
    if not strict:
        if len(token) < 16:
            raise ConfigError("RACK_SERVICE_TOKEN must be at least 16 characters")
        return
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", token):
        raise ConfigError("RACK_SERVICE_TOKEN must be 32 random bytes, base64url-encoded")


def _revision(raw: str | None) -> str:
    value = raw or "unknown"
    if value != "unknown" and not re.fullmatch(r"[A-Za-z0-9._\-/]{1,100}", value):
        raise ConfigError("FINBERT_MODEL_SHA must be a commit sha, a tag/branch name or 'unknown'")
    return value


def _flag(name: str, raw: str | None) -> bool:
    value = (raw or "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _web_concurrency(get: Callable[[str], str | None]) -> int:
    # Heroku's Python buildpack sets WEB_CONCURRENCY from the dyno's memory when it is
    # unset (2 on 512 MB) and says so in WEB_CONCURRENCY_SET_BY. Each worker holds a
    # model, so only a value the operator chose counts; otherwise one worker.
    if (get("WEB_CONCURRENCY_SET_BY") or "").startswith("heroku/"):
        return 1
    return _int("WEB_CONCURRENCY", get("WEB_CONCURRENCY"), 1, 1, 16)


def _window(get: Callable[[str], str | None]) -> market.Window:
    name = (get("MARKET_WINDOW") or "regular").lower()
    if name == "regular":
        return market.REGULAR
    if name != "extended":
        raise ConfigError(f"MARKET_WINDOW must be regular or extended, got {name!r}")
    lead = _int("MARKET_LEAD_MINUTES", get("MARKET_LEAD_MINUTES"), 90, 0, 330)
    tail = _int("MARKET_TAIL_MINUTES", get("MARKET_TAIL_MINUTES"), 60, 0, 240)
    return market.extended_window(lead, tail)


def _tickers(raw: str | None) -> frozenset[str]:
    tickers = {t.strip().upper() for t in (raw or "").split(",") if t.strip()}
    bad = sorted(t for t in tickers if not TICKER_RE.match(t))
    if bad:
        raise ConfigError(f"TICKERS has malformed tickers: {', '.join(bad)}")
    return frozenset(tickers)


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Only the database URL: what the release phase needs to migrate."""
    env = os.environ if environ is None else environ
    return database_url((env.get("DATABASE_URL") or "").strip() or None)
