"""Settings: read once from the environment, validated, frozen.

This is the only module that reads ``os.environ``. Every setting is declared once,
in ``SETTINGS`` below (variable, default, parser, one-line doc); ``from_env`` reads
them all from that table, and a test holds the README's table to it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from scorer import market
from scorer.sources import FeedSpec, parse_feed_list
from scorer.tickers import parse_tickers

ENVIRONMENTS = ("development", "staging", "production")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
SQLITE_DEFAULT = "sqlite:///reasonator.db"

# Inside the app directory, so Heroku's build (bin/post_compile) puts it in the slug.
DEFAULT_ARTIFACT_DIR = Path(__file__).resolve().parent.parent / "var" / "model"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it lands, its default, how it is parsed."""

    name: str  # the environment variable
    field: str  # the Settings attribute
    default: Any  # used when the variable is unset or blank
    parse: Callable[[str], Any]  # raw text -> value; ValueError says what is wrong
    doc: str  # one line; the README's table says more
    shown: str  # the default as the README shows it
    aliases: tuple[str, ...] = ()  # older names still accepted
    secret: bool = False  # never echoed, never in repr


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError(f"must be true or false, got {raw!r}")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def _revision(raw: str) -> str:
    if raw != "unknown" and not re.fullmatch(r"[A-Za-z0-9._\-/]{1,100}", raw):
        raise ValueError("must be a commit sha, a tag/branch name or 'unknown'")
    return raw


_UNITS = {"": 1, "B": 1} | {
    f"{unit}{b}": 1024 ** (i + 1) for i, unit in enumerate("KMGT") for b in ("", "B")
}


