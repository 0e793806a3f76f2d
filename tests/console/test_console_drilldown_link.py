"""The drill-down's other path: when history's buckets carry an ``articles`` link
(issue 20's contract, built on another branch), the page follows it, pages through
``next_cursor``, and shows a 410's message. The link route is stubbed here by a WSGI
layer over the real app: each bucket gets its link, and the route answers the
contract's body from ``/v1/articles``, two articles a page."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.conftest import Site
from tests.console.test_console_browser import (
    chart_url,
    click_bucket,
    loaded,
    log_in,
    shot,
    wait,
)
from tests.helpers.browser import DESKTOP, chromium, console_errors, serving

pytestmark = pytest.mark.slow
LINK = "/v1/scores/history/articles"


def _call(app: Any, path: str, query: str, environ: dict[str, Any]) -> tuple[str, bytes]:
    inner = {**environ, "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": BytesIO()}
    for name in ("HTTP_IF_NONE_MATCH", "HTTP_ACCEPT_ENCODING"):  # a whole, plain body
        inner.pop(name, None)
    status: list[str] = []
    body = b"".join(app(inner, lambda s, h, *_: status.append(s)))
    return status[0], body


class WithLinks:
    """The app as it will be once issue 20 lands (for the paths the page uses)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.gone: str | None = None  # a bucket whose detail is "pruned": a 410
        self.followed: list[str] = []

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path, query = environ["PATH_INFO"], environ.get("QUERY_STRING", "")
        asked = {k: v[0] for k, v in parse_qs(query).items()}
        if path == "/v1/scores/history" and "interval" in asked:
            status, body = _call(self.app, path, query, environ)
            data = json.loads(body)
            for bucket in data.get("data", []):
                q = {k: asked[k] for k in ("ticker", "interval", "basis") if k in asked}
                q["bucket"] = bucket["start"]
                bucket["articles"] = f"{LINK}?{urlencode(q)}" if bucket["count"] else None
            return self._json(start, status, data)
        if path == LINK:
            self.followed.append(query)
            if asked["bucket"] == self.gone:
                body = {"error": "gone", "message": "pruned by retention (DETAIL_RETENTION_DAYS)"}
                return self._json(start, "410 Gone", body)
            start_at = datetime.fromisoformat(asked["bucket"])
            end = start_at + timedelta(minutes=15) - timedelta(microseconds=1)
            q = {"ticker": asked["ticker"], "from": asked["bucket"], "to": end.isoformat()}
            q |= {"limit": "2", **({"cursor": asked["cursor"]} if "cursor" in asked else {})}
            status, body = _call(self.app, "/v1/articles", urlencode(q), environ)
            page = json.loads(body)
            articles = [
                {**{k: a[k] for k in ("id", "headline", "url", "source", "published_at")},
                 "score": next(t for t in a["tickers"] if t["ticker"] == asked["ticker"])}
                for a in page["data"]
            ]  # fmt: skip
            out = {"ticker": asked["ticker"], "count": len(articles), "articles": articles}
            return self._json(start, status, {**out, "next_cursor": page["next_cursor"]})
        return self.app(environ, start)  # type: ignore[no-any-return]

    @staticmethod
    def _json(start: Callable[..., Any], status: str, body: Any) -> list[bytes]:
        data = json.dumps(body).encode()
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def test_the_page_follows_a_buckets_link_through_its_pages_and_shows_a_410(
    site: Site, tmp_path: Path
) -> None:
    from scorer.api import create_app  # the same app the site serves, wrapped
    from scorer.scoring.model import ModelLoader
    from scorer.scoring.model.transformers_runtime import TransformersClassifier

    classifier = TransformersClassifier(site.settings.finbert_model, None, threads=1)
    app = create_app(site.settings, engine=site.engine, loader=ModelLoader.loaded(classifier))
    wrapped = WithLinks(app)
    with serving(wrapped) as url, chromium(DESKTOP) as browser:
        linked = Site(url, site.settings, site.engine, site.database_url)
        log_in(browser, linked)
        loaded(browser)
        Select(browser.find_element(By.ID, "h-interval")).select_by_value("15m")
        Select(browser.find_element(By.ID, "h-basis")).select_by_value("published")
        wait(browser, lambda d: "basis=published" in chart_url(d))
        buckets = linked.api(chart_url(browser))["data"]
        assert all((b["articles"] is None) == (b["count"] == 0) for b in buckets)
        index = next(
            i for i in range(1, len(buckets))
            if buckets[i]["count"] > 2 and buckets[i - 1]["end"] == buckets[i]["start"]
        )  # fmt: skip
        click_bucket(browser, index)
        drill = browser.find_element(By.ID, "drill")
        wait(browser, lambda d: drill.get_attribute("data-listed") not in (None, ""))
        items = browser.find_elements(By.CSS_SELECTOR, "#drill-list li.article")
        assert len(items) == buckets[index]["count"]
        assert sum("cursor=" in q for q in wrapped.followed) >= 1, "it paged"
        assert all("relevance" in item.text for item in items)
        shot(browser, tmp_path, "desktop-drill-down-link")
        # A bucket whose detail retention pruned: the 410's message is shown.
        wrapped.gone = buckets[index]["start"]
        click_bucket(browser, index)
        note = browser.find_element(By.ID, "drill-note")
        wait(browser, lambda d: "pruned by retention" in note.text)
        assert browser.find_elements(By.CSS_SELECTOR, "#drill-list li.article") == []
        errors = [e for e in console_errors(browser) if "410" not in e["message"]]
        assert errors == []
