// Consent-first mode (data-consent, docs/embedding.md "Consent"). While
// consent is pending the widget keeps everything in memory: no localStorage,
// sessionStorage, IndexedDB (the Pyodide snapshot), cookies or Cache Storage
// of its own, no visitor registered at the endpoint, no beacons; the engine
// runs for this page only (a new visitor on every page). The site decides:
// proactive('consent', true | false), or the page's IAB TCF v2.2 API
// (data-consent="tcf": purpose 1, storage, followed as it changes).

import { keepTabId } from "./claims.mjs";

const PREFIX = "proactive:"; // every key the widget writes (record, bundle, claims, endpoint, tab)
export const SNAPSHOT_DB = "proactive-snapshot"; // ../engine/python.mjs
const TCF_WAIT_MS = 10000; // a CMP's __tcfapi that is not there by then is said once
const TCF_POLL_MS = 250;

/** data-consent: "required" | "tcf" | null (not asked: consent is given). */
export function consentMode(value) {
  const v = typeof value === "string" ? value.trim().toLowerCase() : "";
  return v === "required" || v === "tcf" ? v : null;
}

// `apply(granted)`: the shell's work for a change; its promise is what
// proactive('consent', …) resolves to.
export function createConsent(mode, apply) {
  let granted = !mode;
  let work = Promise.resolve(null);
  let resolveFirst;
  const firstGrant = new Promise((resolve) => { resolveFirst = resolve; });
  if (granted) resolveFirst();
  return {
    mode,
    get granted() { return granted; },
    firstGrant, // resolves once consent is given (at once when not asked)
    // A grant when granted is nothing; a withdrawal always erases (an
    // earlier page's data may be on the device).
    set(value) {
      const next = value === true;
      if (next && granted) return work.then(() => true);
      granted = next;
      if (next) resolveFirst();
      work = work.catch(() => null).then(() => apply(next));
      return work;
    },
  };
}

// Everything the widget may have stored on this device, in this origin.
export function eraseDevice() {
  for (const area of ["localStorage", "sessionStorage"]) {
    try {
      const storage = window[area];
      const ours = [];
      for (let i = 0; i < storage.length; i += 1) {
        const k = storage.key(i);
        if (k && k.startsWith(PREFIX)) ours.push(k);
      }
      for (const k of ours) storage.removeItem(k);
    } catch { /* blocked: nothing there */ }
  }
  return new Promise((resolve) => {
    try {
      const req = indexedDB.deleteDatabase(SNAPSHOT_DB);
      req.onsuccess = req.onerror = () => resolve();
      req.onblocked = () => {}; // deleted once the worker's connection closes
    } catch {
      resolve();
    }
  });
}

// data-consent="tcf": purpose 1 (store and access information on a device)
// of the page's CMP, as it loads and whenever the visitor changes it.
// `onChange(granted)` is called with each answer that says something.
export function watchTcf(onChange, warn, cleanup) {
  let waited = 0;
  let timer = null;
  let listenerId = null;
  const attach = () => {
    const api = window.__tcfapi;
    if (typeof api !== "function") {
      waited += TCF_POLL_MS;
      if (waited < TCF_WAIT_MS) timer = setTimeout(attach, TCF_POLL_MS);
      else warn("data-consent=\"tcf\": the page has no __tcfapi (IAB TCF v2.2); nothing is stored until proactive('consent', true)");
      return;
    }
    api("addEventListener", 2, (data, success) => {
      if (!success || !data) return;
      if (typeof data.listenerId === "number") listenerId = data.listenerId;
      if (data.eventStatus !== "tcloaded" && data.eventStatus !== "useractioncomplete") return;
      const consents = data.purpose && data.purpose.consents;
      onChange(data.gdprApplies === false || Boolean(consents && consents[1]));
    });
  };
  attach();
  cleanup.push(() => {
    clearTimeout(timer);
    if (listenerId !== null && typeof window.__tcfapi === "function") {
      try { window.__tcfapi("removeEventListener", 2, () => {}, listenerId); } catch { /* the CMP's */ }
    }
  });
}

// Consent given: this page's memory goes to the device (an earlier visit's
// record there is merged by the engine, as another tab's is) and the
// endpoint's side starts as in the normal mode. Withdrawn: memory only from
// now on, the endpoint asked to delete this visitor's data, everything of
// ours erased from the device. The Pyodide snapshot is made by the next page
// after consent (it is taken before any page data enters Python, so not on
// this one). `w`: the shell's {store, channel, send, conversation, status,
// isStopped}. Resolves to {consent, deleted: the endpoint's counts | null}.
export async function applyConsent(granted, w) {
  const { store, channel, conversation, status } = w;
  if (w.isStopped()) return null;
  status.consent = granted ? "granted" : "pending";
  if (granted) {
    let earlier = null;
    store.persist((suffix, mine, theirs) => {
      if (suffix === "") earlier = theirs;
      if (suffix === ":claims" && Array.isArray(mine) && Array.isArray(theirs)) return [...new Set([...theirs, ...mine])];
      if (suffix === ":pending" && Array.isArray(mine) && Array.isArray(theirs)) { // pages waiting for the engine (./boot.mjs)
        const ids = new Set(theirs.map((p) => p && p.id));
        return [...theirs, ...mine.filter((p) => p && !ids.has(p.id))];
      }
      return undefined; // the device's
    });
    status.storage = store.persistent ? "localStorage" : "memory";
    keepTabId();
    if (earlier && channel.booted) w.send({ type: "record_sync", t: Date.now(), record: earlier });
    await conversation.consented();
    return { consent: true, deleted: null };
  }
  store.detach();
  status.storage = "memory";
  if (channel.booted) channel.post({ type: "forget" }); // the worker keeps no snapshot
  const answer = await conversation.withdraw();
  await eraseDevice();
  return { consent: false, deleted: (answer && answer.deleted) || null };
}
