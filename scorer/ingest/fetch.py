"""Fetching feeds over HTTP: conditional GETs, size and time bounds, rate rules."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scorer.ingest.kinds import KINDS, FeedKind
from scorer.ingest.parse import FeedError
from scorer.ingest.sources import FeedSpec, redact_url

_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.1"
# Seconds; honouring a "Retry-After: 3600" would stall the whole polling job.
_MAX_RETRY_AFTER = 10.0


@dataclass(frozen=True)
class FetchResult:
    """What one conditional GET brought back."""

    status: int  # 200 or 304
    content: bytes  # b"" on 304
    etag: str | None
    last_modified: str | None
    content_type: str | None


class _CappedRetry(Retry):
    """Honours Retry-After, up to _MAX_RETRY_AFTER seconds."""

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, _MAX_RETRY_AFTER)


def make_http_session(user_agent: str) -> requests.Session:
    """Session retrying twice, backing off, on connection errors and 429/502/503/504;
    following at most 5 redirects; with a pool large enough for the fetch threads."""
    retry = _CappedRetry(
        total=2,
        read=False,  # re-raise read timeouts: retrying a slow server triples the wait
        status_forcelist=(429, 502, 503, 504),
        backoff_factor=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,  # return the last response: error says "HTTP 503 from"
    )
    http = requests.Session()
    http.max_redirects = 5  # a redirect loop fails fast ("too many redirects")
    http.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    http.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    http.headers.update({"User-Agent": user_agent, "Accept": _ACCEPT})
    return http


def fetch_feed(
    http: requests.Session,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    timeout: float = 10.0,
    max_bytes: int = 5_000_000,
    deadline: float | None = None,
    headers: dict[str, str] | None = None,
) -> FetchResult:
    """Conditional GET refusing bodies over max_bytes. FeedError on failure.

    ``timeout`` bounds the connection and each read; ``deadline`` (seconds) the whole
    body, so a server trickling a byte every few seconds is cut off.
    """
    where = redact_url(url)
    started = time.monotonic()
    ask = dict(headers or {})
    if etag:
        ask["If-None-Match"] = etag
    if last_modified:
        ask["If-Modified-Since"] = last_modified
    limits = (timeout, timeout)  # connect, and each read (not the whole body)
    too_large = FeedError(f"body over {max_bytes} bytes from {where}")
    # Our own messages, raised "from None": requests' messages embed the whole URL.
    try:
        with http.get(url, headers=ask, timeout=limits, stream=True) as resp:
            got = resp.headers
            if resp.status_code == 304:  # the server may refresh the validators
                etag = got.get("ETag", etag)
                last_modified = got.get("Last-Modified", last_modified)
                return FetchResult(304, b"", etag, last_modified, None)
            if resp.status_code != 200:
                raise FeedError(f"HTTP {resp.status_code} from {where}")
            declared = got.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_large
            body = bytearray()
            # read1 returns what has arrived (a plain read waits for a full chunk, which a
            # trickling server never sends). Counted after decoding: a gzip bomb is refused.
            while chunk := resp.raw.read1(65536, decode_content=True):
                body += chunk
                if len(body) > max_bytes:
                    raise too_large
                if deadline is not None and time.monotonic() - started > deadline:
                    raise FeedError(f"no complete answer within {deadline:g} s from {where}")
            validators = got.get("ETag"), got.get("Last-Modified")
            return FetchResult(200, bytes(body), *validators, got.get("Content-Type"))
    except requests.TooManyRedirects:
        raise FeedError(f"too many redirects from {where}") from None
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise FeedError(f"timed out fetching {where}") from None
    except (requests.ConnectionError, urllib3.exceptions.ProtocolError):
        raise FeedError(f"connection to {where} failed") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise FeedError(f"request to {where} failed: {type(exc).__name__}") from None


@dataclass(frozen=True)
class FetchPolicy:
    """How a cycle fetches: bounds on time, size and concurrency."""

    timeout: float = 10.0  # connect, and each read
    deadline: float = 30.0  # one feed's whole fetch
    max_bytes: int = 5_000_000
    workers: int = 4  # feeds fetched at once
    per_host: int = 2  # ... of which from one host
    # Kind name -> the User-Agent naming a contact sent to its feeds (EDGAR's); see
    # FeedKind.contact_setting and Settings.contact.
    user_agents: Mapping[str, str] = field(default_factory=dict)


class RateLimit:
    """At most ``per_second`` starts per second across threads."""

    def __init__(self, per_second: float) -> None:
        self._gap = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self._gap
        if at > now:
            time.sleep(at - now)


class RateLimits:
    """One RateLimit per kind that has a ``rate_per_second`` (EDGAR: 10/s). A limit
    holds only if every request to those servers shares it: whoever runs the fetches
    keeps one for all its cycles (the service, per process)."""

    def __init__(self, kinds: Mapping[str, FeedKind] = KINDS) -> None:
        self._limits = {
            name: RateLimit(kind.rate_per_second)
            for name, kind in kinds.items()
            if kind.rate_per_second
        }

    def wait(self, kind: FeedKind) -> None:
        """Wait for ``kind``'s next slot (at once for a kind without a limit)."""
        limit = self._limits.get(kind.name)
        if limit is not None:
            limit.wait()


