// The web UI of `llm-loadtest serve`: plain JavaScript, no build step, no network beyond this
// server. Every figure comes from the API the command line and CI use; the page keeps only
// the API key (in this tab, or on this device when asked).
"use strict";

const KEY = "llm-loadtest-key";
const view = () => document.getElementById("view");
let socket = null;

function key() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
}

function say(text, bad) {
  const s = document.getElementById("status");
  s.textContent = text || "";
  s.className = bad ? "bad" : "";
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function fmt(v, digits) {
  if (v === undefined || v === null || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits ?? 1 });
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || "HTTP " + status);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + key() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) openKeyDialog("This server needs an API key.");
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, typeof data === "object" ? data : { message: data });
  return data;
}

// --- API key -------------------------------------------------------------------------------

function openKeyDialog(why) {
  const d = document.getElementById("key-dialog");
  if (why) say(why, true);
  if (!d.open) d.showModal();
  document.getElementById("key-input").focus();
}

function setupKeyDialog() {
  const d = document.getElementById("key-dialog");
  document.getElementById("key-button").addEventListener("click", () => openKeyDialog());
  document.getElementById("key-form").addEventListener("submit", () => {
    const k = document.getElementById("key-input").value.trim();
    const remember = document.getElementById("key-remember").checked;
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
    (remember ? localStorage : sessionStorage).setItem(KEY, k);
    document.getElementById("key-input").value = "";
    say("Key set.");
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
    d.close();
    say("Key forgotten.");
  });
}

// --- charts --------------------------------------------------------------------------------

// A line over time: points are [seconds, value]. Drawn whole on each update (a few hundred
// points at most), so the axes always fit the data.
function lineChart(points, unit) {
  const W = 480, H = 200, L = 52, B = 26, T = 8, R = 10;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const good = points.filter((p) => Number.isFinite(p[1]));
  const xmax = Math.max(1, ...good.map((p) => p[0]));
  const ymax = Math.max(1e-9, ...good.map((p) => p[1])) * 1.1;
  const x = (v) => L + (v / xmax) * (W - L - R);
  const y = (v) => H - B - (v / ymax) * (H - B - T);
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" });
  add("text", { x: L - 4, y: T + 10, "text-anchor": "end" }, fmt(ymax, 1));
  add("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0");
  add("text", { x: W - R, y: H - 6, "text-anchor": "end" }, fmt(xmax, 0) + " s");
  add("text", { x: L, y: H - 6 }, unit);
  if (good.length > 0) {
    const d = good.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    add("path", { d: d.join(" "), class: "line" });
    // The latest point, so a single one shows too.
    const [lx, ly] = good[good.length - 1];
    add("circle", { cx: x(lx).toFixed(1), cy: y(ly).toFixed(1), r: 3, class: "dot" });
  }
  svg.setAttribute(
    "aria-label",
    good.length ? `${good.length} points, last ${fmt(good[good.length - 1][1])} ${unit}` : "no data yet"
  );
  return svg;
}

// --- views ---------------------------------------------------------------------------------

const FIELDS = [
  ["server", "Server URL", "text", "http://127.0.0.1:8000"],
  ["model", "Model", "text", "", "the server's first model when empty"],
  ["adapter", "Adapter", "select", "vllm", "", ["vllm", "openai", "sglang", "tgi", "ollama", "triton"]],
  ["concurrency", "Concurrency levels", "text", "1,8", "comma-separated"],
  ["num-prompts", "Requests per level", "number", "100"],
  ["duration", "Or: time per level", "text", "", "e.g. 30s; replaces the request count"],
  ["input-len", "Input tokens", "number", ""],
  ["output-len", "Output tokens", "number", ""],
  ["slo", "SLO", "text", "", "e.g. ttft:500ms,tpot:50ms"],
  ["tags", "Tags", "text", "", "comma-separated"],
];

