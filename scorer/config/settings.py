"""Settings: read once from the environment, validated, frozen.

This is the only module that reads ``os.environ``. Every setting is declared once, as a
field of ``Settings`` whose ``variable(...)`` metadata gives its environment variable,
default, parser and one-line doc; ``SETTINGS`` is derived from those fields,
``from_env`` reads them all from it, and a test holds the README's table to it.

Settings may also come from the Infisical vault (``scorer.config.vault``) when the bootstrap
keys are set. Every process builds its settings with ``load_settings(purpose)``: the
``Purpose`` says whether the vault is read and whether the settings must be complete
(the web worker first takes the bootstrap, then reads the vault in the background with
retries, ``scorer.process.boot``). A variable set in the environment wins over the
vault's value.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
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


class VaultUnreadable(ConfigError):
    """The vault could not be read: down, unreachable, or refusing the credentials. An
    outage to retry (the web worker does), told apart from a malformed setting; the CLI
    reports it like one. ``reason`` is short and safe for health and logs."""

    def __init__(self, reason: str, *, reachable: bool, authenticated: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reachable = reachable
        self.authenticated = authenticated


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


_METADATA = "setting"  # the key of a Settings field's metadata that holds its Setting


def variable(
    name: str,
    default: Any,
    parse: Callable[[str], Any],
    doc: str,
    shown: str,
    *,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
) -> dict[str, Setting]:
    """A ``Settings`` field's metadata: the environment variable that sets it (the
    field's name is filled in by ``declared``)."""
    setting = Setting(name, "", default, parse, doc, shown, aliases=aliases, secret=secret)
    return {_METADATA: setting}


def declared(cls: type) -> tuple[Setting, ...]:
    """The settings a dataclass declares, in field order: each field's ``variable(...)``.
    A field without one, or two fields reading one variable, is a TypeError at import."""
    found: list[Setting] = []
    for f in fields(cls):
        setting = f.metadata.get(_METADATA)
        if not isinstance(setting, Setting):
            raise TypeError(f"{cls.__name__}.{f.name} declares no variable(...)")
        found.append(replace(setting, field=f.name))
    names = [n for s in found for n in (s.name, *s.aliases)]
    if len(names) != len(set(names)):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TypeError(f"{cls.__name__}: variables read by two fields: {', '.join(twice)}")
    return tuple(found)


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
    tickers = frozenset(parse_tickers(raw))
    if not tickers:  # "," or " , ": surely not meant as "the catalogue's"
        raise ValueError(NO_TICKERS)
    return tickers


NO_TICKERS = (
    "names no ticker: list some (TICKERS=AAPL,MSFT), or unset it to watch the "
    "catalogue's (the 30 Dow stocks)"
)


