// The shell: everything on the main thread after the loader, composed from
// one module per concept:
//   configuration (config.mjs) → visitor record (record.mjs) → the runtime,
//   in a module worker or on the page (../engine/channel.mjs) → early signals
//   replayed (../signals/) → the clock, one timer for the engine's next
//   wake-up (clock.mjs) → decisions painted (../decisions/, ../render/) →
//   visitor actions fed back as events → the record persisted, shared with
//   the site's other tabs; the JS API (api.mjs), the conversation
//   (conversation.mjs), the bundle cache (../bundle/cache.mjs), the QA kit
//   (../qa/hooks.mjs).
// Nothing here throws into the host page; `shutdown` undoes all of it.
// docs/embedding.md is the user's view of this file (API, events, attributes).

import { createApi } from "./api.mjs";
import { createBoot } from "./boot.mjs";
import { createClaims, tabId } from "./claims.mjs";
import { createClock } from "./clock.mjs";
import { appearanceFor, readConfig } from "./config.mjs";
import { applyConsent, createConsent, watchTcf } from "./consent.mjs";
import { startConversation } from "./conversation.mjs";
import { createEvents } from "./events.mjs";
import { newVisitorId, openStore, openVisitorRecord, trackPresence } from "./record.mjs";
import { warnOnce } from "./warn.mjs";
import { openBundleCache } from "../bundle/cache.mjs";
import { applyResult } from "../decisions/decisions.mjs";
import { createReactions } from "../decisions/reactions.mjs";
import { createChannel } from "../engine/channel.mjs";
import { createQa } from "../qa/hooks.mjs";
import { createRenderer } from "../render/render.mjs";
import { ENGINE_EVENTS, signalDetail, signalName, visitorContext, watchPage } from "../signals/signals.mjs";

export { warnOnce };

export function start({ api, config, capture }) {
  try {
    // Shut down before the shell arrived (the loader waits for the page's
    // load event): nothing is started, the loader's capture is undone.
    if (api.q.some((args) => args && args[0] === "shutdown")) {
      api.q.length = 0;
      releaseCapture(capture);
      api.__target = () => undefined;
      return;
    }
    const widget = createWidget(api, config, capture);
    const queued = api.q.splice(0);
    if (!widget) {
      api.__target = () => undefined; // misconfigured: the API stays callable and silent
      return;
    }
    api.__target = widget.command;
    for (const args of queued) widget.command(...args);
    widget.announceEarly();
  } catch (err) {
    warnOnce(`widget not started: ${err && err.message}`);
  }
}

// Undo the loader's listeners and history patches.
function releaseCapture(capture) {
  for (const [target, type, fn, opts] of capture.listeners.splice(0)) {
    try {
      if (typeof opts === "function") {
        // A history patch: restore the original unless someone patched on top
        // of ours, in which case ours becomes a plain pass-through.
        if (target[type] === opts) target[type] = fn;
        else opts.disabled = true;
      } else {
        target.removeEventListener(type, fn, opts);
      }
    } catch { /* keep undoing */ }
  }
  capture.signals.length = 0;
}

// data-revalidate: the runtime fetches the bundle again every `seconds`
// (a conditional request) and swaps in a newer one: how a kill switch
// (`proactive pause`) reaches pages that stay open.
function revalidateEvery(seconds, channel, cleanup) {
  if (!(seconds > 0)) return;
  const timer = setInterval(() => channel.post({ type: "revalidate", now: Date.now() }), seconds * 1000);
  cleanup.push(() => clearInterval(timer));
}

