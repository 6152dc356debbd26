// The shell: everything on the main thread after the loader.
//   start() → check the tag's configuration → open the visitor record →
//   start the runtime (module worker, or main thread) → replay early signals →
//   own the clock (one timer for the engine's next wake-up) → render decisions
//   → feed visitor actions back as events → persist the record.
// Nothing here throws into the host page.

import { createRenderer } from "./render.mjs";

const ENGINE_EVENTS = new Set([
  "page_view", "exit_intent", "widget_open", "widget_close", "visitor_message", "agent_message",
  "rating", "dismiss", "click", "team", "identify", "geo", "context", "record_sync", "tick",
]);
const MAX_TIMEOUT = 2147483647;
const RECORD_VERSION = 1;

export function start({ api, config, capture }) {
  try {
    const widget = createWidget(api, config, capture);
    if (widget) api.__target = widget.command;
    const queued = api.q.splice(0);
    for (const args of queued) widget ? widget.command(...args) : undefined;
  } catch (err) {
    console.warn(`[proactive] widget not started: ${err && err.message}`);
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

// 2. The visitor record: one versioned localStorage key; memory if blocked.
function openStore(name) {
  const key = `proactive:v${RECORD_VERSION}:${name}`;
  let storage = null;
  try {
    storage = window.localStorage;
    const probe = `${key}:probe`;
    storage.setItem(probe, "1");
    storage.removeItem(probe);
  } catch {
    storage = null;
    warnOnce("localStorage is unavailable: the visitor record is kept in memory for this page only");
  }
  const memory = new Map();
  return {
    key,
    read(suffix = "") {
      try {
        const text = storage ? storage.getItem(key + suffix) : memory.get(key + suffix);
        return text ? JSON.parse(text) : null;
      } catch {
        return null;
      }
    },
    write(value, suffix = "") {
      const text = JSON.stringify(value);
      if (storage) {
        try {
          storage.setItem(key + suffix, text);
          return;
        } catch {
          warnOnce("localStorage is full: the visitor record is kept in memory for this page only");
          storage = null;
        }
      }
      memory.set(key + suffix, text);
    },
  };
}

function visitorContext() {
  const nav = navigator;
  const mobile = nav.userAgentData && typeof nav.userAgentData.mobile === "boolean" ? nav.userAgentData.mobile : null;
  return {
    language: nav.language || null,
    languages: Array.from(nav.languages || []),
    user_agent: nav.userAgent || "",
    platform: mobile === null ? null : mobile ? "mobile" : "desktop",
  };
}

// 3. The runtime: a module worker from a same-origin blob that imports the
// widget's module (the widget lives on another origin than the page).
async function startRuntime(config, onMessage) {
  const workerUrl = new URL("worker.mjs", config.src).href;
  if (config.mode !== "main" && typeof Worker === "function") {
    try {
      const blob = new Blob([`import ${JSON.stringify(workerUrl)};`], { type: "text/javascript" });
      const blobUrl = URL.createObjectURL(blob);
      const worker = new Worker(blobUrl, { type: "module", name: "proactive" });
      worker.onmessage = (e) => onMessage(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        warnOnce(`the widget's worker failed to load (${e.message || "check the page's Content-Security-Policy: worker-src blob: and the widget origin"})`);
      };
      URL.revokeObjectURL(blobUrl);
      return { mode: "worker", post: (m) => worker.postMessage(m), stop: () => worker.terminate() };
    } catch (err) {
      warnOnce(`module workers are unavailable (${err.message}); running on the main thread`);
    }
  }
  const { createHost } = await import(new URL("host.mjs", config.src).href);
  let stopped = false;
  const host = createHost((m) => { if (!stopped) queueMicrotask(() => onMessage(m)); });
  queueMicrotask(() => onMessage({ type: "booted" }));
  return { mode: "main", post: (m) => host.receive(structuredClone(m)), stop: () => { stopped = true; } };
}

function createWidget(api, rawConfig, capture) {
  const config = readConfig(rawConfig);
  if (config.problems.length) {
    warnOnce(`widget not started: ${config.problems.join("; ")}`);
    return null;
  }
  config.src = rawConfig.src;
  config.mode = rawConfig.mode;
  const store = openStore(config.site || config.bundle);
  const handlers = new Map(); // event name → Set of callbacks
  let record = store.read();
  let runtime = null;
  let booted = false;
  let ready = false;
  let timer = null;
  let debug = false;
  let stopped = false;
  const early = capture.signals.splice(0); // signals from before the shell
  const waiting = new Map(); // ping id → resolve, for proactive('sync')
  let nextPing = 1;
  const status = { navStart: capture.navStart, ready: false, mode: null, bundle: null, nextWakeup: null, shown: [] };

  const renderer = createRenderer({
    onDismiss: (id) => send({ type: "dismiss", message: id, t: Date.now() }, "dismissed", { message: id }),
    onClick: (id, button) => send({ type: "click", message: id, button, t: Date.now() }, "clicked", { message: id, button }),
    onOpen: () => send({ type: "widget_open", t: Date.now() }, "open", {}),
    onClose: () => send({ type: "widget_close", t: Date.now() }, "close", {}),
  });

  function emit(name, detail) {
    for (const fn of handlers.get(name) || []) {
      try { fn(detail); } catch (err) { console.error(err); }
    }
  }

  function send(event, publicName, detail) {
    if (stopped) return;
    if (publicName) emit(publicName, detail);
    if (!ENGINE_EVENTS.has(event.type)) return;
    if (!booted) early.push(event);
    else runtime.post({ type: "events", events: [event], now: Math.max(event.t, Date.now()) });
  }
  api.__signal = (event) => send(event);

  function schedule(at) {
    clearTimeout(timer);
    timer = null;
    status.nextWakeup = at;
    if (at == null || stopped) return;
    const delay = Math.min(Math.max(0, at - Date.now()), MAX_TIMEOUT);
    timer = setTimeout(() => {
      timer = null;
      if (!stopped) runtime.post({ type: "wake", now: Math.max(Date.now(), at) });
    }, delay);
  }

  function onMessage(msg) {
    if (stopped) return;
    switch (msg.type) {
      case "booted":
        runtimeStarted.then(() => {
        if (stopped) return;
        booted = true;
        runtime.post({
          type: "init",
          config: { bundle: config.bundle, keys: config.keys, site: config.site, context: visitorContext() },
          record,
          cachedBundle: store.read(":bundle"),
          lastVersion: (store.read(":bundle-version") || {}).version ?? null,
          events: early.splice(0).sort((a, b) => a.t - b.t),
          now: Date.now(),
        });
        });
        break;
      case "ready":
        ready = true;
        status.ready = true;
        status.bundle = msg.bundle;
        status.timings = msg.timings;
        status.readyAt = Math.round(performance.now()); // ms since navigation start
        emit("ready", { bundle: msg.bundle });
        break;
      case "bundle":
        store.write(msg.envelope, ":bundle");
        store.write({ version: msg.version }, ":bundle-version");
        break;
      case "result":
        record = msg.record;
        store.write(record);
        for (const d of msg.decisions || []) {
          if (debug) console.info("[proactive] decision", d);
          if (d.action === "show") {
            status.shown.push({ message: d.message, t: d.t });
            renderer.show(d);
            emit("shown", { message: d.message });
          }
        }
        schedule(msg.next_wakeup);
        break;
      case "pong":
      case "explain":
        if (waiting.has(msg.id)) {
          waiting.get(msg.id)(msg);
          waiting.delete(msg.id);
        }
        break;
      case "warn":
        warnOnce(msg.text);
        break;
      case "failed":
        status.failed = msg.text;
        break;
      default:
        break;
    }
  }

  const runtimeStarted = startRuntime(config, onMessage).then((r) => {
    runtime = r;
    status.mode = r.mode;
  });
  runtimeStarted.catch((err) => warnOnce(`the runtime could not start: ${err.message}`));

  function shutdown() {
    stopped = true;
    clearTimeout(timer);
    if (runtime) runtime.stop();
    for (const [target, type, fn, opts] of capture.listeners) {
      if (opts === "patch") target[type] = fn;
      else target.removeEventListener(type, fn, opts);
    }
    capture.listeners.length = 0;
    renderer.destroy();
    handlers.clear();
    api.__signal = null;
  }

  function command(name, ...args) {
    try {
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
          renderer.open();
          return undefined;
        case "close":
          renderer.close();
          return undefined;
        case "identify":
          send({ type: "identify", attributes: Object.assign({}, args[0] || {}), t: Date.now() });
          return undefined;
        case "track":
          send({ type: "track", name: String(args[0] || ""), t: Date.now() }, "track", { name: args[0] });
          return undefined;
        case "debug":
          debug = args[0] !== false;
          return undefined;
        case "sync":
        case "explain":
          // Resolves once the runtime has handled everything sent before.
          return new Promise((resolve) => {
            const id = nextPing++;
            waiting.set(id, (m) => resolve(name === "sync" ? true : m.explain));
            const post = () => runtime.post({ type: name === "sync" ? "ping" : "explain", id, now: Date.now() });
            runtimeStarted.then(post, () => resolve(null));
          });
        case "status":
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

  return { command };
}
