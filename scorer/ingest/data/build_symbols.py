"""Build ``scorer/ingest/data/symbols.csv`` from the SEC's company tickers list.

    python -m scorer.ingest.data.build_symbols \
        ../shared/data/sec_company_tickers/company_tickers_exchange.csv

Keeps ticker, CIK, exchange and the normalised name ("MICROSOFT CORP" -> "Microsoft");
see SOURCE.md next to the output for provenance. Run at build time, never by the service.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from scorer.ingest.tickers import DATA, TICKER_RE, normalise_company_name


def build(source: Path, out: Path) -> int:
    """Write the directory; return how many rows it has."""
    rows = []
    with source.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ticker = row["ticker"].strip().upper()
            if not TICKER_RE.match(ticker):
                continue
            name = normalise_company_name(row["name"])
            rows.append((ticker, int(row["cik"]), row["exchange"].strip(), name))
    rows.sort()
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ticker", "cik", "exchange", "name"])
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    count = build(Path(sys.argv[1]), DATA / "symbols.csv")
    print(f"wrote {count} companies to {DATA / 'symbols.csv'}")
