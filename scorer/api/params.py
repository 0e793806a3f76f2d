"""Query parameters, declared once per route. A route's ``Spec`` lists its ``Param``s
(name, parser, OpenAPI schema, description, default, which other parameter it needs or
excludes); the ``Parameters`` plugin parses every request's query against it before
the route runs, and ``openapi.py`` documents the same list. A value is parsed strictly
(no ``float()``/``int()`` leniency: no ``1_0``, no surrounding spaces, no ``nan``);
an unknown or repeated parameter, a missing required one and a malformed value are
each a 400 whose message names the parameter. A route declares its spec with
``@app.get(path, params=SPEC)`` and takes the parsed values as ``query``; a route that
declares none takes no parameters at all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bottle

from scorer.api.http import BadRequest, wsgi_text
from scorer.ingest.tickers import parse_ticker, parse_tickers

J = dict[str, Any]
MAX_TICKERS = 50
DEFAULT_LIMIT, MAX_LIMIT = 500, 5_000
EARLIEST = datetime.min.replace(tzinfo=UTC)

_WHOLE = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{0,12})?|\.[0-9]{1,12}")
_OPAQUE = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True)
class Param:
    """One query parameter. ``parse`` takes the value as sent (never empty: an empty
    value counts as absent) and raises ValueError with a message that goes after the
    parameter's quoted name ("must be …, got …")."""

    name: str
    parse: Callable[[str], Any]
    schema: J
    description: str
    required: bool = False
    default: Any = None
    needs: str | None = None  # refused unless this parameter is given too
    excludes: tuple[str, ...] = ()  # refused when one of these is given too
    example: str | None = None  # a valid value, as the document shows it

    def openapi(self, notes: Sequence[str] = ()) -> J:
        """The parameter as an OpenAPI (query) parameter object; ``notes`` are added to
        its description (what the route's other parameters say about it)."""
        said = [self.description.rstrip(".") + "."]
        if self.needs:
            said.append(f"Only with `{self.needs}` (a 400 without it).")
        if self.excludes:
            said.append(f"Refused with {_names(self.excludes)} (a 400).")
        schema = self.schema if self.default is None else {**self.schema, "default": self.default}
        out = {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": " ".join([*said, *notes]),
            "schema": schema,
        }
        return out if self.example is None else {**out, "example": self.example}


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


@dataclass(frozen=True)
class Query:
    """A request's parsed parameters: each declared one's value, its default when absent."""

    values: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


@dataclass(frozen=True)
class Spec:
    """The parameters a route takes, in the order the document lists them."""

    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        assert len(set(names)) == len(names), f"a parameter declared twice: {names}"
        for p in self.params:
            assert {p.needs or p.name, *p.excludes} <= set(names), f"{p.name}: unknown name"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def openapi(self) -> list[J]:
        """The parameters as the OpenAPI document lists them: a parameter that switches
        a mode says which others it brings in and which it refuses."""
        out = []
        for p in self.params:
            needing = [o.name for o in self.params if o.needs == p.name]
            refused = [o.name for o in self.params if p.name in o.excludes]
            notes = [f"With it, {_names(needing)} may be given."] if needing else []
            notes += [f"With it, {_names(refused)} are refused (a 400)."] if refused else []
            out.append(p.openapi(notes))
        return out

    def parse(self, query: bottle.FormsDict) -> Query:
        """Every parameter of ``query`` parsed, or a BadRequest naming the first bad one."""
        sent: dict[str, str] = {}
        for key in query:  # each name once, in the order first sent
            name = wsgi_text(key)
            if name not in self.names:
                raise BadRequest(self._unknown(name))
            values = query.getall(key)
            if len(values) > 1:
                raise BadRequest(
                    f"'{name}' is given {len(values)} times: give it once"
                    + (" (a list is comma-separated)" if name == "tickers" else "")
                )
            if values[0] != "":  # empty, as a form sends an unset field: absent
                sent[name] = wsgi_text(values[0])
        out: dict[str, Any] = {}
        for p in self.params:
            out[p.name] = p.default if p.name not in sent else _parsed(p, sent[p.name])
            if p.name not in sent:
                if p.required:
                    raise BadRequest(f"'{p.name}' is required: {p.description}")
                continue
            if p.needs and p.needs not in sent:
                raise BadRequest(f"'{p.name}' is only taken with '{p.needs}'")
            for other in p.excludes:
                if other in sent:
                    raise BadRequest(f"'{p.name}' is not taken with '{other}': drop one of them")
        return Query(out)

    def _unknown(self, name: str) -> str:
        takes = ", ".join(self.names) if self.names else "no parameters"
        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{shown(name, 30)} is not a parameter of this route{hint}; it takes {takes}"


NONE = Spec()


def _parsed(p: Param, raw: str) -> Any:
    if raw != raw.strip():
        raise BadRequest(f"'{p.name}' has leading or trailing spaces: {shown(raw, 20)}")
    try:
        return p.parse(raw)
    except ValueError as exc:
        raise BadRequest(f"'{p.name}' {exc}") from None