def _sentry_dsn(raw: str) -> str:
    """A DSN Sentry's own parser accepts (``https://<key>@<host>/<project>``); the
    message says what is wrong, never the value (the key is in it)."""
    from sentry_sdk.utils import BadDsn, Dsn  # only when one is set

    try:
        Dsn(raw)
    except BadDsn as exc:
        reason = str(exc).split(" (")[0].split(" '")[0]  # no part of the value
        raise ValueError(
            f"is not a Sentry DSN ({reason}); it looks like https://<key>@<host>/<project>"
        ) from None
    return raw


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


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service is configured with, and the one declaration of each setting:
    a field whose ``variable(...)`` metadata names its environment variable, default,
    parser and doc (``SETTINGS`` below is derived from these fields). The fields have no
    dataclass defaults, so a default cannot live twice; ``from_env`` builds them all.
    Secrets are kept out of ``repr``."""

    # fmt: off
    database_url: str = field(metadata=variable(
        "DATABASE_URL", SQLITE_DEFAULT, database_url,
        "`postgres://…` (Heroku's form) or `postgresql://…` use Postgres through "
        "psycopg 3; `sqlite:///path.db` another SQLite file",
        "unset: SQLite file `reasonator.db`", secret=True))
    finbert_model: str = field(metadata=variable(
        "FINBERT_MODEL", "ProsusAI/finbert", str,
        "a hub model id, or a local directory written by `save_pretrained`",
        "`ProsusAI/finbert`"))
    finbert_model_sha: str = field(metadata=variable(
        "FINBERT_MODEL_SHA", "unknown", _revision,
        "the model revision (commit sha or tag) to load; `unknown` loads unpinned, "
        "with a warning", "`unknown`"))
    service_token: str | None = field(metadata=variable(
        "RACK_SERVICE_TOKEN", None, str,
        "bearer token for the read API (see below for its form)", "unset", secret=True))
    sentry_dsn: str | None = field(metadata=variable(
        "SENTRY_DSN", None, _sentry_dsn,
        "send errors to Sentry (no request headers or other PII)", "unset", secret=True))
    env: str = field(metadata=variable(
        "ENV", "development", _choice(*ENVIRONMENTS),
        "`development`, `staging` or `production`", "`development`"))
    flag_reasonator: bool = field(metadata=variable(
        "FLAG_REASONATOR", False, _flag,
        "gates the consumer surfaces, not this service; reported by health", "`false`"))
    port: int = field(metadata=variable(
        "PORT", 8000, _int(1, 65535),
        "the port gunicorn binds (Heroku sets it)", "`8000`"))
    web_concurrency: int = field(metadata=variable(
        "WEB_CONCURRENCY", 1, _int(1, 16),
        "gunicorn worker processes; each holds its own model, so keep 1 on an Eco dyno",
        "`1`"))
    web_concurrency_set_by: str | None = field(metadata=variable(
        "WEB_CONCURRENCY_SET_BY", None, str,
        "set by Heroku's buildpack alongside its own `WEB_CONCURRENCY`; not for operators",
        "unset"))
    # None: unset (the catalogue); (): "none".
    feeds: tuple[FeedSpec, ...] | None = field(metadata=variable(
        "FEEDS", None, _feeds,
        "feeds to poll, separated by whitespace; `TICKER=URL` marks a per-ticker feed; "
        "`none` polls nothing", "unset: the catalogue"))
    tickers: frozenset[str] = field(metadata=variable(
        "TICKERS", frozenset(), _tickers,
        "the watchlist, comma-separated; set but naming no ticker is refused",
        "unset: the catalogue's"))
    poll_interval: int = field(metadata=variable(
        "POLL_INTERVAL", 300, _int(30, 3600),
        "seconds between cycles while the market is open (30–3600)", "`300`"))
    score_batch_size: int = field(metadata=variable(
        "SCORE_BATCH_SIZE", 64, _int(1, 1024),
        "(article, ticker) pairs scored and committed per batch", "`64`"))
    model_threads: int = field(metadata=variable(
        "MODEL_THREADS", 2, _int(1, 64),
        "inference threads of the model runtime (ONNX Runtime or torch)", "`2`",
        aliases=("TORCH_THREADS",)))
    fetch_timeout: float = field(metadata=variable(
        "FETCH_TIMEOUT", 10.0, lambda raw: float(_int(1, 120)(raw)),
        "seconds per feed request (connect and read)", "`10`"))
    model_artifact_dir: Path = field(metadata=variable(
        "MODEL_ARTIFACT_DIR", DEFAULT_ARTIFACT_DIR, Path,
        "where `prepare-model` writes the serving artifact and the service looks for it",
        "`var/model` in the app directory"))
    market_window: str = field(metadata=variable(
        "MARKET_WINDOW", "regular", _choice("regular", "extended"),
        "when to poll: `regular` (the NYSE session) or `extended` (widened by the two "
        "settings below)", "`regular`"))
    market_lead_minutes: int = field(metadata=variable(
        "MARKET_LEAD_MINUTES", 90, _int(0, 330),
        "with `extended`: minutes before the open to start polling, 0–330", "`90`"))
    market_tail_minutes: int = field(metadata=variable(
        "MARKET_TAIL_MINUTES", 60, _int(0, 240),
        "with `extended`: minutes after the close to keep polling, 0–240", "`60`"))
    # Issue 9: the feed catalogue, EDGAR's User-Agent, the per-feed deadline.
    feeds_file: Path | None = field(metadata=variable(
        "FEEDS_FILE", None, Path,
        "a catalogue file (TOML, like `scorer/ingest/data/feeds.toml`) used when `FEEDS` "
        "is unset",
        "unset: the shipped catalogue"))
    edgar_user_agent: str | None = field(metadata=variable(
        "EDGAR_USER_AGENT", None, _contact,
        "User-Agent sent to sec.gov, naming a contact (`Acme Research ops@acme.example`); "
        "required when an EDGAR feed is configured", "unset"))
    fetch_deadline: float = field(metadata=variable(
        "FETCH_DEADLINE", 30.0, lambda raw: float(_int(1, 300)(raw)),
        "seconds one feed's whole fetch may take (1–300)", "`30`"))
    # The vault bootstrap (issue 8): the runbook's Heroku config holds only these, ENV and
    # FLAG_REASONATOR; everything else may come from the vault folder /rack/.
    infisical_project_id: str | None = field(metadata=variable(
        "INFISICAL_PROJECT_ID", None, str,
        "the vault's project id; with the two below, settings are read from the vault "
        "folder `/rack/` at boot", "unset"))
    infisical_client_id: str | None = field(metadata=variable(
        "INFISICAL_CLIENT_ID", None, str,
        "universal-auth client id of the vault's machine identity", "unset"))
    infisical_client_secret: str | None = field(metadata=variable(
        "INFISICAL_CLIENT_SECRET", None, str,
        "universal-auth client secret of the vault's machine identity", "unset",
        secret=True))
    infisical_api_url: str = field(metadata=variable(
        "INFISICAL_API_URL", "https://app.infisical.com", _http_url,
        "the vault's base URL", "`https://app.infisical.com`"))
    infisical_environment: str | None = field(metadata=variable(
        "INFISICAL_ENVIRONMENT", None, _slug,
        "the vault environment to read; unset: `prod` for `ENV=production`, `staging` "
        "for staging, `dev` for development", "unset: from `ENV`"))
    cf_access_client_id: str | None = field(metadata=variable(
        "CF_ACCESS_CLIENT_ID", None, str,
        "Cloudflare Access service-token id, sent on every vault request", "unset"))
    cf_access_client_secret: str | None = field(metadata=variable(
        "CF_ACCESS_CLIENT_SECRET", None, str,
        "Cloudflare Access service-token secret, sent on every vault request", "unset",
        secret=True))
    service_token_next: str | None = field(metadata=variable(
        "RACK_SERVICE_TOKEN_NEXT", None, str,
        "a second accepted bearer token, for rotation without downtime", "unset",
        secret=True))
    heroku_slug_commit: str | None = field(metadata=variable(
        "HEROKU_SLUG_COMMIT", None, _revision,
        "the deployed commit (Heroku's dyno metadata); part of Sentry's release", "unset"))
    source_version: str | None = field(metadata=variable(
        "SOURCE_VERSION", None, _revision,
        "the built commit (set by Heroku at build time); Sentry's release when "
        "`HEROKU_SLUG_COMMIT` is unset", "unset"))
    # issue 11: the database outage contract
    db_outage_grace: int = field(metadata=variable(
        "DB_OUTAGE_GRACE", 60, _int(0, 3600),
        "seconds the database may be unreachable or without its schema before health "
        "turns 503 `degraded`",
        "`60`"))
    # Retention and the database plan (issue 10).
    db_size_budget: int = field(metadata=variable(
        "DB_SIZE_BUDGET", 1024**3, _size,
        "the database's storage budget, e.g. `1GB`, `500MB` (binary units), `0` for none; "
        "Postgres: the database's size; SQLite: the file's used pages", "`1GB`"))
    db_row_limit: int | None = field(metadata=variable(
        "DB_ROW_LIMIT", None, _int(1, 10**12),
        "a plan's cap on rows in all tables (Postgres Mini: `10000`); unset for none",
        "unset"))
    detail_retention_days: int = field(metadata=variable(
        "DETAIL_RETENTION_DAYS", 90, _int(1, 36500),
        "days to keep articles, their tickers and score events (sooner if over budget)",
        "`90`"))
    rollup_retention_15m_days: int = field(metadata=variable(
        "ROLLUP_RETENTION_15M_DAYS", 31, _int(1, 36500),
        "days to keep 15-minute history buckets", "`31`"))
    rollup_retention_1h_days: int = field(metadata=variable(
        "ROLLUP_RETENTION_1H_DAYS", 365, _int(1, 36500),
        "days to keep 1-hour history buckets (session buckets are kept for ever)", "`365`"))
    # issue 21: process roles and heartbeats
    web_role: str = field(metadata=variable(
        "WEB_ROLE", "all", _choice("all", "read"),
        "what a web process does: `all` (API, model, scheduler: one Eco dyno) or `read` "
        "(the API only, no model, scheduler or feeds; `worker` dynos score)", "`all`"))
    dyno: str | None = field(metadata=variable(
        "DYNO", None, str,
        "the dyno's name (Heroku's dyno metadata, e.g. `worker.1`); a score's `scored_by`, "
        "else host:pid", "unset"))
    heartbeat_interval: int = field(metadata=variable(
        "HEARTBEAT_INTERVAL", 15, _int(1, 300),
        "seconds between a scoring process's heartbeats (a worker is alive for 4 of them)",
        "`15`"))
    worker_grace: int = field(metadata=variable(
        "WORKER_GRACE", 120, _int(0, 3600),
        "with `WEB_ROLE=read`: seconds without a live worker before health turns 503 "
        "`degraded`", "`120`"))
    # fmt: on

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
        complete: bool = True,
    ) -> Settings:
        """Parse settings from ``environ`` (default ``os.environ``) over the values read
        from the vault; a variable set in the environment wins. Raise ConfigError.
        Reads no vault itself: processes call ``load_settings(purpose)``.

        ``complete=False`` checks neither the token nor the feeds' contacts: for what
        runs before the vault has answered (gunicorn's master, a worker's bootstrap) or
        needs no token (``prepare-model``, ``calendar``).
        """
        given = os.environ if environ is None else environ
        if "TICKERS" in given and not given["TICKERS"].strip():
            # Blank means unset for every other setting; here it would read as "watch
            # nothing" and silently be the Dow 30 instead.
            raise ConfigError(f"TICKERS is set but empty: {NO_TICKERS}")
        env = merged_environ(given, vault or {})
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
        settings = cls(**values)
        if complete:
            check_tokens(settings)
            _check_feeds(settings)
        return settings


SETTINGS: tuple[Setting, ...] = declared(Settings)
BY_NAME = {s.name: s for s in SETTINGS}


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


class Purpose(Enum):
    """What a process builds its settings for. This decides whether ``load_settings``
    reads the vault (when its bootstrap keys are set) and whether the settings must be
    complete: a valid token outside development and a contact for every feed that asks
    for one. Every entry point names its purpose; nothing else builds settings."""

    # label, reads the vault, must be complete[, the only variables read]
    # ``python -m scorer serve`` before it execs gunicorn: the database check. The token
    # may be in the vault, which each worker reads after binding.
    SERVE = ("serve", False, False)
    # gunicorn's master (gunicorn_conf.py): binds at once, imports no HTTP library.
    GUNICORN_MASTER = ("gunicorn-master", False, False)
    # The bootstrap keys only: a web worker before its background read, the vault check.
    BOOTSTRAP = ("bootstrap", False, False)
    # A web worker's full settings, read in the background with retries (boot.py).
    WEB = ("web", True, True)
    # ``python -m scorer worker``: like a web worker's (it fetches feeds and scores).
    WORKER = ("worker", True, True)
    # The data commands: run-once, rescore, rollups, retention, db-stats, seed-demo.
    CLI = ("cli", True, True)
    # prepare-model at build time: the vault's model and revision, no token needed.
    BUILD = ("build", True, False)
    # ``calendar``: the vault's MARKET_WINDOW and bounds, as ``serve`` polls by them.
    CALENDAR = ("calendar", True, False)
    # The release phase (alembic/env.py) and serve's migration: the database URL alone,
    # from the environment alone, so neither a vault outage nor another setting can
    # block a deploy's migrations. Every other field keeps its default.
    MIGRATE = ("migrate", False, False, ("DATABASE_URL",))

    def __init__(self, label: str, vault: bool, complete: bool, only: tuple[str, ...] = ()) -> None:
        self.label = label
        self.vault = vault
        self.complete = complete
        self.only = only


def load_settings(purpose: Purpose, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings ``purpose`` needs, from ``environ`` (default ``os.environ``) and, when
    the purpose reads the vault and the bootstrap keys are set, the vault (an environment
    variable wins). Raise ConfigError naming the variable, or its subclass
    VaultUnreadable when the vault could not be read."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    if purpose.only:
        names = {n for name in purpose.only for n in (name, *BY_NAME[name].aliases)}
        env = {k: v for k, v in env.items() if k in names}
    if not purpose.vault:
        return Settings.from_env(env, complete=purpose.complete)
    bootstrap = Settings.from_env(env, complete=False)
    values: dict[str, str] = {}
    if bootstrap.vault_configured:
        from scorer.config.vault import VaultError  # requests stays out of gunicorn's master

        try:
            values = read_vault(bootstrap)
        except VaultError as exc:
            raise VaultUnreadable(
                exc.reason, reachable=exc.reachable, authenticated=exc.authenticated
            ) from None
    settings = Settings.from_env(env, vault=values, complete=purpose.complete)
    # A worker always says where its settings came from; the CLI when it read the vault.
    if bootstrap.vault_configured or purpose is Purpose.WEB:
        found = sources(env, values)
        log.info(
            "settings: from the vault: %s; from the environment: %s; environment over vault:"
            " %s; ignored from the vault: %s",
            *(", ".join(found[k]) or "none" for k in found),
        )
    return settings


def vault_health(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The runbook's vault check: can we log in and read ``/rack/``, and which of the
    expected keys are there. Names only: never a value."""
    from scorer.config.vault import FOLDER, VaultError, read_folder

    try:
        bootstrap = load_settings(Purpose.BOOTSTRAP, environ)
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
        # Messages never echo a secret's value (these parsers name no value either).
        echoes = setting.secret and setting.name not in ("DATABASE_URL", "SENTRY_DSN")
        message = "is malformed" if echoes else exc
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


def check_tokens(settings: Settings) -> None:
    """Raise ConfigError unless the bearer tokens have the form ``settings.env`` asks
    for (what complete settings check; the web worker checks its environment's token
    with this before serving reads while the vault is read)."""
    strict = settings.env != "development"
    _check_token("RACK_SERVICE_TOKEN", settings.service_token, strict=strict)
    if settings.service_token_next is not None:
        _check_token("RACK_SERVICE_TOKEN_NEXT", settings.service_token_next, strict=strict)


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
