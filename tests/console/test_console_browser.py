"""The operator's console in a real browser (headless Chromium): it logs in with the
service token, shows the watchlist, draws each history bucket the API has (gaps where
a bucket is empty), lists a bucket's articles, marks failing feeds, shows a 503 as
such, says when the token is wrong, and logs no console error at desktop and phone
widths. Screenshots are kept (CONSOLE_SCREENSHOTS, else the test's tmp folder)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from scorer.process.boot import Booting
from tests.conftest import TOKEN
from tests.console.conftest import SAVED, WATCHLIST, Site
from tests.helpers.browser import (
    DESKTOP,
    PHONE,
    chromium,
    console_errors,
    screenshots_dir,
    serving,
)
from tests.helpers.outage import outage

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
WAIT = 20.0  # seconds any one thing on the page may take to appear


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium(DESKTOP) as driver:
        yield driver


def wait(driver: Any, check: Any, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: check(d))


def shot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = screenshots_dir(tmp_path) / f"{name}.png"
    driver.save_screenshot(str(path))
    SAVED.append(path)
    print(f"screenshot: {path}")
    return path


def log_in(driver: Any, site: Site, token: str = TOKEN) -> None:
    """Open the console and answer its token prompt."""
    driver.get(site.url + "/console")
    field = wait(driver, lambda d: _shown(d, "token"))
    field.send_keys(token)
    driver.find_element(By.ID, "login-submit").click()


def _shown(driver: Any, element_id: str) -> Any:
    found = driver.find_elements(By.ID, element_id)
    return found[0] if found and found[0].is_displayed() else None


def loaded(driver: Any) -> None:
    """Wait until the watchlist, its sparklines and the chart are drawn."""
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#watch-rows tr[data-ticker]")))
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#watch-rows .sparkline")) == 6)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chart svg.chart"))


def refreshing(driver: Any, check: Any, timeout: float = WAIT) -> Any:
    """Press Refresh until ``check`` holds (health's database probe is cached for 5 s)."""
    button = driver.find_element(By.ID, "refresh-now")

    def again(d: Any) -> Any:
        found = check(d)
        if not found:
            button.click()
        return found

    return WebDriverWait(driver, timeout, poll_frequency=1.0).until(again)


def chart_url(driver: Any) -> str:
    """The API path the chart was drawn from ('' before it is): read in one script, as
    the chart may be redrawn between two WebDriver calls."""
    return str(
        driver.execute_script(
            "const c = document.querySelector('#chart svg.chart');"
            "return c ? c.getAttribute('data-url') : '';"
        )
    )


# What the chart draws, read in one script (a redraw between calls would leave stale
# elements): each point's bucket, each gap's start, and the line's segments.
_DRAWN = """
const c = document.querySelector('#chart svg.chart');
const line = c.querySelector('path.line');
return {
  url: c.getAttribute('data-url'),
  points: [...c.querySelectorAll('circle.point')].map(p =>
    [p.dataset.start, Number(p.dataset.count), Number(p.dataset.mean)]),
  gaps: [...c.querySelectorAll('rect.gap')].map(g => g.dataset.start),
  segments: Number(line.dataset.segments),
  moves: (line.getAttribute('d').match(/M/g) || []).length,
};
"""


def click_bucket(driver: Any, index: int) -> None:
    driver.execute_script(
        "document.querySelector(`#chart circle.point[data-index='${arguments[0]}']`)"
        ".dispatchEvent(new MouseEvent('click'))",
        index,
    )


def test_it_logs_in_and_the_watchlist_matches_the_api(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    log_in(browser, site)
    loaded(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "#watch-rows tr[data-ticker]")
    tickers = site.api("/v1/tickers")["data"]
    assert [r.get_attribute("data-ticker") for r in rows] == [t["ticker"] for t in tickers]
    assert sorted(t["ticker"] for t in tickers) == sorted(WATCHLIST)
    latest = {
        i["ticker"]: i for i in site.api("/v1/scores/latest?tickers=" + ",".join(WATCHLIST))["data"]
    }
    for row in rows:
        item = latest[row.get_attribute("data-ticker")]
        assert float(row.get_attribute("data-score")) == item["score"]
        assert f"{item['score']:.3f}" in row.text
    # The token is in this tab's sessionStorage only: no cookie, not in the URL.
    assert browser.execute_script("return sessionStorage.length") == 1
    assert browser.get_cookies() == []
    assert TOKEN not in browser.current_url
    status = browser.find_element(By.ID, "status")
    assert status.get_attribute("data-ready") == "true"
    for field in ("model", "artifact", "queue", "storage", "role", "flag", "version"):
        assert browser.find_element(By.CSS_SELECTOR, f'#status dd[data-field="{field}"]').text
    shot(browser, tmp_path, "desktop-watchlist")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # docs/console.png, on demo data
        browser.set_window_size(1280, 1500)
        wait(browser, lambda d: d.execute_script("return window.innerHeight") > 1000)
        browser.save_screenshot(str(ROOT / "docs" / "console.png"))


def test_the_charts_points_are_the_history_apis_buckets_with_gaps_where_empty(
    browser: Any, site: Site
) -> None:
    log_in(browser, site)
    loaded(browser)
    for interval in ("15m", "1h", "session"):
        Select(browser.find_element(By.ID, "h-interval")).select_by_value(interval)
        wanted = f"interval={interval}"
        wait(browser, lambda d, wanted=wanted: wanted in chart_url(d))
        drawn = browser.execute_script(_DRAWN)
        buckets = site.api(drawn["url"])["data"]
        filled = [[b["start"], b["count"], b["mean"]] for b in buckets if b["count"] > 0]
        assert drawn["points"] == filled
        empty = [b["start"] for b in buckets if b["count"] == 0]
        assert drawn["gaps"] == empty
        # The line is broken at each run of empty buckets: one segment per run of filled ones.
        runs = len(re.findall(r"1+", "".join("1" if b["count"] else "0" for b in buckets)))
        assert drawn["segments"] == drawn["moves"] == runs
        if interval == "15m":
            assert empty and len(filled) > 5, "the demo data has both kinds of bucket"


def test_a_bucket_lists_as_many_articles_as_its_count(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    log_in(browser, site)
    loaded(browser)
    Select(browser.find_element(By.ID, "h-basis")).select_by_value("published")
    wait(browser, lambda d: "basis=published" in chart_url(d))
    buckets = site.api(chart_url(browser))["data"]
    # A bucket inside a session (its previous bucket ends where it starts), with scores.
    index = next(
        i for i in range(1, len(buckets))
        if buckets[i]["count"] > 1 and buckets[i - 1]["end"] == buckets[i]["start"]
    )  # fmt: skip
    click_bucket(browser, index)
    drill = wait(browser, lambda d: _listed(d))
    assert drill.get_attribute("data-start") == buckets[index]["start"]
    items = browser.find_elements(By.CSS_SELECTOR, "#drill-list li.article")
    assert len(items) == buckets[index]["count"] == int(drill.get_attribute("data-listed"))
    ticker = browser.find_element(By.CSS_SELECTOR, "#chart svg.chart").get_attribute("data-ticker")
    assert all(ticker in item.text and "relevance" in item.text for item in items)
    shot(browser, tmp_path, "desktop-drill-down")
    assert console_errors(browser) == []


def _listed(driver: Any) -> Any:
    drill = driver.find_element(By.ID, "drill")
    return drill if drill.get_attribute("data-listed") not in (None, "") else None


def test_failing_feeds_stand_out_with_their_error(browser: Any, site: Site) -> None:
    log_in(browser, site)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feeds-rows tr.feed")) == 3)
    rows = browser.find_elements(By.CSS_SELECTOR, "#feeds-rows tr.feed")
    states = {r.get_attribute("data-feed"): r.get_attribute("data-state") for r in rows}
    assert sorted(states.values()) == ["failing", "failing", "ok"], states
    assert [r.get_attribute("data-state") for r in rows][:2] == ["failing", "failing"]  # first
    api = {f["name"]: f for f in site.api("/v1/feeds")["data"]}
    for row in rows[:2]:
        feed = api[row.get_attribute("data-feed")]
        assert feed["consecutive_failures"] >= 1 and feed["last_error"]
        assert row.find_element(By.CSS_SELECTOR, ".error").text == feed["last_error"]
        assert "failing" in row.find_element(By.CSS_SELECTOR, ".state").text


def test_a_database_outage_is_shown_as_a_503_with_its_reason(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    log_in(browser, site)
    loaded(browser)
    status = browser.find_element(By.ID, "status")
    with outage(site.database_url, site.engine):
        refreshing(browser, lambda d: status.get_attribute("data-http-status") == "503")
        banner = wait(browser, lambda d: _shown(d, "banner"))
        wait(browser, lambda d: "503" in banner.text and "database is unreachable" in banner.text)
        assert "degraded" in status.text and "database unreachable" in status.text
        assert "stale" in browser.find_element(By.ID, "watchlist").get_attribute("class")
        shot(browser, tmp_path, "desktop-outage")
    refreshing(browser, lambda d: not _shown(d, "banner"))
    assert status.get_attribute("data-ready") == "true"


def test_a_wrong_token_says_so_and_asks_again(browser: Any, site: Site) -> None:
    log_in(browser, site, token="not-the-token")
    error = wait(browser, lambda d: _shown(d, "login-error"))
    assert "Wrong token" in error.text and "401" in error.text
    assert browser.execute_script("return sessionStorage.length") == 0
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-submit").click()
    loaded(browser)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_console_errors_at_desktop_and_phone_widths(
    site: Site, tmp_path: Path, size: tuple[int, int]
) -> None:
    with chromium(size) as driver:
        log_in(driver, site)
        loaded(driver)
        # A second load revalidates: the files and the API answer 304s, the page still draws.
        driver.refresh()
        if _shown(driver, "token") is not None:
            pytest.fail("the token is kept for the tab: no second prompt on reload")
        loaded(driver)
        # A refresh sends the ETags it holds: what has not changed is a 304.
        driver.find_element(By.ID, "refresh-now").click()
        state = driver.find_element(By.ID, "refresh-state")
        wait(driver, lambda d: int(state.get_attribute("data-not-modified") or 0) >= 6)
        shot(driver, tmp_path, f"{'phone' if size == PHONE else 'desktop'}-overview")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= size[0] + 1, "the page itself does not scroll sideways"
        assert console_errors(driver) == []


def test_every_request_the_page_makes_stays_on_its_origin(browser: Any, site: Site) -> None:
    log_in(browser, site)
    loaded(browser)
    names = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert names and {urlsplit(n).netloc for n in names} == {urlsplit(site.url).netloc}


def test_while_the_service_boots_the_page_loads_and_shows_healths_503(
    browser: Any, tmp_path: Path
) -> None:
    """The Booting app (settings not known yet: the vault unreadable) serves the console;
    the page shows health's 503 and its reason, and does not call a 401 a wrong token."""
    booting = Booting(dict, lambda s: None, vault_host="vault.example:8443")  # type: ignore[arg-type, return-value]
    with serving(booting) as url:
        browser.get(url + "/console")
        status = wait(browser, lambda d: d.find_element(By.ID, "status"))
        wait(browser, lambda d: status.get_attribute("data-http-status") == "503")
        assert "warming_up" in status.text
        assert "reading settings from the vault at vault.example:8443" in status.text
        field = wait(browser, lambda d: _shown(d, "token"))
        field.send_keys(TOKEN)
        browser.find_element(By.ID, "login-submit").click()
        error = wait(browser, lambda d: _shown(d, "login-error"))
        assert "still starting" in error.text and "Wrong token" not in error.text
        shot(browser, tmp_path, "desktop-booting")
