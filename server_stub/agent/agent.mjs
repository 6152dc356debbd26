// The agent page: conversations (live), replies, presence, stats per auto
// message, and email delivery requests. Same origin as the agent API; plain
// DOM, no dependencies, every visitor-controlled string set as text.

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const KINDS = ["shown", "clicked", "dismissed", "replied"];

// An agent token, when the endpoint needs one, comes in the URL fragment
// (/agent#token=…) once and is kept for this tab only.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  sessionStorage.setItem("proactive-agent-token", fragment.get("token"));
  history.replaceState(null, "", location.pathname);
}
const token = sessionStorage.getItem("proactive-agent-token");

const state = { selected: null, online: false, presence: null, conversations: [], tab: "conversations" };

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`/api/agent${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
  showProblem(null);
  return data;
}

function showProblem(text) {
  const p = $("#problem");
  p.hidden = !text;
  p.textContent = text || "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function when(t) {
  return t ? new Date(t).toLocaleString() : "";
}

// -- presence ------------------------------------------------------------------
function agentName() {
  return ($("#agent-name").value || "").trim() || "Agent";
}

// Presence news arrives three ways: the stream (in order), and answers to
// GET and POST /presence (each on its own connection, so in any order). An
// answer to a request made before the latest news is older than it and is
// dropped: a late GET must not turn the toggle back off after the agent went
// online (the e2e flake: the click's blur fired `change`, whose GET answered
// after the POST and the stream's event).
let presenceNews = 0;

function applyPresence(p) {
  presenceNews += 1;
  state.presence = p;
  renderPresence(p);
}

async function askPresence(method, body) {
  const before = presenceNews;
  const p = await api(method, "/presence", body);
  if (presenceNews === before) applyPresence(p);
}

function renderPresence(p) {
  const me = (p.agents || []).find((a) => a.name === agentName());
  state.online = Boolean(me && me.online);
  const toggle = $("#presence-toggle");
  toggle.setAttribute("aria-pressed", String(state.online));
  toggle.textContent = state.online ? "Online — go offline" : "Go online";
  const team = $("#team-status");
  team.textContent = p.team === "online" ? `Team online (${p.agents_online})` : "Team offline";
  team.classList.toggle("online", p.team === "online");
}

async function togglePresence() {
  try {
    await askPresence("POST", { agent: agentName(), online: !state.online });
  } catch (err) {
    showProblem(`Could not change presence: ${err.message}`);
  }
}

// While online, the page says so again every 30 s: the endpoint counts an
// agent online only until 90 s after the last time (a closed laptop or a lost
// network takes the agent offline by itself).
const HEARTBEAT_MS = 30_000;

function heartbeat() {
  if (state.online) api("POST", "/presence", { agent: agentName(), online: true }).catch(() => {});
}

// -- conversations ---------------------------------------------------------------
async function loadConversations() {
  try {
    state.conversations = (await api("GET", "/conversations")).conversations;
  } catch (err) {
    return showProblem(`Could not load conversations: ${err.message}`);
  }
  const list = $("#conversation-list");
  list.replaceChildren(...state.conversations.map((c) => {
    const item = el("li", { class: c.awaiting_reply ? "conversation awaiting" : "conversation", "data-id": String(c.id), tabindex: "0" },
      el("div", { class: "who", text: `Visitor ${c.visitor}` }),
      el("div", { class: "last", text: `${c.last_sender === "agent" ? "You: " : ""}${c.last_text || ""}` }),
      el("div", { class: "last", text: [c.auto_message && `reply to ${c.auto_message}`, c.rating && `rated ${c.rating}`].filter(Boolean).join(" · ") }));
    if (c.id === state.selected) item.setAttribute("aria-current", "true");
    const open = () => selectConversation(c.id);
    item.addEventListener("click", open);
    item.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    return item;
  }));
  const awaiting = state.conversations.filter((c) => c.awaiting_reply).length;
  $("#awaiting").hidden = !awaiting;
  $("#awaiting").textContent = String(awaiting);
  document.title = `${awaiting ? `(${awaiting}) ` : ""}Proactive — agent`; // visible from another tab
  if (state.selected == null && state.conversations.length) selectConversation(state.conversations[0].id);
}

async function selectConversation(id) {
  state.selected = id;
  for (const li of document.querySelectorAll("#conversation-list li")) {
    if (Number(li.dataset.id) === id) li.setAttribute("aria-current", "true");
    else li.removeAttribute("aria-current");
  }
  await loadThread();
}

async function loadThread() {
  if (state.selected == null) return;
  let conv;
  try {
    conv = (await api("GET", `/conversations/${state.selected}`)).conversation;
  } catch (err) {
    return showProblem(`Could not load the conversation: ${err.message}`);
  }
  $("#thread-empty").hidden = true;
  $("#thread").hidden = false;
  $("#thread-head").textContent = [
    `Visitor ${conv.visitor}`, conv.page_url && `on ${conv.page_url}`, conv.auto_message && `replying to “${conv.auto_message}”`,
    `started ${when(conv.started_at)}`, conv.rating && `rating: ${conv.rating}`,
  ].filter(Boolean).join(" · ");
  const box = $("#thread-messages");
  box.replaceChildren(...conv.messages.map((m) => el("li", { class: `msg ${m.sender}`, "data-id": String(m.id) },
    el("span", { class: "meta", text: `${m.sender === "agent" ? m.author || "Agent" : "Visitor"} · ${when(m.t)}` }),
    el("span", { class: "text", text: m.text }))));
  box.scrollTop = box.scrollHeight;
}

async function sendReply(e) {
  e.preventDefault();
  const text = $("#reply-text").value.trim();
  if (!text || state.selected == null) return;
  $("#reply-send").disabled = true;
  try {
    await api("POST", `/conversations/${state.selected}/messages`, { text, author: agentName() });
    $("#reply-text").value = "";
    await loadThread();
    await loadConversations();
  } catch (err) {
    showProblem(`Could not send the reply: ${err.message}`);
  } finally {
    $("#reply-send").disabled = false;
  }
}

// -- stats -----------------------------------------------------------------------
// Columns (index.html says the same in each header's title): how often the
// message was shown, then visitors: shown it, and of those who clicked,
// dismissed, replied. The reply rate is visitors who replied / visitors shown.
async function loadStats() {
  let stats;
  try {
    stats = await api("GET", `/stats?bucket=${encodeURIComponent($("#bucket").value)}&lift=${encodeURIComponent($("#lift").value)}`);
  } catch (err) {
    return showProblem(`Could not load stats: ${err.message}`);
  }
  renderExperiments(stats.experiments || []);
  $("#stats-empty").hidden = stats.messages.length > 0;
  $("#stats-table").hidden = stats.messages.length === 0;
  $("#stats-table tbody").replaceChildren(...stats.messages.map((m) => el("tr", { "data-message": m.message },
    el("td", { text: m.message }),
    el("td", { class: "num times", text: String(m.shown) }),
    ...KINDS.map((k) => el("td", { class: `num ${k}`, text: String(m.visitors[k]) })),
    el("td", { class: "num rate", text: m.reply_rate === null ? "–" : `${Math.round(100 * m.reply_rate)} %` }),
    el("td", {}, chart(m.series, stats.bucket_ms, $("#bucket").value)))));
}

// Experiments: one row per arm; rates and differences with their 95 % interval.
const pct = (x) => `${(100 * x).toFixed(1)} %`;
const points = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(100 * x).toFixed(1)}`;
const interval = (r, fmt) => (r ? `${fmt(r.value)} (${fmt(r.low)} to ${fmt(r.high)})` : "–");