def _size(raw: str) -> int:
    """Bytes from ``1GB``, ``500 MB``, ``1073741824`` (binary units: 1 GB = 1024**3)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", raw.upper().replace("IB", "B"))
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"must be a size such as 1GB or 500MB, got {raw!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _feeds(raw: str) -> tuple[FeedSpec, ...]:
    return parse_feed_list(raw)


def _tickers(raw: str) -> frozenset[str]:
    return frozenset(parse_tickers(raw))


def database_url(raw: str | None) -> str:
    """Map ``DATABASE_URL`` to a SQLAlchemy URL: unset means the SQLite file, and
    Heroku's ``postgres://`` means Postgres through psycopg 3."""
    if not raw:
        return SQLITE_DEFAULT
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    if raw.startswith(("postgresql+psycopg://", "sqlite:")):
        return raw
    # Never echo the value: it carries the database password.
    raise ValueError("must be a postgres://, postgresql:// or sqlite: URL")


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "database_url", SQLITE_DEFAULT, database_url,
            "`postgres://…` (Heroku's form) or `postgresql://…` use Postgres through "
            "psycopg 3; `sqlite:///path.db` another SQLite file",
            "unset: SQLite file `reasonator.db`", secret=True),
    Setting("FINBERT_MODEL", "finbert_model", "ProsusAI/finbert", str,
            "a hub model id, or a local directory written by `save_pretrained`",
            "`ProsusAI/finbert`"),
    Setting("FINBERT_MODEL_SHA", "finbert_model_sha", "unknown", _revision,
            "the model revision (commit sha or tag) to load; `unknown` loads unpinned, "
            "with a warning", "`unknown`"),
    Setting("RACK_SERVICE_TOKEN", "service_token", None, str,
            "bearer token for the read API (see below for its form)", "unset", secret=True),
    Setting("SENTRY_DSN", "sentry_dsn", None, str,
            "send errors to Sentry (no request headers or other PII)", "unset", secret=True),
    Setting("ENV", "env", "development", _choice(*ENVIRONMENTS),
            "`development`, `staging` or `production`", "`development`"),
    Setting("FLAG_REASONATOR", "flag_reasonator", False, _flag,
            "gates the consumer surfaces, not this service; reported by health", "`false`"),
    Setting("PORT", "port", 8000, _int(1, 65535),
            "the port gunicorn binds (Heroku sets it)", "`8000`"),
    Setting("WEB_CONCURRENCY", "web_concurrency", 1, _int(1, 16),
            "gunicorn worker processes; each holds its own model, so keep 1 on an Eco dyno",
            "`1`"),
    Setting("WEB_CONCURRENCY_SET_BY", "web_concurrency_set_by", None, str,
            "set by Heroku's buildpack alongside its own `WEB_CONCURRENCY`; not for operators",
            "unset"),
    Setting("FEEDS", "feeds", (), _feeds,
            "feeds to poll, separated by whitespace; `TICKER=URL` marks a per-ticker feed",
            "empty"),
    Setting("TICKERS", "tickers", frozenset(), _tickers,
            "the watchlist, comma-separated", "empty"),
    Setting("POLL_INTERVAL", "poll_interval", 300, _int(30, 3600),
            "seconds between cycles while the market is open (30–3600)", "`300`"),
    Setting("SCORE_BATCH_SIZE", "score_batch_size", 64, _int(1, 1024),
            "(article, ticker) pairs scored and committed per batch", "`64`"),
    Setting("MODEL_THREADS", "model_threads", 2, _int(1, 64),
            "inference threads of the model runtime (ONNX Runtime or torch)", "`2`",
            aliases=("TORCH_THREADS",)),
    Setting("FETCH_TIMEOUT", "fetch_timeout", 10.0, lambda raw: float(_int(1, 120)(raw)),
            "seconds per feed request (connect and read)", "`10`"),
    Setting("MODEL_ARTIFACT_DIR", "model_artifact_dir", DEFAULT_ARTIFACT_DIR, Path,
            "where `prepare-model` writes the serving artifact and the service looks for it",
            "`var/model` in the app directory"),
    Setting("MARKET_WINDOW", "market_window", "regular", _choice("regular", "extended"),
            "when to poll: `regular` (the NYSE session) or `extended` (widened by the two "
            "settings below)", "`regular`"),
    Setting("MARKET_LEAD_MINUTES", "market_lead_minutes", 90, _int(0, 330),
            "with `extended`: minutes before the open to start polling, 0–330", "`90`"),
    Setting("MARKET_TAIL_MINUTES", "market_tail_minutes", 60, _int(0, 240),
            "with `extended`: minutes after the close to keep polling, 0–240", "`60`"),
    # Retention and the database plan (issue 10).
    Setting("DB_SIZE_BUDGET", "db_size_budget", 1024**3, _size,
            "the database's storage budget, e.g. `1GB`, `500MB` (binary units), `0` for none; "
            "Postgres: the database's size; SQLite: the file's used pages", "`1GB`"),
    Setting("DB_ROW_LIMIT", "db_row_limit", None, _int(1, 10**12),
            "a plan's cap on rows in all tables (Postgres Mini: `10000`); unset for none",
            "unset"),
    Setting("DETAIL_RETENTION_DAYS", "detail_retention_days", 90, _int(1, 36500),
            "days to keep articles, their tickers and score events (sooner if over budget)",
            "`90`"),
    Setting("ROLLUP_RETENTION_15M_DAYS", "rollup_retention_15m_days", 31, _int(1, 36500),
            "days to keep 15-minute history buckets", "`31`"),
    Setting("ROLLUP_RETENTION_1H_DAYS", "rollup_retention_1h_days", 365, _int(1, 36500),
            "days to keep 1-hour history buckets (session buckets are kept for ever)", "`365`"),
)  # fmt: skip
BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service is configured with; built by ``from_env`` from SETTINGS.
    Secrets are kept out of ``repr``."""

    database_url: str
    finbert_model: str
    finbert_model_sha: str
    service_token: str | None
    sentry_dsn: str | None
    env: str
    flag_reasonator: bool
    port: int
    web_concurrency: int
    web_concurrency_set_by: str | None
    feeds: tuple[FeedSpec, ...]
    tickers: frozenset[str]
    poll_interval: int
    score_batch_size: int
    model_threads: int
    fetch_timeout: float
    model_artifact_dir: Path
    market_window: str
    market_lead_minutes: int
    market_tail_minutes: int
    # Retention and the database plan (issue 10).
    db_size_budget: int
    db_row_limit: int | None
    detail_retention_days: int
    rollup_retention_15m_days: int
    rollup_retention_1h_days: int

    def __repr__(self) -> str:
        secret = {s.field for s in SETTINGS if s.secret}
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in secret
        )
        return f"Settings({shown})"

    @property
    def model_revision(self) -> str | None:
        """The revision to load, or None for unpinned (``FINBERT_MODEL_SHA=unknown``)."""
        return None if self.finbert_model_sha == "unknown" else self.finbert_model_sha

    @property
    def watchlist(self) -> frozenset[str]:
        """Tickers to tag: the configured list plus every per-ticker feed's ticker."""
        return self.tickers | {f.ticker for f in self.feeds if f.ticker}

    @property
    def window(self) -> market.Window:
        """The polling window MARKET_WINDOW and its bounds describe."""
        if self.market_window == "regular":
            return market.REGULAR
        return market.extended_window(self.market_lead_minutes, self.market_tail_minutes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, build: bool = False) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); raise ConfigError.

        ``build=True`` is for build-time commands (``prepare-model``), which run where
        the service's secrets are not available and need none.
        """
        env = os.environ if environ is None else environ
        values = {s.field: _read(s, env) for s in SETTINGS}
        # Heroku's Python buildpack sets WEB_CONCURRENCY from the dyno's memory when it
        # is unset (2 on 512 MB) and says so in WEB_CONCURRENCY_SET_BY. Each worker
        # holds a model, so only a value the operator chose counts.
        if (values["web_concurrency_set_by"] or "").startswith("heroku/"):
            values["web_concurrency"] = 1
        if not build:
            _check_token(values["service_token"], strict=values["env"] != "development")
        return cls(**values)


def raw_value(setting: Setting, env: Mapping[str, str]) -> str | None:
    """The setting's text from ``env`` (its name first, then its aliases), or None."""
    for name in (setting.name, *setting.aliases):
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def _read(setting: Setting, env: Mapping[str, str]) -> Any:
    raw = raw_value(setting, env)
    if raw is None:
        return setting.default
    try:
        return setting.parse(raw)
    except ValueError as exc:
        # Messages never echo a secret's value (database_url's names no value either).
        message = "is malformed" if setting.secret and setting.name != "DATABASE_URL" else exc
        raise ConfigError(f"{setting.name}: {message}") from None


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


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Only the database URL: what the release phase needs to migrate."""
    env = os.environ if environ is None else environ
    try:
        return database_url(raw_value(BY_NAME["DATABASE_URL"], env))
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from None
