"""Settings: parsed once, validated with errors that name the variable."""

from __future__ import annotations

import ast
import re
import secrets
from dataclasses import MISSING, field, fields, make_dataclass
from pathlib import Path

import pytest

from scorer.config import settings as settings_module
from scorer.config.settings import SETTINGS, ConfigError, Settings, declared, variable

README = Path(__file__).parents[2] / "README.md"


def test_defaults_run_on_sqlite_with_finbert_unpinned() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///reasonator.db"
    assert s.finbert_model == "ProsusAI/finbert" and s.model_revision is None
    assert s.poll_interval == 300 and s.env == "development" and s.flag_reasonator is False


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_heroku_database_urls_map_to_psycopg3(raw: str, url: str) -> None:
    assert Settings.from_env({"DATABASE_URL": raw}).database_url == url


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"POLL_INTERVAL": "soon"}, "POLL_INTERVAL"),
        ({"POLL_INTERVAL": "5"}, "POLL_INTERVAL"),
        ({"PORT": "70000"}, "PORT"),
        ({"ENV": "prod"}, "ENV"),
        ({"FLAG_REASONATOR": "maybe"}, "FLAG_REASONATOR"),
        ({"TICKERS": "AAPL,not a ticker"}, "TICKERS"),
        ({"FEEDS": "ftp://example.com/feed"}, "FEEDS"),
        ({"DATABASE_URL": "mysql://u:hunter2@h/d"}, "DATABASE_URL"),
        ({"ENV": "production"}, "RACK_SERVICE_TOKEN"),
        ({"ENV": "production", "RACK_SERVICE_TOKEN": "short"}, "RACK_SERVICE_TOKEN"),
        ({"FINBERT_MODEL_SHA": "abc def"}, "FINBERT_MODEL_SHA"),
    ],
)
def test_a_bad_setting_names_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Settings.from_env(env)
    assert "hunter2" not in str(info.value)


def test_production_takes_a_32_byte_base64url_token_and_hides_it() -> None:
    token = secrets.token_urlsafe(32)
    s = Settings.from_env(
        {
            "ENV": "production",
            "RACK_SERVICE_TOKEN": token,
            "SENTRY_DSN": "https://key@sentry.example/1",
            "DATABASE_URL": "postgres://u:hunter2@h/d",
        }
    )
    assert s.service_token == token
    for secret in (token, "hunter2", "key@sentry"):
        assert secret not in repr(s)


def test_feeds_and_watchlist() -> None:
    s = Settings.from_env(
        {"FEEDS": "https://a.test/rss\n AAPL=https://b.test/aapl", "TICKERS": "msft, nvda"}
    )
    assert [(f.url, f.ticker) for f in s.feeds] == [
        ("https://a.test/rss", None),
        ("https://b.test/aapl", "AAPL"),
    ]
    assert s.watchlist == {"MSFT", "NVDA", "AAPL"}


def test_web_concurrency_is_the_operators_not_the_buildpacks() -> None:
    assert Settings.from_env({}).web_concurrency == 1
    assert Settings.from_env({"WEB_CONCURRENCY": "3"}).web_concurrency == 3
    heroku_default = {"WEB_CONCURRENCY": "2", "WEB_CONCURRENCY_SET_BY": "heroku/python"}
    assert Settings.from_env(heroku_default).web_concurrency == 1


def _readme_settings() -> dict[str, str]:
    """The README's settings table: variable -> its default column."""
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (name := re.match(r"`([A-Z][A-Z0-9_]+)`", cells[0])):
            rows[name.group(1)] = cells[1]
    return rows


def test_the_readme_documents_every_setting_with_its_default() -> None:
    documented = _readme_settings()
    declared = {s.name: s.shown for s in SETTINGS}
    assert {n: documented.get(n) for n in declared} == declared
    stale = sorted(set(documented) - set(declared))
    assert not stale, f"README.md documents settings that do not exist: {stale}"


def test_the_old_thread_setting_name_still_works() -> None:
    assert Settings.from_env({"TORCH_THREADS": "3"}).model_threads == 3
    assert Settings.from_env({"MODEL_THREADS": "4", "TORCH_THREADS": "3"}).model_threads == 4


def test_every_settings_field_is_declared_once() -> None:
    names = [s.field for s in SETTINGS]
    assert len(names) == len(set(names))
    assert set(names) == {f.name for f in fields(Settings)}


def _called(node: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
    ]


