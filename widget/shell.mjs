// The shell: everything on the main thread after the loader.
//   start() → check the tag's configuration → open the visitor record →
//   start the runtime (module worker, or main thread) → replay early signals →
//   own the clock (one timer for the engine's next wake-up) → render decisions
//   → feed visitor actions back as events → persist the record, shared with
//   the site's other tabs.
// Nothing here throws into the host page; `shutdown` undoes all of it.
// docs/embedding.md is the user's view of this file (API, events, attributes).

import { createRenderer } from "./render.mjs";
import { reaction } from "./reactions.mjs";

const ENGINE_EVENTS = new Set([
  "page_view", "exit_intent", "widget_open", "widget_close", "visitor_message", "agent_message",
  "rating", "dismiss", "click", "team", "identify", "geo", "context", "record_sync", "tick",
  "chat_history", // from the endpoint (widget/endpoint.mjs)
]);
// Signals a site with its own chat feeds in with proactive('track', name, …).
const TRACKED_SIGNALS = new Set(["visitor_message", "agent_message", "rating"]);
const MAX_TIMEOUT = 2147483647;
const RENEWALS = 20; // per second, at most
const RECORD_VERSION = 1;

export function start({ api, config, capture }) {
  try {
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

const warned = new Set();
export function warnOnce(text) {
  if (warned.has(text)) return;
  warned.add(text);
  console.warn(`[proactive] ${text}`);
}

// 1. Configuration from the script tag.
export function readConfig(config) {
  const problems = [];
  let bundle = null;
  if (!config.bundle) problems.push("data-bundle is missing");
  else {
    try {
      bundle = new URL(config.bundle, document.baseURI).href;
      if (!/^https?:$/.test(new URL(bundle).protocol)) problems.push(`data-bundle ${config.bundle} is not an http(s) URL`);
    } catch {
      problems.push(`data-bundle ${JSON.stringify(config.bundle)} is not a URL`);
    }
  }
  const keys = (config.key || "").split(",").map((k) => k.trim()).filter(Boolean);
  if (!keys.length) problems.push("data-key is missing (expected ed25519:BASE64)");
  for (const k of keys) {
    if (!/^ed25519:[A-Za-z0-9+/]{43}=$/.test(k)) problems.push(`data-key ${JSON.stringify(k.slice(0, 60))} is malformed (expected ed25519: and 44 base64 characters)`);
  }
  return { problems, bundle, keys: keys.join(","), site: config.site || null };
}

// 2. The visitor record: one versioned localStorage key, shared by the site's
// tabs; memory (with one console warning) when storage is blocked or full.
function canonical(value) {
  return JSON.stringify(value, (k, v) => (v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((key) => [key, v[key]])) : v));
}

function openStore(name) {
  const key = `proactive:v${RECORD_VERSION}:${name}`;
  let storage = null;
  const fallBack = (err) => {
    storage = null;
    warnOnce(err && err.name === "QuotaExceededError"
      ? "localStorage is full: the visitor record is kept in memory for this page only"
      : "localStorage is unavailable: the visitor record is kept in memory for this page only");
  };
  try {
    storage = window.localStorage;
    const probe = `${key}:probe`;
    storage.setItem(probe, "1");
    storage.removeItem(probe);
  } catch (err) {
    fallBack(err);
  }
  const memory = new Map();
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
  return {
    key,
    get persistent() { return storage !== null; },
    read(suffix = "") {
      try {
        const text = raw(key + suffix);
        return text ? JSON.parse(text) : null;
      } catch {
        return null;
      }
    },
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
    // Another tab of the site wrote the record: `event` is a StorageEvent.
    changedElsewhere(event) {
      if (!storage || event.key !== key || event.storageArea !== storage || !event.newValue) return null;
      try {
        return JSON.parse(event.newValue);
      } catch {
        return null;
      }
    },
  };
}

function visitorContext() {
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

// The runtime starts once the host page has loaded, so the page's own loading
// never competes with Pyodide's (the loader captures signals meanwhile); at
// the latest 10 s after the shell started, for pages whose load never ends.
function afterPageLoad() {
  if (document.readyState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 10000);
    window.addEventListener("load", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// 3. The runtime: a module worker from a same-origin blob that imports the
// widget's module (the widget lives on another origin than the page); the
// main thread when asked (data-mode="main"), when workers are unavailable, or
// when the worker fails to load.
function startRuntime(config, onMessage) {
  const runtime = { mode: null, stopped: false, post() {}, stop() { runtime.stopped = true; } };
  const onMain = async () => {
    const { createHost } = await import(new URL("host.mjs", config.src).href);
    if (runtime.stopped) return runtime;
    const host = createHost((m) => { if (!runtime.stopped) queueMicrotask(() => onMessage(m)); });
    runtime.mode = "main";
    runtime.post = (m) => { if (!runtime.stopped) host.receive(structuredClone(m)); };
    queueMicrotask(() => onMessage({ type: "booted" }));
    return runtime;
  };
  if (config.mode === "main" || typeof Worker !== "function") return onMain();
  try {
    const workerUrl = new URL("worker.mjs", config.src).href;
    const blob = new Blob([`import ${JSON.stringify(workerUrl)};`], { type: "text/javascript" });
    const blobUrl = URL.createObjectURL(blob);
    const worker = new Worker(blobUrl, { type: "module", name: "proactive" });
    URL.revokeObjectURL(blobUrl);
    let alive = false;
    worker.onmessage = (e) => {
      if (e.data && e.data.type === "booted") alive = true;
      onMessage(e.data || {});
    };
    worker.onerror = (e) => {
      e.preventDefault();
      if (alive || runtime.stopped) {
        warnOnce(`the widget's worker failed: ${e.message || "unknown error"}`);
        return;
      }
      worker.terminate();
      warnOnce("the widget's worker could not start (check the page's Content-Security-Policy: worker-src blob: and the widget's origin); running on the main thread");
      onMain().catch((err) => {
        warnOnce(`the runtime could not start: ${err.message}`);
        onMessage({ type: "failed", text: "the runtime could not start" });
      });
    };
    runtime.mode = "worker";
    runtime.post = (m) => { if (!runtime.stopped && runtime.mode === "worker") worker.postMessage(m); };
    runtime.stop = () => { runtime.stopped = true; worker.terminate(); };
    return Promise.resolve(runtime);
  } catch (err) {
    warnOnce(`module workers are unavailable (${err.message}); running on the main thread`);
    return onMain();
  }
}

// Visitor-supplied attributes (identify, track): plain values only.
function plainAttributes(value) {
  const out = {};
  if (!value || typeof value !== "object") return out;
  for (const key of Object.keys(value).slice(0, 50)) {
    const v = value[key];
    if (v === null || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) out[key.slice(0, 100)] = v;
    else if (typeof v === "string") out[key.slice(0, 100)] = v.slice(0, 2000);
  }
  return out;
}

function describeCondition(c) {
  const expected = c.expected === null || c.expected === undefined ? "" : ` ${JSON.stringify(c.expected)}`;
  return `${c.rule} ${c.op}${expected} → ${c.result} (observed ${JSON.stringify(c.observed)})`;
}

function createWidget(api, rawConfig, capture) {
  const config = readConfig(rawConfig);
  if (config.problems.length) {
    warnOnce(`widget not started: ${config.problems.join("; ")}`);
    return null;
  }
  config.src = rawConfig.src;
  config.mode = rawConfig.mode;
  config.snapshot = rawConfig.snapshot;
  const cleanup = []; // undo functions, run by shutdown
  const listen = (target, type, fn, opts) => {
    const safe = (e) => {
      try { fn(e); } catch (err) { warnOnce(`internal error in the ${type} listener: ${err && err.message}`); }
    };
    target.addEventListener(type, safe, opts);
    cleanup.push(() => target.removeEventListener(type, safe, opts));
  };
  const store = openStore(config.site || config.bundle);
  const handlers = new Map(); // event name → Set of callbacks
  let record = store.read();
  let runtime = null;
  let booted = false;
  let ready = false;
  let timer = null;
  let debug = false;
  let stopped = false;
  let widgetOpen = false;
  const early = capture.signals.splice(0); // signals from before the shell
  const announced = early.slice();
  const waiting = new Map(); // ping id → resolve, for proactive('sync')
  // Steps sent to the runtime are numbered; `reactions` is the engine's
  // answer for the page's own next signal, kept only while it belongs to the
  // last step sent; `ahead`, a card shown from it, awaiting the engine's step.
  let sentSeq = 0;
  let reactions = null;
  let ahead = null;
  let engineWakeup = null;
  const renewals = []; // when the answers were last renewed (Date.now())
  let nextPing = 1;
  const status = {
    navStart: capture.navStart, ready: false, mode: null, bundle: null, nextWakeup: null, shown: [],
    storage: store.persistent ? "localStorage" : "memory", touch: capture.touch, stopped: false,
    ahead: 0, // messages shown inside their event's handler (then confirmed by the engine)
  };

  const renderer = createRenderer({
    onDismiss: (id) => send({ type: "dismiss", message: id, t: Date.now() }, "dismissed", { message: id }),
    onClick: (id, button, how = {}) => send({ type: "click", message: id, button, t: Date.now() }, "clicked",
      { message: id, button, action: how.action, label: how.label }),
    onOpen: () => setOpen(true, true),
    onClose: () => setOpen(false, true),
    onReply: (text, id) => reply(text, id),
    onRate: (value) => chatModule && chatModule.rate(value),
  });

  // --- chat panel wiring (owner: render; widget/render.mjs) ---
  // The panel talks to the endpoint module (sendMessage/rate/onMessage); a
  // reply is announced as "replied" with the auto message it answers.
  let chatModule = null;
  let lastShown = null;
  function reply(text, id) {
    const message = id || lastShown;
    if (message) emit("replied", { message, text }); // a reply to an auto message (not any chat message)
    const sending = chatModule ? chatModule.sendMessage(text, message ? { message } : {}) : Promise.resolve(null);
    sending.then((sent) => { if (!sent) renderer.chat({ type: "failed", text }); }, () => renderer.chat({ type: "failed", text }));
  }
  import(new URL("endpoint.mjs", config.src).href).then((m) => {
    if (stopped) return;
    chatModule = m;
    cleanup.push(m.onMessage((news) => renderer.chat(news)));
  }).catch(() => { /* reported by the endpoint wiring */ });
  if (!handlers.has("team")) handlers.set("team", new Set());
  const onTeam = (d) => renderer.setTeam(d && d.value);
  handlers.get("team").add(onTeam);
  if (!handlers.has("dismissed")) handlers.set("dismissed", new Set());
  handlers.get("dismissed").add((d) => { if (d && d.message === lastShown) lastShown = null; });
  if (rawConfig.widget) early.push({ type: "context", widget: String(rawConfig.widget), t: Date.now() });
  function appearanceFor(bundle) {
    const widgets = (bundle && bundle.widgets) || [];
    const entry = widgets.find((w) => w.id === rawConfig.widget) || widgets[0] || {};
    const fromTag = {};
    for (const key of ["color", "position", "launcher", "title"]) if (rawConfig[key]) fromTag[key] = rawConfig[key];
    return { ...entry, ...fromTag };
  }
  // --- end chat panel wiring ---

  function emit(name, detail) {
    for (const fn of handlers.get(name) || []) {
      try { fn(detail); } catch (err) { console.error(err); } // the site's own handler failed
    }
  }

  // Every signal goes through here: to the site's handlers, then the engine.
  function send(event, publicName, detail) {
    if (stopped) return;
    if (publicName) emit(publicName, detail);
    if (debug) console.debug(`[proactive] event ${event.type}`, event);
    if (!ENGINE_EVENTS.has(event.type)) return;
    if (!booted) {
      early.push(event);
      return;
    }
    const seq = ++sentSeq;
    const known = reaction(reactions, event);
    if (known) showAhead(known, event.t, seq, reactions.generation);
    reactions = null;
    runtime.post({ type: "events", events: [event], now: Math.max(event.t, Date.now()), seq });
  }

  // An exit intent or a route change the engine already answered: the card
  // goes up in this very event handler (the next frame paints it); the
  // engine's step for the event confirms it, and only then is it "shown".
  function showAhead(decision, t, seq, generation) {
    try {
      renderer.show({ ...decision, t });
      ahead = { seq, message: decision.message, generation };
    } catch (err) {
      warnOnce(`internal error showing a message: ${err && err.message}`); // the engine's result shows it
    }
  }
  function signalName(event) {
    return event.type === "page_view" || event.type === "exit_intent" ? event.type : null;
  }
  function signalDetail(event) {
    return event.type === "page_view"
      ? { url: event.url, referrer: event.referrer, t: event.t }
      : { how: event.how, t: event.t };
  }
  api.__signal = (event) => send(event, signalName(event), signalDetail(event));

  // --- endpoint wiring (owner: endpoint; widget/endpoint.mjs, docs/endpoint.md) ---
  // Geo, presence, chat and beacons: the endpoint's news become engine events
  // when they arrive. Nothing waits on it; when it is down those rules read
  // "unknown". data-endpoint picks another backend ("off" disables it).
  import(new URL("endpoint.mjs", config.src).href).then((endpoint) => {
    const base = endpoint.endpointBase(rawConfig.endpoint, config.src);
    if (!base || stopped) return;
    const connection = endpoint.connect({
      base, site: config.site, emit, warn: warnOnce,
      send: (event) => send({ ...event, t: Date.now() }),
      on: (name, fn) => { if (!handlers.has(name)) handlers.set(name, new Set()); handlers.get(name).add(fn); },
    });
    cleanup.push(() => connection.close());
  }).catch((err) => warnOnce(`the chat endpoint module could not load: ${err && err.message}`));
  // --- end endpoint wiring ---

  function setOpen(open, fromRenderer) {
    if (widgetOpen === open) return;
    widgetOpen = open;
    if (!fromRenderer) open ? renderer.open() : renderer.close();
    send({ type: open ? "widget_open" : "widget_close", t: Date.now() }, open ? "open" : "close", {});
  }

  // The clock: one timer, for the engine's next wake-up, or earlier, when
  // the engine's answer for the page's own signals runs out (a step then
  // renews it). status.nextWakeup is the engine's: a decision can change then.
  function schedule() {
    clearTimeout(timer);
    timer = null;
    status.nextWakeup = engineWakeup;
    const expiries = (reactions ? [reactions.exit && reactions.exit.until, reactions.route && reactions.route.until] : [])
      .filter((x) => typeof x === "number");
    // At most RENEWALS a second: an answer that kept expiring at once would
    // then simply not be used in between (the round trip still works).
    while (renewals.length && renewals[0] <= Date.now() - 1000) renewals.shift();
    const floor = renewals.length >= RENEWALS ? renewals[0] + 1000 : -Infinity;
    const renew = expiries.length ? Math.max(Math.min(...expiries), floor) : null;
    const due = [engineWakeup, renew].filter((x) => typeof x === "number");
    if (!due.length || stopped) return;
    const at = Math.min(...due);
    const wake = () => {
      if (at !== engineWakeup) renewals.push(Date.now());
      reactions = null;
      runtime.post({ type: "wake", now: Math.max(Date.now(), at), seq: ++sentSeq });
    };
    if (at <= Date.now()) {
      // Already due (events replayed after a slow start): wake now, not on a
      // timer, which a paused test clock would never fire.
      const mark = sentSeq;
      queueMicrotask(() => {
        if (!stopped && sentSeq === mark && status.nextWakeup === engineWakeup) wake();
      });
      return;
    }
    const delay = Math.min(at - Date.now(), MAX_TIMEOUT);
    timer = setTimeout(() => {
      timer = null;
      if (!stopped) wake();
    }, delay);
  }

  // Round trips to the runtime: sync (a ping) and explain.
  function ask(kind, now) {
    return new Promise((resolve) => {
      if (stopped) return resolve(null);
      const id = nextPing++;
      waiting.set(id, (m) => resolve(kind === "sync" ? true : m.explain));
      const post = (alive) => (stopped || !alive ? resolve(null) : runtime.post({ type: kind === "sync" ? "ping" : "explain", id, now: now ?? Date.now() }));
      bootedOnce.then(post); // after init: the runtime answers in order
    });
  }

  // proactive('debug', true): each decision with its reasons, in the console.
  function logDecision(d) {
    const when = new Date(d.t).toISOString();
    ask("explain", d.t).then((explain) => {
      const entry = explain && explain[d.message];
      const reasons = entry ? entry.conditions.map(describeCondition) : [];
      console.info(`[proactive] ${d.action} "${d.message}" at ${when}: ${reasons.length ? reasons.join("; ") : "no rules"}`, entry || d);
    });
  }
  function logSnapshot() {
    ask("explain").then((explain) => {
      if (!explain) return;
      for (const [id, entry] of Object.entries(explain)) {
        const blocked = entry.blocked_by && entry.blocked_by.length ? ` blocked by ${entry.blocked_by.join(", ")}` : "";
        console.info(`[proactive] "${id}": ${entry.result}${blocked}: ${entry.conditions.map(describeCondition).join("; ") || "no rules"}`, entry);
      }
    });
  }

  // Entry point for everything the runtime says: nothing escapes to the page.
  function onMessage(msg) {
    try {
      handleMessage(msg);
    } catch (err) {
      warnOnce(`internal error handling "${msg && msg.type}": ${err && err.message}`);
    }
  }

  function handleMessage(msg) {
    if (stopped) return;
    switch (msg.type) {
      case "booted":
        runtimeStarted.then(() => {
        if (stopped || booted) return;
        booted = true;
        runtime.post({
          type: "init",
          config: { bundle: config.bundle, keys: config.keys, site: config.site, context: visitorContext(), snapshot: config.snapshot },
          record: store.read() || record,
          cachedBundle: store.read(":bundle"),
          lastVersion: (store.read(":bundle-version") || {}).version ?? null,
          events: early.splice(0).sort((a, b) => a.t - b.t),
          now: Date.now(),
          seq: ++sentSeq,
        });
        markBooted(true);
        });
        break;
      case "ready":
        ready = true;
        status.ready = true;
        status.bundle = msg.bundle;
        status.timings = msg.timings;
        status.readyAt = Math.round(performance.now()); // ms since navigation start
        emit("ready", { bundle: msg.bundle });
        renderer.configure(appearanceFor(msg.bundle));
        if (debug) logSnapshot();
        break;
      case "bundle": {
        // A verified, newer bundle: the last good one for the next page. Never
        // lower the stored version (another tab may have accepted a newer one),
        // unless it came from a key the tag no longer pins (after a rotation).
        const stored = (store.read(":bundle-version") || {}).version;
        if (msg.untrustedFloor || !(Number.isInteger(stored) && stored > msg.version)) {
          store.write(msg.envelope, ":bundle");
          store.write({ version: msg.version }, ":bundle-version");
        }
        if (ready && msg.bundle) status.bundle = msg.bundle;
        break;
      }
      case "result": {
        // Paint first, then persist the record (sent only when it changed),
        // then tell the site's handlers.
        const decisions = msg.decisions || [];
        reactions = null;
        let painted = null;
        if (ahead && msg.seq === ahead.seq) {
          // The engine has the last word. They cannot differ (bundles are
          // swapped only once the page has dropped the older engine's answers:
          // "swapReady"); if they ever do, the engine's own decision is shown.
          const same = msg.generation === ahead.generation;
          const decided = decisions.some((d) => d.action === "show" && d.message === ahead.message);
          if (decided && same) {
            painted = ahead.message;
            status.ahead += 1;
          } else if (!decided) {
            renderer.retract(ahead.message);
            if (same) warnOnce(`internal: "${ahead.message}" was shown ahead of the engine, which did not decide it; please report`);
          }
          ahead = null;
        }
        for (const d of decisions) {
          if (debug) logDecision(d);
          if (d.action === "show") {
            status.shown.push({ message: d.message, t: d.t });
            lastShown = d.message;
            if (d.message !== painted) renderer.show(d);
          }
        }
        if (msg.record) {
          record = msg.record;
          store.write(record);
        }
        for (const d of decisions) {
          if (d.action === "show") emit("shown", { message: d.message, t: d.t });
          else if (d.action === "email") emit("email", { message: d.message, t: d.t });
        }
        engineWakeup = msg.next_wakeup;
        schedule();
        if (qa.view) qa.view.update();
        break;
      }
      case "swapReady":
        // A newer bundle is ready in the worker: drop the running engine's
        // answers, then let it swap (after everything sent so far).
        reactions = null;
        runtime.post({ type: "swap", seq: ++sentSeq });
        break;
      case "stepFailed":
        // The engine could not take that step (warned): nothing it decided is on screen.
        if (ahead && msg.seq === ahead.seq) {
          renderer.retract(ahead.message);
          ahead = null;
        }
        break;
      case "reactions":
        if (msg.seq === sentSeq && msg.reactions) {
          reactions = { ...msg.reactions, generation: msg.generation };
          schedule();
        }
        break;
      case "pong":
      case "explain":
        if (waiting.has(msg.id)) {
          waiting.get(msg.id)(msg);
          waiting.delete(msg.id);
        }
        break;
      case "warn":
        qa.warnings.push(msg.text);
        warnOnce(msg.text);
        break;
      case "failed":
        status.failed = msg.text;
        if (!booted) markBooted(false); // never started: round trips answer null
        break;
      default:
        break;
    }
  }

  let markBooted;
  const bootedOnce = new Promise((resolve) => { markBooted = resolve; });
  const runtimeStarted = afterPageLoad().then(() => startRuntime(config, onMessage)).then((r) => {
    runtime = r;
    status.mode = r.mode;
    if (stopped) r.stop();
    return r;
  });
  runtimeStarted.catch((err) => {
    warnOnce(`the runtime could not start: ${err.message}`);
    onMessage({ type: "failed", text: "the runtime could not start" });
  });

  // Other tabs of the site: their record is merged by the engine.
  listen(window, "storage", (e) => {
    const other = store.changedElsewhere(e);
    if (other) send({ type: "record_sync", t: Date.now(), record: other });
  });
  listen(window, "languagechange", () => {
    const { language, languages } = visitorContext();
    send({ type: "context", t: Date.now(), language, languages });
  });

  // --- QA kit hooks (docs/qa.md): the debug overlay and a seeded visitor ---
  // debug.mjs loads only when asked for: proactive('debug', true) or
  // ?proactive_debug=1 in the page's URL. `seed` replaces the visitor record
  // before the runtime starts (the pytest plugin queues it before the loader).
  const qa = { view: null, loading: null, warnings: [] };
  function setDebug(on) {
    debug = on;
    if (!on) {
      if (qa.view) qa.view.close();
      qa.view = null;
      return;
    }
    if (qa.view || qa.loading) return;
    qa.loading = import(new URL("debug.mjs", config.src).href)
      .then((m) => {
        if (debug && !stopped) qa.view = m.openDebug({ command, renderer, warnings: qa.warnings, onClose: () => setDebug(false) });
      })
      .catch((err) => warnOnce(`the debug view could not load: ${err.message}`))
      .finally(() => { qa.loading = null; });
  }
  function seed(value) {
    if (booted) return warnOnce("seed must come before the widget starts (queue it before the loader runs)");
    record = value && typeof value === "object" ? JSON.parse(JSON.stringify(value)) : null;
    if (record) store.write(record);
  }
  try {
    if (new URLSearchParams(location.search).get("proactive_debug") === "1") queueMicrotask(() => setDebug(true));
  } catch { /* no debug view */ }
  // --- end of QA kit hooks ---

  // Undo everything: listeners (the loader's and ours), the history patches,
  // the timer, the worker, the element, the handlers.
  function shutdown() {
    if (stopped) return;
    setDebug(false);
    stopped = true;
    status.stopped = true;
    clearTimeout(timer);
    timer = null;
    if (runtime) runtime.stop();
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
    for (const undo of cleanup.splice(0)) {
      try { undo(); } catch { /* keep undoing */ }
    }
    capture.signals.length = 0;
    early.length = 0;
    renderer.destroy();
    handlers.clear();
    for (const resolve of waiting.values()) resolve({});
    waiting.clear();
    api.__signal = null;
  }

  function command(name, ...args) {
    try {
      if (stopped) {
        if (name === "status") return JSON.parse(JSON.stringify(status));
        if (name === "sync" || name === "explain") return Promise.resolve(null);
        return undefined;
      }
      switch (name) {
        case "on":
          if (typeof args[1] === "function") {
            if (!handlers.has(args[0])) handlers.set(args[0], new Set());
            handlers.get(args[0]).add(args[1]);
          }
          return undefined;
        case "off":
          if (handlers.has(args[0])) handlers.get(args[0]).delete(args[1]);
          return undefined;
        case "open":
          setOpen(true, false);
          return undefined;
        case "close":
          setOpen(false, false);
          return undefined;
        case "identify": {
          const attributes = plainAttributes(args[0]);
          send({ type: "identify", attributes, t: Date.now() }, "identify", { attributes });
          return undefined;
        }
        case "track": {
          const signal = String(args[0] ?? "");
          const properties = typeof args[1] === "string" ? { value: args[1] } : plainAttributes(args[1]);
          const t = Date.now();
          let event = { type: "track", name: signal, properties, t };
          if (signal === "rating") event = { type: "rating", value: String(properties.value ?? ""), t };
          else if (TRACKED_SIGNALS.has(signal)) event = { type: signal, t, ...(typeof properties.text === "string" ? { text: properties.text } : {}) };
          send(event, "track", { name: signal, properties });
          return undefined;
        }
        case "debug":
          setDebug(args[0] !== false);
          if (debug && ready) logSnapshot();
          return undefined;
        case "seed":
          seed(args[0]);
          return undefined;
        case "sync":
          // Resolves once the runtime has handled everything sent before.
          return ask("sync");
        case "explain":
          return ask("explain");
        case "status":
          if (runtime) status.mode = runtime.mode;
          status.prepared = reactions !== null; // the engine's answer for the next exit intent / route change is here
          status.storage = store.persistent ? "localStorage" : "memory";
          return JSON.parse(JSON.stringify(status));
        case "shutdown":
          shutdown();
          return undefined;
        default:
          warnOnce(`unknown command ${JSON.stringify(String(name))}`);
          return undefined;
      }
    } catch (err) {
      warnOnce(`command ${String(name)} failed: ${err.message}`);
      return undefined;
    }
  }

  // The signals captured before the shell, for handlers the site queued.
  function announceEarly() {
    for (const event of announced.splice(0)) {
      const name = signalName(event);
      if (name) emit(name, signalDetail(event));
    }
  }

  return { command, announceEarly };
}