function renderExperiments(list) {
  $("#experiments-empty").hidden = list.length > 0;
  $("#experiments-table").hidden = list.length === 0;
  $("#experiments-table tbody").replaceChildren(...list.flatMap((e) => [...(e.srm && e.srm.warning
    ? [el("tr", { class: "srm", "data-message": e.message }, el("td", { colspan: "7", class: "warning", text: `${e.message}: ${e.srm.warning}` }))]
    : []), ...(e.needed
    ? [el("tr", { class: "needed", "data-message": e.message }, el("td", { colspan: "7", class: "hint",
      text: `${e.message}: to detect a ${Math.round(100 * e.needed.lift)} % rise of the control's goal rate (5 %, power 80 %): `
        + `${e.needed.per_arm} visitors per arm, ${e.needed.still} more` }))]
    : []), ...e.arms.map((a) => el("tr",
    { "data-message": e.message, "data-arm": a.arm },
    el("td", { text: e.message }),
    el("td", { class: "arm", text: a.control ? `${a.arm} (control)` : a.arm }),
    el("td", { class: "num exposed", text: String(a.exposed) }),
    el("td", { class: "num shown", text: String(a.shown) }),
    el("td", { class: "num reply-rate", text: interval(a.reply_rate, pct) }),
    el("td", { class: "num goal-rate", text: `${a.goals} · ${interval(a.goal_rate, pct)}` }),
    el("td", { class: "diff", text: a.control ? "control" : interval(a.goal_difference, points) + (a.verdict ? ` — ${a.verdict}` : "") })))]));
}

const svgEl = (tag, attrs = {}, text) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
};

/** The smallest 1, 2 or 5 × 10^k at or above `n` (a readable top of scale). */
function niceMax(n) {
  const step = 10 ** Math.floor(Math.log10(Math.max(1, n)));
  return [1, 2, 5, 10].map((f) => f * step).find((v) => v >= n);
}

