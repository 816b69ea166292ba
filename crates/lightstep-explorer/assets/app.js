// The explorer's pages: search, trace (waterfall), contribution, compare.
//
// Every name, attribute and id shown here comes from whoever sent the spans. It is put in the
// page as text only (`textContent`, text nodes), never as markup; links are built from the
// explorer's own paths with ids percent-encoded. The server's Content-Security-Policy forbids
// inline script anyway: this file is the only script the page runs.
//
// The waterfall holds only the rows on screen: it asks the server for windows of rows
// (`/api/trace-rows`), so a trace of a million spans costs the page what a trace of a hundred
// does.
//
// Automation hooks (stable, documented in docs/explorer.md): each trace row of the search list
// carries `data-trace-id`; each span row of the waterfall carries `data-span-id` (lowercase hex)
// and `data-critical="true"` when the span is on the critical path in the selected mode.
//
// Measurement hooks (`performance.mark`, read by the browser benchmark, benches/browser.rs):
// `explorer:rows-drawn` and `explorer:rows-painted` when a trace view first shows rows,
// `explorer:draw` on every redraw of the waterfall (with the rows drawn and missing and the pages
// of rows held), `explorer:list-drawn` and `explorer:list-painted` when the search list is
// drawn. Only the latest mark of each name is kept, so that a long session does not fill the
// performance buffer.

const ROW_HEIGHT = 24;
const PAGE_ROWS = 200;
// Pages of waterfall rows kept on either side of the pages on screen.
const KEEP_PAGES = 2;
// Trace rows of the search list drawn at a time.
const LIST_PAGE_ROWS = 100;
const OVERSCAN = 20;
// Browsers cap the height of an element; past this the scrollbar is scaled.
const MAX_SCROLL_PX = 8_000_000;
const SERVICE_COLOURS = 12;

const main = document.getElementById("main");

// ---- small helpers ------------------------------------------------------------------------

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A link to one of the explorer's own pages. */
function link(path, text, attrs) {
  return el("a", { href: path, ...attrs }, text);
}

function tracePath(id, mode, span) {
  const params = new URLSearchParams();
  if (mode && mode !== "robust") params.set("mode", mode);
  if (span) params.set("span", span);
  const query = params.toString();
  return `/trace/${encodeURIComponent(id)}${query ? "?" + query : ""}`;
}