@dataclass(frozen=True)
class FetchJob:
    """One feed to fetch, with the validators of its last answer."""

    spec: FeedSpec
    etag: str | None = None
    last_modified: str | None = None


Outcome = FetchResult | FeedError


def fetch_all(
    http: requests.Session,
    jobs: Sequence[FetchJob],
    policy: FetchPolicy,
    limits: RateLimits | None = None,
) -> Iterator[tuple[FetchJob, Outcome]]:
    """Fetch every job, ``policy.workers`` at a time and at most ``policy.per_host`` per
    host, each kind's requests within its rate (``limits``; without, fresh ones for
    this call); yield each outcome on the calling thread as it arrives (so the caller
    writes to the database there: sessions are not thread-safe).

    A fetch still running ``deadline + timeout`` seconds after it started (a server
    trickling its headers) is given up: it is reported as an error and not waited for,
    so one feed never holds the cycle. Its daemon thread ends with the connection.
    """
    limits = limits or RateLimits()
    results: queue.Queue[tuple[int, Outcome]] = queue.Queue()
    waiting = deque(range(len(jobs)))
    running: dict[int, float] = {}  # job index -> when it started
    hosts: Counter[str] = Counter()
    give_up = policy.deadline + policy.timeout + 1.0
    while waiting or running:
        for index in list(waiting):
            if len(running) >= policy.workers:
                break
            if hosts[jobs[index].spec.host] >= policy.per_host:
                continue
            waiting.remove(index)
            hosts[jobs[index].spec.host] += 1
            running[index] = time.monotonic()
            threading.Thread(
                target=_fetch_one,
                args=(http, jobs[index], policy, limits, index, results),
                name=f"fetch-{index}",
                daemon=True,
            ).start()
        soonest = min(running.values()) + give_up
        try:
            index, outcome = results.get(timeout=max(0.0, soonest - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for index, started in list(running.items()):
                if now - started >= give_up:
                    del running[index]
                    hosts[jobs[index].spec.host] -= 1
                    where = redact_url(jobs[index].spec.url)
                    late = FeedError(f"no answer within {policy.deadline:g} s from {where}")
                    yield jobs[index], late
            continue
        if running.pop(index, None) is None:
            continue  # given up on already; its answer came too late
        hosts[jobs[index].spec.host] -= 1
        yield jobs[index], outcome


def _fetch_one(
    http: requests.Session,
    job: FetchJob,
    policy: FetchPolicy,
    limits: RateLimits,
    index: int,
    results: queue.Queue[tuple[int, Outcome]],
) -> None:
    kind = job.spec.rules
    limits.wait(kind)
    agent = policy.user_agents.get(kind.name)
    headers = {"User-Agent": agent} if agent else {}
    outcome: Outcome
    try:
        outcome = fetch_feed(
            http,
            job.spec.url,
            etag=job.etag,
            last_modified=job.last_modified,
            timeout=policy.timeout,
            max_bytes=policy.max_bytes,
            deadline=policy.deadline,
            headers=headers,
        )
    except FeedError as exc:
        outcome = exc
    except Exception as exc:  # noqa: BLE001 - a bug in one fetch must not hang the cycle
        outcome = FeedError(f"fetch failed: {type(exc).__name__}")
    results.put((index, outcome))
