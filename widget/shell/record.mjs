// The visitor record: one versioned localStorage key, shared by the site's
// tabs; memory (with one console warning) when storage is blocked or full,
// and memory only while consent is pending (data-consent, ./consent.mjs).
// The same store keeps the last good bundle (widget/bundle/cache.mjs) under
// suffixes of the record's key.

import { RECORD_VERSION, VISIT_GAP_MS } from "../constants.mjs";
import { warnOnce } from "./warn.mjs";

function canonical(value) {
  return JSON.stringify(value, (k, v) => (v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((key) => [key, v[key]])) : v));
}

// The widget's entries in localStorage under one key (`key` + a suffix),
// or in memory only. `device: false` (consent pending, ./consent.mjs)
// touches no storage at all, not even to read, until `persist`; `detach`
// goes back to memory (consent withdrawn). `onFallback(err)`: storage is
// blocked or full (memory from then on).
export function openKeyStore(key, { device = true, onFallback = () => {} } = {}) {
  let storage = null;
  const memory = new Map(); // full key → JSON text, while not on the device
  const fallBack = (err) => {
    storage = null;
    onFallback(err);
  };
  const attach = () => {
    try {
      storage = window.localStorage;
      const probe = `${key}:probe`;
      storage.setItem(probe, "1");
      storage.removeItem(probe);
    } catch (err) {
      fallBack(err);
    }
    return storage !== null;
  };
  if (device) attach();
  const raw = (k) => {
    if (storage) {
      try {
        return storage.getItem(k);
      } catch (err) {
        fallBack(err);
      }
    }
    return memory.has(k) ? memory.get(k) : null;
  };
  const ours = (k) => k === key || k.startsWith(`${key}:`);
  const parse = (text) => {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  };
  const store = {
    key,
    get persistent() { return storage !== null; },
    read: (suffix = "") => parse(raw(key + suffix)),
    // Writes only a change: an identical write would wake the other tabs.
    write(value, suffix = "") {
      const text = canonical(value);
      if (raw(key + suffix) === text) return;
      if (storage) {
        try {
          storage.setItem(key + suffix, text);
          return;
        } catch (err) {
          fallBack(err);
        }
      }
      memory.set(key + suffix, text);
    },
    remove(suffix = "") {
      try { if (storage) storage.removeItem(key + suffix); } catch { /* ignore */ }
      memory.delete(key + suffix);
    },
    // Another tab of the site wrote the record: `event` is a StorageEvent.
    changedElsewhere(event) {
      if (!storage || event.key !== key || event.storageArea !== storage || !event.newValue) return null;
      return parse(event.newValue);
    },
    // Consent given: on the device from now on, with what this page kept in
    // memory. An entry already on the device (an earlier visit's) stays,
    // unless `merge(suffix, pageValue, deviceValue)` returns another value.
    persist(merge = () => undefined) {
      if (storage || !attach()) return;
      const kept = [...memory].filter(([k]) => ours(k));
      memory.clear();
      for (const [k, text] of kept) {
        const suffix = k.slice(key.length);
        const mine = parse(text);
        const theirs = store.read(suffix);
        const value = theirs === null ? mine : merge(suffix, mine, theirs);
        if (value !== undefined && value !== null) store.write(value, suffix);
      }
    },
    // Consent withdrawn: memory only from now on, holding the current values
    // (the device's entries are erased by consent.mjs, `eraseDevice`).
    detach() {
      if (!storage) return;
      try {
        for (let i = 0; i < storage.length; i += 1) {
          const k = storage.key(i);
          if (k && ours(k)) memory.set(k, storage.getItem(k));
        }
      } catch { /* what was read is kept */ }
      storage = null;
    },
  };
  return store;
}

// The visitor record's store (and the bundle cache's and the claims'),
// one per site. `device`: as openKeyStore.
export function openStore(name, { device = true } = {}) {
  return openKeyStore(`proactive:v${RECORD_VERSION}:${name}`, {
    device,
    onFallback: (err) => warnOnce(err && err.name === "QuotaExceededError"
      ? "localStorage is full: the visitor record is kept in memory for this page only"
      : "localStorage is unavailable: the visitor record is kept in memory for this page only"),
  });
}

// The record itself: what the engine last returned (or the QA kit seeded),
// persisted; read back from storage first (another tab may be newer).
export function openVisitorRecord(store) {
  let record = store.read();
  return {
    current: () => store.read() || record,
    save(value) {
      record = value;
      if (record) store.write(record);
    },
    // This page was open and shown from `since` until `now` (it is being
    // hidden or left): the visitor was present, so the visit goes on until
    // now (widget/runtime/record.py `present`, the same rule). Written here
    // on the main thread: the engine's own answer may come after the page
    // is gone.
    markPresent(since, now) {
      const current = store.read() || record;
      const log = current && Array.isArray(current.visit_log) ? current.visit_log : null;
      const visit = log && log[log.length - 1];
      if (!visit || typeof visit.last !== "number" || since - visit.last >= VISIT_GAP_MS || now <= visit.last) return;
      visit.last = now;
      current.last_seen = typeof current.last_seen === "number" ? Math.max(current.last_seen, now) : now;
      this.save(current);
    },
  };
}

// A fresh random visitor id for experiments (widget/runtime/experiments.py):
// the engine keeps it in the record when the record has none yet, so it is
// created once, on the first visit, and stays. Offered only when the record
// persists: a visitor whose storage is blocked sees each experiment's first
// variant and is not counted.
export function newVisitorId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The visitor's arm of each experiment they were exposed to, from the record
// (`exposed`: "MESSAGE@SALT" → [arm, t]; the latest experiment of a message).
export function armsOf(record) {
  const out = {};
  const when = {};
  const exposed = record && record.exposed && typeof record.exposed === "object" ? record.exposed : {};
  for (const [key, entry] of Object.entries(exposed)) {
    const message = key.slice(0, key.lastIndexOf("@"));
    if (!Array.isArray(entry) || typeof entry[0] !== "string" || !(typeof entry[1] === "number")) continue;
    if (!(message in when) || entry[1] > when[message]) {
      out[message] = entry[0];
      when[message] = entry[1];
    }
  }
  return out;
}

// Since when this page has been shown without a break, from the signals it
// sends (page views, visibility changes, page hide); calls `present(since,
// t)` when a stretch of being shown ends.
export function trackPresence(present) {
  let shownSince = null;
  return (event) => {
    if (event.type === "page_view") {
      shownSince = event.hidden ? null : event.t;
    } else if (event.type === "visibility" && event.state !== "hidden") {
      if (shownSince === null) shownSince = event.t;
    } else if (event.type === "visibility" || event.type === "page_hide") {
      if (shownSince !== null) present(shownSince, event.t);
      shownSince = null;
    }
  };
}