function formatDuration(ns) {
  ns = Number(ns);
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)}µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(2)}ms`;
  return `${(ns / 1e9).toFixed(3)}s`;
}

function formatPercent(share) {
  return `${(100 * Number(share)).toFixed(1)}%`;
}

function formatTime(unixNano) {
  const ms = Number(BigInt(unixNano) / 1000000n);
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new Error(`${response.status} ${response.statusText}`);
  }
  if (!response.ok) {
    const message = body && body.errors && body.errors[0] ? body.errors[0].msg : response.statusText;
    throw new Error(message);
  }
  return body;
}

function showError(where, error) {
  where.replaceChildren(el("p", { class: "error", role: "alert" }, String(error.message || error)));
}

/**
 * A service as the pages show it: spans whose resource has no `service.name` are under the name
 * Jaeger gives them, the one the search page's list of services offers.
 */
function serviceName(service) {
  return service || "OTLPResourceNoServiceName";
}

function serviceClass(services, service) {
  const index = Math.max(0, services.indexOf(service));
  return `svc svc-${index % SERVICE_COLOURS}`;
}

/** Records `name` now (with `detail`), replacing the previous mark of that name. */
function mark(name, detail) {
  performance.clearMarks(name);
  performance.mark(name, { detail });
}

/** Marks `name` once the frame that shows what was just drawn has been rendered. */
function markPainted(name, detail) {
  requestAnimationFrame(() => setTimeout(() => mark(name, detail)));
}

function setTitle(...parts) {
  document.title = [...parts, "lightstep explorer"].filter(Boolean).join(" · ");
}

// ---- routing ------------------------------------------------------------------------------

let teardown = () => {};

function navigate(path, replace) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function render() {
  teardown();
  teardown = () => {};
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  for (const id of ["nav-search", "nav-contribution", "nav-compare"]) {
    document.getElementById(id).classList.remove("current");
  }
  if (path.startsWith("/trace/")) {
    const id = decodeURIComponent(path.slice("/trace/".length));
    teardown = traceView(id, params);
  } else if (path === "/contribution") {
    document.getElementById("nav-contribution").classList.add("current");
    contributionView(params);
  } else if (path === "/compare" || path.startsWith("/compare/")) {
    document.getElementById("nav-compare").classList.add("current");
    const ids = path.split("/").slice(2).filter(Boolean).map(decodeURIComponent);
    compareView(ids, params);
  } else {
    document.getElementById("nav-search").classList.add("current");
    teardown = searchView(params);
  }
}

// Links to the explorer's own pages change the view without reloading the page.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const a = event.target.closest("a[href]");
  if (!a || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);

// What the store holds, in the header; new traces show up in the search list as they arrive.
let generation = null;
const generationListeners = new Set();
async function pollStatus() {
  try {
    const status = await api("/api/status");
    const held = document.getElementById("held");
    const evicted = status.evicted_traces ? `, ${status.evicted_traces} older pushed out` : "";
    held.textContent = `${status.traces} traces, ${status.spans} spans held${evicted}`;
    if (generation !== null && status.generation !== generation) {
      for (const listener of generationListeners) listener();
    }
    generation = status.generation;
  } catch {
    // The next poll tries again.
  }
}
setInterval(() => {
  if (document.visibilityState === "visible") pollStatus();
}, 2000);
pollStatus();

// ---- search -------------------------------------------------------------------------------

/** The search's filters as the page's URL and the API both take them. */
function searchQuery(params) {
  const out = new URLSearchParams();
  for (const key of ["service", "operation", "minDuration", "maxDuration", "traceID", "sort", "limit"]) {
    const value = params.get(key);
    if (value) out.set(key, value);
  }
  for (const tag of params.getAll("tag")) if (tag) out.append("tag", tag);
  return out;
}

function searchView(params) {
  setTitle("Search");
  const query = searchQuery(params);
  const tags = query.getAll("tag");
  const errorsOnly = tags.includes("error:true");
  const attribute = tags.find((t) => t !== "error:true") || "";

  const service = el("select", { name: "service", id: "f-service" }, el("option", { value: "" }, "any service"));
  const operation = el("select", { name: "operation", id: "f-operation" }, el("option", { value: "" }, "any operation"));
  const input = (name, label, value, placeholder) =>
    el("label", {}, label, el("input", { name, id: `f-${name}`, value: value || "", placeholder, autocomplete: "off" }));
  const attributeInput = el("input", {
    name: "attribute", id: "f-attribute", value: attribute.replace(":", "="), placeholder: "key=value", autocomplete: "off",
  });
  const errors = el("input", { type: "checkbox", name: "errors", id: "f-errors", checked: errorsOnly });
  const sort = el("select", { name: "sort", id: "f-sort" },
    el("option", { value: "start", selected: query.get("sort") !== "duration" }, "newest first"),
    el("option", { value: "duration", selected: query.get("sort") === "duration" }, "longest first"));
  const form = el("form", { class: "filters", id: "search-form" },
    el("label", {}, "Service", service),
    el("label", {}, "Operation", operation),
    el("label", {}, "Attribute", attributeInput),
    input("minDuration", "Min duration", query.get("minDuration"), "e.g. 100ms"),
    input("maxDuration", "Max duration", query.get("maxDuration"), "e.g. 2s"),
    input("traceID", "Trace id", query.get("traceID"), "hex"),
    el("label", { class: "check" }, errors, "Errors only"),
    el("label", {}, "Sort", sort),
    input("limit", "Limit", query.get("limit"), "100"),
    el("button", { type: "submit", id: "f-submit" }, "Find traces"));
  const summary = el("p", { class: "muted", id: "search-summary" });
  const results = el("div", { id: "results" });
  main.replaceChildren(el("h1", {}, "Traces"), form, summary, results);

  const fillOperations = async (selected) => {
    operation.replaceChildren(el("option", { value: "" }, "any operation"));
    if (!service.value) return;
    try {
      const ops = await api(`/api/services/${encodeURIComponent(service.value)}/operations`);
      for (const op of ops.data) operation.append(el("option", { value: op, selected: op === selected }, op));
    } catch (error) {
      showError(results, error);
    }
  };
  (async () => {
    try {
      const services = await api("/api/services");
      for (const s of services.data) service.append(el("option", { value: s, selected: s === query.get("service") }, s));
      if (query.get("service") && !services.data.includes(query.get("service"))) {
        service.append(el("option", { value: query.get("service"), selected: true }, query.get("service")));
      }
      await fillOperations(query.get("operation"));
    } catch (error) {
      showError(results, error);
    }
  })();
  service.addEventListener("change", () => fillOperations(""));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const data = new FormData(form);
    for (const key of ["service", "operation", "minDuration", "maxDuration", "traceID", "limit"]) {
      const value = String(data.get(key) || "").trim();
      if (value) next.set(key, value);
    }
    if (data.get("sort") === "duration") next.set("sort", "duration");
    const attr = String(data.get("attribute") || "").trim();
    if (attr) {
      const at = attr.indexOf("=");
      next.append("tag", at < 0 ? attr : `${attr.slice(0, at)}:${attr.slice(at + 1)}`);
    }
    if (data.get("errors")) next.append("tag", "error:true");
    navigate(`/search${next.toString() ? "?" + next : ""}`);
  });

  // Kept across the redraws that arriving traces cause: the traces ticked for comparison and
  // how far down the list was drawn, so that new traces neither untick a box nor pull the list
  // back to its first page.
  const selected = new Set();
  let drawnRows = 0;
  const listObservers = new Set();
  const stopObservers = () => {
    for (const observer of listObservers) observer.disconnect();
    listObservers.clear();
  };
  const load = async () => {
    try {
      const found = await api(`/api/search?${query}`);
      stopObservers();
      const listed = new Set(found.traces.map((t) => t.trace_id));
      for (const id of [...selected]) if (!listed.has(id)) selected.delete(id);
      const refused = found.refused_traces ? `; ${found.refused_traces} too large to hold` : "";
      summary.replaceChildren(
        `${found.traces.length} of ${found.matched} matching traces (${found.stored} held${refused}) `,
        link(`/contribution?${query}`, "contribution of these traces", { id: "to-contribution" }));
      results.replaceChildren(resultsTable(found.traces));
      const drawn = { rows: results.querySelectorAll("tr[data-trace-id]").length, listed: found.traces.length };
      mark("explorer:list-drawn", drawn);
      markPainted("explorer:list-painted", drawn);
    } catch (error) {
      showError(results, error);
    }
  };
  load();
  const onNewTraces = () => load();
  generationListeners.add(onNewTraces);

  function resultsTable(traces) {
    if (traces.length === 0) return el("p", { class: "muted" }, "No traces match.");
    const compare = el("button", { type: "button", id: "compare-selected", disabled: selected.size !== 2 }, "Compare the two selected");
    compare.addEventListener("click", () => {
      const [a, b] = [...selected];
      navigate(`/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`);
    });
    const extremes = el("button", { type: "button", id: "compare-extremes" }, "Compare fastest and slowest");
    extremes.disabled = traces.length < 2;
    extremes.addEventListener("click", () => {
      const sorted = [...traces].sort((x, y) => x.duration_ns - y.duration_ns);
      navigate(`/compare/${encodeURIComponent(sorted[0].trace_id)}/${encodeURIComponent(sorted[sorted.length - 1].trace_id)}`);
    });
    const body = el("tbody");
    const longest = Math.max(...traces.map((t) => Number(t.duration_ns)), 1);
    const row = (t) => {
      const box = el("input", { type: "checkbox", "aria-label": "select for comparison", checked: selected.has(t.trace_id) });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(t.trace_id);
        else selected.delete(t.trace_id);
        compare.disabled = selected.size !== 2;
      });
      const bar = el("span", { class: "duration-bar" });
      bar.style.width = `${(100 * Number(t.duration_ns)) / longest}%`;
      return el("tr", { "data-trace-id": t.trace_id, class: "trace-row" },
        el("td", {}, box),
        el("td", {}, link(tracePath(t.trace_id), `${serviceName(t.root_service)}: ${t.root_operation}`, { class: "trace-link" }),
          el("div", { class: "muted mono" }, t.trace_id)),
        el("td", { class: "mono" }, formatTime(t.start_unix_nano)),
        el("td", { class: "num" }, formatDuration(t.duration_ns), el("div", { class: "bar-track" }, bar)),
        el("td", { class: "num" }, String(t.spans)),
        el("td", { class: t.errors ? "num errors" : "num" }, String(t.errors)),
        el("td", {}, t.services.map((s) => el("span", { class: "chip" }, `${serviceName(s.service)} ${s.spans}`))));
    };
    // Rows are drawn a page at a time, the next page when the end of the list comes near the
    // screen: a table of thousands of rows takes seconds to lay out, and few are ever seen.
    const more = el("p", { class: "muted", id: "list-more" });
    const drawMore = (rows = LIST_PAGE_ROWS) => {
      const from = body.rows.length;
      const to = Math.min(traces.length, from + rows);
      const fragment = document.createDocumentFragment();
      for (let i = from; i < to; i++) fragment.append(row(traces[i]));
      body.append(fragment);
      drawnRows = to;
      more.textContent = to < traces.length ? `${to} of ${traces.length} drawn; scroll for more` : "";
      return to < traces.length;
    };
    drawMore(Math.max(LIST_PAGE_ROWS, drawnRows));
    if (body.rows.length < traces.length) {
      const observer = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        if (!drawMore()) return observer.disconnect();
        // Observed again, so that it reports at once if the end is still near the screen.
        observer.unobserve(more);
        observer.observe(more);
      }, { rootMargin: "0px 0px 800px 0px" });
      observer.observe(more);
      listObservers.add(observer);
    }
    return el("div", {},
      el("div", { class: "actions" }, compare, extremes),
      el("table", { class: "traces", id: "trace-list" },
        el("thead", {}, el("tr", {}, el("th", {}), el("th", {}, "Root"), el("th", {}, "Start"),
          el("th", {}, "Duration"), el("th", {}, "Spans"), el("th", {}, "Errors"), el("th", {}, "Services"))),
        body),
      more);
  }

  return () => {
    generationListeners.delete(onNewTraces);
    stopObservers();
  };
}

// ---- trace: the waterfall -----------------------------------------------------------------

function traceView(traceId, params) {
  const mode = params.get("mode") === "jaeger" ? "jaeger" : "robust";
  setTitle(`Trace ${traceId}`);
  const state = {
    mode,
    collapsed: new Set(),
    pages: new Map(),
    loading: new Set(),
    version: 0,
    visible: 0,
    meta: null,
    selectedRow: -1,
    selectedSpan: params.get("span") || null,
    scale: 1,
    closed: false,
    shown: false,
  };
  performance.clearMarks("explorer:rows-drawn");
  performance.clearMarks("explorer:rows-painted");

  const header = el("div", { class: "trace-header" });
  const diagnostics = el("div", { class: "diagnostics", id: "diagnostics" });
  const axis = el("div", { class: "axis", id: "axis" });
  const spacer = el("div", { class: "spacer" });
  const layer = el("div", { class: "rows", role: "tree", "aria-label": "spans" });
  const viewport = el("div", { class: "viewport", id: "waterfall", tabindex: "0" }, spacer, layer);
  const details = el("aside", { class: "details", id: "details" }, el("p", { class: "muted" }, "Select a span to see its details."));
  const errorBox = el("div");
  main.replaceChildren(header, diagnostics, errorBox,
    el("div", { class: "trace-body" }, el("div", { class: "waterfall" }, axis, viewport), details));

  const modeSwitch = el("div", { class: "mode-switch", role: "group", "aria-label": "critical-path mode" },
    ...["robust", "jaeger"].map((m) => {
      const button = el("button", { type: "button", id: `mode-${m}`, "aria-pressed": String(m === mode) }, m);
      button.addEventListener("click", () => {
        if (m !== state.mode) navigate(tracePath(traceId, m, state.selectedSpan));
      });
      return button;
    }));

  function rowsQuery(offset) {
    // The width the bars are drawn at (at most the viewport's), so that the server merges
    // critical sections no pixel could show apart.
    const px = Math.max(1, Math.ceil(viewport.clientWidth || window.innerWidth));
    const q = new URLSearchParams({ mode: state.mode, offset: String(offset), limit: String(PAGE_ROWS), px: String(px) });
    if (state.collapsed.size) q.set("collapsed", [...state.collapsed].join(","));
    return `/api/trace-rows/${encodeURIComponent(traceId)}?${q}`;
  }

  async function loadPage(page) {
    const key = `${state.version}:${page}`;
    if (state.pages.has(page) || state.loading.has(key)) return;
    state.loading.add(key);
    const version = state.version;
    try {
      const data = await api(rowsQuery(page * PAGE_ROWS));
      if (state.closed || version !== state.version) return;
      state.pages.set(page, data.rows);
      if (state.meta === null) showMeta(data);
      state.meta = data;
      setVisible(data.visible_rows);
      draw();
    } catch (error) {
      if (!state.closed) showError(errorBox, error);
    } finally {
      state.loading.delete(key);
    }
  }

  function rowAt(index) {
    const page = state.pages.get(Math.floor(index / PAGE_ROWS));
    return page ? page[index % PAGE_ROWS] : undefined;
  }

  function setVisible(count) {
    state.visible = count;
    const total = count * ROW_HEIGHT;
    state.scale = total > MAX_SCROLL_PX ? total / MAX_SCROLL_PX : 1;
    spacer.style.height = `${total / state.scale}px`;
  }

  function showMeta(data) {
    header.replaceChildren(
      el("h1", {}, `${serviceName(data.root_service)}: ${data.root_operation}`),
      el("div", { class: "facts" },
        el("span", { class: "mono", id: "trace-id" }, data.trace_id),
        el("span", {}, `duration ${formatDuration(data.duration_ns)}`),
        el("span", {}, `${data.spans} spans`),
        el("span", { id: "critical-summary" },
          `critical path ${formatDuration(data.critical_path_ns)} over ${data.critical_spans} spans`),
        modeSwitch,
        link(`/api/traces/${encodeURIComponent(traceId)}`, "Jaeger JSON", { target: "_blank" }),
        link(`/api/critical-path/${encodeURIComponent(traceId)}?mode=${state.mode}`, "critical path JSON", { target: "_blank" })));
    const d = data.diagnostics;
    const repaired = [
      ["roots", d.roots > 1 ? d.roots : 0, "roots"],
      ["orphans", d.orphans, "orphans (parent missing)"],
      ["clamped", d.clamped, "clamped into their parent"],
      ["detached", d.detached, "outside their parent"],
      ["skew", d.skew_applied, "moved for clock skew"],
      ["cycles", d.cycles_cut, "cycles cut"],
      ["duplicates", d.duplicate_ids, "duplicate ids"],
      ["negative", d.negative_durations, "negative durations"],
      ["non-blocking", d.non_blocking, "non-blocking"],
      ["dropped", d.dropped, "left out by Jaeger's preprocessing"],
    ].filter(([, n]) => n > 0);
    diagnostics.replaceChildren(
      el("span", { class: "muted" }, `assembly (${state.mode} mode): `),
      repaired.length === 0 ? el("span", {}, "nothing repaired") : "",
      ...repaired.map(([key, n, what]) => el("span", { class: "diag", "data-diagnostic": key }, `${n} ${what}`)),
      d.jaeger_failure ? el("span", { class: "diag warn" }, `Jaeger UI shows no or a wrong path: ${d.jaeger_failure}`) : "");
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    axis.replaceChildren(el("div", { class: "axis-label" }, "service: operation"),
      el("div", { class: "axis-scale" }, ...ticks.map((t) => {
        const tick = el("span", { class: "tick" }, formatDuration(Math.round(t * data.duration_ns)));
        tick.style.left = `${t * 100}%`;
        return tick;
      })));
  }

  // The elements of the rows on screen, by the row they show: a redraw builds only the rows
  // that came into view and moves the others, so that scrolling restyles a few rows a frame.
  let drawnRows = new Map();

  function draw() {
    if (!state.meta) return;
    const scrollTop = viewport.scrollTop;
    const top = scrollTop * state.scale;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(state.visible, Math.ceil((top + viewport.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    const firstPage = Math.floor(first / PAGE_ROWS);
    const lastPage = Math.floor(Math.max(first, last - 1) / PAGE_ROWS);
    for (let page = firstPage; page <= lastPage; page++) loadPage(page);
    // Pages far from the screen are dropped: a long scroll through a large trace must not end
    // with every row of it held in the tab.
    for (const page of state.pages.keys()) {
      if (page < firstPage - KEEP_PAGES || page > lastPage + KEEP_PAGES) state.pages.delete(page);
    }
    layer.style.top = `${scrollTop}px`;
    const duration = Math.max(1, Number(state.meta.duration_ns));
    const nodes = [];
    const kept = new Map();
    let missing = 0;
    let critical = 0;
    for (let index = first; index < last; index++) {
      const row = rowAt(index);
      if (!row) {
        missing += 1;
        continue;
      }
      if (row.sections.length > 0) critical += 1;
      let node = drawnRows.get(row);
      if (node) {
        const selected = row.row === state.selectedRow;
        node.classList.toggle("selected", selected);
        node.setAttribute("aria-selected", String(selected));
      } else {
        node = rowElement(row, duration);
      }
      node.style.top = `${index * ROW_HEIGHT - top}px`;
      kept.set(row, node);
      nodes.push(node);
    }
    // Rows that left the screen go; the rest stay in place and new ones go in among them in
    // row order (the order the tree is read in).
    const staying = new Set(nodes);
    for (const node of [...layer.children]) {
      if (!staying.has(node)) node.remove();
    }
    const children = layer.children;
    nodes.forEach((node, i) => {
      if (children[i] !== node) layer.insertBefore(node, children[i] || null);
    });
    drawnRows = kept;
    const drawn = { first, last, top: scrollTop, missing, critical, pages: state.pages.size };
    mark("explorer:draw", drawn);
    if (!state.shown && missing === 0 && last > first) {
      state.shown = true;
      mark("explorer:rows-drawn", drawn);
      markPainted("explorer:rows-painted", drawn);
    }
  }

  function rowElement(row, duration) {
    const services = state.meta.services;
    const hasChildren = row.children > 0;
    const toggle = hasChildren
      ? el("button", { type: "button", class: "toggle", tabindex: "-1", "aria-label": row.collapsed ? "expand" : "collapse" },
        row.collapsed ? "▸" : "▾")
      : el("span", { class: "toggle leaf" });
    if (hasChildren) {
      toggle.addEventListener("click", (event) => {
        event.stopPropagation();
        setCollapsed(row, !row.collapsed);
      });
    }
    const label = el("div", { class: "label" }, toggle,
      el("span", { class: serviceClass(services, row.service) }, serviceName(row.service)),
      el("span", { class: "op" }, row.operation),
      row.error ? el("span", { class: "err-mark", title: "error" }, "!") : "");
    label.style.paddingLeft = `${Math.min(row.depth, 40) * 12 + 4}px`;
    const bar = el("div", { class: `bar ${serviceClass(services, row.service)}` });
    bar.style.left = `${(100 * row.start_ns) / duration}%`;
    bar.style.width = `max(1px, ${(100 * row.duration_ns) / duration}%)`;
    const track = el("div", { class: "track" }, bar);
    for (const [start, end] of row.sections) {
      const section = el("div", { class: "crit" });
      section.style.left = `${(100 * start) / duration}%`;
      section.style.width = `max(1px, ${(100 * (end - start)) / duration}%)`;
      track.append(section);
    }
    const timing = el("span", { class: "timing" }, formatDuration(row.duration_ns),
      row.critical ? el("span", { class: "crit-time" }, ` · ${formatDuration(row.critical_ns)} on path`) : "");
    track.append(timing);
    const node = el("div", {
      class: `row${row.row === state.selectedRow ? " selected" : ""}${row.critical ? " critical" : ""}`,
      role: "treeitem",
      "aria-level": String(row.depth + 1),
      "aria-expanded": hasChildren ? String(!row.collapsed) : undefined,
      "aria-selected": String(row.row === state.selectedRow),
      "data-span-id": row.span_id,
      "data-row": String(row.row),
      "data-parent-span-id": row.parent_span_id || undefined,
      "data-depth": String(row.depth),
      "data-critical": row.critical ? "true" : undefined,
    }, label, track);
    node.addEventListener("click", () => select(row.row, true));
    return node;
  }

  function invalidate() {
    state.version += 1;
    state.pages.clear();
  }

  function setCollapsed(row, collapse) {
    if (collapse) state.collapsed.add(row.span_id);
    else state.collapsed.delete(row.span_id);
    invalidate();
    state.selectedRow = row.row;
    state.selectedSpan = row.span_id;
    loadPage(Math.floor(row.row / PAGE_ROWS));
  }

  async function select(index, fromClick) {
    if (index < 0 || index >= state.visible) return;
    state.selectedRow = index;
    scrollIntoView(index);
    let row = rowAt(index);
    if (!row) {
      await loadPage(Math.floor(index / PAGE_ROWS));
      row = rowAt(index);
    }
    draw();
    if (!row) return;
    state.selectedSpan = row.span_id;
    history.replaceState(null, "", tracePath(traceId, state.mode, row.span_id));
    showDetails(row);
    if (fromClick) viewport.focus({ preventScroll: true });
  }

  function scrollIntoView(index) {
    const y = (index * ROW_HEIGHT) / state.scale;
    const rowPx = ROW_HEIGHT / state.scale;
    if (y < viewport.scrollTop) viewport.scrollTop = y;
    else if (y + Math.max(rowPx, ROW_HEIGHT) > viewport.scrollTop + viewport.clientHeight) {
      viewport.scrollTop = y - viewport.clientHeight + Math.max(rowPx, ROW_HEIGHT);
    }
  }

  async function showDetails(row) {
    details.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try {
      const span = await api(`/api/spans/${encodeURIComponent(traceId)}/${encodeURIComponent(row.span_id)}`);
      if (state.closed || state.selectedSpan !== row.span_id) return;
      details.replaceChildren(spanDetails(span, row));
    } catch (error) {
      showError(details, error);
    }
  }

  viewport.addEventListener("keydown", (event) => {
    const row = rowAt(state.selectedRow);
    switch (event.key) {
      case "ArrowDown":
        select(state.selectedRow < 0 ? 0 : state.selectedRow + 1);
        break;
      case "ArrowUp":
        select(Math.max(0, state.selectedRow - 1));
        break;
      case "Home":
        select(0);
        break;
      case "End":
        select(state.visible - 1);
        break;
      case "ArrowRight":
        if (!row) break;
        if (row.children > 0 && row.collapsed) setCollapsed(row, false);
        else if (row.children > 0) select(row.row + 1);
        break;
      case "ArrowLeft":
        if (!row) break;
        if (row.children > 0 && !row.collapsed) setCollapsed(row, true);
        else if (row.parent_row !== null && row.parent_row !== undefined) select(row.parent_row);
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  let frame = 0;
  const onScroll = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
    });
  };
  viewport.addEventListener("scroll", onScroll);
  window.addEventListener("resize", onScroll);

  // The first window, then the selected span of a shared link, if it is in view.
  (async () => {
    await loadPage(0);
    if (state.selectedSpan) {
      const at = (state.pages.get(0) || []).find((r) => r.span_id === state.selectedSpan);
      if (at) select(at.row);
    }
  })();

  return () => {
    state.closed = true;
    window.removeEventListener("resize", onScroll);
  };
}

function attributeTable(title, attributes) {
  if (!attributes || attributes.length === 0) return "";
  return el("section", {},
    el("h3", {}, title),
    el("table", { class: "kv" }, el("tbody", {}, attributes.map((a) =>
      el("tr", {}, el("th", {}, a.key), el("td", {},
        typeof a.value === "string" ? a.value : JSON.stringify(a.value),
        el("span", { class: "muted type" }, ` ${a.type}`)))))));
}

function spanDetails(span, row) {
  const status = span.status.code + (span.status.message ? `: ${span.status.message}` : "");
  const facts = [
    ["span id", span.span_id],
    ["parent", span.parent_span_id || "none"],
    ["service", serviceName(span.service)],
    ["kind", span.kind],
    ["status", status],
    ["start", formatTime(span.start_unix_nano)],
    ["duration", formatDuration(span.duration_ns)],
    ["on the critical path", row.critical ? formatDuration(row.critical_ns) : "no"],
  ];
  if (span.host) facts.push(["host", span.host]);
  return el("div", { "data-details-span-id": span.span_id },
    el("h2", {}, span.operation),
    el("table", { class: "kv" }, el("tbody", {}, facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))),
    span.has_details ? "" : el("p", { class: "muted" }, "The source of this trace carried no attributes for this span (long standard input keeps only what the analysis reads; a file read again no longer holds it)."),
    attributeTable("Attributes", span.attributes),
    span.events.length === 0 ? "" : el("section", {}, el("h3", {}, "Events"),
      el("ul", { class: "events" }, span.events.map((e) => el("li", {},
        el("span", { class: "mono" }, formatTime(e.time_unix_nano)), " ", e.name,
        attributeTable("", e.attributes))))),
    span.links.length === 0 ? "" : el("section", {}, el("h3", {}, "Links"),
      el("ul", {}, span.links.map((l) => el("li", {},
        link(tracePath(l.trace_id, undefined, l.span_id), `${l.trace_id} / ${l.span_id}`),
        attributeTable("", l.attributes))))),
    attributeTable("Resource", span.resource),
    span.scope ? el("section", {}, el("h3", {}, "Scope"),
      el("p", {}, `${span.scope.name} ${span.scope.version}`.trim() || "(unnamed)"),
      attributeTable("", span.scope.attributes)) : "");
}

// ---- contribution -------------------------------------------------------------------------

async function contributionView(params) {
  const mode = params.get("mode") === "jaeger" ? "jaeger" : "robust";
  setTitle("Contribution");
  const query = searchQuery(params);
  const withMode = (m) => {
    const q = new URLSearchParams(query);
    if (m !== "robust") q.set("mode", m);
    return `/contribution${q.toString() ? "?" + q : ""}`;
  };
  const body = el("div", { id: "contribution" }, el("p", { class: "muted" }, "Computing…"));
  main.replaceChildren(
    el("h1", {}, "Contribution to the critical path"),
    el("p", {}, "Over the traces the search selects: ", link(`/search${query.toString() ? "?" + query : ""}`, "change the search"),
      " · mode: ", ...["robust", "jaeger"].map((m) => m === mode
        ? el("strong", { id: `mode-${m}`, "aria-current": "true" }, m + " ")
        : link(withMode(m), m + " ", { id: `mode-${m}` }))),
    body);
  const apiQuery = new URLSearchParams(query);
  apiQuery.set("mode", mode);
  try {
    const data = await api(`/api/contribution?${apiQuery}`);
    body.replaceChildren(
      el("p", {}, `${data.traces} traces (${data.matched} matched), ${formatDuration(data.aggregate.total_duration_ns)} in total`),
      el("h2", {}, "Per service"),
      contributionTable(data.services.operations, false, "per-service"),
      el("h2", {}, "Per service and operation"),
      contributionTable(data.aggregate.operations, true, "per-operation"));
  } catch (error) {
    showError(body, error);
  }
}

function contributionTable(rows, withOperation, id) {
  const head = ["Service", ...(withOperation ? ["Operation"] : []), "Traces", "Critical path time", "Share", "p50", "p90", "p99"];
  return el("table", { class: "contribution", id },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", { "data-service": r.service, "data-operation": withOperation ? r.operation : undefined },
      el("td", {}, serviceName(r.service)),
      withOperation ? el("td", {}, r.operation) : "",
      el("td", { class: "num" }, String(r.traces)),
      el("td", { class: "num" }, formatDuration(r.total_critical_ns)),
      el("td", { class: "num" }, formatPercent(r.share_of_latency)),
      el("td", { class: "num" }, formatDuration(r.critical_ns_p50)),
      el("td", { class: "num" }, formatDuration(r.critical_ns_p90)),
      el("td", { class: "num" }, formatDuration(r.critical_ns_p99))))));
}

// ---- compare ------------------------------------------------------------------------------

async function compareView(ids, params) {
  const mode = params.get("mode") === "jaeger" ? "jaeger" : "robust";
  setTitle("Compare");
  if (ids.length !== 2) {
    const a = el("input", { name: "a", id: "compare-a", placeholder: "trace id", autocomplete: "off" });
    const b = el("input", { name: "b", id: "compare-b", placeholder: "trace id", autocomplete: "off" });
    const form = el("form", { class: "filters" }, el("label", {}, "First trace", a), el("label", {}, "Second trace", b),
      el("button", { type: "submit" }, "Compare"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      navigate(`/compare/${encodeURIComponent(a.value.trim())}/${encodeURIComponent(b.value.trim())}`);
    });
    main.replaceChildren(el("h1", {}, "Compare two traces"),
      el("p", { class: "muted" }, "Pick two traces in the search list, or give their ids."), form);
    return;
  }
  const body = el("div", { id: "comparison" }, el("p", { class: "muted" }, "Loading…"));
  const modeLink = (m) => m === mode ? el("strong", {}, m + " ")
    : link(`/compare/${ids.map(encodeURIComponent).join("/")}${m === "robust" ? "" : "?mode=" + m}`, m + " ");
  main.replaceChildren(el("h1", {}, "Compare two traces"),
    el("p", {}, "mode: ", modeLink("robust"), modeLink("jaeger")), body);
  try {
    const [a, b] = await Promise.all(ids.map((id) => api(`/api/critical-path/${encodeURIComponent(id)}?mode=${mode}`)));
    const key = (o) => JSON.stringify([o.service, o.operation]);
    const byKey = new Map();
    for (const [side, trace] of [[0, a], [1, b]]) {
      for (const o of trace.operations) {
        const entry = byKey.get(key(o)) || { service: o.service, operation: o.operation, ns: [0, 0] };
        entry.ns[side] += Number(o.critical_ns);
        byKey.set(key(o), entry);
      }
    }
    const rows = [...byKey.values()].sort((x, y) => Math.abs(y.ns[1] - y.ns[0]) - Math.abs(x.ns[1] - x.ns[0]));
    const signed = (ns) => (ns > 0 ? "+" : ns < 0 ? "−" : "") + formatDuration(Math.abs(ns));
    body.replaceChildren(
      el("table", { class: "contribution", id: "compare-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Service"), el("th", {}, "Operation"),
          el("th", {}, link(tracePath(ids[0], mode), "first")), el("th", {}, link(tracePath(ids[1], mode), "second")),
          el("th", {}, "Difference"))),
        el("tbody", {},
          el("tr", { class: "total" }, el("td", {}, "whole trace"), el("td", {}),
            el("td", { class: "num" }, formatDuration(a.duration_ns)), el("td", { class: "num" }, formatDuration(b.duration_ns)),
            el("td", { class: "num" }, signed(b.duration_ns - a.duration_ns))),
          rows.map((r) => el("tr", { "data-service": r.service, "data-operation": r.operation },
            el("td", {}, serviceName(r.service)), el("td", {}, r.operation),
            el("td", { class: "num" }, formatDuration(r.ns[0])), el("td", { class: "num" }, formatDuration(r.ns[1])),
            el("td", { class: `num ${r.ns[1] > r.ns[0] ? "slower" : r.ns[1] < r.ns[0] ? "faster" : ""}` }, signed(r.ns[1] - r.ns[0])))))));
  } catch (error) {
    showError(body, error);
  }
}

render();
