// The page's end of the worker protocol (docs/architecture.md): starts the
// runtime once the page has loaded, numbers the steps it is sent, and answers
// the round trips (sync, explain). Everything else the runtime says goes to
// `onMessage`.

import { warnOnce } from "../shell/warn.mjs";

// A worker that has not said "booted" by then (its module never arrived, or
// hangs) is given up for the main thread.
const BOOT_TIMEOUT_MS = 15000;

// A sandboxed iframe without allow-same-origin (or a data: URL) runs in an
// opaque origin: no storage, no workers from the widget's origin, CORS
// requests with "Origin: null". Said instead of blaming the CSP.
function opaqueOrigin() {
  try { return self.origin === "null"; } catch { return false; }
}
const OPAQUE = "this page runs in an opaque origin (a sandboxed iframe without allow-same-origin, or a data: URL)";

// The runtime starts once the host page has loaded, so the page's own loading
// never competes with Pyodide's (the loader captures signals meanwhile); at
// the latest at `deadline` (Date.now() ms: the loader's, 10 s after it ran),
// else 10 s after the shell started, for pages whose load never ends.
function afterPageLoad(deadline) {
  if (document.readyState === "complete") return Promise.resolve();
  const wait = typeof deadline === "number" && deadline > 0 ? Math.max(0, deadline - Date.now()) : 10000;
  if (wait === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, wait);
    window.addEventListener("load", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// The runtime: a module worker from a same-origin blob that imports the
// widget's module (the widget lives on another origin than the page); the
// main thread when asked (data-mode="main"), when workers are unavailable, or
// when the worker fails to load.
function startRuntime(mode, onMessage) {
  const runtime = { mode: null, stopped: false, post() {}, stop() { runtime.stopped = true; } };
  const onMain = async () => {
    const { createHost } = await import("./host.mjs");
    if (runtime.stopped) return runtime;
    const host = createHost((m) => { if (!runtime.stopped) queueMicrotask(() => onMessage(m)); });
    runtime.mode = "main";
    runtime.post = (m) => { if (!runtime.stopped) host.receive(structuredClone(m)); };
    queueMicrotask(() => onMessage({ type: "booted" }));
    return runtime;
  };
  if (mode === "main" || typeof Worker !== "function") return onMain();
  try {
    const workerUrl = new URL("./worker.mjs", import.meta.url).href;
    const blob = new Blob([`import ${JSON.stringify(workerUrl)};`], { type: "text/javascript" });
    const blobUrl = URL.createObjectURL(blob);
    const worker = new Worker(blobUrl, { type: "module", name: "proactive" });
    URL.revokeObjectURL(blobUrl);
    let alive = false;
    let abandoned = false;
    const giveUp = (why) => {
      abandoned = true;
      clearTimeout(bootTimer);
      worker.terminate();
      warnOnce(`${why}; running on the main thread`);
      onMain().catch((err) => {
        warnOnce(`the runtime could not start: ${err.message}`);
        onMessage({ type: "failed", text: "the runtime could not start" });
      });
    };
    const bootTimer = setTimeout(() => {
      if (!alive && !runtime.stopped) giveUp(`the widget's worker did not start within ${BOOT_TIMEOUT_MS / 1000} s`);
    }, BOOT_TIMEOUT_MS);
    worker.onmessage = (e) => {
      if (abandoned) return;
      if (e.data && e.data.type === "booted") {
        alive = true;
        clearTimeout(bootTimer);
      }
      onMessage(e.data || {});
    };
    worker.onerror = (e) => {
      e.preventDefault();
      if (abandoned) return;
      if (alive || runtime.stopped) {
        warnOnce(`the widget's worker failed: ${e.message || "unknown error"}`);
        return;
      }
      giveUp(opaqueOrigin()
        ? `the widget's worker could not start: ${OPAQUE}; allow-same-origin on the iframe fixes it`
        : "the widget's worker could not start (check the page's Content-Security-Policy: worker-src blob: and the widget's origin)");
    };
    runtime.mode = "worker";
    runtime.post = (m) => { if (!runtime.stopped && runtime.mode === "worker") worker.postMessage(m); };
    runtime.stop = () => { runtime.stopped = true; clearTimeout(bootTimer); worker.terminate(); };
    return Promise.resolve(runtime);
  } catch (err) {
    warnOnce(`module workers are unavailable (${err.message}); running on the main thread`);
    return onMain();
  }
}

// `initMessage()`: the init message's fields, read when the runtime has
// booted. `onStarted(mode)`: the runtime runs (in a worker or on the page).
// `gate`: a promise the runtime's start also waits for (consent, with
// data-consent-messages="none"); null: none. `when()`: called once the page
// has loaded (and the gate opened), a promise of the instant to start
// (../shell/boot.mjs: just in time); null: at once.
export function createChannel({ mode, initMessage, onMessage, onStarted = () => {}, gate = null, when = null, loadDeadline = null }) {
  let runtime = null;
  let booted = false;
  let initAt = null;
  let stopped = false;
  let sentSeq = 0; // steps sent to the runtime are numbered
  let nextPing = 1;
  const waiting = new Map(); // ping id → resolve, for sync and explain
  let markBooted;
  const bootedOnce = new Promise((resolve) => { markBooted = resolve; });

  // Entry point for everything the runtime says: nothing escapes to the page.
  function receive(msg) {
    try {
      if (stopped) return;
      if (msg.type === "booted") runtimeStarted.then(init);
      else if (msg.type === "pong" || msg.type === "explain") answer(msg);
      else {
        if (msg.type === "failed" && !booted) markBooted(false); // never started: round trips answer null
        onMessage(msg);
      }
    } catch (err) {
      warnOnce(`internal error handling "${msg && msg.type}": ${err && err.message}`);
    }
  }

  function init() {
    if (stopped || booted) return;
    booted = true;
    initAt = performance.now();
    runtime.post({ type: "init", ...initMessage(), now: Date.now(), seq: ++sentSeq });
    markBooted(true);
  }

  function answer(msg) {
    if (waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  }

  const runtimeStarted = Promise.all([afterPageLoad(loadDeadline), gate]).then(() => (when && !stopped ? when() : null))
    .then(() => startRuntime(mode, receive)).then((r) => {
    runtime = r;
    onStarted(r.mode);
    if (stopped) r.stop();
    return r;
  });
  runtimeStarted.catch((err) => {
    warnOnce(`the runtime could not start: ${err.message}`);
    receive({ type: "failed", text: "the runtime could not start" });
  });

  return {
    get booted() { return booted; },
    get initAt() { return initAt; }, // ms since navigation: the runtime was asked to start
    get mode() { return runtime ? runtime.mode : undefined; }, // undefined: not started yet
    get lastSeq() { return sentSeq; }, // the number of the last step sent
    nextSeq: () => ++sentSeq,
    post(msg) { runtime.post(msg); },
    // Round trips: "sync" (resolves true once the runtime has handled
    // everything sent before) and "explain" (resolves to Engine.explain).
    ask(kind, now) {
      return new Promise((resolve) => {
        if (stopped) return resolve(null);
        const id = nextPing++;
        waiting.set(id, (m) => resolve(kind === "sync" ? true : m.explain));
        const post = (alive) => (stopped || !alive ? resolve(null) : runtime.post({ type: kind === "sync" ? "ping" : "explain", id, now: now ?? Date.now() }));
        bootedOnce.then(post); // after init: the runtime answers in order
      });
    },
    stop() {
      stopped = true;
      if (runtime) runtime.stop();
      for (const resolve of waiting.values()) resolve({});
      waiting.clear();
    },
  };
}