// Everything else the runtime says (docs/architecture.md, worker protocol).
function handleMessage(msg, w) {
  const { status, events, renderer, config, qa, bundles, reactions, channel, clock } = w;
  switch (msg.type) {
    case "ready":
      Object.assign(status, { ready: true, bundle: msg.bundle, timings: msg.timings });
      revalidateEvery(config.revalidate, channel, w.cleanup);
      status.readyAt = Math.round(performance.now()); // ms since navigation start
      if (channel.initAt !== null) status.timings = { ...msg.timings, init_at: Math.round(channel.initAt) };
      events.emit("ready", { bundle: msg.bundle });
      renderer.configure(appearanceFor(config, msg.bundle));
      if (qa.debug) qa.logSnapshot();
      break;
    case "bundle": // a verified, newer bundle: the last good one for the next page
      bundles.keep(msg);
      if (status.ready && msg.bundle) status.bundle = msg.bundle;
      break;
    case "result":
      applyResult(msg, w);
      if (msg.record) w.boot.pending.commit(); // the saved record holds the pages that never started the engine
      break;
    case "swapReady":
      // A newer bundle is ready in the worker: drop the running engine's
      // answers, then let it swap (after everything sent so far).
      reactions.drop();
      channel.post({ type: "swap", seq: channel.nextSeq() });
      break;
    case "stepFailed":
      reactions.failed(msg.seq);
      break;
    case "reactions":
      if (reactions.keep(msg, channel.lastSeq)) clock.schedule();
      break;
    case "warn":
      qa.warnings.push(msg.text);
      warnOnce(msg.text);
      break;
    case "failed":
      status.failed = msg.text;
      break;
    default:
      break;
  }
}

// addEventListener for the widget: a throwing listener is warned about, not
// thrown into the page; `added` (to put back) and `cleanup` (to undo) keep it.
function listener(cleanup, added) {
  return (target, type, fn, opts) => {
    const safe = (e) => {
      try { fn(e); } catch (err) { warnOnce(`internal error in the ${type} listener: ${err && err.message}`); }
    };
    target.addEventListener(type, safe, opts);
    added.push([target, type, safe, opts]);
    cleanup.push(() => target.removeEventListener(type, safe, opts));
  };
}

