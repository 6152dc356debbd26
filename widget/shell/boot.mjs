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

import { BUNDLE_MAX_BYTES, VISIT_GAP_MS } from "../constants.mjs";
import { fetchBundle } from "../bundle/fetch.mjs";
import { fromBase64, verifyBytes } from "../bundle/verify.mjs";
import { holds, observe } from "../decisions/reactions.mjs";

const HINT_VERSION = 1;
export const DEFAULT_LEAD_MS = 4000;
const MAX_SIGNATURES = 16;

// data-boot: "now" (start at the load event, as before just-in-time), or the
// default "auto". data-boot-lead: seconds before the first possible message.
export function bootConfig(tag) {
  const mode = /^now$/i.test(String(tag.boot || "").trim()) ? "now" : "auto";
  const lead = Number(tag.bootLead);
  return { mode, leadMs: tag.bootLead !== undefined && tag.bootLead !== null && tag.bootLead !== "" && Number.isFinite(lead) && lead >= 0
    ? Math.round(lead * 1000) : DEFAULT_LEAD_MS };
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
export function wellFormed(boot) {
  return Boolean(boot) && typeof boot === "object" && boot.v === HINT_VERSION && Array.isArray(boot.at)
    && boot.at.every((e) => Array.isArray(e) && e.length === 2 && Number.isInteger(e[0]) && e[0] >= 0
      && (e[1] === null || (typeof e[1] === "object" && !Array.isArray(e[1]))));
}

// The signed boot hint of an envelope (bytes or text): {hint, version} or
// {problem, safe}: `safe` false when the bundle itself is fine but its hint
// is missing or malformed (said in the console); a bundle that does not
// verify is the engine's to report.
export async function signedHint(envelope, config, now) {
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
export function dueOn(hint, href) {
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
// bundle the page fetched ({bytes} | {problem}), handed to the engine so that
// it is not fetched twice; null: the engine fetches it. `state` for status.
// `onBundle({widgets})`: a verified bundle, while the engine waits (the
// launcher and the chat do not wait for it).
export function createBootPlan({ config, boot, cachedEnvelope, firstPage, warn, onBundle = () => {} }) {
  let go;
  const started = new Promise((resolve) => { go = resolve; });
  let page = firstPage; // {url, t}: the current page
  let hints = null; // the verified hints, once known
  let timer = null;
  const state = { state: "waiting", at: null, reason: null };
  const plan = { fetched: null, state };

  function start(reason) {
    if (state.state === "started") return;
    clearTimeout(timer);
    Object.assign(state, { state: "started", reason, at: Date.now() });
    go();
  }

  function schedule() {
    if (state.state === "started" || !hints || !page) return;
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
    warn(`${problem}: the widget starts its engine at once on every page`);
    start("no usable boot hint");
  };

  async function decide() {
    if (state.state === "started") return undefined;
    if (boot.mode === "now") return start("data-boot=now");
    // The bundle cached from the last visit first: a returning visitor's
    // page plans (and shows the launcher) without waiting for the network.
    const cached = cachedEnvelope ? await signedHint(cachedEnvelope, config, Date.now()) : null;
    if (cached && cached.hint) {
      hints = [cached.hint];
      schedule();
      if (state.state === "started") return undefined;
      onBundle(cached);
    }
    plan.fetched = await fetchBundle(config.bundle);
    if (state.state === "started") return undefined;
    if (plan.fetched.problem) return start("the bundle could not be fetched");
    const fetched = await signedHint(plan.fetched.bytes, config, Date.now());
    if (fetched.hintProblem) return noHint(fetched.problem);
    if (!fetched.hint) return start("the fetched bundle does not verify");
    // A cached bundle without a usable hint matters only if it may run: when
    // it is newer than the fetched one (the engine keeps it, no rollback).
    if (cached && cached.hintProblem && !(fetched.version >= cached.version)) return noHint(cached.problem);
    hints = [fetched.hint, ...(cached && cached.hint ? [cached.hint] : [])];
    schedule();
    if (state.state !== "started") onBundle(fetched);
    return undefined;
  }

  plan.wait = () => {
    decide().catch((err) => {
      warn(`the boot hint could not be read (${err && err.message}): the engine starts at once`);
      start("error");
    });
    return started;
  };
  plan.page = (event) => {
    if (event && typeof event.url === "string" && typeof event.t === "number") page = { url: event.url, t: event.t };
    schedule();
  };
  plan.now = (why) => start(why);
  plan.stop = () => clearTimeout(timer);
  return plan;
}

// Pages that never started the engine: their signals, kept under `:pending`
// in the visitor's store, so that the next page that does start it replays
// them into the visitor record (page views, visits, last seen…) with the
// engine's own code (widget/runtime/adapter.py, Runtime.start), not a copy
// of it here. A page's entry is taken once it has ended (page hidden) or is
// older than a visit's gap (a tab that crashed); a page still open elsewhere
// keeps its own.
const MAX_PAGES = 50;
const MAX_EVENTS = 200;

export function createPendingPages(store, tab, navStart) {
  const id = `${tab}@${navStart}@${Math.random().toString(36).slice(2, 8)}`;
  const mine = [];
  const read = () => {
    const list = store.read(":pending");
    return Array.isArray(list) ? list.filter((p) => p && typeof p === "object" && Array.isArray(p.events)) : [];
  };
  return {
    // This page's signals so far (it has not started the engine).
    note(events) {
      for (const e of events) {
        if (mine.length >= MAX_EVENTS) mine.splice(MAX_EVENTS - 2, 1); // keep the first ones and the latest
        mine.push(e);
      }
      const others = read().filter((p) => p.id !== id);
      const list = [...others, { id, tab, events: mine }];
      store.write(list.slice(-MAX_PAGES), ":pending");
    },
    // The ended pages' entries for the engine, removed from the store (with
    // this page's own: its signals go to the engine as this page's).
    take(now) {
      const list = read();
      if (!list.length) return [];
      const done = (p) => {
        const last = p.events[p.events.length - 1];
        return p.events.some((e) => e && e.type === "page_hide") || (last && typeof last.t === "number" && now - last.t >= VISIT_GAP_MS);
      };
      const taken = list.filter((p) => p.id !== id && done(p));
      const kept = list.filter((p) => p.id !== id && !done(p));
      if (kept.length) store.write(kept, ":pending");
      else store.remove(":pending");
      return taken.map((p) => ({ tab: typeof p.tab === "string" ? p.tab : "", events: p.events }));
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