function runView() {
  const form = el("form", { class: "grid", novalidate: true, "aria-labelledby": "run-title" });
  // Uploaded adapters join the built-in ones in the list.
  api("GET", "/api/v1/plugins").then((all) => {
    const select = form.elements["adapter"];
    const have = new Set([...select.options].map((o) => o.value));
    for (const p of all) {
      if (p.kind === "adapter" && !have.has(p.name)) select.append(el("option", { value: p.name }, p.name));
    }
  }).catch(() => {});
  for (const [name, label, type, value, hint, options] of FIELDS) {
    const id = "f-" + name;
    const input =
      type === "select"
        ? el("select", { id, name }, options.map((o) => el("option", { value: o, selected: o === value }, o)))
        : el("input", { id, name, type, value, inputmode: type === "number" ? "numeric" : undefined });
    form.append(
      el("div", {},
        el("label", { for: id }, label),
        input,
        hint ? el("p", { class: "hint", id: id + "-hint" }, hint) : null,
        el("p", { class: "error", id: id + "-error" }))
    );
  }
  form.append(el("div", { class: "actions" }, el("button", { type: "submit", id: "start-run" }, "Start run")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll(".error")) e.textContent = "";
    for (const e of form.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
    const body = {};
    for (const [name, , type] of FIELDS) {
      const v = form.elements[name].value.trim();
      if (!v) continue;
      if (name === "concurrency") body[name] = v.split(",").map((s) => Number(s.trim()));
      else if (name === "tags") body[name] = v.split(",").map((s) => s.trim()).filter(Boolean);
      else body[name] = type === "number" ? Number(v) : v;
    }
    if (body.duration) delete body["num-prompts"];
    try {
      const job = await api("POST", "/api/v1/benchmark/run", body);
      say(`Run ${job.id} ${job.status}.`);
      location.hash = "#/live/" + job.id;
    } catch (e) {
      const field = e.body && e.body.field;
      const input = field && form.elements[field];
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", "f-" + field + "-error");
        document.getElementById("f-" + field + "-error").textContent = e.body.reason;
        input.focus();
      }
      say(e.message, true);
    }
  });
  return [el("h2", { id: "run-title" }, "New run"), form];
}

function card(label, id) {
  return el("div", { class: "card" }, el("div", { class: "k" }, label), el("div", { class: "v", id }, "–"));
}