function createWidget(api, tag, capture) {
  const config = readConfig(tag);
  if (config.problems.length) {
    warnOnce(`widget not started: ${config.problems.join("; ")}`);
    return null;
  }
  const cleanup = []; // undo functions, run by shutdown
  const added = []; // [target, type, listener, options]: put back after the page's document.open()
  const listen = listener(cleanup, added);
  // document.open() drops every listener of the document and the window:
  // ours and the loader's go back (adding one that is still there is a no-op).
  function relisten() {
    for (const [target, type, fn, opts] of [...capture.listeners, ...added]) {
      if (typeof opts === "function") continue; // a history patch, not a listener
      try { target.addEventListener(type, fn, opts); } catch { /* keep going */ }
    }
  }
  let stopped = false;
  let widgetOpen = false;
  const isStopped = () => stopped;
  const consent = createConsent(config.consent, (granted) => applyConsent(granted,
    { store, channel, send, conversation, status, isStopped }));
  const store = openStore(config.site || config.bundle, { device: consent.granted });
  const record = openVisitorRecord(store);
  const presence = trackPresence((since, t) => record.markPresent(since, t));
  const bundles = openBundleCache(store);
  const claims = createClaims(store);
  const events = createEvents();
  const early = capture.signals.splice(0); // signals from before the shell
  const announced = early.slice();
  early.forEach(presence);
  // When the engine starts (./boot.mjs): just in time for the first message
  // this page can show; never on a page where none can.
  const boot = createBoot({ config, store, bundles, early, navStart: capture.navStart, tab: tabId({ keep: consent.granted }), warn: warnOnce,
    onBundle: (b) => { if (!status.ready && !stopped) renderer.configure(appearanceFor(config, b)); } }); // the launcher, meanwhile
  const status = {
    navStart: capture.navStart, ready: false, mode: null, bundle: null, nextWakeup: null, shown: [], shownCount: 0,
    storage: store.persistent ? "localStorage" : "memory", touch: capture.touch, stopped: false,
    consent: consent.granted ? "granted" : "pending",
    ahead: 0, // messages shown inside their event's handler (then confirmed by the engine)
  };

  const renderer = createRenderer({
    onDismiss: (id) => send({ type: "dismiss", message: id, t: Date.now() }, "dismissed", { message: id }),
    onClick: (id, button, how = {}) => send({ type: "click", message: id, button, t: Date.now() }, "clicked",
      { message: id, button, action: how.action, label: how.label }),
    onOpen: () => setOpen(true, true),
    onClose: () => setOpen(false, true),
    onReply: (text, id) => conversation.reply(text, id),
    onRate: (value) => conversation.rate(value),
    onRemount: () => { if (!stopped) relisten(); },
    chat: config.chat,
  });
  const reactions = createReactions({ renderer, warn: warnOnce });
  const channel = createChannel({
    mode: config.mode,
    loadDeadline: capture.loadDeadline, // the loader waited for the page's load until then
    // data-consent-messages="none": the engine starts once consent is given.
    gate: config.consentMessages === "none" ? consent.firstGrant : null,
    when: () => boot.plan.wait(),
    initMessage: () => ({
      config: { bundle: config.bundle, keys: config.keys, site: config.site,
        snapshot: consent.granted ? config.snapshot : "off", // IndexedDB: only with consent
        context: { ...visitorContext(), tab: tabId({ keep: consent.granted }), claims: true,
          // experiments count only a visitor whose id is stored (with consent, in storage that works)
          ...(store.persistent && consent.granted ? { visitor_id: newVisitorId() } : {}) } },
      record: record.current(),
      cachedBundle: bundles.envelope(),
      lastVersion: bundles.version(),
      events: early.splice(0).sort((a, b) => a.t - b.t),
      fetched: boot.plan.fetched, // the bundle as this page fetched it (null: the runtime fetches it)
      pages: boot.pending.take(Date.now()), // earlier pages that never started the engine
    }),
    onMessage: (msg) => handleMessage(msg, { status, events, renderer, config, qa, bundles, reactions, channel, clock, record, conversation, claims, send, cleanup, boot }),
    onStarted: (mode) => { status.mode = mode; },
  });
  const clock = createClock({ channel, reactions, status });
  const qa = createQa({ renderer, channel, record, claims, command: (...args) => command(...args), isStopped });
  const conversation = startConversation({ config, renderer, events, send, warn: warnOnce, cleanup, isStopped, consent });
  if (config.widget) early.push({ type: "context", widget: String(config.widget), t: Date.now() });

  // Every signal goes through here: to the site's handlers, then the engine.
  function send(event, publicName, detail) {
    if (stopped) return;
    if (publicName) events.emit(publicName, detail);
    if (qa.debug) console.debug(`[proactive] event ${event.type}`, event);
    if (!ENGINE_EVENTS.has(event.type)) return;
    presence(event);
    if (!channel.booted) {
      early.push(event);
      boot.signal(event);
      return;
    }
    const seq = channel.nextSeq();
    reactions.answer(event, seq);
    channel.post({ type: "events", events: [event], now: Math.max(event.t, Date.now()), seq });
  }
  api.__signal = (event) => send(event, signalName(event), signalDetail(event));

  function setOpen(open, fromRenderer) {
    if (widgetOpen === open) return;
    widgetOpen = open;
    if (!fromRenderer) open ? renderer.open() : renderer.close();
    send({ type: open ? "widget_open" : "widget_close", t: Date.now() }, open ? "open" : "close", {});
  }

  watchPage({ listen, store, send });
  if (config.consent === "tcf") watchTcf((granted) => consent.set(granted), warnOnce, cleanup);


  // Undo everything: listeners (the loader's and ours), the history patches,
  // the timer, the worker, the element, the handlers.
  function shutdown() {
    if (stopped) return;
    qa.setDebug(false);
    stopped = true;
    status.stopped = true;
    clock.stop();
    boot.plan.stop();
    channel.stop();
    releaseCapture(capture);
    for (const undo of cleanup.splice(0)) {
      try { undo(); } catch { /* keep undoing */ }
    }
    early.length = 0;
    renderer.destroy();
    events.clear();
    api.__signal = null;
  }

  status.boot = boot.plan.state;
  const command = createApi({
    events, send, setOpen, qa, channel, reactions, store, status, shutdown, claims, consent, plan: boot.plan,
    isReady: () => status.ready, isStopped,
  });

  // The signals captured before the shell, for handlers the site queued.
  function announceEarly() {
    for (const event of announced.splice(0)) {
      const name = signalName(event);
      if (name) events.emit(name, signalDetail(event));
    }
  }

  return { command, announceEarly };
}
