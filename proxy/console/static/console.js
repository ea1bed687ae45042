// easedge operator console: renders /api/ JSON as DOM text nodes (data is never parsed as markup) and plain SVG charts.
"use strict";

// How often the pages ask for new data: every 3 s, or ?refresh=SECONDS (at least 1).
const POLL_MS = 1000 * Math.max(1, Number(new URLSearchParams(location.search).get("refresh")) || 3);
const SERIES_POINTS = 100;      // samples kept per chart (5 minutes at POLL_MS)
const SVG = "http://www.w3.org/2000/svg";
const CLASS_COLOURS = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                       "#bcbd22", "#17becf"];

// Builds an element; string and number children become text nodes, so no data is ever parsed as markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function text(value) { return value === null || value === undefined || value === "" ? "-" : String(value); }

function duration(seconds) {
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  return sign + (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m";
}

async function api(path, options) {
  const headers = Object.assign({}, (options || {}).headers);
  const token = sessionStorage.getItem("easedge-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, Object.assign({cache: "no-store"}, options || {}, {headers}));
  if (response.status === 401) {
    document.getElementById("login").hidden = false;
    throw new Error("the admin listener needs a token (admin.auth: token)");
  }
  const body = await response.json().catch(() => ({error: "HTTP " + response.status}));
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function table(headers, rows, rowClass) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
            el("tbody", {}, rows.map((cells, i) => el("tr", rowClass ? {class: rowClass(i)} : {},
              cells.map((c) => c instanceof Node ? el("td", {}, c) : el("td", {}, text(c)))))));
}

function show(...nodes) {
  const view = document.getElementById("view");
  view.replaceChildren(...nodes);
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  document.body.dataset.ready = "true";
}

function failed(error) {
  document.getElementById("view").replaceChildren(el("p", {class: "error"}, "Cannot load: " + error.message));
  document.body.dataset.ready = "error";
}

// ---- overview -------------------------------------------------------------------------------------------

function lineChart(points) {
  const chart = svg("svg", {class: "chart", viewBox: "0 0 300 90", preserveAspectRatio: "none"});
  chart.append(svg("rect", {x: 0, y: 0, width: 300, height: 90, fill: "#fafbfc"}));
  const max = Math.max(1e-9, ...points);
  const step = 300 / Math.max(1, SERIES_POINTS - 1);
  const offset = (SERIES_POINTS - points.length) * step;
  const coords = points.map((v, i) => (offset + i * step).toFixed(1) + "," + (86 - (v / max) * 80).toFixed(1));
  if (coords.length) chart.append(svg("polyline", {points: coords.join(" ")}));
  return chart;
}

function refusalChart(minutes) {
  // Stacked bars: one per minute of the last hour, one colour per class.
  const chart = svg("svg", {class: "chart", viewBox: "0 0 600 120", preserveAspectRatio: "none"});
  chart.style.height = "120px";
  chart.append(svg("rect", {x: 0, y: 0, width: 600, height: 120, fill: "#fafbfc"}));
  const classes = [...new Set(minutes.flatMap((m) => Object.keys(m.classes)))].sort();
  const now = Date.now();
  let max = 1;
  for (const m of minutes) max = Math.max(max, Object.values(m.classes).reduce((a, b) => a + b, 0));
  for (const m of minutes) {
    const age = Math.floor((now - Date.parse(m.minute)) / 60000);
    const x = (59 - Math.min(59, Math.max(0, age))) * 10;
    let y = 118;
    for (const cls of classes) {
      const h = ((m.classes[cls] || 0) / max) * 110;
      if (!h) continue;
      y -= h;
      const bar = svg("rect", {x: x + 1, y: y, width: 8, height: h, fill: CLASS_COLOURS[classes.indexOf(cls) % 10]});
      const title = svg("title", {});
      title.textContent = m.minute + " " + cls + ": " + m.classes[cls];
      bar.append(title);
      chart.append(bar);
    }
  }
  const legend = el("div", {class: "legend"}, classes.map((cls, i) => {
    const swatch = el("i", {});
    swatch.style.background = CLASS_COLOURS[i % 10];  // CSSOM, allowed by the style-src 'self' policy
    return el("span", {}, swatch, cls);
  }));
  return [chart, legend];
}

const series = {requests: [], handshakes: [], resumed: [], held: [], open: [], latency: []};
let previous = null;

function sample(o) {
  const t = Date.parse(o.now) / 1000;
  const handshakes = o.handshakes.ok + o.handshakes.failed + o.handshakes.timeout;
  if (previous && t > previous.t) {
    const dt = t - previous.t;
    const push = (name, v) => { series[name].push(v); if (series[name].length > SERIES_POINTS) series[name].shift(); };
    push("requests", (o.requests - previous.requests) / dt);
    push("handshakes", (handshakes - previous.handshakes) / dt);
    // The resumed count restarts with a reload (a new TLS context): never a negative rate.
    push("resumed", Math.max(0, o.handshakes.resumed - previous.resumed) / dt);
    const responses = o.upstream_responses - previous.upstream_responses;
    push("latency", responses > 0 ? 1000 * (o.upstream_seconds_sum - previous.upstream_seconds) / responses : 0);
  }
  series.held.push(o.requests_held); if (series.held.length > SERIES_POINTS) series.held.shift();
  series.open.push(o.connections_open); if (series.open.length > SERIES_POINTS) series.open.shift();
  previous = {t, requests: o.requests, handshakes, resumed: o.handshakes.resumed, upstream_responses: o.upstream_responses,
              upstream_seconds: o.upstream_seconds_sum};
}

function card(label, value, points) {
  return el("div", {class: "card"}, el("div", {class: "label"}, label), el("div", {class: "value"}, value),
            points ? lineChart(points) : null);
}

function last(points, digits) { return points.length ? points[points.length - 1].toFixed(digits) : "…"; }

async function overview() {
  const o = await api("/api/overview");
  sample(o);
  const totals = Object.entries(o.refusals).sort();
  show(el("div", {class: "cards"},
          card("Requests/s", last(series.requests, 1), series.requests),
          card("TLS handshakes/s (all; of them resumed)", last(series.handshakes, 1) + " (" + last(series.resumed, 1) + " resumed)",
               series.handshakes),
          card("Held requests (Ping/Sync waiting for Exchange)", String(o.requests_held), series.held),
          card("Open device connections", String(o.connections_open), series.open),
          card("Upstream latency, ms (mean per interval)", last(series.latency, 1), series.latency),
          card("Requests since start", String(o.requests), null)),
       el("h2", {}, "Refusals by class, last hour (per minute)"),
       ...refusalChart(o.refusals_per_minute),
       el("h2", {}, "Refusals since start"),
       totals.length ? table(["class", "count"], totals) : el("p", {}, "No refusals."));
}

// ---- devices --------------------------------------------------------------------------------------------

let refusalRows = [];

function renderRefusals(filter) {
  const needle = filter.toLowerCase();
  const rows = refusalRows.filter((r) => !needle || Object.values(r).some((v) => String(v).toLowerCase().includes(needle)));
  return table(["time", "client", "subject", "SHA-256", "user", "DeviceId", "DeviceType", "Cmd", "status", "reason",
                "request id"],
               rows.map((r) => [r.time, r.client, r.subject, el("span", {class: "mono"}, text(r.cert_sha256)), r.user,
                                r.device_id, r.device_type, r.cmd, r.status, r.reason + (r.detail ? ": " + r.detail : ""),
                                el("span", {class: "mono"}, text(r.request_id))]));
}

async function devices() {
  const [refusals, activity] = await Promise.all([api("/api/refusals"), api("/api/activity")]);
  refusalRows = refusals.refusals;
  const holder = el("div", {id: "refusals"}, renderRefusals(""));
  const box = el("input", {type: "search", id: "filter", placeholder: "filter: subject, user, DeviceId, 403.13 ..."});
  box.addEventListener("input", () => holder.replaceChildren(renderRefusals(box.value)));
  show(el("h2", {}, "Last refusals (" + refusals.refusals.length + ", at most " + refusals.capacity + ")"), box, holder,
       el("h2", {}, "Most active devices"),
       table(["DeviceId", "DeviceType", "requests", "refused", "last seen"],
             activity.devices.map((d) => [d.key, d.device_type, d.requests, d.refused, d.last_seen])),
       el("h2", {}, "Most active users"),
       table(["user", "requests", "refused", "last seen"],
             activity.users.map((u) => [u.key, u.requests, u.refused, u.last_seen])));
}

// ---- revocation -----------------------------------------------------------------------------------------

function attempt(a) {
  if (!a) return "-";
  return (a.ok ? "ok" : "FAILED: " + a.error) + " at " + a.time + " (" + a.failures + " of " + a.attempts + " failed)";
}

async function revocation() {
  const r = await api("/api/revocation");
  const policy = el("dl", {},
    el("dt", {}, "on_unavailable"), el("dd", {class: r.on_unavailable === "deny" ? "" : "bad"}, r.on_unavailable),
    el("dt", {}, "fetch CRL distribution points"), el("dd", {}, String(r.fetch_cdp)),
    el("dt", {}, "OCSP"), el("dd", {}, String(r.ocsp_enabled)),
    el("dt", {}, "CRL grace"), el("dd", {}, r.crl_grace_seconds + " s"),
    el("dt", {}, "refresh"), el("dd", {}, r.refresh_seconds + " s"));
  const crls = table(["issuer", "source", "thisUpdate", "nextUpdate", "time left", "entries", "last fetch"],
    r.crls.map((c) => [c.issuer + (c.delta ? " (delta)" : ""), c.source, c.this_update, c.next_update,
                       c.seconds_left === null ? "-" : duration(c.seconds_left), c.entries, attempt(c.last_attempt)]),
    (i) => (r.crls[i].stale || (r.crls[i].last_attempt && !r.crls[i].last_attempt.ok) ? "bad" : ""));
  const failing = r.failing_sources.length
    ? table(["source", "kind", "last attempt"], r.failing_sources.map((s) => [s.source, s.kind, attempt(s.last_attempt)]),
            () => "bad")
    : el("p", {}, "None.");
  const ocsp = r.ocsp_responders.length
    ? table(["responder", "last answer"], r.ocsp_responders.map((o) => [o.url, attempt(o.last_attempt)]),
            (i) => (r.ocsp_responders[i].last_attempt.ok ? "" : "bad"))
    : el("p", {}, r.ocsp_enabled ? "No responder asked yet." : "OCSP is off (tls.revocation.ocsp).");
  show(el("h2", {}, "Policy"), policy, el("h2", {}, "CRLs"), r.crls.length ? crls : el("p", {}, "No CRL loaded."),
       el("h2", {}, "Sources failing before any CRL loaded"), failing,
       el("h2", {}, "OCSP responders"), ocsp,
       el("h2", {}, "Counters"), table(["counter", "value"], Object.entries(r.stats)));
}

// ---- directory ------------------------------------------------------------------------------------------

function pairs(object) {
  return el("dl", {}, Object.entries(object).flatMap(([k, v]) =>
    [el("dt", {}, k), el("dd", {}, Array.isArray(v) ? v.join(", ") : text(typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : v))]));
}

async function directory() {
  const d = await api("/api/directory");
  show(el("h2", {}, "Directory"), d.directory ? pairs(d.directory) : el("p", {}, "No mapping section: the identity is the certificate's UPN."),
       el("h2", {}, "Kerberos"), d.kerberos ? pairs(d.kerberos) : el("p", {}, "Kerberos delegation is off (upstream.auth)."),
       el("h2", {}, "Upstream servers"),
       table(["url", "addresses", "state", "detail"],
             d.upstreams.map((u) => [u.url, u.endpoints.join(", "), u.ok ? "ok" : "failing", u.detail]),
             (i) => (d.upstreams[i].ok ? "" : "bad")));
}

// ---- explain --------------------------------------------------------------------------------------------

function explainResult(x) {
  const verdictClass = (ok) => (ok ? "good" : "bad");
  const parts = [el("h2", {}, "Certificate"), pairs(x.certificate),
                 el("h2", {}, "Chain"), el("p", {class: verdictClass(x.chain.status === "valid")},
                                           x.chain.status + (x.chain.detail ? ": " + x.chain.detail : "")),
                 el("h2", {}, "Revocation"), el("p", {class: verdictClass(x.revocation.admitted)},
                                                x.revocation.status + (x.revocation.reason ? ": " + x.revocation.reason : "") +
                                                " (on_unavailable: " + x.on_unavailable + ")"),
                 el("h2", {}, "Mapping (easedge map-cert --json)")];
  if (!x.mapping) parts.push(el("p", {}, x.mapping_note));
  else {
    const m = x.mapping;
    parts.push(el("p", {class: verdictClass(m.mapped)}, (m.mapped ? "mapped" : "not mapped") + (m.reason ? ": " + m.reason : "")),
               pairs({account: m.account ? m.account.dn : null, sAMAccountName: m.account ? m.account.sAMAccountName : null,
                      method: m.method, strong: m.strong, mode: m.mode}),
               el("h2", {}, "altSecurityIdentities values for this certificate"), pairs(m.bindings));
  }
  return el("div", {id: "explanation"}, parts);
}

function explain() {
  const area = el("textarea", {id: "pem", placeholder: "-----BEGIN CERTIFICATE-----"});
  const file = el("input", {type: "file", id: "file", accept: ".pem,.crt,.cer,.der"});
  const result = el("div", {id: "result"});
  file.addEventListener("change", async () => {
    if (file.files.length) area.value = await file.files[0].text();
  });
  const form = el("form", {id: "explain-form", method: "post", action: "/api/explain"},
                  el("p", {}, "Paste a device certificate (PEM) or choose a file. Never paste a private key: only the certificate is needed."),
                  area, el("p", {}, file, " ", el("button", {type: "submit"}, "Explain")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      result.replaceChildren(explainResult(await api("/api/explain", {method: "POST", body: area.value,
                                                                        headers: {"Content-Type": "application/x-pem-file"}})));
    } catch (error) {
      result.replaceChildren(el("p", {class: "error"}, error.message));
    }
    document.body.dataset.explained = "true";
  });
  show(el("h2", {}, "Explain a certificate"), form, result);
}

// ---- start ----------------------------------------------------------------------------------------------

const VIEWS = {"/": overview, "/devices": devices, "/revocation": revocation, "/directory": directory};

function start() {
  const path = location.pathname;
  for (const a of document.querySelectorAll("header nav a"))
    if (a.getAttribute("href") === path) a.classList.add("active");
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("easedge-token", document.getElementById("token").value);
    location.reload();
  });
  if (path === "/explain") return explain();
  const view = VIEWS[path] || overview;
  const refresh = () => view().catch(failed);
  refresh();
  setInterval(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", start);
