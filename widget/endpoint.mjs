// The browser side of the endpoint (docs/endpoint.md): everything the widget
// learns from, or tells, a backend. Nothing in the trigger path waits on it:
// answers become engine events when (and if) they arrive, and when the
// endpoint is down the widget works with geo/team/history reading "unknown".
//
//   geo          GET  /geo                     once per visit, cached
//   presence     GET  /stream  (SSE)           team online/offline, agent replies live;
//                                              reconnects with exponential backoff
//   history      GET  /conversation            the visitor's own conversation
//   chat         POST /conversation/messages   visitor messages
//                POST /conversation/rating     great / average / poor
//   beacons      POST /events                  shown/clicked/dismissed/replied, batched,
//                                              kept until the endpoint confirms, retried
//                                              on the next page, sendBeacon on page hide
//   email        POST /deliveries              delivery requests for `email` messages
//   identity     POST /visitors                an unguessable token, created on first write
//
// The chat panel uses the module-level API: sendMessage(text), rate(value),
// onMessage(cb), messages(). One widget per page, so one active connection.

const VISIT_GAP_MS = 30 * 60 * 1000;
const FLUSH_DELAY_MS = 2000;
const MAX_QUEUE = 500;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60000;
const RATINGS = ["great", "average", "poor"];

let active = null;
const listeners = new Set();

// -- the module API (for the chat panel) ---------------------------------------

/** Sends the visitor's message. Resolves to the stored message, or null if it
 * could not be sent (the listeners get {type: "failed"}). */
export function sendMessage(text, options = {}) {
  if (!active) return Promise.resolve(null);
  return active.sendMessage(text, options);
}

/** Rates the conversation: "great" | "average" | "poor". */
export function rate(value) {
  if (!active) return Promise.resolve(null);
  return active.rate(value);
}

/** cb({type: "history", messages}) once the conversation is known,
 * cb({type: "message", message}) for each new message (visitor or agent),
 * cb({type: "failed", text, reason}) when a message could not be sent,
 * cb({type: "rating", value}). Returns a function that unsubscribes. */
export function onMessage(cb) {
  if (typeof cb !== "function") return () => {};
  listeners.add(cb);
  if (active && active.historyKnown) safeCall(cb, { type: "history", messages: active.messages() });
  return () => listeners.delete(cb);
}

/** The conversation so far (oldest first): [{id, sender, author, text, t}]. */
export function messages() {
  return active ? active.messages() : [];
}

function safeCall(fn, arg) {
  try { fn(arg); } catch (err) { console.error(err); }
}

function notify(news) {
  for (const cb of listeners) safeCall(cb, news);
}

// -- storage (localStorage, or memory when blocked) ------------------------------

function openStore(prefix) {
  let storage = null;
  try {
    storage = window.localStorage;
    storage.setItem(`${prefix}:probe`, "1");
    storage.removeItem(`${prefix}:probe`);
  } catch {
    storage = null;
  }
  const memory = new Map();
  return {
    get(name) {
      try {
        const text = storage ? storage.getItem(`${prefix}:${name}`) : memory.get(name);
        return text ? JSON.parse(text) : null;
      } catch {
        return null;
      }
    },
    set(name, value) {
      const text = JSON.stringify(value);
      try {
        if (storage) return storage.setItem(`${prefix}:${name}`, text);
      } catch { /* full: fall back to memory */ }
      memory.set(name, text);
    },
    remove(name) {
      try { if (storage) storage.removeItem(`${prefix}:${name}`); } catch { /* ignore */ }
      memory.delete(name);
    },
  };
}

function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The endpoint's base URL: data-endpoint, else the widget's origin + /api;
 * data-endpoint="off" turns the endpoint off. */
export function endpointBase(dataEndpoint, widgetSrc) {
  if (dataEndpoint && /^(off|none|false)$/i.test(dataEndpoint.trim())) return null;
  try {
    const url = dataEndpoint ? new URL(dataEndpoint, document.baseURI) : new URL("api", new URL(".", widgetSrc));
    if (!/^https?:$/.test(url.protocol)) return null;
    return url.href.replace(/\/+$/, "");
  } catch {
    return null;
  }
}

