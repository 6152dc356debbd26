// The browser side of the endpoint (docs/endpoint.md): everything the widget
// learns from, or tells, a backend. Nothing in the trigger path waits on it:
// answers become engine events when (and if) they arrive, and when the
// endpoint is down the widget works with geo/team/history reading "unknown".
//
//   geo          GET  /geo                     once per visit, cached
//   presence     GET  /presence                team online/offline (cacheable), only when
//                                              a message of the bundle depends on the team
//   live         GET  /stream  (SSE)           agent replies (and presence) while chatting:
//                                              opens with a conversation, closes when idle;
//                                              reconnects with backoff, resumes (last_event_id)
//   history      GET  /conversation            the visitor's own conversation
//   chat         POST /conversation/messages   visitor messages
//                POST /conversation/rating     great / average / poor
//   beacons      POST /events                  shown/clicked/dismissed/replied, batched,
//                                              kept until the endpoint confirms, retried
//                                              on the next page, sendBeacon on page hide
//   email        POST /deliveries              delivery requests for `email` messages
//   identity     POST /visitors                an unguessable token, created on first write
//   privacy      DELETE /visitors/me           consent withdrawn: the endpoint deletes this
//                                              browser's data (token and beacon sender)
// While consent is pending (data-consent) nothing is registered, stored or
// beaconed: geo, presence and history without a token still work.
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

// Read only (no probe write: consent may never have been given).
function deviceValue(key) {
  try {
    const text = window.localStorage.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function storePrefix(base) {
  return `proactive:v1:endpoint:${base}`;
}

// What this browser kept on the device for the endpoint at `base` (its
// visitor token, its beacon sender), read before `forget()` turns the store
// to memory; then DELETE /visitors/me for it. Resolves to the endpoint's
// answer ({deleted}), or null (nothing kept, or the endpoint unreachable:
// said once).
async function withdrawIdentity(base, store, forget, warn) {
  const token = deviceValue(`${storePrefix(base)}:token`);
  const sender = deviceValue(`${storePrefix(base)}:sender`);
  const kept = store.persistent || token || sender; // else nothing of this page's ever left memory
  store.detach();
  if (kept) forget();
  if (!token && !sender) return null;
  const erase = (bearer) => fetch(`${base}/visitors/me${sender ? `?sender=${encodeURIComponent(sender)}` : ""}`, {
    method: "DELETE", headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    mode: "cors", credentials: "omit", cache: "no-store", keepalive: true,
  });
  try {
    let response = await erase(token);
    // A token the endpoint no longer knows: the sender's events still go.
    if (response.status === 401 && token && sender) response = await erase(null);
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  } catch (err) {
    warn(`the endpoint could not be asked to delete this visitor's data (${err.message})`);
    return null;
  }
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
 * connect({base, site, send, on, emit, warn, consent, team}) starts the endpoint's side
 * channel for this page and returns the connection.
 *   send(event)      an engine event without `t` (the shell stamps it)
 *   on(name, fn)     subscribe to the widget's public events (shown, clicked,
 *                    dismissed, identify, email)
 *   emit(name, x)    publish a public event (proactive('on', name, cb))
 *   warn(text)       printed once with [proactive]
 *   team             whether the bundle has a message that depends on the team
 *                    (then presence is read; `needTeam` changes it)
 */
export function connect({ base, site = null, send, on, emit = () => {}, warn = () => {}, consent = { granted: true },
  team = false }) {
  if (active) active.close();
  const prefix = storePrefix(base);
  const store = openEndpointStore(prefix, { device: consent.granted });
  let closed = false;
  const newSender = () => {
    const id = randomId();
    store.set("sender", id);
    return id;
  };
  let lastShown = null; // the auto message on screen (for "replied")
  const ctx = {
    site, store, sender: store.get("sender") || newSender(), send, emit, warn, notify,
    isClosed: () => closed,
    lastShown: () => lastShown,
    allowed: () => consent.granted, // registering and beacons wait for consent
  };
  ctx.client = createClient({ base, site, store, onRegistered: () => ctx.presence.restart(), allowed: ctx.allowed });
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
    needTeam: presence.needTeam,
    // Consent given: this page's identity and queued beacons go to the
    // device (an earlier visit's token and sender win), then everything
    // starts as in the normal mode.
    consented() {
      if (store.persistent) return; // consent was there when this page connected
      store.persist((name, mine, theirs) => {
        if (name === "beacons" && Array.isArray(mine) && Array.isArray(theirs)) return [...theirs, ...mine];
        return name === "geo" ? mine : undefined;
      });
      ctx.sender = store.get("sender") || newSender();
      if (ctx.client.reload()) {
        presence.restart();
        chat.loadHistory();
      }
      if (beacons.pending()) beacons.flush(false);
    },
    // Consent withdrawn: forget this browser's identity (memory only from
    // now on) and ask the endpoint to delete what it keeps about it.
    withdraw: () => withdrawIdentity(base, store, () => {
      beacons.close();
      for (const name of ["token", "beacons", "geo"]) store.remove(name);
      ctx.client.forgetToken();
      ctx.sender = newSender();
      presence.restart();
    }, warn),
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
  presence.needTeam(team);
  if (beacons.pending()) beacons.flush(false); // left over from an earlier page
  return connection;
}
