"""The docs hold together: every relative link and anchor resolves, and the README
stays a five-minute read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "bench" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", page.read_text())
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _links(page: Path) -> list[str]:
    return [m for m in LINK.findall(FENCE.sub("", page.read_text())) if "://" not in m]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for link in _links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no such heading")
    assert not broken, f"{page.name}: {broken}"


def test_the_checker_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nowhere)\n")
    assert _links(page) == ["#title", "missing.md", "#nowhere"]
    assert _anchors(page) == {"title"}


def test_the_readme_is_at_most_12_kb_and_links_every_docs_page() -> None:
    readme = ROOT / "README.md"
    assert readme.stat().st_size <= 12 * 1024
    linked = {Path(link.partition("#")[0]).name for link in _links(readme)}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def test_the_detailed_settings_table_matches_the_declarations() -> None:
    from scorer.config.settings import SETTINGS

    rows = {}
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (name := re.match(r"`([A-Z][A-Z0-9_]+)`", cells[0])):
            rows[name.group(1)] = cells[1]
    assert rows == {s.name: s.shown for s in SETTINGS}


def test_every_health_field_the_docs_name_is_one_health_has() -> None:
    from scorer.api.openapi import document

    fields = set(document()["components"]["schemas"]["Health"]["properties"])
    named = {
        (page.name, name)
        for page in PAGES
        for name in re.findall(r"[Hh]ealth's `(\w+)`", FENCE.sub("", page.read_text()))
    }
    assert named, "the pattern finds what the docs say"
    assert {pair for pair in named if pair[1] not in fields} == set()


def test_the_readmes_item_has_every_field_an_article_item_has() -> None:
    """The README's example is a real `/v1/articles` item: it shows every field the
    contract (the OpenAPI document) gives an article and a ticker's score."""
    import json

    from scorer.api.openapi import document

    schemas = document()["components"]["schemas"]
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## What a score says") :]
    start = block.index("```json") + len("```json")
    item = json.loads(block[start : block.index("\n```", start)])
    assert set(item) == set(schemas["Article"]["properties"])
    assert set(item["tickers"][0]) == set(schemas["TickerScore"]["properties"])
    highlight = item["tickers"][0]["highlights"][0]
    assert set(highlight) == set(schemas["Highlight"]["properties"])
