// Virtuoso Resilience dashboard: renders the frames of /api/monitoring/stream.
// No external requests; every name from the server is set as text, never as HTML.
"use strict";
(function () {
  const STREAM = "/api/monitoring/stream";
  const CONTROL = "/api/monitoring/circuit-breakers/";
  const SVG = "http://www.w3.org/2000/svg";
  const HISTORY = 180; // samples kept for sparklines (about three minutes)
  const ICONS = { closed: "\u2714", half_open: "\u25D0", open: "\u2716", forced_open: "\u2298", disabled: "\u2016",
    healthy: "\u2714", degraded: "\u26A0", unhealthy: "\u2716", critical: "\u2716", unknown: "?" };
  const $ = (id) => document.getElementById(id);
  let token = ""; // the operator's token: memory only, never stored, never in a URL
  let source = null;
  let attempts = 0;
  let everConnected = false;
  let lastFrame = null;
  const history = new Map(); // name -> [{t, calls, failures}]

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function num(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }
  function fmtPct(v) { v = num(v); return v === null ? "—" : (v * 100).toFixed(1) + " %"; }
  function fmtSec(v) {
    v = num(v); if (v === null) return "—";
    if (v < 1) return (v * 1000).toFixed(0) + " ms";
    if (v < 120) return v.toFixed(1) + " s";
    return (v / 60).toFixed(1) + " min";
  }
  function fmtInt(v) { v = num(v); return v === null ? "—" : Math.round(v).toLocaleString("en-US"); }
  function label(state) { return String(state || "unknown").replace("_", " "); }
  function stateCell(state) {
    const td = el("td", { class: "state", "data-state": state || "unknown" });
    td.append(el("span", { "aria-hidden": "true" }, (ICONS[state] || "?") + " "), label(state));
    return td;
  }

  function setConnection(kind, text) {
    const node = $("connection");
    node.dataset.conn = kind;
    node.querySelector(".icon").textContent = kind === "live" ? "\u25CF" : kind === "lost" ? "\u2716" : "\u21BB";
    node.querySelector(".text").textContent = text;
  }

  // --------------------------------------------------------------- stream
  function connect() {
    if (source) source.close();
    source = new EventSource(STREAM);
    source.addEventListener("open", () => {
      attempts = 0;
      setConnection("live", everConnected ? "live (reconnected)" : "live");
      everConnected = true;
    });
    source.addEventListener("snapshot", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      render(frame);
    });
    source.addEventListener("error", () => {
      attempts += 1;
      setConnection("reconnecting", "connection lost \u2014 reconnecting (attempt " + attempts + ")");
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        const wait = Math.min(10000, 500 * 2 ** Math.min(attempts, 5));
        setTimeout(connect, wait);
      }
    });
  }

  // --------------------------------------------------------------- render
  function render(frame) {
    lastFrame = frame;
    const when = new Date((num(frame.at) || 0) * 1000);
    $("updated").textContent = "updated " + when.toLocaleTimeString("en-GB") + " (frame " + frame.frame + ")";
    const overall = (frame.health && frame.health.overall_status) || "unknown";
    const badge = $("overall");
    badge.dataset.status = overall;
    badge.querySelector(".icon").textContent = ICONS[overall] || "?";
    badge.querySelector(".text").textContent = "overall: " + overall;
    renderControls(frame);
    if (!frame.details) {
      showNotice("This server shows component details only to authorised API clients (show_details=" +
        frame.show_details + "); the dashboard shows the overall status only.");
      return;
    }
    showNotice(null);
    renderBreakers(frame.breakers || [], num(frame.at) || 0, frame.writes_enabled);
    renderPools(frame.pools || []);
    renderExchanges(frame.exchanges || []);
    renderCaches(frame.caches || []);
    renderGraph(frame.health || {});
    renderEvents(frame.events || []);
  }

  function showNotice(text) {
    const node = $("notice");
    node.hidden = !text;
    node.textContent = text || "";
  }

  function renderControls(frame) {
    $("token-form").hidden = !frame.writes_enabled;
    const off = $("control-off");
    off.hidden = !!frame.writes_enabled;
    off.textContent = frame.writes_enabled ? "" :
      "Manual control is off: the server has no token configured (set VIRTUOSO_MONITORING_TOKEN for `virtuoso-resilience serve`, or MonitoringSettings.token).";
    document.querySelectorAll("th.ctl").forEach((th) => { th.hidden = !frame.writes_enabled; });
  }

  function sparkline(points, title) {
    const w = 90, h = 20;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark"); svg.setAttribute("width", w); svg.setAttribute("height", h);
    svg.setAttribute("viewBox", "0 0 " + w + " " + h); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", title);
    const t = document.createElementNS(SVG, "title"); t.textContent = title; svg.append(t);
    if (points.length > 1) {
      const max = Math.max(...points, 1e-9);
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points.map((p, i) =>
        (i * (w - 2) / (points.length - 1) + 1).toFixed(1) + "," + (h - 1 - (p / max) * (h - 2)).toFixed(1)).join(" "));
      svg.append(line);
    }
    return svg;
  }

  function rates(name, at, calls, failures) {
    let list = history.get(name);
    if (!list) { list = []; history.set(name, list); }
    list.push({ t: at, calls: num(calls) || 0, failures: num(failures) || 0 });
    if (list.length > HISTORY) list.shift();
    const out = [];
    for (let i = 1; i < list.length; i++) {
      const dt = Math.max(list[i].t - list[i - 1].t, 0.001);
      out.push({ calls: Math.max(0, list[i].calls - list[i - 1].calls) / dt,
                 failures: Math.max(0, list[i].failures - list[i - 1].failures) / dt });
    }
    return out;
  }

  function renderBreakers(rows, at, writes) {
    const body = $("breaker-table").tBodies[0];
    const focused = document.activeElement && document.activeElement.dataset.key;
    body.replaceChildren();
    document.querySelector('[data-for="breaker-table"]').hidden = rows.length > 0;
    for (const b of rows) {
      const tr = el("tr", { "data-breaker": b.name, "data-state": b.state || "unknown" });
      tr.append(el("th", { scope: "row" }, b.name), stateCell(b.state));
      tr.append(el("td", { class: "num", "data-label": "failure rate" }, num(b.window_calls) ? fmtPct(b.failure_rate) + " of " + fmtInt(b.window_calls) + " calls" : "— (no rate window)"));
      tr.append(el("td", { class: "num", "data-label": "calls" }, fmtInt(b.calls) + " calls, " + fmtInt(b.failures) + " failed, " + fmtInt(b.rejected) + " rejected"));
      const r = rates(b.name, at, b.calls, b.failures);
      const last = r.length ? r[r.length - 1].failures : 0;
      const spark = el("td", { class: "num", "data-label": "failures" });
      spark.append(sparkline(r.map((x) => x.failures), "failures per second, last " + r.length + " s of " + b.name), " " + last.toFixed(1) + " /s");
      tr.append(spark);
      tr.append(el("td", { class: "num", "data-label": "next trial in" }, b.state === "open" ? fmtSec(b.retry_after) : "—"));
      if (writes) {
        const td = el("td", { class: "ctl" });
        for (const [target, text] of [["forced_open", "Force open"], ["disabled", "Disable"], ["closed", "Close"]]) {
          const button = el("button", { type: "button", "data-key": b.name + "|" + target,
            "data-target": target, "aria-label": text + " breaker " + b.name }, text);
          button.addEventListener("click", () => control(b.name, target));
          td.append(button);
        }
        tr.append(td);
      }
      body.append(tr);
    }
    if (focused) {
      const again = Array.from(body.querySelectorAll("button")).find((n) => n.dataset.key === focused);
      if (again) again.focus();
    }
  }

  async function control(name, target) {
    const out = $("control-result");
    token = $("token").value;
    out.textContent = "Setting " + name + " to " + label(target) + "…";
    try {
      const headers = { "Content-Type": "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      const response = await fetch(CONTROL + encodeURIComponent(name), {
        method: "POST", headers, body: JSON.stringify({ state: target }), cache: "no-store", credentials: "omit" });
      let body = {};
      try { body = await response.json(); } catch (e) { body = {}; }
      if (response.ok) {
        out.textContent = "Done: " + name + " is " + label(body.state) + " (was " + label(body.previous) + ").";
      } else {
        out.textContent = "Refused (HTTP " + response.status + "): " + (body.message || response.statusText);
      }
    } catch (e) {
      out.textContent = "The request failed: the server did not answer.";
    }
  }

  function renderPools(rows) {
    const body = $("pool-table").tBodies[0];
    body.replaceChildren();
    document.querySelector('[data-for="pool-table"]').hidden = rows.length > 0;
    const at = lastFrame ? num(lastFrame.at) || 0 : 0;
    for (const p of rows) {
      const tr = el("tr", { "data-pool": p.name });
      tr.append(el("th", { scope: "row" }, p.name));
      const health = p.health || "unknown";
      const st = el("td", { class: "state", "data-status": health });
      st.append(el("span", { "aria-hidden": "true" }, (ICONS[health] || "?") + " "), label(p.state) + ", " + health);
      tr.append(st);
      tr.append(el("td", { class: "num" }, fmtInt(p.in_use) + " of " + fmtInt(p.max_connections) + " connections"));
      tr.append(el("td", { class: "num" }, fmtInt(p.waiting) + " waiting"));
      tr.append(el("td", { class: "num" }, fmtInt(p.failed) + " failed"));
      tr.append(el("td", { class: "num", "data-label": "error rate" }, fmtPct(p.error_rate)));
      const r = rates("pool:" + p.name, at, p.started, p.failed);
      const td = el("td", { class: "num", "data-label": "requests" });
      td.append(sparkline(r.map((x) => x.calls), "requests per second of pool " + p.name), " " + (r.length ? r[r.length - 1].calls.toFixed(1) : "0.0") + " /s");
      tr.append(td);
      body.append(tr);
    }
  }

  // A generic view of whatever a kind's snapshots hold (exchanges, caches):
  // scalars up to two levels deep, with units taken from the key's name.
  function unitFor(key, value) {
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value !== "number") return value === null ? "—" : String(value).slice(0, 200);
    if (/(seconds|_age|age$|staleness|_left|timeout|delay|ago)/.test(key)) return fmtSec(value);
    if (/(rate|ratio|headroom|utilisation)$/.test(key)) return value <= 1 ? fmtPct(value) : value.toFixed(2);
    return Number.isInteger(value) ? fmtInt(value) : value.toFixed(3);
  }
  function flatten(prefix, value, out, depth) {
    if (out.length > 60) return;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      if (depth > 2) return;
      for (const [k, v] of Object.entries(value)) flatten(prefix ? prefix + "." + k : k, v, out, depth + 1);
    } else if (Array.isArray(value)) {
      out.push([prefix, value.length + " items"]);
    } else {
      out.push([prefix, unitFor(prefix.split(".").pop(), value)]);
    }
  }
  function renderGeneric(container, items, empty) {
    container.replaceChildren();
    const names = Object.keys(items);
    if (!names.length) { container.append(el("p", { class: "muted" }, empty)); return; }
    for (const name of names) {
      container.append(el("h3", {}, name));
      const dl = el("dl", { class: "kv" });
      const pairs = []; flatten("", items[name], pairs, 0);
      for (const [k, v] of pairs) { dl.append(el("dt", {}, k), el("dd", {}, v)); }
      container.append(dl);
    }
  }

  function kv(dl, key, value) { dl.append(el("dt", {}, key), el("dd", {}, value)); }
  function renderExchanges(rows) {
    const box = $("exchanges");
    box.replaceChildren();
    if (!rows.length) {
      box.append(el("p", { class: "muted" }, "No exchange adapters registered (register one under the kind \"exchanges\")."));
      return;
    }
    for (const x of rows) {
      const card = el("div", { class: "exchange", "data-exchange": x.name });
      card.append(el("h3", {}, x.name + (x.exchange && x.exchange !== x.name ? " (" + x.exchange + ")" : "")));
      if (x.raw !== undefined) {
        const dl = el("dl", { class: "kv" }); const pairs = []; flatten("", x.raw, pairs, 0);
        for (const [k, v] of pairs) kv(dl, k, v);
        card.append(dl); box.append(card); continue;
      }
      const dl = el("dl", { class: "kv" });
      const m = x.maintenance || {};
      const maint = el("dd", { "data-state": m.active ? "open" : "closed", class: "state", "data-field": "maintenance" });
      maint.textContent = m.active ? "\u26A0 in maintenance" + (num(m.expected_end) !== null ? " (expected end at clock " + m.expected_end.toFixed(0) + " s)" : " (end unknown)") : "\u2714 no maintenance";
      dl.append(el("dt", {}, "maintenance"), maint);
      const a = x.account || {};
      kv(dl, "account rate headroom", fmtPct(a.headroom) + " of the bucket (" + (num(a.tokens) === null ? "—" : a.tokens.toFixed(1)) + " of " + fmtInt(a.capacity) + " tokens, refill " + (num(a.rate) === null ? "—" : a.rate.toFixed(1)) + " /s)");
      kv(dl, "exchange-reported limit", a.exchange_limit === null || a.exchange_limit === undefined ? "none reported" : typeof a.exchange_limit === "object" ? JSON.stringify(a.exchange_limit).slice(0, 200) : String(a.exchange_limit));
      if (num(a.budget) !== null) kv(dl, "window budget left", fmtInt(a.budget) + " (resets in " + fmtSec(a.budget_reset_in) + ")");
      const t = x.tightest_endpoint;
      kv(dl, "tightest endpoint", t ? t.path + ": " + fmtPct(t.headroom) + " headroom" : "none learned (" + fmtInt(x.endpoints) + " endpoints)");
      kv(dl, "bans", fmtInt(x.bans) + (num(x.ban_remaining) ? ", " + fmtSec(x.ban_remaining) + " left" : ""));
      if (num(x.used_weight_1m) !== null) kv(dl, "used weight (1 min)", fmtInt(x.used_weight_1m));
      const pending = el("dd", { "data-field": "pending_orders" }, fmtInt(x.pending_orders) + " order(s) pending reconciliation");
      dl.append(el("dt", {}, "pending orders"), pending);
      const md = x.market_data;
      if (md && typeof md === "object") {
        for (const [symbol, v] of Object.entries(md).slice(0, 20)) {
          kv(dl, "market data " + symbol, v && typeof v === "object" ? fmtSec(v.age) + " old (limit " + fmtSec(v.limit) + ")" : String(v));
        }
      } else {
        kv(dl, "market-data age", "not in the adapter's snapshot (ResilientExchange.data_age() answers per symbol)");
      }
      kv(dl, "breakers", Object.entries(x.breakers || {}).map(([g, s]) => g + " " + (ICONS[s] || "?") + " " + label(s)).join(", ") || "—");
      card.append(dl);
      box.append(card);
    }
  }

  function renderCaches(rows) {
    const box = $("caches");
    box.replaceChildren();
    if (!rows.length) {
      box.append(el("p", { class: "muted" }, "No caches registered (register one under the kind \"caches\")."));
      return;
    }
    for (const c of rows) {
      const card = el("div", { class: "cache", "data-cache": c.name });
      card.append(el("h3", {}, c.name + (c.backend ? " (" + String(c.backend).slice(0, 80) + ")" : "")));
      const dl = el("dl", { class: "kv" });
      if (c.raw !== undefined) {
        const pairs = []; flatten("", c.raw, pairs, 0);
        for (const [k, v] of pairs) kv(dl, k, v);
      } else {
        const st = el("dd", { class: "state", "data-field": "degraded", "data-state": c.degraded ? "open" : "closed" });
        st.textContent = c.degraded ? "\u26A0 degraded (serving from the in-process fallback)" : "\u2714 backend serving";
        dl.append(el("dt", {}, "state"), st);
        kv(dl, "hit rate by tier", Object.entries(c.hit_rates || {}).map(([t, r]) => t + " " + fmtPct(r)).join(", ") + " of " + fmtInt(c.reads) + " reads");
        kv(dl, "degraded time", fmtSec(c.degraded_seconds) + " in " + fmtInt(c.degraded_episodes) + " episode(s)");
        dl.append(el("dt", {}, "dirty entries"), el("dd", { "data-field": "dirty" }, fmtInt(c.dirty) + " waiting for write-back"));
        kv(dl, "fallback entries", fmtInt(c.fallback_entries));
        kv(dl, "breaker", (ICONS[c.breaker] || "?") + " " + label(c.breaker));
      }
      card.append(dl);
      box.append(card);
    }
  }

  // The dependency graph: columns by depth (a check right of what it depends on).
  function renderGraph(health) {
    const checks = health.checks || {};
    const names = Object.keys(checks).sort();
    const root = health.root_cause || null;
    $("root-cause").textContent = root ? "Root cause: " + root + " (" + ((checks[root] || {}).status || "missing") + ")" :
      (names.length ? "No failing dependency." : "No health checks registered.");
    const depth = new Map();
    const visit = (n, seen) => {
      if (depth.has(n)) return depth.get(n);
      if (seen.has(n)) return 0;
      seen.add(n);
      const deps = ((checks[n] || {}).depends_on || []).filter((d) => checks[d]);
      const d = deps.length ? 1 + Math.max(...deps.map((x) => visit(x, seen))) : 0;
      depth.set(n, d); return d;
    };
    names.forEach((n) => visit(n, new Set()));
    const columns = [];
    for (const n of names) { const d = depth.get(n); (columns[d] = columns[d] || []).push(n); }
    const W = 200, H = 64, GX = 50, GY = 14;
    const pos = new Map();
    columns.forEach((col, c) => col.forEach((n, r) => pos.set(n, { x: 10 + c * (W + GX), y: 10 + r * (H + GY) })));
    const width = Math.max(1, columns.length) * (W + GX) - GX + 20;
    const height = Math.max(1, ...columns.map((c) => c.length)) * (H + GY) - GY + 20;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", width); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "health dependency graph: " + names.map((n) => n + " " + checks[n].status).join(", ") + (root ? "; root cause " + root : ""));
    const defs = document.createElementNS(SVG, "defs");
    const marker = document.createElementNS(SVG, "marker");
    for (const [k, v] of [["id", "arrow"], ["viewBox", "0 0 10 10"], ["refX", "10"], ["refY", "5"], ["markerWidth", "7"], ["markerHeight", "7"], ["orient", "auto"]]) marker.setAttribute(k, v);
    const tip = document.createElementNS(SVG, "path"); tip.setAttribute("d", "M0,0 L10,5 L0,10 z"); tip.setAttribute("fill", "#777");
    marker.append(tip); defs.append(marker); svg.append(defs);
    for (const n of names) {
      for (const d of checks[n].depends_on || []) {
        if (!pos.has(d)) continue;
        const a = pos.get(n), b = pos.get(d);
        const path = document.createElementNS(SVG, "path");
        path.setAttribute("class", "edge");
        path.setAttribute("d", "M" + a.x + "," + (a.y + H / 2) + " C" + (a.x - GX / 2) + "," + (a.y + H / 2) + " " + (b.x + W + GX / 2) + "," + (b.y + H / 2) + " " + (b.x + W) + "," + (b.y + H / 2));
        svg.append(path);
      }
    }
    for (const n of names) {
      const c = checks[n], p = pos.get(n);
      const g = document.createElementNS(SVG, "g");
      g.setAttribute("class", "node"); g.setAttribute("data-check", n);
      g.setAttribute("data-status", c.status); g.setAttribute("data-root-cause", String(n === root));
      const rect = document.createElementNS(SVG, "rect");
      for (const [k, v] of [["x", p.x], ["y", p.y], ["width", W], ["height", H], ["rx", 6]]) rect.setAttribute(k, v);
      const t1 = document.createElementNS(SVG, "text");
      t1.setAttribute("x", p.x + 8); t1.setAttribute("y", p.y + 20);
      t1.textContent = n.length > 26 ? n.slice(0, 25) + "…" : n;
      const t2 = document.createElementNS(SVG, "text");
      t2.setAttribute("x", p.x + 8); t2.setAttribute("y", p.y + 40);
      t2.textContent = (ICONS[c.status] || "?") + " " + c.status + (c.critical ? " (critical check)" : "");
      const t3 = document.createElementNS(SVG, "text");
      t3.setAttribute("x", p.x + 8); t3.setAttribute("y", p.y + 57); t3.setAttribute("font-weight", "700");
      t3.textContent = n === root ? "\u25B6 ROOT CAUSE" : (c.root_cause && c.root_cause !== n ? "caused by " + c.root_cause : "");
      const title = document.createElementNS(SVG, "title");
      title.textContent = n + ": " + c.status + (c.message ? " \u2014 " + c.message : "");
      g.append(title, rect, t1, t2, t3);
      svg.append(g);
    }
    $("graph").replaceChildren(svg);
  }

  function renderEvents(events) {
    const list = $("events");
    list.replaceChildren();
    if (!events.length) { list.append(el("li", { class: "muted" }, "No state changes yet.")); return; }
    for (const e of events.slice().reverse()) {
      const li = el("li", { "data-state": e.current });
      li.textContent = (e.time || "") + " \u2014 " + e.name + ": " + label(e.previous) + " \u2192 " + label(e.current) +
        (e.source ? " (" + e.source + (e.reason ? ", " + e.reason : "") + ")" : "");
      list.append(li);
    }
  }

  $("token-form").addEventListener("submit", (e) => e.preventDefault());
  connect();
})();
