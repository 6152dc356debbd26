// Presence and live messages: one SSE stream (GET /stream) with the team's
// online/offline state, agent replies and ratings; it reconnects with
// exponential backoff and closes while the tab is hidden.

import { RATINGS } from "../constants.mjs";

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60000;

function parse(text) {
  try { return JSON.parse(text); } catch { return null; }
}

// `ctx`: {client, send, emit, warn, notify, isClosed, chat, beacons}.
export function createPresence(ctx) {
  let stream = null;
  let streamTimer = null;
  let backoff = 0;
  let team = null;

  function listen(es) {
    es.addEventListener("presence", (e) => {
      const data = parse(e.data);
      if (!data || (data.team !== "online" && data.team !== "offline")) return;
      if (data.team !== team) {
        team = data.team;
        ctx.send({ type: "team", value: team });
        ctx.emit("team", { value: team });
      }
    });
    es.addEventListener("hello", () => {
      const reconnected = backoff > 0;
      backoff = 0;
      // Messages sent while we were away arrive with the history.
      if (reconnected && ctx.client.token) ctx.chat.loadHistory();
    });
    es.addEventListener("message", (e) => {
      const m = parse(e.data);
      if (m) ctx.chat.receive(m, true);
    });
    es.addEventListener("rating", (e) => {
      const r = parse(e.data);
      if (r && RATINGS.includes(r.rating)) ctx.notify({ type: "rating", value: r.rating });
    });
    es.onerror = () => {
      // Own the retry (EventSource's own has no backoff): close, wait, reopen.
      es.close();
      if (stream === es) stream = null;
      if (ctx.isClosed()) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** backoff);
      backoff += 1;
      streamTimer = setTimeout(open, Math.round(delay * (0.5 + Math.random() / 2)));
    };
  }

  function open() {
    if (ctx.isClosed() || stream) return;
    clearTimeout(streamTimer);
    streamTimer = null;
    const token = ctx.client.token;
    const query = token ? `?visitor=${encodeURIComponent(token)}` : "";
    let es;
    try {
      es = new EventSource(ctx.client.url(`/stream${query}`));
    } catch (err) {
      ctx.warn(`live presence is unavailable: ${err.message}`);
      return;
    }
    stream = es;
    listen(es);
  }

  function close() {
    if (stream) stream.close();
    stream = null;
    clearTimeout(streamTimer);
  }

  // A hidden tab needs no live stream (browsers cap connections per host).
  function onVisibility() {
    if (document.visibilityState === "hidden") {
      close();
      ctx.beacons.flush(true);
    } else if (!stream && !ctx.isClosed()) {
      backoff = Math.max(backoff, 1); // catch up on what we missed
      open();
    }
  }

  return {
    open,
    restart() {
      if (stream) stream.close();
      stream = null;
      open();
    },
    onVisibility,
    close,
  };
}
