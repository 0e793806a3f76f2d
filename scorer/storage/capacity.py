"""How much of the database plan is used, and whether an error means it is full.

Two limits, as the runbook's two plans have: a storage budget (Postgres
Essential-0: 1 GB) and a row cap (Postgres Mini: 10,000 rows in all tables).
Postgres counts ``pg_database_size`` — what the plan measures; space freed by a
DELETE is reused by later inserts but not given back, so the size does not drop.
SQLite counts the file's used pages (freed pages are reused the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from scorer.storage.tables import Base

# Postgres SQLSTATEs of a plan that refuses writes: disk full, and the privilege
# Heroku revokes (INSERT) from a database over its row limit.
CAPACITY_SQLSTATES = {"53100": "disk full", "42501": "insufficient privilege"}


@dataclass
class Usage:
    """The database against its limits; percentages are of each limit set."""

    bytes: int
    budget: int | None
    rows: int | None = None  # counted only when asked (a row limit, db-stats)
    row_limit: int | None = None
    tables: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # rows, bytes

    @property
    def bytes_percent(self) -> float | None:
        return None if not self.budget else 100 * self.bytes / self.budget

    @property
    def rows_percent(self) -> float | None:
        return None if not self.row_limit or self.rows is None else 100 * self.rows / self.row_limit

    @property
    def percent(self) -> float:
        """The higher of the two (0 when no limit is set)."""
        return max(p for p in (self.bytes_percent, self.rows_percent, 0.0) if p is not None)

    def as_json(self) -> dict[str, object]:
        def pct(p: float | None) -> float | None:
            return None if p is None else round(p, 1)

        return {
            "bytes": self.bytes,
            "budget": self.budget,
            "bytes_percent": pct(self.bytes_percent),
            "rows": self.rows,
            "row_limit": self.row_limit,
            "rows_percent": pct(self.rows_percent),
        }


def database_bytes(session: Session) -> int:
    """What the plan counts: Postgres's database size, SQLite's used pages."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    page_size = int(session.scalar(text("PRAGMA page_size")) or 0)
    pages = int(session.scalar(text("PRAGMA page_count")) or 0)
    free = int(session.scalar(text("PRAGMA freelist_count")) or 0)
    return page_size * (pages - free)


def table_rows(session: Session) -> dict[str, int]:
    """Exact rows per table (every table counts against a row cap)."""
    return {
        name: int(session.scalar(select(func.count()).select_from(table)) or 0)
        for name, table in sorted(Base.metadata.tables.items())
    }


def table_bytes(session: Session) -> dict[str, int | None]:
    """Bytes per table with its indexes, where the database can tell."""
    names = sorted(Base.metadata.tables)
    if session.get_bind().dialect.name == "postgresql":
        return {
            n: int(session.scalar(text("SELECT pg_total_relation_size(:t)"), {"t": n}) or 0)
            for n in names
        }
    try:  # SQLite's dbstat table is compiled in most builds, not all
        found = session.execute(text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")).all()
    except DBAPIError:
        return dict.fromkeys(names)
    sizes: dict[str, int] = {str(name): int(size) for name, size in found}
    # A table's indexes carry its name (scorer.storage.tables.NAMING; SQLite's autoindexes).
    return {
        name: sum(
            size
            for obj, size in sizes.items()
            if obj == name
            or obj.startswith((f"ix_{name}_", f"uq_{name}_", f"sqlite_autoindex_{name}_"))
        )
        for name in names
    }


def measure(
    session: Session, budget: int | None, row_limit: int | None, *, detailed: bool = False
) -> Usage:
    """The usage now. Rows are counted when a row limit is set or ``detailed``."""
    usage = Usage(database_bytes(session), budget or None, row_limit=row_limit)
    if row_limit or detailed:
        rows = table_rows(session)
        usage.rows = sum(rows.values())
        if detailed:
            sizes = table_bytes(session)
            usage.tables = {name: (count, sizes.get(name)) for name, count in rows.items()}
    return usage


def capacity_error(exc: BaseException) -> str | None:
    """Why the database refused a write for capacity (full disk, a revoked INSERT
    privilege, SQLite's "database or disk is full"), or None for any other error."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "diag", None), "sqlstate", None
    )
    if state in CAPACITY_SQLSTATES:
        return f"{CAPACITY_SQLSTATES[state]} ({state})"
    if "database or disk is full" in str(orig):
        return "database or disk is full"
    return None