function liveView(id) {
  const head = el("p", { id: "live-state" }, "Connecting…");
  const cancel = el("button", { type: "button", class: "secondary", id: "cancel" }, "Cancel run");
  const cards = el("div", { class: "cards", "aria-live": "off" },
    card("Level", "c-level"), card("Sent", "c-sent"), card("Completed", "c-completed"),
    card("Failed", "c-failed"), card("In flight", "c-inflight"), card("Output tok/s", "c-tps"),
    card("TTFT p50 ms", "c-ttft50"), card("TTFT p99 ms", "c-ttft99"), card("ITL p99 ms", "c-itl99"));
  const tpsFig = el("figure", {}, el("figcaption", {}, "Output tokens per second"));
  const ttftFig = el("figure", {}, el("figcaption", {}, "TTFT p99 (ms)"));
  const itlFig = el("figure", {}, el("figcaption", {}, "ITL p99 (ms)"));
  const after = el("div", { id: "live-end" });
  const series = { tps: [], ttft: [], itl: [] };
  let prev = null, offset = 0, lastLevel = null;
  const draw = () => {
    tpsFig.replaceChildren(tpsFig.firstChild, lineChart(series.tps, "tok/s"));
    ttftFig.replaceChildren(ttftFig.firstChild, lineChart(series.ttft, "ms"));
    itlFig.replaceChildren(itlFig.firstChild, lineChart(series.itl, "ms"));
  };
  draw();
  const show = (s) => {
    if (s.level !== lastLevel) {
      // A new level starts its clock at zero: the charts run on across levels.
      if (prev) offset = prev.t;
      lastLevel = s.level;
      prev = null;
    }
    const t = offset + s.elapsed_s;
    const set = (k, v) => (document.getElementById(k).textContent = v);
    set("c-level", s.level);
    set("c-sent", fmt(s.sent, 0));
    set("c-completed", fmt(s.completed, 0));
    set("c-failed", fmt(s.failed, 0));
    set("c-inflight", fmt(s.in_flight, 0));
    set("c-ttft50", fmt(s.ttft_p50_ms));
    set("c-ttft99", fmt(s.ttft_p99_ms));
    set("c-itl99", fmt(s.itl_p99_ms));
    if (prev && t > prev.t) {
      const tps = (s.output_tokens - prev.tokens) / (t - prev.t);
      set("c-tps", fmt(tps, 0));
      series.tps.push([t, tps]);
    }
    if (s.ttft_p99_ms !== null && s.ttft_p99_ms !== undefined) series.ttft.push([t, s.ttft_p99_ms]);
    if (s.itl_p99_ms !== null && s.itl_p99_ms !== undefined) series.itl.push([t, s.itl_p99_ms]);
    prev = { t, tokens: s.output_tokens };
    draw();
  };
  const finish = (f) => {
    cancel.disabled = true;
    head.textContent = `Run ${id}: ${f.status}${f.reason ? " — " + f.reason : ""}`;
    say(`Run ${id} ${f.status}.`, f.status !== "complete");
    const rows = ((f.result && f.result.levels) || []).map((l) =>
      el("tr", {},
        el("th", { scope: "row" }, l.label),
        el("td", { class: "num" }, fmt(l.summary.completed, 0)),
        el("td", { class: "num" }, fmt(l.summary.failed, 0)),
        el("td", { class: "num" }, fmt(l.summary.output_throughput, 1)),
        el("td", { class: "num" }, fmt(l.summary.ttft_ms.p99)),
        el("td", { class: "num" }, fmt(l.summary.itl_ms.p99))));
    after.replaceChildren(
      rows.length
        ? el("div", { class: "table-wrap" }, el("table", {},
            el("thead", {}, el("tr", {}, ["Level", "Completed", "Failed", "Output tok/s", "TTFT p99 ms", "ITL p99 ms"]
              .map((h, i) => el("th", { scope: "col", class: i ? "num" : undefined }, h)))),
            el("tbody", {}, rows)))
        : "",
      el("p", {}, el("a", { href: "#/report/" + id, class: "button", id: "open-report" }, "Open the report")));
  };
  cancel.addEventListener("click", async () => {
    try {
      await api("POST", `/api/v1/benchmark/run/${id}/cancel`);
      say("Stopping; what was measured is kept.");
    } catch (e) {
      say(e.message, true);
    }
  });
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/run/" + encodeURIComponent(id);
  socket = new WebSocket(url, ["llm-loadtest", "bearer." + key()]);
  let search = false;
  socket.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.event === "snapshot") {
      search = f.work === "recommend";
      head.textContent = `${search ? "Search" : "Run"} ${id}: ${f.status}` +
        (f.level_index !== null && !search ? `, level ${f.level_index + 1} of ${f.levels}` : "");
      if (f.current) show(f.current);
    } else if (f.event === "progress") {
      if (f.kind === "level-started") {
        head.textContent = search
          ? `Search ${id}: running, probe ${f.level}`
          : `Run ${id}: running, level ${f.index + 1} of ${f.of}`;
      }
      else show(f);
    } else if (f.event === "finished") {
      finish(f);
    }
  };
  socket.onerror = () => say("The live connection failed (is the key right? is the run this server's?)", true);
  return [el("h2", {}, "Run " + id), head, cancel, cards, el("div", { class: "charts" }, tpsFig, ttftFig, itlFig), after];
}

const PAGE = 20;

