// When the engine starts: just in time (docs/embedding.md, "When the engine
// starts"). The signed bundle says, per page, how long after the page view a
// message could show at the earliest (widget/runtime/boothint.py writes it
// when signing). The engine is fetched and started `lead` ms before that
// instant, not at the load event; on a page where no message can show it is
// never fetched. Signals are captured from the first millisecond either way
// and replayed, so no decision changes: only what is downloaded, and when.
//
// The safe side everywhere: a bundle that does not verify, a hint missing or
// malformed, a fetch that fails — the engine starts at once (it then says
// what is wrong). The page reads the hint of the bundle cached from the last
// visit and of the one it fetches, and takes the earlier of the two.

import { BUNDLE_MAX_BYTES } from "../constants.mjs";
import { fetchBundle } from "../bundle/fetch.mjs";
import { fromBase64, verifyBytes } from "../bundle/verify.mjs";
import { holds, observe } from "../decisions/reactions.mjs";

const HINT_VERSION = 1;
const DEFAULT_LEAD_MS = 4000;
const MAX_SIGNATURES = 16;

// data-boot: "now" (start at the load event, as before just-in-time), or the
// default "auto". data-boot-lead: seconds before the first possible message.
export function bootConfig(tag) {
  const mode = /^now$/i.test(String(tag.boot || "").trim()) ? "now" : "auto";
  const lead = String(tag.bootLead ?? "").trim() === "" ? NaN : Number(tag.bootLead);
  return { mode, leadMs: Number.isFinite(lead) && lead >= 0 ? Math.round(lead * 1000) : DEFAULT_LEAD_MS };
}