class Parameters:
    """The Bottle plugin (API 2): parses the query of every request against its
    route's ``params`` (no spec: no parameters) before the route runs, and hands the
    values to the route as ``query`` when it declared a spec."""

    name = "parameters"
    api = 2

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        spec = route.config.get("params")

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            query = (spec or NONE).parse(bottle.request.query)
            if spec is None:
                return callback(*args, **kwargs)
            return callback(*args, query=query, **kwargs)

        return wrapper


def spec_of(route: bottle.Route) -> Spec:
    """The parameters a route of the app declares (none when it declares no spec)."""
    spec = route.config.get("params")
    return spec if isinstance(spec, Spec) else NONE


def shown(raw: str, width: int = 40) -> str:
    """A client's value quoted for a message: bounded, control characters escaped,
    other characters (é, ü, 株) as they are."""
    return repr(raw[:width])


def span_before(end: datetime, span: timedelta) -> datetime:
    """``end - span``, or the earliest instant when that would underflow (to=0001-01-01)."""
    try:
        return end - span
    except OverflowError:
        return EARLIEST


# --- the kinds of parameter: each a parser and the schema that documents it -----------


def ticker(name: str, description: str, *, required: bool = False) -> Param:
    def parse(raw: str) -> str:
        try:
            return parse_ticker(raw)
        except ValueError:
            raise ValueError(f"has a malformed ticker {shown(raw, 20)}") from None

    schema = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9.\\-]{0,9}$"}
    return Param(name, parse, schema, description, required, example="AAPL")


def tickers(name: str, description: str) -> Param:
    def parse(raw: str) -> list[str]:
        try:
            values = parse_tickers(raw)
        except ValueError as exc:  # "malformed tickers: 'x', 'y'"
            raise ValueError(f"has {exc}") from None
        if not values:  # only commas
            raise ValueError(f"is required: {description}")
        if len(values) > MAX_TICKERS:
            raise ValueError(f"may name at most {MAX_TICKERS} tickers")
        return values

    return Param(name, parse, {"type": "string"}, description, True, example="AAPL,MSFT")


def instant(name: str, description: str) -> Param:
    """ISO 8601 date or date-time; no offset means UTC."""

    def parse(raw: str) -> datetime:
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            # An offset's "+" sent as it is arrives as a space: say how to send it.
            hint = " (send a '+' in a URL as %2B)" if " " in raw.strip() else ""
            raise ValueError(
                f"must be an ISO 8601 date or date-time, got {shown(raw)}{hint}"
            ) from None
        try:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59-14:00 is in the year 10000 in UTC
            raise ValueError(
                f"is out of range: {shown(raw)} is not in the years 1-9999 in UTC"
            ) from None

    schema = {"type": "string", "description": "ISO 8601 date or date-time; no offset means UTC"}
    return Param(name, parse, schema, description, example="2026-11-25T14:30:00Z")


def whole(name: str, description: str, *, low: int, high: int, default: int, **kw: Any) -> Param:
    """A whole number in ``[low, high]``, plain ASCII digits only: int() would also take
    "١٢" (Arabic-Indic digits), "1_000" and "+5"."""

    def parse(raw: str) -> int:
        if not _WHOLE.fullmatch(raw):
            raise ValueError(f"must be a whole number from {low} to {high}, got {shown(raw, 20)}")
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    schema = {"type": "integer", "minimum": low, "maximum": high}
    return Param(name, parse, schema, description, default=default, example=str(low), **kw)


def unit(name: str, description: str, **kw: Any) -> Param:
    """A plain decimal from 0 to 1 (``0.25``, ``1``, ``.5``): float() would also take
    "0_1", " 0.1", "1e-1", "nan" and "inf"."""

    def parse(raw: str) -> float:
        if not _DECIMAL.fullmatch(raw):
            raise ValueError(f"must be a decimal number from 0 to 1, got {shown(raw, 20)}")
        value = float(raw)
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1")
        return value

    schema = {"type": "number", "minimum": 0, "maximum": 1}
    return Param(name, parse, schema, description, default=0.0, example="0.5", **kw)


def choice(
    name: str,
    description: str,
    choices: Sequence[str],
    *,
    default: str | None = None,
    fold_case: bool = False,
    **kw: Any,
) -> Param:
    """One of ``choices`` as written (``fold_case``: in any case)."""

    def parse(raw: str) -> str:
        value = raw.lower() if fold_case else raw
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {shown(raw, 20)}")
        return value

    schema = {"type": "string", "enum": list(choices)}
    return Param(name, parse, schema, description, default=default, example=choices[0], **kw)


def cursor(name: str, description: str) -> Param:
    """A token this API issued (a cursor): base64url, at most 200 characters. Whether
    it is genuine is the route's to check; it says so naming the parameter too."""

    def parse(raw: str) -> str:
        if not _OPAQUE.fullmatch(raw):
            raise ValueError("is not a cursor this API issued: use next_cursor as it is")
        return raw

    schema = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"}
    return Param(name, parse, schema, description)
