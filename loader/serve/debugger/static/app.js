// The debugger page: polls /debugger/api/requests (every second) and
// /debugger/api/warehouse (every two) and draws what they say.  Every value from a
// webhook is untrusted: it only ever reaches the page as textContent.
"use strict";

const MAX_ROWS = 1000;
const REQUESTS_EVERY = 1000;
const WAREHOUSE_EVERY = 2000;

const state = { last: 0, paused: false, held: [], rows: [], filter: "", open: new Set() };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function clock(iso) {
  const at = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;
}

function ago(seconds) {
  if (seconds < 1) return "just now";
  if (seconds < 120) return `${Math.round(seconds)} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

const FAILED = new Set(["rejected", "too large", "timed out", "not stored", "wrong token"]);
const bytes = (n) => (n === 1 ? "1 byte" : `${number(n)} bytes`);
const number = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const slug = (outcome) => outcome.replace(/[^a-z]+/g, "-");

async function getJSON(url) {
  const answer = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  if (answer.status === 401) {
    location.reload(); // the browser asks for the admin token again
    throw new Error("unauthorised");
  }
  if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
  return answer.json();
}

// -- the live stream --------------------------------------------------------------------

function matches(row) {
  if (!state.filter) return true;
  const text = [row.event, row.outcome, row.email, row.collection, row.reason, row.client, row.status]
    .filter((v) => v !== null && v !== undefined)
    .join(" ")
    .toLowerCase();
  return state.filter.split(/\s+/).every((word) => text.includes(word));
}

function rowKey(row) {
  return `${row.seq}.${row.index === null ? "" : row.index}`;
}

function detailRow(row) {
  const parts = [];
  if (row.reason) parts.push(el("p", { class: FAILED.has(row.outcome) ? "reason" : "note" }, row.reason));
  const facts = [`HTTP ${row.status}`, bytes(row.size), `from ${row.client}`];
  if (row.index !== null) facts.push(`element [${row.index}] of an array body`);
  parts.push(el("p", { class: "muted" }, facts.join(" · ")));
  if (row.body !== null) {
    if (row.truncated) parts.push(el("p", { class: "muted" }, "Only the head of this body was kept."));
    parts.push(el("pre", { class: "body" }, row.body));
  } else {
    parts.push(el("p", { class: "muted" }, "No body was read."));
  }
  return el("tr", { class: "detail" }, el("td", { colspan: "7" }, ...parts));
}

function streamRow(row) {
  const key = rowKey(row);
  const tr = el(
    "tr",
    { class: `request ${slug(row.outcome)}`, "data-key": key, tabindex: "0" },
    el("td", { class: "time" }, clock(row.time)),
    el("td", {}, el("span", { class: `outcome ${slug(row.outcome)}` }, row.outcome)),
    el("td", { class: "event" }, row.event || "–"),
    el("td", { class: row.collection === "kept raw" ? "collection muted" : "collection" }, row.collection || "–"),
    el("td", { class: "email" }, row.email || "–"),
    el("td", { class: "num" }, number(row.size)),
    el("td", { class: "muted" }, row.client)
  );
  const toggle = () => {
    if (state.open.has(key)) state.open.delete(key);
    else state.open.add(key);
    draw();
  };
  tr.addEventListener("click", toggle);
  tr.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      toggle();
    }
  });
  return tr;
}

function draw() {
  const body = $("requests");
  const shown = state.rows.filter(matches);
  const nodes = [];
  for (const row of shown) {
    nodes.push(streamRow(row));
    if (state.open.has(rowKey(row))) nodes.push(detailRow(row));
  }
  body.replaceChildren(...nodes);
  $("stream-empty").hidden = state.rows.length > 0;
  const held = state.held.length ? ` · ${number(state.held.length)} waiting` : "";
  $("shown").textContent = `${number(shown.length)} of ${number(state.rows.length)} shown${held}`;
}

function add(rows) {
  // Newest first.
  for (const row of rows) state.rows.unshift(row);
  if (state.rows.length > MAX_ROWS) state.rows.length = MAX_ROWS;
}

async function pollRequests() {
  try {
    const data = await getJSON(`/debugger/api/requests?after=${state.last}`);
    state.last = data.last;
    $("replica").textContent = `live stream of ${data.replica}`;
    const pii = $("pii");
    pii.textContent = data.show_pii ? "PII shown" : "PII masked";
    pii.className = `pill ${data.show_pii ? "warn" : "ok"}`;
    if (data.rows.length) {
      if (state.paused) state.held.push(...data.rows);
      else add(data.rows);
      draw();
    }
  } catch (err) {
    $("status").textContent = "not reachable";
    $("status").className = "pill bad";
  }
  setTimeout(pollRequests, REQUESTS_EVERY);
}

// -- health and rejects -----------------------------------------------------------------

function drawHealth(data) {
  const status = $("status");
  status.textContent = data.status;
  status.className = `pill ${data.status === "ok" ? "ok" : data.status === "degraded" ? "warn" : "bad"}`;
  $("status-detail").textContent = data.detail || (data.status === "ok" ? "Receiving and mapping." : "");
  $("pending").textContent = number(data.pending);
  $("lag").textContent = data.lag_seconds === null ? "–" : `${data.lag_seconds.toFixed(1)} s`;

  const now = Date.now() / 1000;
  $("workers").replaceChildren(
    ...data.workers.map((w) => {
      const failing = w.failing_for > 0;
      const condition = !w.alive ? "stopped" : failing ? `failing for ${Math.round(w.failing_for)} s` : "running";
      const last = w.last_success ? `last success ${ago(now - w.last_success)}` : "no success yet";
      return el(
        "li",
        { class: !w.alive || failing ? "bad" : "" },
        el("strong", {}, w.name),
        ` ${condition} · ${number(w.runs)} passes · ${number(w.errors)} errors · ${last}`,
        w.last_error && (failing || !w.alive) ? el("div", { class: "reason" }, w.last_error) : null
      );
    })
  );

  const hour = data.last_hour;
  $("last-hour").replaceChildren(
    ...(hour === null
      ? [el("tr", {}, el("td", { class: "muted" }, "the warehouse did not answer"))]
      : hour.map((c) =>
          el("tr", {}, el("td", {}, c.collection), el("td", { class: "num" }, number(c.events)))
        ))
  );

  const p = data.process;
  const responses = Object.entries(p.responses)
    .map(([code, n]) => `${number(n)} × ${code}`)
    .join(", ");
  $("process").textContent =
    `landed ${number(p.landed)} · duplicates ${number(p.duplicates)} · rejected ${number(p.rejected)} · ` +
    `kept raw ${number(p.kept_raw)} · transformed ${number(p.transformed)}` +
    (responses ? ` — answers: ${responses}` : "");
}

function drawRejects(rejects, error) {
  const list = $("rejects");
  if (rejects === null) {
    $("rejects-empty").textContent = `The warehouse did not answer: ${error || "unknown error"}`;
    $("rejects-empty").hidden = false;
    return;
  }
  $("rejects-empty").textContent = "No rejects.";
  $("rejects-empty").hidden = rejects.length > 0;
  list.replaceChildren(
    ...rejects.map((r) => {
      const key = `reject-${r.id}`;
      const item = el(
        "li",
        { "data-id": String(r.id), tabindex: "0" },
        el("div", { class: "reason" }, r.reason),
        el(
          "div",
          { class: "muted" },
          [clock(r.time), r.event || "no event", r.email, bytes(r.size), r.origin]
            .filter(Boolean)
            .join(" · ")
        )
      );
      if (state.open.has(key)) item.append(el("pre", { class: "body" }, r.body || ""));
      item.addEventListener("click", () => {
        if (state.open.has(key)) state.open.delete(key);
        else state.open.add(key);
        drawRejects(rejects, error);
      });
      return item;
    })
  );
}

async function pollWarehouse() {
  try {
    const data = await getJSON("/debugger/api/warehouse");
    drawHealth(data);
    drawRejects(data.rejects, data.warehouse_error);
  } catch (err) {
    $("status").textContent = "not reachable";
    $("status").className = "pill bad";
  }
  setTimeout(pollWarehouse, WAREHOUSE_EVERY);
}

// -- controls ---------------------------------------------------------------------------

function setPaused(paused) {
  state.paused = paused;
  const button = $("pause");
  button.textContent = paused ? "Resume" : "Pause";
  button.setAttribute("aria-pressed", String(paused));
  if (!paused && state.held.length) {
    add(state.held);
    state.held = [];
  }
  draw();
}

document.addEventListener("DOMContentLoaded", () => {
  $("pause").addEventListener("click", () => setPaused(!state.paused));
  $("filter").addEventListener("input", (e) => {
    state.filter = e.target.value.trim().toLowerCase();
    draw();
  });
  draw();
  pollRequests();
  pollWarehouse();
});