function historyView(params) {
  const offset = Number(params.get("offset") || 0);
  const filters = el("form", { class: "grid", role: "search" });
  for (const [name, label, hint] of [
    ["model", "Model contains", ""], ["server", "Server contains", ""],
    ["since", "Since", "2025-03-14, or an age: 7d"], ["tag", "Tags", "comma-separated, all must match"]]) {
    filters.append(el("div", {},
      el("label", { for: "h-" + name }, label),
      el("input", { id: "h-" + name, name, value: params.get(name) || "" }),
      hint ? el("p", { class: "hint" }, hint) : null));
  }
  filters.append(el("div", { class: "actions" }, el("button", { type: "submit" }, "Filter")));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const n of ["model", "server", "since", "tag"]) if (filters.elements[n].value.trim()) q.set(n, filters.elements[n].value.trim());
    location.hash = "#/history?" + q;
  });
  const compare = el("button", { type: "button", disabled: true, id: "compare" }, "Compare selected");
  const out = el("div", { class: "table-wrap" }, el("p", {}, "Loading…"));
  const q = new URLSearchParams(params);
  q.set("limit", PAGE);
  q.set("offset", offset);
  api("GET", "/api/v1/benchmark/history?" + q).then((page) => {
    const picked = new Set();
    compare.addEventListener("click", () => (location.hash = "#/compare?ids=" + [...picked].join(",")));
    const rows = page.runs.map((r) => {
      const box = el("input", { type: "checkbox", "aria-label": "compare " + r.id });
      box.addEventListener("change", () => {
        box.checked ? picked.add(r.id) : picked.delete(r.id);
        compare.disabled = picked.size < 2;
      });
      return el("tr", {},
        el("td", {}, box),
        el("th", { scope: "row" }, el("a", { href: "#/report/" + r.id }, r.id)),
        el("td", {}, el("span", { class: "badge " + r.status }, r.status)),
        el("td", {}, r.started_at.slice(0, 19).replace("T", " ")),
        el("td", {}, r.model), el("td", {}, r.server), el("td", {}, r.levels.join(", ")),
        el("td", { class: "num" }, fmt(r.completed, 0) + (r.failed ? ` (${fmt(r.failed, 0)} failed)` : "")),
        el("td", { class: "num" }, fmt(r.best_output_throughput, 1)),
        el("td", {}, r.tags.join(", ")));
    });
    const nav = el("p", {},
      offset > 0 ? el("a", { href: "#/history?" + withOffset(params, offset - PAGE) }, "← newer") : "",
      ` ${page.total ? offset + 1 : 0}–${offset + page.runs.length} of ${page.total} `,
      offset + PAGE < page.total ? el("a", { href: "#/history?" + withOffset(params, offset + PAGE) }, "older →") : "");
    out.replaceChildren(
      page.runs.length
        ? el("table", {},
            el("thead", {}, el("tr", {}, ["", "Run", "Status", "Started (UTC)", "Model", "Server", "Levels", "Completed", "Best tok/s", "Tags"]
              .map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, rows))
        : el("p", {}, "No saved runs match."),
      nav);
  }).catch((e) => {
    out.replaceChildren(el("p", { class: "error" }, e.message));
  });
  return [el("h2", {}, "History"), filters, el("div", { class: "actions" }, compare), out];
}

function withOffset(params, offset) {
  const q = new URLSearchParams(params);
  q.set("offset", Math.max(0, offset));
  return q.toString();
}

// Reports are the same standalone HTML files `export` writes, shown in a sandboxed frame
// (no scripts run in it).
function reportFrame(html, title) {
  const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
  return el("iframe", { class: "report", src: url, title, sandbox: "" });
}

