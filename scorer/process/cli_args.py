"""The command line's argument types and its parser: every bad value is refused with one
line in words a user knows ("must be a whole number from 1 to 1000, got 0"), never
argparse's ``invalid _instant value`` nor its usage block, and exits 2. Checks that
need several arguments or the clock (``--until`` before ``--since``, a date in the
future) raise ``UsageError``, which ``scorer.process.cli`` turns into the same line;
they run before any setting is read or anything is written.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import NoReturn

# Instants the commands take: no article, event or session lies outside these years.
FIRST_YEAR, LAST_YEAR = 1970, 9999


def _shown(raw: str) -> str:
    """The value as typed, quoted, cut short when long."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


class UsageError(ValueError):
    """Arguments that are each well-formed but do not work together or now."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (``error: …``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""

    def parse(raw: str) -> int:
        if not re.fullmatch(r"-?[0-9]{1,18}", raw):  # int() would take " 5" and "1_0"
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low:,} to {high:,}, got {_shown(raw)}"
            )
        value = int(raw)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low:,} to {high:,}, got {value:,}"
            )
        return value

    parse.__name__ = "whole number"
    return parse


def instant(raw: str) -> datetime:
    """An ISO date (``2026-11-01``: midnight UTC) or date-time (``2026-11-01T14:30``,
    UTC unless it says ``+01:00`` or ``Z``), as an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO date or date-time such as 2026-11-01 or 2026-11-01T14:30:00Z, "
            f"got {_shown(raw)}"
        ) from None
    utc: datetime | None
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        utc = None
    if utc is None or not FIRST_YEAR <= utc.year <= LAST_YEAR:
        raise argparse.ArgumentTypeError(
            f"must be from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31 UTC, got {_shown(raw)}"
        )
    return utc


def day_in(first: date, last: date) -> Callable[[str], date]:
    """An ISO date from ``first`` to ``last``."""

    def parse(raw: str) -> date:
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an ISO date such as 2026-11-27, got {_shown(raw)}"
            ) from None
        if not first <= value <= last:
            raise argparse.ArgumentTypeError(
                f"must be from {first} to {last} (the market calendar's range), got {value}"
            )
        return value

    parse.__name__ = "date"
    return parse


def shown(value: date) -> str:
    """A date, or an instant in ISO form with ``Z`` for UTC."""
    return value.isoformat().replace("+00:00", "Z")


def not_after(name: str, value: datetime | None, now: datetime, why: str) -> None:
    """UsageError when ``value`` is later than ``now``."""
    if value is not None and value > now:
        raise UsageError(f"{name} {shown(value)} is in the future: {why}")


def in_order(first: tuple[str, date | None], then: tuple[str, date | None]) -> None:
    """UsageError when the later bound is before the earlier one."""
    (a_name, a), (b_name, b) = first, then
    if a is not None and b is not None and b < a:
        raise UsageError(
            f"{b_name} {shown(b)} is before {a_name} {shown(a)}: nothing lies between them"
        )