function timeLabel(t, unit) {
  const d = new Date(t);
  const two = (n) => String(n).padStart(2, "0");
  const day = `${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  const clock = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return unit === "day" ? `${d.getFullYear()}-${day}` : unit === "hour" ? `${day} ${clock}` : clock;
}

/** Events per bucket, one line per kind, as inline SVG with a y axis (0, half,
 *  a rounded top) and an x axis labelled with the first and last bucket's
 *  local time, so a day by hour reads as a day. */
function chart(series, bucketMs, unit) {
  const w = 320;
  const h = 120;
  const left = 30;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const svg = svgEl("svg", { class: "chart", width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img" });
  if (!series.length) {
    svg.setAttribute("aria-label", "no data");
    return svg;
  }
  const t0 = series[0].t;
  const tLast = series[series.length - 1].t;
  const t1 = Math.max(tLast, t0 + bucketMs);
  const max = niceMax(Math.max(1, ...series.flatMap((p) => KINDS.map((k) => p[k]))));
  const x = (t) => left + ((w - left - right) * (t - t0)) / (t1 - t0);
  const y = (v) => h - bottom - ((h - top - bottom) * v) / max;
  for (const v of [0, max / 2, max]) {
    if (v !== Math.round(v)) continue;
    svg.append(svgEl("line", { class: v ? "grid" : "axis", x1: left, x2: w - right, y1: y(v), y2: y(v) }));
    svg.append(svgEl("text", { class: "y-tick", x: left - 4, y: y(v) + 3, "text-anchor": "end" }, String(v)));
  }
  svg.append(svgEl("line", { class: "axis", x1: left, x2: left, y1: top, y2: h - bottom }));
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    svg.append(svgEl("text", { class: "x-tick", x: x(t), y: h - 6, "text-anchor": anchor }, timeLabel(t, unit)));
  }
  // Buckets with no events are zeros, so lines drop to the axis between them.
  const points = [];
  for (let t = t0; t <= tLast; t += bucketMs) {
    points.push(series.find((p) => p.t === t) || { t, shown: 0, clicked: 0, dismissed: 0, replied: 0 });
    if (points.length > 500) break;
  }
  if (points.length === 1) points.push({ ...points[0], t: t0 + bucketMs });
  for (const k of KINDS) {
    svg.append(svgEl("polyline", { class: k, points: points.map((p) => `${x(p.t).toFixed(1)},${y(p[k]).toFixed(1)}`).join(" ") }));
  }
  svg.setAttribute("aria-label", `events per ${unit}, ${timeLabel(t0, unit)} to ${timeLabel(t1, unit)}: ` +
    KINDS.map((k) => `${k} ${series.reduce((s, p) => s + p[k], 0)}`).join(", "));
  return svg;
}

// -- deliveries --------------------------------------------------------------------
async function loadDeliveries() {
  let list;
  try {
    list = (await api("GET", "/deliveries")).deliveries;
  } catch (err) {
    return showProblem(`Could not load delivery requests: ${err.message}`);
  }
  $("#deliveries-empty").hidden = list.length > 0;
  $("#deliveries-table").hidden = list.length === 0;
  $("#deliveries-table tbody").replaceChildren(...list.map((d) => el("tr", { "data-id": String(d.id) },
    el("td", { text: String(d.id) }), el("td", { text: d.message }), el("td", { text: d.recipient || "(no address)" }),
    el("td", { text: when(d.requested_at) }), el("td", { class: `status ${d.status}`, text: d.status }))));
}

// -- tabs, live updates ------------------------------------------------------------
function showTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  if (name === "stats") loadStats();
  if (name === "deliveries") loadDeliveries();
}

function listen() {
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const stream = new EventSource(`/api/agent/stream${query}`);
  stream.addEventListener("presence", (e) => applyPresence(JSON.parse(e.data)));
  stream.addEventListener("conversation", (e) => {
    const news = JSON.parse(e.data);
    loadConversations();
    if (news.conversation === state.selected) loadThread();
  });
  stream.addEventListener("stats", () => { if (state.tab === "stats") loadStats(); });
  stream.addEventListener("delivery", () => { if (state.tab === "deliveries") loadDeliveries(); });
  stream.addEventListener("hello", () => { showProblem(null); loadConversations(); });
  stream.onerror = () => showProblem("Live updates interrupted; reconnecting…");
}

function start() {
  const name = $("#agent-name");
  name.value = localStorage.getItem("proactive-agent-name") || "Agent";
  name.addEventListener("change", () => {
    localStorage.setItem("proactive-agent-name", agentName());
    if (state.presence) renderPresence(state.presence); // the latest news, for this name: no request
  });
  $("#presence-toggle").addEventListener("click", togglePresence);
  $("#reply-form").addEventListener("submit", sendReply);
  $("#reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#reply-form").requestSubmit(); }
  });
  $("#bucket").addEventListener("change", loadStats);
  $("#lift").addEventListener("change", loadStats);
  $("#stats-refresh").addEventListener("click", loadStats);
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  askPresence("GET").catch((err) => showProblem(`The agent API is unavailable: ${err.message}`));
  loadConversations();
  listen();
  setInterval(heartbeat, HEARTBEAT_MS);
}

start();