def test_settings_are_declared_only_as_fields_and_the_table_is_derived() -> None:
    # SETTINGS is the fields' metadata: the same names in the same order, each the
    # field's own declaration; no field has a dataclass default of its own.
    assert [s.field for s in SETTINGS] == [f.name for f in fields(Settings)]
    for setting, f in zip(SETTINGS, fields(Settings), strict=True):
        assert f.metadata["setting"].name == setting.name
        assert f.default is MISSING and f.default_factory is MISSING
    # No second table in the module: the one Setting(...) is in variable(), and every
    # variable(...) is a field of Settings.
    tree = ast.parse(Path(settings_module.__file__).read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    (helper,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "variable"]
    assert len(_called(tree, "Setting")) == len(_called(helper, "Setting")) == 1
    assert len(_called(tree, "variable")) == len(_called(cls, "variable")) == len(SETTINGS)


def test_a_field_without_a_variable_or_a_variable_read_twice_is_refused() -> None:
    port = variable("PORT", 8000, int, "the port", "`8000`")
    undeclared = make_dataclass("Bad", [("port", int, field(metadata=port)), ("other", int)])
    with pytest.raises(TypeError, match=r"Bad.other declares no variable"):
        declared(undeclared)
    alias = variable("OTHER", 1, int, "another", "`1`", aliases=("PORT",))
    twice = make_dataclass(
        "Twice", [("port", int, field(metadata=port)), ("other", int, field(metadata=alias))]
    )
    with pytest.raises(TypeError, match="variables read by two fields: PORT"):
        declared(twice)
    fine = make_dataclass("Fine", [("port", int, field(metadata=port))])
    assert [(s.name, s.field, s.default) for s in declared(fine)] == [("PORT", "port", 8000)]


def test_without_feeds_the_shipped_catalogue_and_the_dow_watchlist_apply() -> None:
    s = Settings.from_env({})
    assert len(s.watchlist) == 30 and {"AAPL", "MSFT", "V", "WMT"} <= s.watchlist
    kinds = {spec.kind for spec in s.feed_specs}
    assert kinds == {"ticker", "wire", "market"}  # no EDGAR without a contact
    nasdaq = [spec for spec in s.feed_specs if spec.name == "Nasdaq headlines AAPL"]
    assert [spec.url for spec in nasdaq] == ["https://www.nasdaq.com/feed/rssoutbound?symbol=AAPL"]
    assert not any("seekingalpha" in spec.url for spec in s.feed_specs)
    assert any("EDGAR_USER_AGENT" in note for note in s.notes())


def test_edgar_needs_a_contact_only_when_configured() -> None:
    with_contact = Settings.from_env({"EDGAR_USER_AGENT": "Acme Research ops@acme.example"})
    assert any(spec.kind == "edgar" for spec in with_contact.feed_specs)
    with pytest.raises(ConfigError, match="EDGAR_USER_AGENT is required"):
        Settings.from_env({"FEEDS": "https://www.sec.gov/cgi-bin/browse-edgar?output=atom"})
    with pytest.raises(ConfigError, match="EDGAR_USER_AGENT"):
        Settings.from_env({"EDGAR_USER_AGENT": "just a name"})


def test_feeds_file_names_another_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'watchlist = ["TSLA"]\n[[feed]]\nname = "Mine"\nurl = "https://m.test/{ticker}.xml"\n'
        'kind = "ticker"\nlicence = "ours"\n'
    )
    s = Settings.from_env({"FEEDS_FILE": str(path)})
    assert [(f.name, f.url, f.ticker) for f in s.feed_specs] == [
        ("Mine TSLA", "https://m.test/TSLA.xml", "TSLA")
    ]
    path.write_text('[[feed]]\nname = "Bad"\nurl = "ftp://x"\n')
    from scorer.ingest.sources import load_catalogue

    load_catalogue.cache_clear()
    with pytest.raises(ConfigError, match=r"FEEDS_FILE: .*url must be http"):
        Settings.from_env({"FEEDS_FILE": str(path)})


def test_feeds_none_polls_nothing_while_unset_polls_the_catalogue() -> None:
    assert Settings.from_env({"FEEDS": "none"}).feed_specs == ()
    assert Settings.from_env({"FEEDS": " None "}).feed_specs == ()
    assert len(Settings.from_env({}).feed_specs) > 0


@pytest.mark.parametrize(
    "dsn",
    [
        "notadsn",
        "https://o1.ingest.sentry.io/2",
        "https://pubkey123@o1.ingest.sentry.io/x",
        "ftp://k@h/1",
    ],
)
def test_a_sentry_dsn_sentry_cannot_parse_is_refused_at_start_without_its_value(dsn: str) -> None:
    with pytest.raises(ConfigError, match=r"^SENTRY_DSN: is not a Sentry DSN \(") as info:
        Settings.from_env({"SENTRY_DSN": dsn})
    for part in ("notadsn", "pubkey123", "o1.ingest"):
        assert part not in str(info.value)


@pytest.mark.parametrize("raw", ["", "  ", ",", " , ,"])
def test_tickers_set_but_naming_none_is_refused_not_read_as_the_dow_30(raw: str) -> None:
    with pytest.raises(ConfigError, match="TICKERS") as info:
        Settings.from_env({"TICKERS": raw})
    assert "unset it to watch the catalogue's" in str(info.value)
    assert len(Settings.from_env({}).watchlist) == 30, "unset: the catalogue's"
