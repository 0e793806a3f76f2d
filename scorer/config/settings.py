"""Settings: read once from the environment, validated, frozen.

This is the only module that reads ``os.environ``. Every setting is declared once,
in ``SETTINGS`` below (variable, default, parser, one-line doc); ``from_env`` reads
them all from that table, and a test holds the README's table to it.

Settings may also come from the Infisical vault (``scorer.config.vault``) when the bootstrap
keys are set: ``load_settings`` reads it once (CLI, build), the web worker reads it in
the background with retries (``scorer.process.boot``). A variable set in the
environment wins over the vault's value.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from scorer.ingest.kinds import KINDS, FeedKind
from scorer.ingest.sources import (
    DEFAULT_CATALOGUE,
    Catalogue,
    FeedSpec,
    load_catalogue,
    parse_feed_list,
)
from scorer.ingest.tickers import parse_tickers
from scorer.market import calendar

if TYPE_CHECKING:
    from scorer.config.vault import VaultConfig

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "staging", "production")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
SQLITE_DEFAULT = "sqlite:///reasonator.db"

# Inside the app directory, so Heroku's build (bin/post_compile) puts it in the slug.
DEFAULT_ARTIFACT_DIR = Path(__file__).resolve().parents[2] / "var" / "model"


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


def _http_url(raw: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", raw):
        raise ValueError("must be an http(s) URL")
    return raw.rstrip("/")


def _slug(raw: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", raw):
        raise ValueError("must be an environment slug such as prod, staging or dev")
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
    # "none": poll nothing (tests, benchmarks, a reader-only dyno); unset means the
    # catalogue, so an explicit word is needed to say "no feeds".
    return () if raw.strip().lower() == "none" else parse_feed_list(raw)


def _tickers(raw: str) -> frozenset[str]:
    return frozenset(parse_tickers(raw))


def _contact(raw: str) -> str:
    if "@" not in raw and "http" not in raw:
        raise ValueError("must name a contact: an e-mail address or a URL")
    return raw


def database_url(raw: str | None) -> str:
    """Map ``DATABASE_URL`` to a SQLAlchemy URL: unset means the SQLite file, and
    Heroku's ``postgres://`` means Postgres through psycopg 3.

    Checked here, not by the driver: a Postgres URL needs a host and a database (with
    neither, libpq falls back to a local socket and would migrate another database),
    a port is a number, a SQLite URL names a file. Messages name the host, never the
    password (nor the whole URL, which carries it).
    """
    if not raw:
        return SQLITE_DEFAULT
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix) :]
            break
    if raw.startswith("postgresql+psycopg://"):
        _check_postgres(raw)
        return raw
    if raw.startswith("sqlite:"):
        if not raw.startswith("sqlite:///") or not raw.removeprefix("sqlite:///").strip():
            raise ValueError("a SQLite URL is sqlite:///relative/path.db or sqlite:////abs/path.db")
        return raw
    raise ValueError("must be a postgres://, postgresql:// or sqlite:/// URL")


def _check_postgres(raw: str) -> None:
    parts = urlsplit(raw)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or [""])[0]
    if not host:
        raise ValueError("names no host: postgres://user:password@host:5432/database")
    try:
        port = parts.port  # ValueError when not a number or out of range
    except ValueError:
        raise ValueError(f"has a port that is not a number from 1 to 65535 (host {host})") from None
    if port == 0:
        raise ValueError(f"has port 0 (host {host})")
    if not parts.path.strip("/"):
        raise ValueError(f"names no database (host {host}): add /database_name after the host")


def database_host(url: str) -> str:
    """``host:port`` of a database URL (the SQLite file's name), for messages: never
    the user or password."""
    if url.startswith("sqlite:"):
        return Path(url.removeprefix("sqlite:///")).name or "sqlite"
    parts = urlsplit(url)
    host = parts.hostname or (parse_qs(parts.query).get("host") or ["local socket"])[0]
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    return f"{host}:{port}"


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
    Setting("FEEDS", "feeds", None, _feeds,
            "feeds to poll, separated by whitespace; `TICKER=URL` marks a per-ticker feed; "
            "`none` polls nothing", "unset: the catalogue"),
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
    # Issue 9: the feed catalogue, EDGAR's User-Agent, the per-feed deadline.
    Setting("FEEDS_FILE", "feeds_file", None, Path,
            "a catalogue file (TOML, like `scorer/ingest/data/feeds.toml`) used when `FEEDS` "
            "is unset",
            "unset: the shipped catalogue"),
    Setting("EDGAR_USER_AGENT", "edgar_user_agent", None, _contact,
            "User-Agent sent to sec.gov, naming a contact (`Acme Research ops@acme.example`); "
            "required when an EDGAR feed is configured", "unset"),
    Setting("FETCH_DEADLINE", "fetch_deadline", 30.0, lambda raw: float(_int(1, 300)(raw)),
            "seconds one feed's whole fetch may take (1–300)", "`30`"),
    # The vault bootstrap (issue 8): the runbook's Heroku config holds only these, ENV and
    # FLAG_REASONATOR; everything else may come from the vault folder /rack/.
    Setting("INFISICAL_PROJECT_ID", "infisical_project_id", None, str,
            "the vault's project id; with the two below, settings are read from the vault "
            "folder `/rack/` at boot", "unset"),
    Setting("INFISICAL_CLIENT_ID", "infisical_client_id", None, str,
            "universal-auth client id of the vault's machine identity", "unset"),
    Setting("INFISICAL_CLIENT_SECRET", "infisical_client_secret", None, str,
            "universal-auth client secret of the vault's machine identity", "unset",
            secret=True),
    Setting("INFISICAL_API_URL", "infisical_api_url", "https://app.infisical.com", _http_url,
            "the vault's base URL", "`https://app.infisical.com`"),
    Setting("INFISICAL_ENVIRONMENT", "infisical_environment", None, _slug,
            "the vault environment to read; unset: `prod` for `ENV=production`, `staging` "
            "for staging, `dev` for development", "unset: from `ENV`"),
    Setting("CF_ACCESS_CLIENT_ID", "cf_access_client_id", None, str,
            "Cloudflare Access service-token id, sent on every vault request", "unset"),
    Setting("CF_ACCESS_CLIENT_SECRET", "cf_access_client_secret", None, str,
            "Cloudflare Access service-token secret, sent on every vault request", "unset",
            secret=True),
    Setting("RACK_SERVICE_TOKEN_NEXT", "service_token_next", None, str,
            "a second accepted bearer token, for rotation without downtime", "unset",
            secret=True),
    Setting("HEROKU_SLUG_COMMIT", "heroku_slug_commit", None, _revision,
            "the deployed commit (Heroku's dyno metadata); part of Sentry's release", "unset"),
    Setting("SOURCE_VERSION", "source_version", None, _revision,
            "the built commit (set by Heroku at build time); Sentry's release when "
            "`HEROKU_SLUG_COMMIT` is unset", "unset"),
    # issue 11: the database outage contract
    Setting("DB_OUTAGE_GRACE", "db_outage_grace", 60, _int(0, 3600),
            "seconds the database may be unreachable before health turns 503 `degraded`",
            "`60`"),
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
    feeds: tuple[FeedSpec, ...] | None  # None: unset (the catalogue); (): "none"
    tickers: frozenset[str]
    poll_interval: int
    score_batch_size: int
    model_threads: int
    fetch_timeout: float
    model_artifact_dir: Path
    market_window: str
    market_lead_minutes: int
    market_tail_minutes: int
    # Issue 9
    feeds_file: Path | None
    edgar_user_agent: str | None
    fetch_deadline: float
    # The vault bootstrap (issue 8).
    infisical_project_id: str | None
    infisical_client_id: str | None
    infisical_client_secret: str | None
    infisical_api_url: str
    infisical_environment: str | None
    cf_access_client_id: str | None
    cf_access_client_secret: str | None
    service_token_next: str | None
    heroku_slug_commit: str | None
    source_version: str | None
    # issue 11
    db_outage_grace: int
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
    def catalogue(self) -> Catalogue:
        """The catalogue file: ``FEEDS_FILE`` or the shipped one (read once)."""
        return load_catalogue(self.feeds_file or DEFAULT_CATALOGUE)

    @property
    def feed_specs(self) -> tuple[FeedSpec, ...]:
        """The feeds to poll: ``FEEDS`` if set, else the catalogue's, expanded for the
        watchlist (without entries of a kind whose contact is unset: EDGAR's while
        ``EDGAR_USER_AGENT`` is)."""
        if self.feeds is not None:
            return self.feeds
        base = self.tickers or self.catalogue.watchlist
        return self.catalogue.feeds(base, skip=frozenset(self._uncontacted()))

    def contact(self, kind: FeedKind) -> str | None:
        """The User-Agent naming a contact that ``kind``'s servers ask for, if it has a
        ``contact_setting`` and that setting is set."""
        setting = kind.contact_setting
        return None if setting is None else getattr(self, BY_NAME[setting].field)

    def _uncontacted(self) -> dict[str, FeedKind]:
        """Kinds that need a contact and have none configured, by name."""
        return {
            name: kind
            for name, kind in KINDS.items()
            if kind.contact_setting and self.contact(kind) is None
        }

    @property
    def watchlist(self) -> frozenset[str]:
        """Tickers to tag: ``TICKERS`` (else the catalogue's default watchlist) plus
        every per-ticker feed's ticker."""
        base = self.tickers or self.catalogue.watchlist
        return base | {f.ticker for f in self.feed_specs if f.ticker}

    def notes(self) -> list[str]:
        """What an operator should know at start (logged once by the service)."""
        notes = []
        for name, kind in self._uncontacted().items() if self.feeds is None else ():
            skipped = [e.name for e in self.catalogue.entries if e.kind == name]
            if skipped:
                notes.append(f"{kind.contact_setting} is unset: not polling {', '.join(skipped)}")
        if not self.tickers:
            notes.append(f"TICKERS is unset: watching the catalogue's {len(self.watchlist)}")
        return notes

    @property
    def window(self) -> calendar.Window:
        """The polling window MARKET_WINDOW and its bounds describe."""
        if self.market_window == "regular":
            return calendar.REGULAR
        return calendar.extended_window(self.market_lead_minutes, self.market_tail_minutes)

    @property
    def vault_configured(self) -> bool:
        """Whether the vault bootstrap keys are set (then settings come from the vault too)."""
        return bool(
            self.infisical_project_id and self.infisical_client_id and self.infisical_client_secret
        )

    @property
    def vault_environment(self) -> str:
        """The vault environment: INFISICAL_ENVIRONMENT, else the slug for ENV."""
        return self.infisical_environment or VAULT_ENVIRONMENTS[self.env]

    @property
    def service_tokens(self) -> tuple[str, ...]:
        """Every bearer token the read API accepts: the current one and, while a
        rotation is under way, the next."""
        return tuple(t for t in (self.service_token, self.service_token_next) if t)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        vault: Mapping[str, str] | None = None,
        build: bool = False,
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) and the values read
        from the vault; a variable set in the environment wins. Raise ConfigError.

        ``build=True`` checks no token: for build-time commands (``prepare-model``) and
        gunicorn's master, which must bind before the vault has answered.
        """
        env = merged_environ(os.environ if environ is None else environ, vault or {})
        values = {s.field: _read(s, env) for s in SETTINGS}
        # Heroku's Python buildpack sets WEB_CONCURRENCY from the dyno's memory when it
        # is unset (2 on 512 MB) and says so in WEB_CONCURRENCY_SET_BY. Each worker
        # holds a model, so only a value the operator chose counts.
        if (values["web_concurrency_set_by"] or "").startswith("heroku/"):
            values["web_concurrency"] = 1
        bootstrap = [values[f] for f in ("infisical_project_id", "infisical_client_id")]
        bootstrap.append(values["infisical_client_secret"])
        if any(bootstrap) and not all(bootstrap):
            raise ConfigError(
                "INFISICAL_PROJECT_ID, INFISICAL_CLIENT_ID and INFISICAL_CLIENT_SECRET "
                "must be set together"
            )
        if not build:
            strict = values["env"] != "development"
            _check_token("RACK_SERVICE_TOKEN", values["service_token"], strict=strict)
            if values["service_token_next"] is not None:
                _check_token("RACK_SERVICE_TOKEN_NEXT", values["service_token_next"], strict=strict)
        settings = cls(**values)
        if not build:
            _check_feeds(settings)
        return settings


# ENV -> the vault environment's slug (Infisical's defaults are dev, staging, prod).
VAULT_ENVIRONMENTS = {"development": "dev", "staging": "staging", "production": "prod"}
# What the runbook keeps in the vault folder /rack/ (vault_health reports on these).
VAULT_EXPECTED = ("RACK_SERVICE_TOKEN", "SENTRY_DSN", "FINBERT_MODEL_SHA")
# Never taken from the vault: the bootstrap itself, what Heroku sets, and the database
# URL, which the release phase reads from the environment alone (it must migrate the
# database the web process uses).
NOT_FROM_VAULT = frozenset(
    {
        "DATABASE_URL",
        "ENV",
        "PORT",
        "WEB_CONCURRENCY",
        "WEB_CONCURRENCY_SET_BY",
        "HEROKU_SLUG_COMMIT",
        "SOURCE_VERSION",
        "INFISICAL_PROJECT_ID",
        "INFISICAL_CLIENT_ID",
        "INFISICAL_CLIENT_SECRET",
        "INFISICAL_API_URL",
        "INFISICAL_ENVIRONMENT",
        "CF_ACCESS_CLIENT_ID",
        "CF_ACCESS_CLIENT_SECRET",
    }
)


def merged_environ(env: Mapping[str, str], vault: Mapping[str, str]) -> dict[str, str]:
    """The vault's values under the environment's: a variable set (not blank) wins."""
    merged = {k: v for k, v in vault.items() if k in BY_NAME and k not in NOT_FROM_VAULT}
    merged.update({k: v for k, v in env.items() if v.strip()})
    return merged


def sources(env: Mapping[str, str], vault: Mapping[str, str]) -> dict[str, list[str]]:
    """Which declared keys came from where, for the log: names only, never values."""
    declared = {name for s in SETTINGS for name in (s.name, *s.aliases)}
    in_env = {k for k, v in env.items() if k in declared and v.strip()}
    vault = {k: v for k, v in vault.items() if v.strip()}
    return {
        "vault": sorted(k for k in vault if k in BY_NAME and k not in NOT_FROM_VAULT | in_env),
        "environment": sorted(in_env),
        "environment over vault": sorted(k for k in vault if k in in_env),
        "ignored from vault": sorted(k for k in vault if k not in BY_NAME or k in NOT_FROM_VAULT),
    }


def vault_config(settings: Settings) -> VaultConfig:
    """How to reach the vault, from the bootstrap settings."""
    from scorer.config.vault import VaultConfig  # requests stays out of gunicorn's master

    assert settings.vault_configured
    return VaultConfig(
        api_url=settings.infisical_api_url,
        project_id=settings.infisical_project_id or "",
        client_id=settings.infisical_client_id or "",
        client_secret=settings.infisical_client_secret or "",
        environment=settings.vault_environment,
        cf_access_client_id=settings.cf_access_client_id,
        cf_access_client_secret=settings.cf_access_client_secret,
    )


def read_vault(settings: Settings) -> dict[str, str]:
    """The vault folder's ``{key: value}`` (raises ``scorer.config.vault.VaultError``)."""
    from scorer.config.vault import read_folder

    return read_folder(vault_config(settings))


def load_settings(environ: Mapping[str, str] | None = None, *, build: bool = False) -> Settings:
    """Settings from the environment and, when the bootstrap keys are set, the vault:
    what the CLI commands and ``prepare-model`` use. A vault failure is a ConfigError."""
    from scorer.config.vault import VaultError, read_folder

    env = os.environ if environ is None else environ
    bootstrap = Settings.from_env(env, build=True)
    if not bootstrap.vault_configured:
        return Settings.from_env(env, build=build)
    try:
        values = read_folder(vault_config(bootstrap))
    except VaultError as exc:
        raise ConfigError(exc.reason) from None
    return with_vault(values, env, build=build)


def with_vault(
    values: Mapping[str, str], environ: Mapping[str, str] | None = None, *, build: bool = False
) -> Settings:
    """Settings from the environment over the vault's ``values``; logs which keys came
    from where (names only)."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env, vault=values, build=build)
    found = sources(env, values)
    log.info(
        "settings: from the vault: %s; from the environment: %s; environment over vault: %s;"
        " ignored from the vault: %s",
        *(", ".join(found[k]) or "none" for k in found),
    )
    return settings


def vault_health(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The runbook's vault check: can we log in and read ``/rack/``, and which of the
    expected keys are there. Names only: never a value."""
    from scorer.config.vault import FOLDER, VaultError, read_folder

    env = os.environ if environ is None else environ
    try:
        bootstrap = Settings.from_env(env, build=True)
    except ConfigError as exc:
        return {"reachable": False, "authenticated": False, "error": str(exc)}
    report: dict[str, Any] = {
        "reachable": False,
        "authenticated": False,
        "environment": bootstrap.vault_environment,
        "path": FOLDER,
    }
    if not bootstrap.vault_configured:
        report["error"] = "INFISICAL_PROJECT_ID, INFISICAL_CLIENT_ID, INFISICAL_CLIENT_SECRET unset"
        return report
    try:
        keys = set(read_folder(vault_config(bootstrap)))
    except VaultError as exc:
        report.update(reachable=exc.reachable, authenticated=exc.authenticated, error=exc.reason)
        return report
    report.update(
        reachable=True,
        authenticated=True,
        found=[k for k in VAULT_EXPECTED if k in keys],
        missing=[k for k in VAULT_EXPECTED if k not in keys],
        others=sorted(keys - set(VAULT_EXPECTED)),
    )
    return report


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


def _check_feeds(settings: Settings) -> None:
    """The catalogue is readable, and feeds someone configured whose kind asks for a
    contact (EDGAR) have one."""
    try:
        specs = settings.feed_specs
    except ValueError as exc:
        raise ConfigError(f"FEEDS_FILE: {exc}") from None
    for spec in specs:
        kind = spec.rules
        if kind.contact_setting and settings.contact(kind) is None:
            source = "FEEDS" if settings.feeds is not None else "FEEDS_FILE"
            raise ConfigError(
                f"{kind.contact_setting} is required: {source} polls {kind.where} "
                f"({spec.name}), which asks for a User-Agent naming a contact"
            )


def _check_token(name: str, token: str | None, *, strict: bool) -> None:
    if token is None:
        if strict:
            raise ConfigError(f"{name} is required outside development")
        return
    if not strict:
        if len(token) < 16:
            raise ConfigError(f"{name} must be at least 16 characters")
        return
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", token):
        raise ConfigError(f"{name} must be 32 random bytes, base64url-encoded")


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Only the database URL: what the release phase needs to migrate."""
    env = os.environ if environ is None else environ
    try:
        return database_url(raw_value(BY_NAME["DATABASE_URL"], env))
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from None
