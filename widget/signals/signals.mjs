// Signals after the loader: what the page and the site tell the widget,
// turned into engine events (docs/architecture.md lists them). The loader
// (widget/loader.js) captures page views and exit intents; this module adds
// the visitor's context, other tabs' records, language changes and the
// site's own proactive('identify' | 'track', ...) calls.

import { ENGINE_EVENTS as ENGINE_EVENT_NAMES } from "../constants.mjs";

// The events the engine reads (widget/runtime/constants.py); others reach
// only the site's handlers.
export const ENGINE_EVENTS = new Set(ENGINE_EVENT_NAMES);
// Signals a site with its own chat feeds in with proactive('track', name, …).
const TRACKED_SIGNALS = new Set(["visitor_message", "agent_message", "rating"]);

export function visitorContext() {
  const nav = navigator;
  let coarse = false;
  try { coarse = matchMedia("(pointer: coarse)").matches && nav.maxTouchPoints > 0; } catch { /* desktop */ }
  // Phones and tablets are "mobile"; otherwise the engine reads the user agent.
  const mobile = (nav.userAgentData && nav.userAgentData.mobile === true) || coarse;
  return {
    language: nav.language || null,
    languages: Array.from(nav.languages || []),
    user_agent: nav.userAgent || "",
    platform: mobile ? "mobile" : null,
  };
}

// Visitor-supplied attributes (identify, track): plain values only.
export function plainAttributes(value) {
  const out = {};
  if (!value || typeof value !== "object") return out;
  for (const key of Object.keys(value).slice(0, 50)) {
    const v = value[key];
    if (v === null || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) out[key.slice(0, 100)] = v;
    else if (typeof v === "string") out[key.slice(0, 100)] = v.slice(0, 2000);
  }
  return out;
}

// proactive('track', name, properties): the event and the public detail.
export function trackedEvent(name, props, t) {
  const signal = String(name ?? "");
  const properties = typeof props === "string" ? { value: props } : plainAttributes(props);
  let event = { type: "track", name: signal, properties, t };
  if (signal === "rating") event = { type: "rating", value: String(properties.value ?? ""), t };
  else if (TRACKED_SIGNALS.has(signal)) event = { type: signal, t, ...(typeof properties.text === "string" ? { text: properties.text } : {}) };
  return { event, detail: { name: signal, properties } };
}

// The loader's signals under their public names (proactive('on', name, cb)).
export function signalName(event) {
  return event.type === "page_view" || event.type === "exit_intent" ? event.type : null;
}

export function signalDetail(event) {
  return event.type === "page_view"
    ? { url: event.url, referrer: event.referrer, t: event.t }
    : { how: event.how, t: event.t };
}

// Other tabs of the site (their record is merged by the engine) and the
// browser's language.
export function watchPage({ listen, store, send }) {
  listen(window, "storage", (e) => {
    const other = store.changedElsewhere(e);
    if (other) send({ type: "record_sync", t: Date.now(), record: other });
  });
  listen(window, "languagechange", () => {
    const { language, languages } = visitorContext();
    send({ type: "context", t: Date.now(), language, languages });
  });
}