function pae(type, payload) {
  const t = new TextEncoder().encode(type);
  const head = new TextEncoder().encode(`DSSEv1 ${t.length} ${type} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

// boothint.well_formed
function wellFormed(boot) {
  return Boolean(boot) && typeof boot === "object" && boot.v === HINT_VERSION && Array.isArray(boot.at)
    && boot.at.every((e) => Array.isArray(e) && e.length === 2 && Number.isInteger(e[0]) && e[0] >= 0
      && (e[1] === null || (typeof e[1] === "object" && !Array.isArray(e[1]))));
}

// The signed boot hint of an envelope (bytes or text): {hint, version,
// widgets} or {problem}, with `hintProblem` when the bundle itself is fine
// but its hint is missing or malformed (said in the console); a bundle that
// does not verify is the engine's to report.
async function signedHint(envelope, config, now) {
  let env;
  let payloadBytes;
  try {
    const text = typeof envelope === "string" ? envelope : new TextDecoder().decode(envelope);
    if (text.length > BUNDLE_MAX_BYTES) return { problem: "too large" };
    env = JSON.parse(text);
    payloadBytes = fromBase64(env.payload);
  } catch {
    return { problem: "not a signed envelope" };
  }
  if (!env || typeof env.payloadType !== "string" || !Array.isArray(env.signatures)) return { problem: "not a signed envelope" };
  const keys = config.keys.split(",").filter(Boolean).map((k) => fromBase64(k.slice("ed25519:".length)));
  const candidates = [];
  for (const s of env.signatures.slice(0, MAX_SIGNATURES)) {
    if (!s || typeof s.sig !== "string") continue;
    let sig;
    try { sig = fromBase64(s.sig); } catch { continue; }
    for (const key of keys) candidates.push([key, sig]);
  }
  if (!candidates.length) return { problem: "no signature" };
  const { verdict } = await verifyBytes(pae(env.payloadType, payloadBytes), candidates);
  if (verdict !== "valid") return { problem: `signature ${verdict}` };
  let payload;
  try {
    payload = JSON.parse(new TextDecoder().decode(payloadBytes));
  } catch {
    return { problem: "bad payload" };
  }
  if (!payload || typeof payload !== "object") return { problem: "bad payload" };
  if (config.site && payload.site !== config.site) return { problem: "another site's bundle" };
  if (typeof payload.expires_at === "string" && Date.parse(payload.expires_at) <= now) return { problem: "expired" };
  if (!wellFormed(payload.boot)) {
    return { problem: payload.boot === undefined ? "the bundle has no boot hint (signed by an older `proactive sign`)"
      : "the bundle's boot hint is malformed", hintProblem: true, version: payload.version };
  }
  return { hint: payload.boot, version: payload.version, widgets: Array.isArray(payload.widgets) ? payload.widgets : [] };
}

// boothint.due: the time on page (ms) from which a message can show on
// `href`, or null (never on this page). A test this page cannot evaluate
// exactly (reactions.mjs's `observe` leaves that URL to the engine) passes.
function dueOn(hint, href) {
  const o = observe(href);
  let best = null;
  for (const [after, test] of hint.at) {
    if (test !== null && o !== null) {
      let ok = true;
      try { ok = holds(test, o); } catch { ok = true; }
      if (!ok) continue;
    }
    if (best === null || after < best) best = after;
  }
  return best;
}

// The plan: `wait()` resolves when the engine is to start (called once the
// page has loaded). `page(event)`: a page view (a route change re-plans).
// `now(why)`: start at once (a command that needs the engine). `fetched`: the
// bundle the page fetched and verified ({bytes}), handed to the engine so
// that it is not fetched twice; null: the engine fetches it. `state` for status.
// `onBundle({widgets})`: a verified bundle, while the engine waits (the
// launcher and the chat do not wait for it). While it waits, the bundle is
// fetched again every data-revalidate seconds (a conditional request), as
// the engine would: a newer bundle's messages are planned for at once.
function createBootPlan({ config, boot, cachedEnvelope, firstPage, warn, onBundle = () => {} }) {
  let go;
  const started = new Promise((resolve) => { go = resolve; });
  let page = firstPage; // {url, t}: the current page
  let hints = null; // the verified hints, once known
  let cachedHint = null;
  let timer = null;
  let refresh = null;
  let halted = false; // shutdown: nothing more, not even a warning
  const state = { state: "waiting", at: null, reason: null };
  const plan = { fetched: null, state };

  function start(reason) {
    if (state.state === "started" || halted) return;
    clearTimeout(timer);
    clearInterval(refresh);
    Object.assign(state, { state: "started", reason, at: Date.now() });
    go();
  }

  function schedule() {
    if (state.state === "started" || halted || !hints || !page) return;
    clearTimeout(timer);
    let due = null;
    for (const hint of hints) {
      const d = dueOn(hint, page.url);
      if (d !== null && (due === null || d < due)) due = d;
    }
    if (due === null) {
      Object.assign(state, { state: "never", at: null, reason: "no message can show on this page" });
      return;
    }
    const at = page.t + due - boot.leadMs;
    const wait = at - Date.now();
    if (wait <= 0) return start(due === 0 ? "a message can show at once" : "a message can show soon");
    Object.assign(state, { state: "scheduled", at, reason: `a message can show ${due} ms after the page view` });
    timer = setTimeout(() => start("just in time"), wait);
  }

  const noHint = (problem) => {
    if (!halted) warn(`${problem}: the widget starts its engine at once on every page`);
    start("no usable boot hint");
  };

  // The fetched bundle's hint, planned with (resolves to it), or the engine
  // starts (the safe side; `again`: a revalidation that fails changes nothing,
  // as the engine's own keeps the bundle it runs).
  async function planFetched(again = false) {
    const fetched = await fetchBundle(config.bundle);
    if (state.state === "started" || halted) return false;
    if (fetched.problem) return again ? false : start("the bundle could not be fetched");
    const verified = await signedHint(fetched.bytes, config, Date.now());
    if (state.state === "started" || halted) return false;
    if (verified.hintProblem) return noHint(verified.problem);
    if (!verified.hint) return again ? false : start("the fetched bundle does not verify");
    plan.fetched = fetched;
    hints = [verified.hint, ...(cachedHint ? [cachedHint] : [])];
    schedule();
    if (state.state !== "started" && !halted) onBundle(verified);
    return verified;
  }

  async function decide() {
    if (state.state === "started") return undefined;
    if (boot.mode === "now") return start("data-boot=now");
    // The bundle cached from the last visit first: a returning visitor's
    // page plans (and shows the launcher) without waiting for the network.
    const cached = cachedEnvelope ? await signedHint(cachedEnvelope, config, Date.now()) : null;
    if (cached && cached.hint) {
      cachedHint = cached.hint;
      hints = [cached.hint];
      schedule();
      if (state.state === "started" || halted) return undefined;
      onBundle(cached);
    }
    const fetched = await planFetched();
    // A cached bundle without a usable hint matters only if it may run: when
    // it is newer than the fetched one (the engine keeps it, no rollback).
    if (fetched && cached && cached.hintProblem && !(fetched.version >= cached.version)) return noHint(cached.problem);
    if (fetched && state.state !== "started" && !halted && config.revalidate > 0) {
      refresh = setInterval(() => { planFetched(true).catch(() => start("error")); }, config.revalidate * 1000);
    }
    return undefined;
  }

  plan.wait = () => {
    decide().catch((err) => {
      if (!halted) warn(`the boot hint could not be read (${err && err.message}): the engine starts at once`);
      start("error");
    });
    return started;
  };
  plan.page = (event) => {
    if (event && typeof event.url === "string" && typeof event.t === "number") page = { url: event.url, t: event.t };
    schedule();
  };
  plan.now = (why) => start(why);
  plan.stop = () => {
    halted = true;
    clearTimeout(timer);
    clearInterval(refresh);
  };
  return plan;
}

// Pages that never started the engine: their signals that change the
// visitor record, kept under `:pending` in the visitor's store, so that the
// next page that does start it replays them into the record (page views,
// visits, last seen, chat, dismissals) with the engine's own code
// (widget/runtime/adapter.py, Runtime.start), not a copy of it here. A page
// starting its engine takes every other page's entry, also one still open
// in another tab (a page that had started its engine at once would have
// counted it already), marking it taken; once its record is saved
// (`commit`) each taken entry becomes a tombstone {id, done}. The page whose
// entry it was sees the tombstone, marks its page view as counted (its own
// engine, if it starts, only begins the page with it: the saved record has
// it), drops the tombstone and keeps its next signals in a new entry. An
// entry taken but not confirmed within CLAIM_MS (the taker closed) is free
// again; meanwhile its page counts its page view itself if its engine
// starts (a page's views are counted under its tab's key and records merge
// by the larger count, so the taker's replay cannot add it twice).
const MAX_PAGES = 50;
const MAX_EVENTS = 200;
const MAX_TOMBSTONES = 200;
const TOMBSTONE_MS = 24 * 3600 * 1000;
const MAX_CHARS = 100000;
const CLAIM_MS = 60000;
const RECORD_SIGNALS = new Set(["page_view", "visibility", "page_hide", "exit_intent", "widget_open", "widget_close",
  "visitor_message", "agent_message", "rating", "dismiss", "click", "chat_history"]);
const slim = ({ text, attributes, ...kept }) => kept; // no chat text on the device: the record does not keep it

function createPendingPages(store, tab, navStart) {
  const base = `${tab}@${navStart}@${Math.random().toString(36).slice(2, 8)}`;
  let serial = 0;
  let id = `${base}#0`;
  let mine = []; // this page's record signals not yet with an engine (the same objects as the shell's)
  let taken = null; // the entries this page's engine replays, until its record is saved
  const read = () => {
    const list = store.read(":pending");
    return Array.isArray(list) ? list.filter((p) => p && typeof p === "object" && typeof p.id === "string"
      && (Array.isArray(p.events) || typeof p.done === "number")) : [];
  };
  // Pages first (oldest dropped beyond the caps), then the newest tombstones.
  const save = (list, now) => {
    let pages = list.filter((p) => p.events).slice(-MAX_PAGES);
    const dead = list.filter((p) => !p.events && !(now - p.done > TOMBSTONE_MS)).slice(-MAX_TOMBSTONES);
    while (pages.length > 1 && JSON.stringify(pages).length > MAX_CHARS) pages = pages.slice(1);
    const kept = [...pages, ...dead];
    if (kept.length) store.write(kept, ":pending");
    else store.remove(":pending");
  };
  const given = new Map(); // this page's entries taken by another page, not confirmed yet: id → events
  // This page's entries replayed by another page whose record is saved now
  // (tombstones): their page views are counted; the tombstones are done with.
  function replayedElsewhere(list) {
    const done = new Set(list.filter((p) => !p.events && (p.id === id || given.has(p.id))).map((p) => p.id));
    if (!done.size) return list;
    for (const key of done) {
      for (const e of key === id ? mine : given.get(key)) if (e.type === "page_view") e.counted = true;
      given.delete(key);
    }
    if (done.has(id)) next();
    return list.filter((p) => !done.has(p.id));
  }
  // This page's current entry was taken (not confirmed yet): its next
  // signals go in a new entry.
  function takenElsewhere(list) {
    const entry = list.find((p) => p.id === id);
    if (!entry || !entry.taken) return;
    given.set(id, mine);
    next();
  }
  function next() {
    mine = [];
    serial += 1;
    id = `${base}#${serial}`;
  }
  return {
    // This page's signals so far (its engine has not started).
    note(events, now = Date.now()) {
      let list = replayedElsewhere(read());
      takenElsewhere(list);
      for (const e of events) {
        if (!e || !RECORD_SIGNALS.has(e.type)) continue;
        if (mine.length >= MAX_EVENTS) mine.splice(MAX_EVENTS - 2, 1); // keep the first ones and the latest
        mine.push(e);
      }
      if (!mine.length) return;
      list = list.filter((p) => p.id !== id);
      save([...list, { id, tab, events: mine.map(slim) }], now);
    },
    // At this page's engine start: the other pages' entries, oldest first
    // (this page's own signals go to the engine as this page's).
    take(now) {
      const own = (p) => p.id === id || given.has(p.id); // its signals are in this page's own events
      const list = replayedElsewhere(read()).filter((p) => !own(p));
      const free = (p) => p.events && (!p.taken || !(now - p.taken.at < CLAIM_MS));
      const chosen = list.filter(free);
      taken = chosen.map((p) => p.id);
      save(list.map((p) => (free(p) ? { ...p, taken: { by: id, at: now } } : p)), now);
      const first = (p) => Math.min(...p.events.map((e) => (e && typeof e.t === "number" ? e.t : Infinity)));
      return chosen.sort((a, b) => first(a) - first(b)).map((p) => ({ tab: typeof p.tab === "string" ? p.tab : "", events: p.events }));
    },
    // This page's engine has saved the record with them.
    commit(now = Date.now()) {
      if (!taken) return;
      const ids = new Set(taken);
      taken = null;
      if (ids.size) save(read().map((p) => (ids.has(p.id) ? { id: p.id, done: now } : p)), now);
    },
  };
}

// Both for the shell: the plan for this page (its first page view from the
// signals captured so far), and its pending entry, kept until the engine has
// this page's signals (not with data-boot="now": every page starts it).
// `signal(event)`: a signal sent before the engine started.
export function createBoot({ config, store, bundles, early, navStart, tab, warn, onBundle }) {
  const views = early.filter((e) => e.type === "page_view");
  const last = views[views.length - 1];
  const plan = createBootPlan({ config, boot: config.boot, cachedEnvelope: bundles.envelope(), warn, onBundle,
    firstPage: last ? { url: last.url, t: last.t } : null });
  const pending = createPendingPages(store, tab, navStart);
  const keeps = config.boot.mode !== "now";
  if (keeps) pending.note(early);
  return {
    plan,
    pending,
    signal(event) {
      if (event.type === "page_view") plan.page(event);
      if (keeps) pending.note([event]);
    },
  };
}
