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

import { endpointOff } from "../shell/config.mjs";
import { createBeacons } from "./beacons.mjs";
import { createChat } from "./chat.mjs";
import { createClient, openEndpointStore, randomId } from "./client.mjs";
import { loadGeo } from "./geo.mjs";
import { createPresence } from "./presence.mjs";

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

/** The endpoint's base URL: data-endpoint, else the widget's origin + /api;
 * data-endpoint="off" turns the endpoint off. */
export function endpointBase(dataEndpoint, widgetSrc) {
  if (endpointOff(dataEndpoint)) return null;
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
  const store = openEndpointStore(`proactive:v1:endpoint:${base}`);
  let closed = false;
  let sender = store.get("sender");
  if (!sender) {
    sender = randomId();
    store.set("sender", sender);
  }
  let lastShown = null; // the auto message on screen (for "replied")
  const ctx = {
    site, store, sender, send, emit, warn, notify,
    isClosed: () => closed,
    lastShown: () => lastShown,
  };
  ctx.client = createClient({ base, site, store, onRegistered: () => ctx.presence.restart() });
  ctx.presence = createPresence(ctx);
  ctx.chat = createChat(ctx);
  ctx.beacons = createBeacons(ctx);
  const { presence, chat, beacons } = ctx;
  document.addEventListener("visibilitychange", presence.onVisibility);
  const onPageHide = () => beacons.flush(true);
  window.addEventListener("pagehide", onPageHide);

  on("shown", (d) => { lastShown = d && d.message; beacons.track("shown", d); });
  on("clicked", (d) => beacons.track("clicked", d));
  on("exposed", (d) => beacons.track("exposed", d));
  on("goal", (d) => { for (const e of (d && d.exposures) || []) beacons.track("goal", { ...e, goal: d.goal, visitor: d.visitor }); });
  on("dismissed", (d) => { if (d && d.message === lastShown) lastShown = null; beacons.track("dismissed", d); });
  on("identify", (d) => { if (d) beacons.identify(d.attributes); });
  on("email", (d) => { beacons.requestDelivery(d); });

  const connection = {
    get historyKnown() { return chat.historyKnown; },
    messages: chat.messages,
    sendMessage: chat.sendMessage,
    rate: chat.rate,
    requestDelivery: beacons.requestDelivery,
    flush: () => beacons.flush(false),
    close() {
      closed = true;
      presence.close();
      beacons.close();
      document.removeEventListener("visibilitychange", presence.onVisibility);
      window.removeEventListener("pagehide", onPageHide);
      if (active === connection) active = null;
    },
  };
  active = connection;

  loadGeo(ctx);
  chat.loadHistory();
  presence.open();
  if (beacons.pending()) beacons.flush(false); // left over from an earlier page
  return connection;
}
