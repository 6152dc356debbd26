// The runtime host: loads Pyodide and the runtime archive from the widget's
// origin, fetches and verifies the signed bundle, and runs the rule engine on
// the events the main thread sends. It never reads a clock for decisions:
// every `now` comes from the main thread. It runs inside the module worker
// (worker.mjs) or, in main-thread mode, on the page itself.
//
// Build-time placeholders (replaced by build/build.py):
const PYODIDE_DIR = "__PYODIDE_DIR__";
const RUNTIME_ARCHIVE = "__RUNTIME_ARCHIVE__";

const base = new URL(".", import.meta.url);

export function createHost(postToMain) {
  let runtime = null; // Python widget.runtime.adapter.Runtime proxy
  let ready = false;
  let pending = []; // messages received before the runtime is ready

  let dead = false; // no usable bundle or runtime: answer pings, ignore the rest

  function receive(msg) {
    if (dead) {
      if (msg.type === "ping") postToMain({ type: "pong", id: msg.id });
    } else if (msg.type === "init") {
      init(msg).catch((err) => fatal("the runtime failed to start", err));
    } else if (!ready) {
      pending.push(msg);
    } else {
      handle(msg);
    }
  }

  function warn(text) {
    postToMain({ type: "warn", text });
  }

  function fatal(text, err) {
    warn(`${text}: ${err && err.message ? err.message : err}`);
    die(text);
  }

  function die(text) {
    dead = true;
    postToMain({ type: "failed", text });
    for (const m of pending.splice(0)) receive(m);
  }

  // 1. Start everything that needs the network at once.
  async function init(msg) {
    const t0 = performance.now();
    const config = msg.config;
    const bundleFetch = fetchBundle(config.bundle);
    const archiveFetch = fetch(new URL(RUNTIME_ARCHIVE, base)).then((r) => {
      if (!r.ok) throw new Error(`runtime archive: HTTP ${r.status}`);
      return r.arrayBuffer();
    });
    const { loadPyodide } = await import(new URL(`${PYODIDE_DIR}/pyodide.mjs`, base).href);
    const pyodide = await loadPyodide({
      indexURL: new URL(`${PYODIDE_DIR}/`, base).href,
      stdout: () => {},
      stderr: (line) => console.debug("[proactive] python:", line),
    });
    const tPyodide = performance.now();

    // 2. The runtime: one archive, unpacked into its own directory.
    pyodide.unpackArchive(await archiveFetch, "tar", { extractDir: "/proactive" });
    pyodide.runPython("import sys; sys.path.insert(0, '/proactive')");
    const adapter = pyodide.pyimport("widget.runtime.adapter");
    runtime = adapter.Runtime(JSON.stringify({ site: config.site, keys: config.keys, context: config.context }));
    const tRuntime = performance.now();

    // 3. The bundle: the freshly fetched one, else the last good cached one.
    const fresh = await bundleFetch;
    let accepted = null;
    if (fresh.bytes) {
      accepted = await tryBundle(fresh.bytes, msg.lastVersion, msg.now, "fetched");
      if (accepted) postToMain({ type: "bundle", envelope: new TextDecoder().decode(fresh.bytes), version: accepted.version });
    } else if (fresh.problem) {
      warn(fresh.problem);
    }
    if (!accepted && msg.cachedBundle) {
      accepted = await tryBundle(new TextEncoder().encode(msg.cachedBundle), null, msg.now, "cached");
    }
    if (!accepted) {
      warn("no usable bundle: no auto message will be shown on this page");
      die("no bundle");
      return;
    }

    // 4. Replay what happened before we were ready, then go live.
    const reply = JSON.parse(runtime.start(msg.record ? JSON.stringify(msg.record) : "", JSON.stringify(msg.events || []), msg.now));
    ready = true;
    postToMain({
      type: "ready",
      bundle: accepted,
      timings: { pyodide: tPyodide - t0, runtime: tRuntime - t0, ready: performance.now() - t0 },
    });
    post(reply);
    const queued = pending;
    pending = [];
    for (const m of queued) handle(m);
  }

  async function fetchBundle(url) {
    if (!url) return { problem: "data-bundle is missing" };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10000);
    try {
      const response = await fetch(url, { cache: "no-cache", credentials: "omit", signal: controller.signal });
      if (!response.ok) return { problem: `bundle ${url}: HTTP ${response.status}` };
      return { bytes: new Uint8Array(await response.arrayBuffer()) };
    } catch (err) {
      return { problem: `bundle ${url} could not be fetched (${err.name === "AbortError" ? "timeout" : err.message})` };
    } finally {
      clearTimeout(timer);
    }
  }

  // Checks 1-3 and 5-8 in Python, the signature (4) with WebCrypto.
  async function tryBundle(bytes, lastVersion, now, which) {
    const opened = JSON.parse(runtime.open_envelope(bytes));
    if (!opened.ok) {
      warn(`${which} bundle rejected: ${opened.error}`);
      return null;
    }
    const message = fromBase64(opened.message);
    let valid = false;
    for (const [keyB64, sigB64] of opened.candidates) {
      try {
        const key = await crypto.subtle.importKey("raw", fromBase64(keyB64), { name: "Ed25519" }, false, ["verify"]);
        if (await crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(sigB64), message)) {
          valid = true;
          break;
        }
      } catch (err) {
        warn(`${which} bundle: WebCrypto Ed25519 failed (${err.message})`);
      }
    }
    if (!valid) {
      warn(`${which} bundle rejected: bad_signature: the signature does not match the payload`);
      return null;
    }
    const accepted = JSON.parse(runtime.accept_payload(lastVersion ?? undefined, now));
    if (!accepted.ok) {
      warn(`${which} bundle rejected: ${accepted.error}`);
      return null;
    }
    return { site: accepted.site, version: accepted.version, source: which };
  }

  function fromBase64(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function handle(msg) {
    if (msg.type === "events" || msg.type === "wake") {
      const events = msg.type === "events" ? msg.events : [{ type: "tick", t: msg.now }];
      post(JSON.parse(runtime.step(JSON.stringify(events), msg.now)));
    } else if (msg.type === "ping") {
      postToMain({ type: "pong", id: msg.id });
    } else if (msg.type === "explain") {
      const reply = JSON.parse(runtime.explain(msg.now));
      postToMain({ type: "explain", id: msg.id, explain: reply.ok ? reply.explain : null, error: reply.error });
    }
  }

  function post(reply) {
    if (!reply.ok) {
      warn(`engine error: ${reply.error}`);
      return;
    }
    postToMain({ type: "result", decisions: reply.decisions, record: reply.record, next_wakeup: reply.next_wakeup });
  }

  return { receive };
}
