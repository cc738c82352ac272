"""The live page of `crawler serve` (`/`): one HTML document, its CSS and script inline (allowed
by a per-response nonce, nothing else), no outside URL at all.

The script polls `/live.json` every two seconds (carrying the page's `?token=` as a bearer
token), writes what it reads with `textContent` only and draws its charts as SVG built with
`createElementNS`: pages/s over the last ten minutes and the status mix; then the hosts being
crawled and the processes. A poll that fails shows a notice and the next poll is made as usual.
"""

from __future__ import annotations

_NONCE = "{{nonce}}"


def live_page(nonce: str) -> str:
    """The live page, its inline style and script carrying `nonce` (the response's CSP)."""
    return _PAGE.replace(_NONCE, nonce)


_STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #5b6470; --line: #d8dde3; --bar: #1565c0; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 1rem; font: 15px/1.45 system-ui, sans-serif;
       color: var(--ink); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.5rem; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
nav a { margin-right: .8rem; }
.muted { color: var(--muted); }
.state { font-size: .9rem; padding: .1rem .6rem; border-radius: 1rem; background: #eceff1; }
.state.running { background: #e3f2fd; color: #0d47a1; }
.state.finished { background: #e8f5e9; color: #1b5e20; }
.state.stopped { background: #fff3e0; color: #e65100; }
.notice { background: #ffebee; color: #b71c1c; padding: .5rem .8rem; border-radius: .4rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr));
           gap: .6rem; margin: 1rem 0; }
.figures div { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .8rem; }
.label { display: block; color: var(--muted); font-size: .8rem; }
.figure { font-size: 1.5rem; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid var(--line); border-radius: .5rem; padding: .6rem; }
figcaption { color: var(--muted); font-size: .85rem; margin-bottom: .3rem; }
svg { width: 100%; height: auto; display: block; }
svg .bar { fill: var(--bar); }
svg .grid { stroke: var(--line); }
svg .axis { fill: var(--muted); font-size: 12px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line);
         white-space: nowrap; }
th { font-weight: 600; font-size: .85rem; color: var(--muted); }
footer { margin-top: 1.5rem; font-size: .85rem; }
"""

_SCRIPT = """
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const DASH = "\\u2013";
  const COLORS = {"1xx": "#6a1b9a", "2xx": "#2e7d32", "3xx": "#1565c0", "4xx": "#ef6c00",
                  "5xx": "#c62828", "other": "#616161", "none": "#9e9e9e"};
  const STATES = {running: "running", finished: "finished", stopped: "stopped (resumable)",
                  empty: "not started"};
  let pollMs = 2000;
  const token = new URLSearchParams(location.search).get("token");
  const withToken = (path) => token ? path + "?token=" + encodeURIComponent(token) : path;
  const $ = (id) => document.getElementById(id);
  const setText = (id, value) => { $(id).textContent = value; };
  const number = (n) => n === null || n === undefined ? DASH : Number(n).toLocaleString("en");
  const clock = (iso) => iso ? iso.slice(11, 19) : DASH;
  const fixed = (n) => n === null || n === undefined ? DASH : Number(n).toFixed(1);

  for (const link of document.querySelectorAll("a[data-path]")) {
    link.setAttribute("href", withToken(link.dataset.path));
  }

  function svg(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    parent.appendChild(node);
    return node;
  }
  function label(parent, x, y, value, anchor) {
    svg("text", {x, y, "text-anchor": anchor || "start", class: "axis"}, parent)
      .textContent = value;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function drawRate(view) {
    const chart = $("rate");
    clear(chart);
    const [width, height, left, bottom, top] = [600, 160, 44, 20, 8];
    const spans = view.timeline;
    const rates = spans.map((span) => span.pages / view.bucket_s);
    const peak = Math.max(1, ...rates);
    const step = (width - left) / Math.max(1, rates.length);
    svg("line", {x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "grid"},
        chart);
    rates.forEach((rate, i) => {
      const h = (height - bottom - top) * rate / peak;
      const bar = svg("rect", {x: left + i * step + 1, y: height - bottom - h,
                               width: Math.max(1, step - 2), height: h, class: "bar"}, chart);
      svg("title", {}, bar).textContent = clock(spans[i].start) + ": " + fixed(rate) + " pages/s";
    });
    label(chart, left - 6, top + 10, fixed(peak), "end");
    label(chart, left - 6, height - bottom, "0", "end");
    if (spans.length) {
      label(chart, left, height - 4, clock(spans[0].start));
      label(chart, width, height - 4, clock(spans[spans.length - 1].start), "end");
    }
  }

  function drawMix(view) {
    const chart = $("mix");
    clear(chart);
    const entries = Object.entries(view.by_status).filter(([, n]) => n > 0);
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    if (!total) { label(chart, 0, 30, "no pages yet"); return; }
    let x = 0;
    let legend = 0;
    for (const [name, n] of entries) {
      const colour = COLORS[name] || "#444";
      const width = 600 * n / total;
      svg("title", {}, svg("rect", {x, y: 0, width, height: 30, fill: colour}, chart))
        .textContent = name + ": " + number(n);
      x += width;
      svg("rect", {x: legend, y: 44, width: 12, height: 12, fill: colour}, chart);
      label(chart, legend + 16, 55, name + " " + number(n));
      legend += 85;
    }
  }

  function fillTable(id, rows, columns) {
    const body = $(id).tBodies[0];
    clear(body);
    for (const row of rows) {
      const tr = body.insertRow();
      for (const column of columns) tr.insertCell().textContent = column(row);
    }
    if (!rows.length) {
      const cell = body.insertRow().insertCell();
      cell.colSpan = columns.length;
      cell.className = "muted";
      cell.textContent = "none";
    }
  }

  function render(view) {
    const state = $("state");
    state.textContent = STATES[view.state] || view.state;
    state.className = "state " + view.state;
    setText("db", view.db);
    setText("pages", number(view.pages));
    setText("rate-now", view.pages_per_s === null ? DASH : fixed(view.pages_per_s));
    setText("queued", number(view.queued));
    setText("errors", number(view.errors));
    setText("hosts", number(view.hosts));
    setText("processes", number(view.processes.length));
    setText("crawling-count", number(view.crawling.length));
    drawRate(view);
    drawMix(view);
    fillTable("crawling-table", view.crawling, [
      (h) => h.host, (h) => h.delay === null ? DASH : String(h.delay),
      (h) => h.delay_reason || DASH,
      (h) => number(h.requests), (h) => number(h.errors), (h) => number(h.pages), (h) => h.run,
    ]);
    fillTable("processes-table", view.processes, [
      (r) => r.run, (r) => r.machine || DASH, (r) => r.pid === null ? DASH : r.pid,
      (r) => r.started_at, (r) => clock(r.renewed_at), (r) => number(r.pages),
      (r) => fixed(r.lag_p99_ms), (r) => fixed(r.lag_max_ms),
    ]);
    setText("updated", view.now);
    pollMs = 1000 * (view.poll_s || 2);
  }

  async function poll() {
    try {
      const headers = token ? {Authorization: "Bearer " + token} : {};
      const response = await fetch("/live.json", {cache: "no-store", headers});
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      render(body);
      $("notice").hidden = true;
    } catch (error) {
      $("notice").textContent = "The last update failed (" + error.message + "); trying again.";
      $("notice").hidden = false;
    } finally {
      setTimeout(poll, pollMs);
    }
  }
  poll();
})();
"""

_PAGE = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crawler: live</title>
<link rel="icon" href="data:,">
<style nonce="{{nonce}}">"""
    + _STYLE
    + """</style>
</head>
<body>
<header>
  <h1>Crawl <span id="state" class="state">loading…</span></h1>
  <span id="db" class="muted"></span>
  <nav><a data-path="/report">report</a><a data-path="/report.json">report.json</a><a
    data-path="/metrics">metrics</a><a data-path="/live.json">live.json</a></nav>
</header>
<p id="notice" class="notice" hidden></p>
<section class="figures">
  <div><span class="label">pages fetched</span><span id="pages" class="figure">&ndash;</span></div>
  <div><span class="label">pages/s (last minute)</span>
    <span id="rate-now" class="figure">&ndash;</span></div>
  <div><span class="label">URLs queued</span><span id="queued" class="figure">&ndash;</span></div>
  <div><span class="label">errors</span><span id="errors" class="figure">&ndash;</span></div>
  <div><span class="label">hosts seen</span><span id="hosts" class="figure">&ndash;</span></div>
  <div><span class="label">processes</span><span id="processes" class="figure">&ndash;</span></div>
</section>
<section class="charts">
  <figure><figcaption>Pages/s, the last ten minutes (10-second spans)</figcaption>
    <svg id="rate" viewBox="0 0 600 160" role="img" aria-label="pages per second"></svg></figure>
  <figure><figcaption>Status mix of the pages fetched</figcaption>
    <svg id="mix" viewBox="0 0 600 64" role="img" aria-label="status mix"></svg></figure>
</section>
<h2>Hosts being crawled (<span id="crawling-count">&ndash;</span>)</h2>
<div class="scroll"><table id="crawling-table"><thead><tr><th>host</th><th>delay (s)</th>
  <th>delay reason</th><th>requests</th><th>errors</th><th>pages</th><th>run</th></tr></thead>
  <tbody></tbody></table></div>
<h2>Processes</h2>
<div class="scroll"><table id="processes-table"><thead><tr><th>run</th><th>machine</th>
  <th>pid</th><th>started</th><th>last heartbeat</th><th>pages</th><th>loop lag p99 (ms)</th>
  <th>loop lag max (ms)</th></tr></thead><tbody></tbody></table></div>
<footer class="muted">Updated <span id="updated">never</span>, every two seconds while the
  page is open. Heartbeats (lag, lease) come every lease / 3 seconds at most.</footer>
<script nonce="{{nonce}}">"""
    + _SCRIPT
    + """</script>
</body>
</html>
"""
)
