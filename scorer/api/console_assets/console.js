// Reasonator's operator console: reads the JSON API of the app that served it, with
// the service token the operator types once (kept in sessionStorage, this tab only).
// No build step, no dependency: the DOM is built with textContent (never innerHTML),
// the charts are SVG elements. docs/console.md says what each part shows.
"use strict";

(() => {
  const TOKEN_KEY = "reasonator.console.token";
  const SVG = "http://www.w3.org/2000/svg";
  const OPEN_EVERY = 30_000; // ms between refreshes while the NYSE is open
  const CLOSED_EVERY = 300_000; // and while it is closed
  const SPARK_EVERY = 300_000; // the watchlist's sparklines: 15m buckets change slowly
  const MAX_PAGES = 10; // a drill-down lists at most this many pages of articles
  const SPANS = {
    // The ranges offered per interval, within the API's longest (history.MAX_SPAN).
    "15m": [["1d", 1], ["5d", 5], ["2w", 14], ["31d", 31]],
    "1h": [["5d", 5], ["31d", 31], ["90d", 90], ["1y", 366]],
    session: [["90d", 90], ["1y", 365], ["5y", 1826], ["10y", 3650]],
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    kept: new Map(), // url -> {etag, body}: sent back as If-None-Match
    requests: 0,
    notModified: 0,
    health: null,
    tickers: [],
    chart: null, // {ticker, interval, basis, data}
    sparksAt: 0,
    historySeq: 0,
    timer: null,
    busy: false, // a refresh is running: another one asked meanwhile runs after it
    again: null,
  };

  // --- small helpers ------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    return node;
  }

  const nyTime = new Intl.DateTimeFormat("en-US", {
    timeZone: "America/New_York",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  const nyDate = new Intl.DateTimeFormat("en-US", {
    timeZone: "America/New_York",
    month: "short",
    day: "numeric",
  });

  function when(iso) {
    return iso ? `${nyTime.format(new Date(iso))} ET` : "never";
  }

  function number(value, digits = 3) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function bytes(value) {
    if (value === null || value === undefined) return "–";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let n = Number(value);
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i += 1;
    }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  function isoSeconds(ms) {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function scoreClass(score) {
    if (score === null || score === undefined) return "none";
    return score > 0.15 ? "positive" : score < -0.15 ? "negative" : "neutral";
  }

  // Whether the NYSE regular session is on now: weekdays 09:30-16:00 New York time.
  // Holidays and early closes are not known here (the service's calendar is): on those
  // days the page refreshes as if open, which only costs 304s.
  function marketOpen(now = new Date()) {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-US", {
        timeZone: "America/New_York",
        weekday: "short",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      })
        .formatToParts(now)
        .map((p) => [p.type, p.value]),
    );
    const minutes = Number(parts.hour) * 60 + Number(parts.minute);
    return !["Sat", "Sun"].includes(parts.weekday) && minutes >= 570 && minutes < 960;
  }

  // --- the API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  // GET a path of this origin. Sends the token (unless public) and the ETag of the last
  // 200 for the same URL; a 304 answers with the kept body. Throws ApiError otherwise,
  // with the error body's message. {status, body} for health, whatever its status.
  async function get(path, { auth = true, anyStatus = false } = {}) {
    const headers = { Accept: "application/json" };
    if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
    const kept = state.kept.get(path);
    if (kept) headers["If-None-Match"] = kept.etag;
    state.requests += 1;
    let response;
    try {
      // no-store: the page does its own revalidation, so it sees the 304s.
      response = await fetch(path, { headers, cache: "no-store", credentials: "same-origin" });
    } catch (error) {
      throw new ApiError(0, `the service did not answer (${error.message})`, null);
    }
    if (response.status === 304 && kept) {
      state.notModified += 1;
      return anyStatus ? { status: 200, body: kept.body } : kept.body;
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.ok) {
      const etag = response.headers.get("ETag");
      if (etag) state.kept.set(path, { etag, body });
    }
    if (anyStatus) return { status: response.status, body };
    if (!response.ok) {
      const message = (body && body.message) || `HTTP ${response.status}`;
      throw new ApiError(response.status, message, body);
    }
    return body;
  }

  function query(params) {
    return new URLSearchParams(
      Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""),
    ).toString();
  }

  // --- banner, login ------------------------------------------------------------------

  function banner(kind, text) {
    const node = $("banner");
    if (!text) {
      node.hidden = true;
      node.textContent = "";
      node.removeAttribute("data-kind");
      return;
    }
    node.hidden = false;
    node.dataset.kind = kind;
    node.textContent = text;
  }

  // The API refused or could not answer: say why, once, in the banner.
  function failed(error, what) {
    if (error.status === 401) {
      askToken(tokenRefusedText());
      return;
    }
    if (error.status === 503) {
      banner("unavailable", `The API answers 503 (unavailable) for ${what}: ${error.message}`);
    } else if (error.status === 0) {
      banner("unavailable", `No answer for ${what}: ${error.message}`);
    } else {
      banner("error", `${what}: HTTP ${error.status}: ${error.message}`);
    }
  }

  function tokenRefusedText() {
    const health = state.health;
    if (health && health.status === "warming_up") {
      // The booting app answers 401 to everything until it knows the service's token.
      return (
        "The service is still starting (health 503: " +
        `${health.reason || "warming up"}); it cannot check a token yet. ` +
        "Enter it again once it is ready."
      );
    }
    return "Wrong token: the service answered 401. Enter the service token again.";
  }

  function askToken(message) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    state.kept.clear();
    const error = $("login-error");
    error.hidden = !message;
    error.textContent = message || "";
    const dialog = $("login");
    if (!dialog.open) dialog.showModal();
    $("token").value = "";
    $("token").focus();
  }

  function signIn(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login").close();
    refresh({ all: true });
  }

  // --- Status (public /v1/health) -------------------------------------------------------

  function row(list, label, value, field, cls) {
    list.append(el("dt", { text: label }), el("dd", { "data-field": field, class: cls }, value));
  }

  function fidelity(artifact) {
    if (artifact === undefined) return "–";
    if (artifact === null) return "no artifact: serving with transformers";
    const parts = [`gate ${artifact.gate}`];
    if (artifact.agreement !== undefined) parts.push(`labels ${number(artifact.agreement * 100, 2)} %`);
    if (artifact.mean_abs_diff !== undefined) parts.push(`mean |Δ| ${number(artifact.mean_abs_diff, 4)}`);
    if (artifact.sentences !== undefined) parts.push(`${artifact.sentences} sentences`);
    if (artifact.fp32_fraction !== undefined) parts.push(`fp32 ${number(artifact.fp32_fraction * 100, 1)} %`);
    return parts.join(" · ");
  }

  function storage(value) {
    if (value === undefined) return "–";
    if (value === null) return "not measured yet";
    let text = `${bytes(value.bytes)} of ${value.budget ? bytes(value.budget) : "no budget"}`;
    if (value.bytes_percent !== null) text += ` (${value.bytes_percent} %)`;
    if (value.rows !== null && value.rows !== undefined) {
      text += `; ${value.rows} rows`;
      if (value.row_limit) text += ` of ${value.row_limit} (${value.rows_percent} %)`;
    }
    return text;
  }

  async function loadStatus() {
    let answer;
    try {
      answer = await get("/v1/health", { auth: false, anyStatus: true });
    } catch (error) {
      state.health = null;
      renderStatus(null, 0, error.message);
      return;
    }
    state.health = answer.body;
    renderStatus(answer.body, answer.status, null);
  }

  function renderStatus(health, status, failure) {
    const list = $("status-list");
    list.replaceChildren();
    const ready = status === 200 && health && health.status === "ok";
    const section = $("status");
    section.dataset.ready = String(Boolean(ready));
    section.dataset.httpStatus = String(status);
    if (!health) {
      row(list, "Readiness", `no answer: ${failure || `HTTP ${status}`}`, "status", "bad");
      return;
    }
    const readiness = ready ? "ready (200)" : `not ready (${status}: ${health.status})`;
    row(list, "Readiness", readiness, "status", ready ? "good" : "bad");
    if (health.reason) row(list, "Reason", health.reason, "reason", "bad");
    if (health.model_loaded) {
      row(list, "Model", `${health.model_id} @ ${health.model_sha}`, "model");
      row(list, "Artifact fidelity", fidelity(health.artifact), "artifact");
      const depth = health.queue_depth || {};
      row(list, "Queue", `${depth.pending ?? "–"} pending · ${depth.rescore_jobs ?? "–"} re-score jobs`, "queue");
      row(list, "Storage", storage(health.storage), "storage");
      row(list, "Database", health.database, "database", health.database === "ok" ? "good" : "bad");
      row(list, "Scheduler role", health.role, "role");
      row(list, "FLAG_REASONATOR", health.flag_reasonator ? "on" : "off", "flag");
      row(list, "Environment", health.env, "env");
      row(list, "Version", health.version, "version");
      row(list, "Uptime", `${Math.round(health.uptime_seconds / 60)} min`, "uptime");
      for (const warning of health.warnings || []) row(list, "Warning", warning, "warning", "warn");
    } else {
      row(list, "Model", "not loaded yet", "model", "bad");
    }
  }

  // --- Feeds ------------------------------------------------------------------------------

  function feedState(feed, now) {
    const backedOff = feed.next_attempt_at && Date.parse(feed.next_attempt_at) > now;
    if (feed.consecutive_failures > 0) {
      const until = backedOff ? `, backed off until ${when(feed.next_attempt_at)}` : "";
      return ["failing", `failing (${feed.consecutive_failures} in a row${until})`];
    }
    if (backedOff) return ["backed-off", `backed off until ${when(feed.next_attempt_at)}`];
    if (!feed.last_success_at) return ["unknown", "not fetched yet"];
    return ["ok", "ok"];
  }

  async function loadFeeds() {
    const body = await get("/v1/feeds");
    const now = Date.now();
    const order = { failing: 0, "backed-off": 1, unknown: 2, ok: 3 };
    const feeds = body.data.map((feed) => ({ feed, state: feedState(feed, now) }));
    feeds.sort((a, b) => order[a.state[0]] - order[b.state[0]] || a.feed.name.localeCompare(b.feed.name));
    const rows = $("feeds-rows");
    rows.replaceChildren();
    for (const { feed, state: [kind, text] } of feeds) {
      rows.append(
        el(
          "tr",
          { class: `feed ${kind}`, "data-feed": feed.name, "data-state": kind },
          el("td", {}, el("span", { class: "name", text: feed.name }), el("br"), el("small", { text: feed.url })),
          el("td", { text: feed.kind + (feed.ticker ? ` · ${feed.ticker}` : "") }),
          el("td", { class: "state", text }),
          el("td", { text: when(feed.last_success_at) }),
          el("td", { class: "num", text: feed.items_stored_24h }),
          el("td", { class: "error", text: feed.last_error || "" }),
        ),
      );
    }
    const failing = feeds.filter((f) => f.state[0] === "failing").length;
    $("feeds-summary").textContent = `${feeds.length} feeds, ${failing} failing`;
    if (!feeds.length) rows.append(el("tr", {}, el("td", { colspan: 6, text: "No feeds configured (FEEDS=none)." })));
  }

  // --- Watchlist ---------------------------------------------------------------------------

  async function loadWatchlist() {
    const tickers = await get("/v1/tickers");
    state.tickers = tickers.data.map((t) => t.ticker);
    const latest = new Map();
    for (let i = 0; i < state.tickers.length; i += 50) {
      const chunk = state.tickers.slice(i, i + 50).join(",");
      const body = await get(`/v1/scores/latest?${query({ tickers: chunk })}`);
      for (const item of body.data) latest.set(item.ticker, item);
    }
    const rows = $("watch-rows");
    const sparks = new Map([...rows.querySelectorAll("tr[data-ticker]")].map((r) => [r.dataset.ticker, r.querySelector(".spark")]));
    rows.replaceChildren();
    for (const coverage of tickers.data) {
      const item = latest.get(coverage.ticker);
      const window = item ? item.window : null;
      const spark = sparks.get(coverage.ticker) || el("td", { class: "spark" });
      const pick = el("button", { type: "button", class: "ticker", text: coverage.ticker, "data-ticker": coverage.ticker });
      pick.addEventListener("click", () => selectTicker(coverage.ticker));
      rows.append(
        el(
          "tr",
          { "data-ticker": coverage.ticker, "data-score": item ? item.score : "" },
          el("td", {}, pick),
          el("td", { class: `num score ${item ? item.label : "none"}`, text: item ? `${number(item.score)} ${item.label}` : "no score" }),
          el("td", { text: item ? when(item.article.published_at) : "–" }),
          el("td", { class: `num ${scoreClass(window && window.mean)}`, text: window ? number(window.mean) : "–" }),
          el("td", { class: "num", text: window ? window.count : coverage.articles_24h }),
          el("td", { class: "labels", text: window ? `+${window.labels.positive} −${window.labels.negative} =${window.labels.neutral}` : "–" }),
          spark,
        ),
      );
    }
    $("watch-summary").textContent = `${tickers.data.length} tickers, as of ${when(tickers.as_of)}`;
    fillTickerChoice();
  }

  // Each ticker's 15m buckets over the last 24 hours that had a session (the last
  // session, on a weekend or before the open). The range ends on a 15-minute boundary,
  // so the URL (and its ETag) stays the same for 15 minutes: refreshes are 304s.
  async function loadSparks() {
    const end = Math.ceil(Date.now() / 900_000) * 900_000;
    const from = isoSeconds(end - 4 * 86_400_000);
    for (const ticker of state.tickers) {
      const url = `/v1/scores/history?${query({ ticker, interval: "15m", from, to: isoSeconds(end) })}`;
      const body = await get(url);
      const buckets = body.data.filter((b) => Date.parse(b.start) < Date.now());
      const last = buckets.length ? Date.parse(buckets[buckets.length - 1].end) : 0;
      const day = buckets.filter((b) => Date.parse(b.start) >= last - 86_400_000);
      const cell = document.querySelector(`#watch-rows tr[data-ticker="${CSS.escape(ticker)}"] .spark`);
      if (cell) cell.replaceChildren(sparkline(day));
    }
    state.sparksAt = Date.now();
  }

  function sparkline(buckets) {
    const width = 120;
    const height = 28;
    const box = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "sparkline", role: "img" });
    const title = svg("title");
    const filled = buckets.filter((b) => b.count > 0);
    title.textContent = filled.length
      ? `${filled.length} of ${buckets.length} 15m buckets with scores, ${when(buckets[0].start)} to ${when(buckets[buckets.length - 1].end)}`
      : "no scores in the last 24 hours of trading";
    box.append(title);
    box.append(svg("line", { x1: 0, x2: width, y1: height / 2, y2: height / 2, class: "zero" }));
    const x = (i) => (buckets.length > 1 ? (i / (buckets.length - 1)) * (width - 4) + 2 : width / 2);
    const y = (v) => height / 2 - v * (height / 2 - 2);
    box.append(svg("path", { d: linePath(buckets, x, y), class: "line" }));
    return box;
  }

  // An SVG path through the non-empty buckets; an empty bucket (count 0) breaks the line.
  function linePath(buckets, x, y) {
    let d = "";
    let drawing = false;
    buckets.forEach((b, i) => {
      if (b.count > 0 && b.mean !== null) {
        d += `${drawing ? "L" : "M"}${x(i).toFixed(1)},${y(b.mean).toFixed(1)} `;
        drawing = true;
      } else {
        drawing = false;
      }
    });
    return d.trim();
  }

  // --- History chart ------------------------------------------------------------------------

  function fillTickerChoice() {
    const select = $("h-ticker");
    const current = select.value;
    select.replaceChildren(...state.tickers.map((t) => el("option", { value: t, text: t })));
    if (state.tickers.includes(current)) select.value = current;
  }

  function fillSpans() {
    const select = $("h-span");
    const current = select.value;
    const spans = SPANS[$("h-interval").value];
    select.replaceChildren(...spans.map(([label, days]) => el("option", { value: days, text: label })));
    select.value = spans.some(([, d]) => String(d) === current) ? current : String(spans[1][1]);
  }

  function selectTicker(ticker) {
    $("h-ticker").value = ticker;
    loadHistory().catch((error) => failed(error, "history"));
    $("history").scrollIntoView({ block: "start" });
  }

  async function loadHistory() {
    const ticker = $("h-ticker").value;
    if (!ticker) return;
    const interval = $("h-interval").value;
    const basis = $("h-basis").value;
    const days = Number($("h-span").value);
    const ending = $("h-end").value; // a New York date, or empty: now
    // The end on a 15-minute boundary (an ETag that lasts), or the end of the chosen day.
    const end = ending ? Date.parse(`${ending}T23:59:59Z`) + 1000 : Math.ceil(Date.now() / 900_000) * 900_000;
    const params = { ticker, interval, basis, from: isoSeconds(end - days * 86_400_000), to: isoSeconds(end) };
    const url = `/v1/scores/history?${query(params)}`;
    const asked = ++state.historySeq; // a later choice wins over an earlier slow answer
    const body = await get(url);
    if (asked !== state.historySeq) return;
    state.chart = { ticker, interval, basis, url, data: body.data };
    drawChart(state.chart);
  }

  function drawChart(chart) {
    const holder = $("chart");
    const buckets = chart.data;
    const width = 960;
    const height = 280;
    const left = 40;
    const right = 10;
    const top = 12;
    const bottom = 30;
    const box = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      class: "chart",
      role: "img",
      "data-ticker": chart.ticker,
      "data-interval": chart.interval,
      "data-basis": chart.basis,
      "data-buckets": buckets.length,
      "data-url": chart.url,
    });
    const title = svg("title");
    title.textContent = `${chart.ticker}: mean score per ${chart.interval} bucket (${chart.basis} basis)`;
    box.append(title);
    const plotW = width - left - right;
    const plotH = height - top - bottom;
    const step = plotW / Math.max(buckets.length, 1);
    const x = (i) => left + (i + 0.5) * step;
    const y = (v) => top + ((1 - v) / 2) * plotH;
    for (const v of [-1, -0.5, 0, 0.5, 1]) {
      box.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: v === 0 ? "zero" : "grid" }));
      const label = svg("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
      label.textContent = v.toFixed(1);
      box.append(label);
    }
    // Session boundaries, labelled with their date (at most ~8 labels).
    let lastSession = null;
    const every = Math.max(1, Math.ceil(new Set(buckets.map((b) => b.session)).size / 8));
    let sessions = 0;
    buckets.forEach((b, i) => {
      if (b.session === lastSession) return;
      lastSession = b.session;
      if (chart.interval !== "session" && i > 0) {
        box.append(svg("line", { x1: left + i * step, x2: left + i * step, y1: top, y2: top + plotH, class: "session" }));
      }
      if (sessions % every === 0) {
        const label = svg("text", { x: left + i * step + 2, y: height - 10, class: "axis" });
        label.textContent = nyDate.format(new Date(b.start));
        box.append(label);
      }
      sessions += 1;
    });
    // Empty buckets: a pale band and a break in the line, never a zero.
    buckets.forEach((b, i) => {
      if (b.count > 0) return;
      box.append(svg("rect", { x: left + i * step, y: top, width: Math.max(step, 0.5), height: plotH, class: "gap", "data-start": b.start, "data-count": 0 }));
    });
    box.append(svg("path", { d: linePath(buckets, x, y), class: "line", "data-segments": linePath(buckets, x, y).split("M").length - 1 }));
    const radius = Math.max(1.5, Math.min(4, step / 2.5));
    buckets.forEach((b, i) => {
      if (b.count === 0) return;
      const point = svg("circle", {
        cx: x(i).toFixed(1),
        cy: y(b.mean).toFixed(1),
        r: radius,
        class: `point ${scoreClass(b.mean)}`,
        tabindex: 0,
        role: "button",
        "data-start": b.start,
        "data-end": b.end,
        "data-count": b.count,
        "data-mean": b.mean,
        "data-index": i,
      });
      const tip = svg("title");
      tip.textContent = `${when(b.start)} – ${when(b.end)}: mean ${number(b.mean)} over ${b.count} (min ${number(b.min)}, max ${number(b.max)})`;
      point.append(tip);
      const open = () => openBucket(chart, i).catch((error) => failed(error, "the bucket's articles"));
      point.addEventListener("click", open);
      point.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          open();
        }
      });
      box.append(point);
    });
    holder.replaceChildren(box);
    const filled = buckets.filter((b) => b.count > 0);
    const total = filled.reduce((n, b) => n + b.count, 0);
    $("chart-note").textContent = buckets.length
      ? `${chart.ticker}, ${chart.interval} buckets on the ${chart.basis} basis: ${filled.length} of ${buckets.length} buckets hold ${total} scores; empty buckets are gaps. Click a point for its articles.`
      : `${chart.ticker}: no session in this range.`;
  }

  // --- Drill-down ---------------------------------------------------------------------------

  async function openBucket(chart, index) {
    const bucket = chart.data[index];
    const list = $("drill-list");
    const note = $("drill-note");
    const section = $("drill");
    list.replaceChildren();
    section.hidden = false;
    section.dataset.count = bucket.count;
    section.dataset.start = bucket.start;
    $("drill-title").textContent = `${chart.ticker}: ${when(bucket.start)} – ${when(bucket.end)}`;
    note.textContent = "Loading…";
    section.scrollIntoView({ block: "start" });
    // Each bucket links to the articles it counts (null: an empty bucket).
    if (!bucket.articles) {
      note.textContent = "This bucket holds no scores.";
      return;
    }
    const articles = [];
    let url = bucket.articles;
    for (let page = 0; url && page < MAX_PAGES; page += 1) {
      let body;
      try {
        body = await get(url);
      } catch (error) {
        if (error.status === 410) {
          note.textContent = `The articles of this bucket are gone: ${error.message}`;
          section.dataset.listed = 0;
          return;
        }
        throw error;
      }
      articles.push(...body.articles.map((a) => ({ ...a, tickers: [a.score] })));
      url = body.next_cursor ? `${bucket.articles}&${query({ cursor: body.next_cursor })}` : null;
    }
    section.dataset.listed = articles.length;
    note.textContent =
      `${bucket.count} scores in this bucket; ${articles.length} articles listed` +
      (url ? ` (the first ${MAX_PAGES} pages).` : ".");
    for (const article of articles) list.append(articleItem(article, chart.ticker));
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function articleItem(article, ticker) {
    const href = article.url ? safeUrl(article.url) : null;
    const headline = href
      ? el("a", { href, rel: "noopener noreferrer", target: "_blank", text: article.headline })
      : el("span", { text: article.headline });
    const item = el(
      "li",
      { class: "article", "data-id": article.id },
      el("p", { class: "headline" }, headline),
      el("p", { class: "meta", text: `${article.source} · published ${when(article.published_at)}` }),
    );
    const scores = el("ul", { class: "scores" });
    for (const score of article.tickers || []) {
      if (!score) continue;
      const line = el(
        "li",
        { class: score.ticker === ticker ? "mine" : "" },
        el("strong", { text: score.ticker }),
        ` ${score.label} `,
        el("span", { class: `num ${score.label}`, text: number(score.score) }),
        ` · relevance ${number(score.relevance, 2)} · ${score.scope} · ${score.method}`,
      );
      const highlights = el("ul", { class: "highlights" });
      for (const h of score.highlights || []) {
        highlights.append(el("li", {}, el("q", { text: h.text }), ` ${h.label} ${number(h.score)} (${h.in})`));
      }
      if (highlights.childElementCount) line.append(highlights);
      scores.append(line);
    }
    item.append(scores);
    return item;
  }

  // --- refresh ------------------------------------------------------------------------------

  async function refresh({ all = false } = {}) {
    if (state.busy) {
      state.again = { all: all || (state.again && state.again.all) };
      return;
    }
    state.busy = true;
    clearTimeout(state.timer);
    const open = marketOpen();
    try {
      await loadStatus();
      if (!state.token) {
        askToken(null);
        return;
      }
      let ok = true;
      for (const [load, what, section] of [
        [loadFeeds, "the feeds", "feeds"],
        [loadWatchlist, "the watchlist", "watchlist"],
      ]) {
        try {
          await load();
          $(section).classList.remove("stale");
        } catch (error) {
          ok = false;
          // What the section shows is from the last refresh that worked: dimmed, and said.
          $(section).classList.add("stale");
          failed(error, what);
          if (error.status === 401) return;
        }
      }
      if (ok && (all || Date.now() - state.sparksAt >= SPARK_EVERY)) {
        await loadSparks().catch((error) => failed(error, "the sparklines"));
      }
      if (ok && (all || !$("h-end").value)) {
        if (!$("h-ticker").value && state.tickers.length) $("h-ticker").value = state.tickers[0];
        await loadHistory().catch((error) => failed(error, "history"));
      }
      const health = state.health;
      if (ok && health && health.status === "ok") banner(null, null);
      else if (ok && health) {
        const code = $("status").dataset.httpStatus;
        banner("unavailable", `Health answers ${code} (${health.status}): ${health.reason || "not ready"}`);
      }
    } finally {
      const every = open ? OPEN_EVERY : CLOSED_EVERY;
      const refreshState = $("refresh-state");
      refreshState.dataset.requests = state.requests;
      refreshState.dataset.notModified = state.notModified;
      refreshState.textContent =
        `${open ? "Market open" : "Market closed"}: refreshing every ${every / 1000} s · ` +
        `${state.requests} requests, ${state.notModified} not modified (304)`;
      // A hidden tab waits: visibilitychange refreshes when it is shown again.
      state.timer = setTimeout(() => {
        if (!document.hidden) refresh();
      }, every);
      state.busy = false;
      if (state.again) {
        const next = state.again;
        state.again = null;
        refresh(next);
      }
    }
  }

  function start() {
    $("login-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => askToken(null));
    $("refresh-now").addEventListener("click", () => refresh({ all: true }));
    $("h-interval").addEventListener("change", () => {
      fillSpans();
      loadHistory().catch((error) => failed(error, "history"));
    });
    for (const id of ["h-ticker", "h-basis", "h-span", "h-end"]) {
      $(id).addEventListener("change", () => loadHistory().catch((error) => failed(error, "history")));
    }
    $("drill-close").addEventListener("click", () => {
      $("drill").hidden = true;
    });
    fillSpans();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    refresh({ all: true });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
