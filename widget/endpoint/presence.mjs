// Team presence and live messages, holding a connection only while chatting:
// - the team's online/offline state comes from GET /presence (one small
//   answer every visitor shares: cacheable, ETag), read only when the bundle
//   has a message that depends on the team (`needTeam`), again every
//   TEAM_POLL_MS while the page is visible;
// - the SSE stream (GET /stream) opens once the visitor has a conversation
//   (a message sent, or one in the history less than IDLE_MS old) and closes
//   IDLE_MS after its last message either way; while open it also carries
//   presence. It reconnects with exponential backoff, closes while the tab
//   is hidden, and resumes from the last message id it has (?last_event_id=,
//   the endpoint replays what came meanwhile), so no reply is lost.

import { RATINGS } from "../constants.mjs";

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60000;
// The backoff starts over only once a stream has stayed up this long: a
// stream that connects and drops at once keeps backing off to the ceiling.
const STABLE_MS = 30000;
// This many failures in a row (about 2 minutes of trying) are said, once.
const FAILURES_TOLD = 7;
// A conversation with no message for this long holds no stream.
export const IDLE_MS = 10 * 60 * 1000;
export const TEAM_POLL_MS = 30000;

function parse(text) {
  try { return JSON.parse(text); } catch { return null; }
}

const hidden = () => document.visibilityState === "hidden";

// The team's presence without a stream: GET /presence now and every
// TEAM_POLL_MS while wanted, visible and not streaming (`streaming()`).
function teamReader(ctx, streaming, setTeam) {
  let wanted = false; // the bundle has a message that depends on the team
  let timer = null;

  function stop() {
    clearTimeout(timer);
    timer = null;
  }

  async function read() {
    stop();
    if (!wanted || streaming() || ctx.isClosed() || hidden()) return;
    try {
      const data = await ctx.client.call("GET", "/presence", undefined, { auth: false, cache: "default" });
      if (!streaming()) setTeam(data && data.team);
    } catch (err) {
      ctx.warn(`team presence is unavailable (${err.message}); messages for an online or offline team wait`);
    }
    if (wanted && !streaming() && !ctx.isClosed() && !hidden() && !timer) timer = setTimeout(read, TEAM_POLL_MS);
  }

  return {
    need(value) {
      wanted = Boolean(value);
      if (wanted && !streaming() && !timer) read();
    },
    read,
    stop,
  };
}

// `ctx`: {client, send, emit, warn, notify, isClosed, chat, beacons}.
export function createPresence(ctx) {
  let stream = null;
  let streamTimer = null;
  let backoff = 0;
  let stableTimer = null;
  let failures = 0; // in a row, without a stable stream in between
  let historyStep = -1; // the backoff step at which history was last re-read
  let team = null;
  let chattingUntil = 0; // Date.now() until which the conversation holds a stream
  let idleTimer = null;

  const chatting = () => Date.now() < chattingUntil;

  function setTeam(value) {
    if (value !== "online" && value !== "offline") return;
    if (value !== team) {
      team = value;
      ctx.send({ type: "team", value: team });
      ctx.emit("team", { value: team });
    }
  }

  const teamNow = teamReader(ctx, () => Boolean(stream), setTeam);

  // -- the stream, while chatting ------------------------------------------------------
  function listen(es) {
    es.addEventListener("presence", (e) => {
      const data = parse(e.data);
      if (data) setTeam(data.team);
    });
    es.addEventListener("hello", () => {
      clearTimeout(stableTimer);
      stableTimer = setTimeout(() => {
        backoff = 0;
        failures = 0;
        historyStep = -1;
      }, STABLE_MS);
      // Past what the endpoint replays (an hour, 100 messages) the history
      // has it: read at most once per backoff step.
      if (backoff > 0 && backoff !== historyStep && ctx.client.token) {
        historyStep = backoff;
        ctx.chat.loadHistory();
      }
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
      clearTimeout(stableTimer);
      if (stream === es) stream = null;
      if (ctx.isClosed()) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** backoff);
      backoff += 1;
      failures += 1;
      if (failures === FAILURES_TOLD) {
        ctx.warn(`the endpoint's live stream (${ctx.client.url("/stream")}) keeps failing (${failures} times in a row); `
          + `retrying about once a minute: agent replies arrive late`);
      }
      streamTimer = setTimeout(open, Math.round(delay * (0.5 + Math.random() / 2)));
    };
  }

  function open() {
    clearTimeout(streamTimer);
    streamTimer = null;
    const token = ctx.client.token;
    if (ctx.isClosed() || stream || !token || !chatting() || hidden()) return;
    teamNow.stop();
    const ids = ctx.chat.messages().map((m) => m.id);
    const last = ids.length ? `&last_event_id=${Math.max(...ids)}` : "";
    let es;
    try {
      es = new EventSource(ctx.client.url(`/stream?visitor=${encodeURIComponent(token)}${last}`));
    } catch (err) {
      ctx.warn(`live replies are unavailable: ${err.message}`);
      return;
    }
    stream = es;
    listen(es);
  }

  function closeStream() {
    if (stream) stream.close();
    stream = null;
    clearTimeout(streamTimer);
    clearTimeout(stableTimer);
  }

  function idle() {
    closeStream();
    teamNow.read();
  }

  return {
    // The conversation had a message `ago` ms ago (0: now): it holds a
    // stream until IDLE_MS after it.
    chatted(ago = 0) {
      const until = Date.now() - Math.max(0, ago) + IDLE_MS;
      if (until <= chattingUntil) return;
      chattingUntil = until;
      clearTimeout(idleTimer);
      idleTimer = chatting() ? setTimeout(idle, chattingUntil - Date.now()) : null;
      open();
    },
    // Whether the running bundle reads the team (its `ready` says so).
    needTeam: teamNow.need,
    // A new or forgotten token: a stream for the old one reopens for the new.
    restart() {
      if (!stream) return;
      closeStream();
      open();
    },
    get streaming() { return Boolean(stream); },
    // A hidden tab holds no connection (browsers cap them per host).
    onVisibility() {
      if (hidden()) {
        closeStream();
        teamNow.stop();
        ctx.beacons.flush(true);
      } else if (!ctx.isClosed()) {
        if (chatting()) {
          backoff = Math.max(backoff, 1); // catch up on what we missed
          open();
        }
        if (!stream) teamNow.read();
      }
    },
    close() {
      closeStream();
      teamNow.stop();
      clearTimeout(idleTimer);
    },
  };
}