function download(id, format) {
  return el("button", {
    type: "button", class: "secondary",
    onclick: async () => {
      try {
        const text = await fetch(`/api/v1/benchmark/export/${id}?format=${format}`, {
          headers: { Authorization: "Bearer " + key() },
        }).then((r) => (r.ok ? r.blob() : Promise.reject(new Error("HTTP " + r.status))));
        const a = el("a", { href: URL.createObjectURL(text), download: `${id}.${format === "vllm" ? "vllm.json" : format}` });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (e) {
        say(e.message, true);
      }
    },
  }, "Download " + format.toUpperCase());
}

function reportView(id) {
  const box = el("div", {}, el("p", {}, "Loading the report…"));
  api("GET", `/api/v1/benchmark/export/${encodeURIComponent(id)}?format=html`)
    .then((html) => box.replaceChildren(reportFrame(html, "Report of run " + id)))
    .catch((e) => box.replaceChildren(el("p", { class: "error" }, e.message)));
  return [el("h2", {}, "Run " + id),
    el("div", { class: "actions" }, ["csv", "json", "md", "vllm"].map((f) => download(id, f))), box];
}

function compareView(params) {
  const ids = (params.get("ids") || "").split(",").filter(Boolean);
  const box = el("div", {}, el("p", {}, "Comparing…"));
  api("POST", "/api/v1/benchmark/compare", { ids, format: "html" })
    .then((html) => box.replaceChildren(reportFrame(html, "Comparison of " + ids.join(", "))))
    .catch((e) => box.replaceChildren(el("p", { class: "error" }, e.message)));
  return [el("h2", {}, "Compare " + ids.join(" · ")), box];
}

function pluginsView() {
  const out = el("div", { class: "table-wrap" }, el("p", {}, "Loading…"));
  const load = () => api("GET", "/api/v1/plugins").then((all) => {
    out.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ["Name", "Kind", "Version", "Origin", "sha256", "Description"]
        .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, all.map((p) => el("tr", {},
        el("th", { scope: "row" }, p.name), el("td", {}, p.kind), el("td", {}, p.version),
        el("td", {}, p.origin + (p.uploaded_by ? ` by ${p.uploaded_by}` : "")),
        el("td", {}, el("code", { title: p.sha256 }, p.sha256.slice(0, 12))),
        el("td", {}, p.description))))));
  }).catch((e) => out.replaceChildren(el("p", { class: "error" }, e.message)));
  const form = el("form", { class: "grid", "aria-labelledby": "upload-title" },
    el("div", {}, el("label", { for: "p-file" }, "Component (.wasm)"),
      el("input", { id: "p-file", name: "file", type: "file", accept: ".wasm,application/wasm", required: true })),
    el("div", {}, el("label", { for: "p-name" }, "Name"),
      el("input", { id: "p-name", name: "name", spellcheck: "false" }),
      el("p", { class: "hint" }, "what runs will call it; empty: the name it gives itself")),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "upload" }, "Check and upload")));
  const verdict = el("pre", { id: "upload-verdict", class: "verdict", hidden: true });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = form.elements["file"].files[0];
    if (!file) return say("Choose a .wasm file first.", true);
    const name = form.elements["name"].value.trim();
    say("Checking " + file.name + "…");
    try {
      const r = await fetch("/api/v1/plugins" + (name ? "?name=" + encodeURIComponent(name) : ""), {
        method: "POST",
        headers: { Authorization: "Bearer " + key(), "Content-Type": "application/wasm" },
        body: file,
      });
      const data = await r.json();
      if (!r.ok) throw new ApiError(r.status, data);
      const c = data.conformance;
      say(`Uploaded ${data.plugin.name} (${data.plugin.kind})` +
        (c ? (c.passed ? ", conformance passed." : ", but conformance failed: see below.") : "."), c && !c.passed);
      verdict.hidden = !c;
      verdict.textContent = c ? c.report : "";
      load();
    } catch (e) {
      say(e.body && e.body.reason ? e.body.reason : e.message, true);
    }
  });
  load();
  return [el("h2", {}, "Plugins"), out, el("h2", { id: "upload-title" }, "Upload an adapter or policy"), form, verdict];
}

// --- routing -------------------------------------------------------------------------------

function route() {
  if (socket) {
    socket.close();
    socket = null;
  }
  const [path, query] = (location.hash.slice(1) || "/history").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  let content;
  if (parts[0] === "run") content = runView();
  else if (parts[0] === "live" && parts[1]) content = liveView(decodeURIComponent(parts[1]));
  else if (parts[0] === "report" && parts[1]) content = reportView(decodeURIComponent(parts[1]));
  else if (parts[0] === "compare") content = compareView(params);
  else if (parts[0] === "plugins") content = pluginsView();
  else content = historyView(params);
  view().replaceChildren(...content);
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#/" + parts[0]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  view().focus();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  setupKeyDialog();
  // A server that needs a key answers 401, which asks for one; an open one answers.
  if (!key()) api("GET", "/api/v1/benchmark/history?limit=1").catch(() => {});
  route();
});