// -- the connection ------------------------------------------------------------------

/**
 * connect({base, site, send, on, emit, warn}) starts the endpoint's side
 * channel for this page and returns the connection.
 *   send(event)      an engine event without `t` (the shell stamps it)
 *   on(name, fn)     subscribe to the widget's public events (shown, clicked,
 *                    dismissed, identify, email)
 *   emit(name, x)    publish a public event (proactive('on', name, cb))
 *   warn(text)       printed once with [proactive]
 */
export function connect({ base, site = null, send, on, emit = () => {}, warn = () => {} }) {
  if (active) active.close();
  const store = openStore(`proactive:v1:endpoint:${base}`);
  let closed = false;
  let token = store.get("token");
  let sender = store.get("sender");
  if (!sender) {
    sender = randomId();
    store.set("sender", sender);
  }
  const known = new Map(); // message id → message
  let conversationId = null;
  let historyKnown = false;
  let team = null;
  let lastShown = null; // the auto message on screen (for "replied")
  let attributes = {};
  let stream = null;
  let streamTimer = null;
  let backoff = 0;
  let flushTimer = null;
  let registering = null;

  const url = (path) => `${base}${path}`;

  async function call(method, path, body, { auth = true, keepalive = false } = {}) {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(url(path), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      mode: "cors", credentials: "omit", cache: "no-store", keepalive,
    });
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    if (!response.ok) {
      const err = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      err.status = response.status;
      err.code = data && data.error && data.error.code;
      throw err;
    }
    return data;
  }

  // 1. Geo: once per visit (a visit ends after 30 minutes without a page).
  async function loadGeo() {
    const now = Date.now();
    const cached = store.get("geo");
    if (cached && typeof cached.seen === "number" && now - cached.seen < VISIT_GAP_MS && now >= cached.seen) {
      store.set("geo", { ...cached, seen: now });
      send({ type: "geo", country: cached.country ?? null, city: cached.city ?? null });
      return;
    }
    try {
      const geo = await call("GET", "/geo", undefined, { auth: false });
      if (closed || !geo) return;
      const answer = { country: geo.country ?? null, city: geo.city ?? null };
      store.set("geo", { ...answer, seen: Date.now() });
      send({ type: "geo", ...answer });
    } catch (err) {
      warn(`the endpoint's geo answer is unavailable (${err.message}); country and city rules read "unknown"`);
    }
  }

  // 2. Presence and live messages: one SSE stream, reconnecting with backoff.
  function openStream() {
    if (closed || stream) return;
    clearTimeout(streamTimer);
    streamTimer = null;
    const query = token ? `?visitor=${encodeURIComponent(token)}` : "";
    let es;
    try {
      es = new EventSource(url(`/stream${query}`));
    } catch (err) {
      warn(`live presence is unavailable: ${err.message}`);
      return;
    }
    stream = es;
    es.addEventListener("presence", (e) => {
      const data = parse(e.data);
      if (!data || (data.team !== "online" && data.team !== "offline")) return;
      if (data.team !== team) {
        team = data.team;
        send({ type: "team", value: team });
        emit("team", { value: team });
      }
    });
    es.addEventListener("hello", () => {
      const reconnected = backoff > 0;
      backoff = 0;
      // Messages sent while we were away arrive with the history.
      if (reconnected && token) loadHistory();
    });
    es.addEventListener("message", (e) => {
      const m = parse(e.data);
      if (m) receive(m, true);
    });
    es.addEventListener("rating", (e) => {
      const r = parse(e.data);
      if (r && RATINGS.includes(r.rating)) notify({ type: "rating", value: r.rating });
    });
    es.onerror = () => {
      // Own the retry (EventSource's own has no backoff): close, wait, reopen.
      es.close();
      if (stream === es) stream = null;
      if (closed) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** backoff);
      backoff += 1;
      streamTimer = setTimeout(openStream, Math.round(delay * (0.5 + Math.random() / 2)));
    };
  }

  function restartStream() {
    if (stream) stream.close();
    stream = null;
    openStream();
  }

  function onVisibility() {
    // A hidden tab needs no live stream (browsers cap connections per host).
    if (document.visibilityState === "hidden") {
      if (stream) stream.close();
      stream = null;
      clearTimeout(streamTimer);
      flush(true);
    } else if (!stream && !closed) {
      backoff = Math.max(backoff, 1); // catch up on what we missed
      openStream();
    }
  }
  document.addEventListener("visibilitychange", onVisibility);
  const onPageHide = () => flush(true);
  window.addEventListener("pagehide", onPageHide);

  function parse(text) {
    try { return JSON.parse(text); } catch { return null; }
  }

  // 3. The conversation.
  function receive(m, live) {
    if (!m || typeof m.id !== "number" || known.has(m.id)) return;
    if (m.sender !== "visitor" && m.sender !== "agent") return;
    const message = { id: m.id, sender: m.sender, author: m.author ?? null, text: String(m.text ?? ""), t: m.t };
    known.set(m.id, message);
    if (live && m.sender === "agent") {
      send({ type: "agent_message", text: message.text });
    }
    if (live) {
      notify({ type: "message", message });
      emit("message", { ...message });
    }
  }

  async function loadHistory() {
    if (!token) {
      historyKnown = true;
      send({ type: "chat_history", exists: false, visitor_msg_at: null, agent_msg_at: null, rating: null, rating_at: null });
      notify({ type: "history", messages: [] });
      return;
    }
    try {
      const data = await call("GET", "/conversation");
      if (closed) return;
      const conv = data.conversation;
      const offset = typeof data.now === "number" ? Date.now() - data.now : 0;
      const local = (t) => (typeof t === "number" ? t + offset : null);
      // On a page's first read the messages are history; on a re-read after
      // a reconnect, the ones we had not seen were said meanwhile: news.
      const catchUp = historyKnown;
      let lastVisitor = null;
      let lastAgent = null;
      for (const m of (conv && conv.messages) || []) {
        receive(m, catchUp);
        if (m.sender === "visitor") lastVisitor = local(m.t);
        else lastAgent = local(m.t);
      }
      conversationId = conv ? conv.id : null;
      historyKnown = true;
      const summary = {
        exists: Boolean(conv && conv.messages.length),
        visitor_msg_at: lastVisitor, agent_msg_at: lastAgent,
        rating: conv ? conv.rating : null, rating_at: conv ? local(conv.rating_at) : null,
      };
      send({ type: "chat_history", ...summary });
      // The same facts as a partial record: record_sync merges them (latest
      // timestamps win, `chat` ORs) in engines that do not read chat_history
      // yet; merging is idempotent, so an engine that reads both is unaffected.
      if (summary.exists) {
        send({ type: "record_sync", record: {
          chat: true, visitor_msg_at: summary.visitor_msg_at, agent_msg_at: summary.agent_msg_at,
          rating: summary.rating, rating_at: summary.rating_at,
        } });
      }
      notify({ type: "history", messages: messagesList() });
    } catch (err) {
      if (err.status === 401) {
        // The endpoint does not know this token (e.g. its data was reset).
        token = null;
        store.remove("token");
        restartStream();
        return;
      }
      warn(`chat history is unavailable (${err.message}); the chat history rule reads "unknown"`);
    }
  }

  function messagesList() {
    return [...known.values()].sort((a, b) => a.id - b.id);
  }

  function ensureVisitor() {
    if (token) return Promise.resolve(token);
    if (!registering) {
      registering = call("POST", "/visitors", { site }, { auth: false }).then((data) => {
        token = data.token;
        store.set("token", token);
        restartStream(); // now also carries this visitor's messages
        return token;
      }).finally(() => { registering = null; });
    }
    return registering;
  }

  async function sendVisitorMessage(text, options = {}) {
    text = String(text ?? "").trim();
    if (!text || closed) return null;
    const autoMessage = typeof options.message === "string" ? options.message : lastShown;
    send({ type: "visitor_message", text });
    if (autoMessage) track("replied", { message: autoMessage });
    try {
      await ensureVisitor();
      const data = await call("POST", "/conversation/messages", {
        text: text.slice(0, 2000), auto_message: autoMessage || undefined, site: site || undefined,
        page_url: location.href.slice(0, 2048),
      });
      conversationId = data.conversation;
      const m = data.message;
      const isNew = !known.has(m.id);
      receive(m, false);
      if (isNew) {
        notify({ type: "message", message: known.get(m.id) });
        emit("message", { ...known.get(m.id) });
      }
      return known.get(m.id);
    } catch (err) {
      warn(`a chat message could not be sent (${err.message})`);
      notify({ type: "failed", text, reason: err.message });
      return null;
    }
  }

  async function sendRating(value) {
    value = String(value ?? "").toLowerCase();
    if (!RATINGS.includes(value) || closed) return null;
    send({ type: "rating", value });
    notify({ type: "rating", value });
    if (!token || conversationId == null) return { rating: value, stored: false };
    try {
      const data = await call("POST", "/conversation/rating", { value });
      return { rating: data.rating, stored: true };
    } catch (err) {
      warn(`the rating could not be stored (${err.message})`);
      return { rating: value, stored: false };
    }
  }

  // 4. Beacons: kept in storage until the endpoint confirms them.
  function track(type, detail) {
    if (!detail || typeof detail.message !== "string") return;
    const queue = store.get("beacons") || [];
    const event = { id: randomId(), type, message: detail.message, t: Date.now() };
    if (detail.button !== undefined && detail.button !== null) event.button = String(detail.button);
    queue.push(event);
    store.set("beacons", queue.slice(-MAX_QUEUE));
    if (!flushTimer && !closed) flushTimer = setTimeout(() => { flushTimer = null; flush(false); }, FLUSH_DELAY_MS);
  }

  async function flush(hiding) {
    const queue = (store.get("beacons") || []).slice(0, 200);
    if (!queue.length) return;
    const body = JSON.stringify({ sender, site, events: queue });
    if (hiding) {
      // The page may be gone before a fetch answers: hand the batch to the
      // browser. It stays queued; the next page re-sends and the endpoint
      // ignores ids it has already counted.
      try { navigator.sendBeacon(url("/events"), body); } catch { /* retried next page */ }
      return;
    }
    try {
      const response = await fetch(url("/events"), {
        method: "POST", body, mode: "cors", credentials: "omit", keepalive: body.length < 60000,
        headers: { "content-type": "text/plain;charset=UTF-8" },
      });
      if (!response.ok) return;
      const sent = new Set(queue.map((e) => e.id));
      store.set("beacons", (store.get("beacons") || []).filter((e) => !sent.has(e.id)));
    } catch { /* offline: retried on the next page */ }
  }

  // 5. Delivery requests for `email` messages.
  async function requestDelivery(decision) {
    if (!decision || typeof decision.message !== "string") return null;
    try {
      await ensureVisitor();
      const data = await call("POST", "/deliveries", {
        message: decision.message, site: site || undefined, attributes,
      });
      return data.delivery;
    } catch (err) {
      warn(`the delivery request for ${decision.message} could not be sent (${err.message})`);
      return null;
    }
  }

  on("shown", (d) => { lastShown = d && d.message; track("shown", d); });
  on("clicked", (d) => track("clicked", d));
  on("dismissed", (d) => { if (d && d.message === lastShown) lastShown = null; track("dismissed", d); });
  on("identify", (d) => { if (d && d.attributes && typeof d.attributes === "object") attributes = { ...attributes, ...d.attributes }; });
  on("email", (d) => { requestDelivery(d); });

  const connection = {
    get historyKnown() { return historyKnown; },
    messages: messagesList,
    sendMessage: sendVisitorMessage,
    rate: sendRating,
    requestDelivery,
    flush: () => flush(false),
    close() {
      closed = true;
      if (stream) stream.close();
      stream = null;
      clearTimeout(streamTimer);
      clearTimeout(flushTimer);
      document.removeEventListener("visibilitychange", onVisibility);
      window.removeEventListener("pagehide", onPageHide);
      if (active === connection) active = null;
    },
  };
  active = connection;

  loadGeo();
  loadHistory();
  openStream();
  if ((store.get("beacons") || []).length) flush(false); // left over from an earlier page
  return connection;
}
