// The runtime host: loads Pyodide and the runtime archive from the widget's
// origin, fetches and verifies the signed bundle, and runs the rule engine on
// the events the main thread sends. It never reads a clock for decisions:
// every `now` comes from the main thread. It runs inside the module worker
// (worker.mjs) or, in main-thread mode, on the page itself.
//
// Build-time placeholders (replaced by build/build.py):
const PYODIDE_DIR = "__PYODIDE_DIR__";
const RUNTIME_ARCHIVE = "__RUNTIME_ARCHIVE__";
const STDLIB_ZIP = "__STDLIB_ZIP__"; // the trimmed, precompiled stdlib (content-hashed)
const SNAPSHOT = "__SNAPSHOT__"; // "local": keep a memory snapshot in this browser for later loads; "off"

const base = new URL(".", import.meta.url);
const BUNDLE_MAX_BYTES = 1024 * 1024; // = widget/runtime/trust.py MAX_BUNDLE_BYTES
const BUNDLE_TIMEOUT_MS = 8000; // a slower bundle endpoint is reported; the cached bundle runs meanwhile

export function createHost(postToMain) {
  let runtime = null; // Python widget.runtime.adapter.Runtime proxy
  let ready = false;
  let pending = []; // messages received before the runtime is ready

  let dead = false; // no usable bundle or runtime: answer pings, ignore the rest

  let lastSeq = 0; // the main thread's number of the last step it asked for
  let reactionsTimer = null;
  let generation = 0; // which engine: a newer bundle swapped in makes the next one
  let lastActivity = 0; // performance.now() of the last message handled: the snapshot is stored at idle

  function receive(msg) {
    if (dead) {
      if (msg.type === "ping") postToMain({ type: "pong", id: msg.id });
    } else if (msg.type === "init") {
      init(msg).catch((err) => fatal("the runtime failed to start", err));
    } else if (!ready) {
      pending.push(msg);
    } else {
      // A newer step makes the pending reactions stale: they follow its result.
      if (msg.type === "events" || msg.type === "wake" || msg.type === "swap") clearTimeout(reactionsTimer);
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
    if (Number.isInteger(msg.seq)) lastSeq = msg.seq;
    const config = msg.config;
    const bundleFetch = fetchBundle(config.bundle);
    const archiveFetch = fetch(new URL(RUNTIME_ARCHIVE, base)).then((r) => {
      if (!r.ok) throw new Error(`runtime archive: HTTP ${r.status}`);
      return r.arrayBuffer();
    });
    // 2. Pyodide and the runtime (one archive, unpacked into its own
    //    directory): restored from this browser's memory snapshot when it has
    //    one made by this very build, else started and a snapshot made.
    const { pyodide, snapshot, tPyodide } = await startPython(archiveFetch, SNAPSHOT === "local" && config.snapshot !== "off");
    const adapter = pyodide.pyimport("widget.runtime.adapter");
    runtime = adapter.Runtime(JSON.stringify({ site: config.site, keys: config.keys, context: config.context }));
    const tRuntime = performance.now();

    // 3. The bundle: the last good one cached in this browser is used at
    //    once; the fetched one replaces it when it verifies and is newer, so
    //    triggering never waits on the network (see docs/publishing.md).
    const cachedText = typeof msg.cachedBundle === "string" && msg.cachedBundle ? msg.cachedBundle : null;
    const encoder = new TextEncoder();
    // The rollback floor: the highest version accepted here before. It is
    // dropped when the cached bundle's key is no longer pinned, so that after
    // a key compromise and rotation a bundle the thief signed with a huge
    // version cannot lock the site owner out.
    let floor = Number.isInteger(msg.lastVersion) ? msg.lastVersion : null;
    let cached = null;
    let cachedProblem = cachedText === null ? "nothing cached from an earlier visit" : null;
    if (cachedText !== null) {
      const r = await tryBundle(encoder.encode(cachedText), floor, msg.now, "cached");
      if (r.ok) cached = r;
      else cachedProblem = `the cached bundle was rejected: ${r.error}`;
      if (!r.ok && r.reason === "unknown_key") floor = null;
    }
    const floorDropped = floor === null && Number.isInteger(msg.lastVersion);
    const remember = (r, bytes) => {
      // `untrustedFloor`: the stored version came from a key no longer pinned; replace it.
      postToMain({ type: "bundle", envelope: new TextDecoder().decode(bytes), bundle: r, version: r.version, untrustedFloor: floorDropped });
      return { accepted: r };
    };
    // {accepted} a newer verified bundle | {same} the same publication | {problem} | {} unchanged
    const judgeFetched = async (fresh, current) => {
      if (fresh.problem) return { problem: fresh.problem };
      if (cachedText !== null && sameBytes(fresh.bytes, cachedText)) return {}; // a 304, or unchanged
      const base = Math.max(floor ?? 0, current ? current.version : 0) || null;
      const r = await tryBundle(fresh.bytes, base, msg.now, "fetched");
      if (!r.ok) return { problem: `bundle ${config.bundle} rejected: ${r.error}` };
      if (base !== null && r.version <= base) return { same: r, bytes: fresh.bytes };
      return remember(r, fresh.bytes);
    };
    let fetchOutcome = null;
    const settledNow = await Promise.race([bundleFetch, Promise.resolve(null)]);
    if (settledNow) fetchOutcome = await judgeFetched(settledNow, cached);
    else if (!cached) fetchOutcome = await judgeFetched(await bundleFetch, null); // nothing to run meanwhile
    let accepted = (fetchOutcome && fetchOutcome.accepted) || cached;
    if (fetchOutcome && fetchOutcome.same) {
      if (cached) await tryBundle(encoder.encode(cachedText), floor, msg.now, "cached"); // equal version: keep ours
      else accepted = remember(fetchOutcome.same, fetchOutcome.bytes).accepted;
    }
    if (!accepted) {
      const why = [fetchOutcome && fetchOutcome.problem, cachedProblem].filter(Boolean).join("; ");
      warn(`${why}: no auto message will be shown`);
      die("no bundle");
      return;
    }
    const usingCache = `using the cached bundle (version ${accepted.version})`;
    if (fetchOutcome && fetchOutcome.problem) warn(`${fetchOutcome.problem}; ${usingCache}`);
    // Judged after going live: a slow endpoint never delays triggering.
    const lateFetch = fetchOutcome ? null : async () => {
      const outcome = await judgeFetched(await bundleFetch, accepted);
      if (outcome.problem) warn(`${outcome.problem}; ${usingCache}`);
      if (!outcome.accepted) return;
      // Staged. The page first drops the older engine's answers and says so
      // ("swap", in order after every event it sent on them): those events are
      // then decided by the engine that answered them.
      postToMain({ type: "swapReady" });
    };

    // 4. Replay what happened before we were ready, then go live.
    const reply = JSON.parse(runtime.start(msg.record ? JSON.stringify(msg.record) : "", JSON.stringify(msg.events || []), msg.now));
    ready = true;
    postToMain({
      type: "ready",
      bundle: accepted,
      timings: { pyodide: tPyodide - t0, runtime: tRuntime - t0, ready: performance.now() - t0, snapshot: snapshot.state, fresh_import: snapshot.fresh, heap_bytes: snapshot.heap, start_phases: snapshot.phases },
    });
    snapshot.keepLater(() => performance.now() - lastActivity);
    post(reply);
    const queued = pending;
    pending = [];
    for (const m of queued) handle(m);
    if (lateFetch) lateFetch().catch((err) => warn(`the fetched bundle could not be applied: ${err && err.message}`));
  }

  // The bundle endpoint through the HTTP cache: "no-cache" revalidates with
  // If-None-Match, so an unchanged bundle costs a 304. Never throws.
  async function fetchBundle(url) {
    if (!url) return { problem: "data-bundle is missing" };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), BUNDLE_TIMEOUT_MS);
    try {
      const response = await fetch(url, { cache: "no-cache", credentials: "omit", signal: controller.signal });
      if (!response.ok) return { problem: `bundle ${url}: HTTP ${response.status}` };
      return { bytes: await readCapped(response, BUNDLE_MAX_BYTES + 1) };
    } catch (err) {
      const why = err && err.name === "AbortError" ? `no answer within ${BUNDLE_TIMEOUT_MS / 1000} s` : `${err && err.message}`;
      return { problem: `bundle ${url} could not be fetched (${why})` };
    } finally {
      clearTimeout(timer);
    }
  }

  // At most `limit` bytes: an oversized answer is neither downloaded in full
  // nor parsed (trust.py then names it too_large from the first limit bytes).
  async function readCapped(response, limit) {
    const declared = Number(response.headers.get("content-length"));
    if (!response.body || (declared > 0 && declared <= limit)) return new Uint8Array(await response.arrayBuffer());
    const reader = response.body.getReader();
    const out = new Uint8Array(limit);
    let size = 0;
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, limit - size);
      out.set(value.subarray(0, take), size);
      size += take;
    }
    reader.cancel().catch(() => {});
    return out.slice(0, size);
  }

  function sameBytes(bytes, text) {
    return bytes.length >= text.length && new TextDecoder().decode(bytes) === text;
  }

  // Checks 1-3 and 5-8 in Python (widget/runtime/trust.py), the signature (4)
  // with WebCrypto. {ok: true, site, version, source} or {ok: false, reason, error};
  // an accepted bundle is staged in the runtime (start / swap run it).
  async function tryBundle(bytes, lastVersion, now, which) {
    const opened = JSON.parse(runtime.open_envelope(bytes));
    if (!opened.ok) return opened;
    const message = fromBase64(opened.message);
    let valid = false;
    let cryptoError = null;
    let failures = 0;
    for (const [keyB64, sigB64] of opened.candidates) {
      try {
        const key = await crypto.subtle.importKey("raw", fromBase64(keyB64), { name: "Ed25519" }, false, ["verify"]);
        if (await crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(sigB64), message)) {
          valid = true;
          break;
        }
      } catch (err) {
        cryptoError = err;
        failures += 1;
      }
    }
    if (!valid && cryptoError && failures === opened.candidates.length) {
      const why = typeof crypto === "undefined" || !crypto.subtle ? "WebCrypto needs a secure (https) page" : cryptoError.message;
      return { ok: false, reason: "no_ed25519", error: `no_ed25519: this browser cannot verify Ed25519 signatures (${why})` };
    }
    if (!valid) return { ok: false, reason: "bad_signature", error: "bad_signature: the signature does not match the payload" };
    const accepted = JSON.parse(runtime.accept_payload(lastVersion ?? undefined, now));
    if (!accepted.ok) return accepted;
    return { ok: true, site: accepted.site, version: accepted.version, source: which, widgets: accepted.widgets || [] };
  }

  function fromBase64(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function handle(msg) {
    lastActivity = performance.now();
    if (msg.type === "events" || msg.type === "wake") {
      if (Number.isInteger(msg.seq)) lastSeq = msg.seq;
      const events = msg.type === "events" ? msg.events : [{ type: "tick", t: msg.now }];
      post(JSON.parse(runtime.step(JSON.stringify(events), msg.now)));
    } else if (msg.type === "swap") {
      if (Number.isInteger(msg.seq)) lastSeq = msg.seq;
      generation += 1;
      post(JSON.parse(runtime.swap(null))); // at the engine's present: no clock read here
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
      postToMain({ type: "stepFailed", seq: lastSeq });
      return;
    }
    postToMain({ type: "result", seq: lastSeq, generation, decisions: reply.decisions, record: reply.record, next_wakeup: reply.next_wakeup });
    // Then, once no other message is waiting, what the page may show for its
    // own next signal without asking (widget/reactions.mjs): the main thread
    // keeps it for the last step it sent (`seq`) only.
    clearTimeout(reactionsTimer);
    // On the main thread (data-mode="main") the step itself runs inside the
    // event handler and its result is painted in the same frame: no answers.
    if (!IN_WORKER) return;
    reactionsTimer = setTimeout(() => {
      const answer = JSON.parse(runtime.reactions());
      if (answer.ok) postToMain({ type: "reactions", seq: lastSeq, generation, reactions: answer.reactions });
      else warn(`engine error: ${answer.error}`);
    }, 0);
  }

  return { receive };
}

// ---------------------------------------------------------------------------
// Steps 1-2 of init: Pyodide + the runtime.
//
// The stdlib is STDLIB_ZIP: trimmed to what the runtime needs and
// precompiled (.pyc made by this Pyodide's CPython at build time), so CPython
// does not compile ~150 modules at every start. On top of that, with
// SNAPSHOT = "local", the first start in a browser takes a memory snapshot of
// the interpreter right after the runtime's modules are imported (before any
// site or visitor data enters Python) and keeps it in IndexedDB; later page
// loads restore it instead of starting CPython (docs/benchmarks.md). A
// snapshot is only used by the exact build that made it (SNAPSHOT_KEY names
// the stdlib zip, the runtime archive and Pyodide); any other is refused and
// replaced. Only in the worker: on the main thread the copy would be a long task.
const SNAPSHOT_KEY = `${PYODIDE_DIR}/${STDLIB_ZIP}/${RUNTIME_ARCHIVE}`;
const IN_WORKER = typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope;
const PREPARE = `
import sys
sys.path.insert(0, "/proactive")
import widget.runtime.adapter, widget.runtime.engine, widget.runtime.bundle
`;
// After a restore: reseed `random` (a restored heap would replay the same
// numbers in every page load) and load, fresh from STDLIB_ZIP, the code of
// the smallest stdlib module the snapshot has not imported yet: the heap
// caches the zip's directory (offsets), so a zip that does not match fails
// here, at start-up, instead of at some later import.
const AFTER_RESTORE = `
import importlib.util, random, sys, zipfile
random.seed()
def _fresh_import():
    path = next(p for p in sys.path if p.endswith(".zip"))
    with zipfile.ZipFile(path) as z:
        sizes = [(i.file_size, i.filename.rpartition(".")[0].replace("/", ".").removesuffix(".__init__"))
                 for i in z.infolist() if i.filename.endswith((".pyc", ".py"))]
    # (a submodule of a package not imported yet would run the package)
    fresh = sorted((size, n) for size, n in sizes if n not in sys.modules and n.rpartition(".")[0] in ("", *sys.modules))
    if not fresh:
        return "none left"
    name = fresh[0][1]
    if importlib.util.find_spec(name).loader.get_code(name) is None:
        raise ImportError(f"{name}: no code in {path}")
    return f"{name} (1 of {len(fresh)} not imported yet)"
_fresh_import()
`;

// Exported for e2e/test_startup.py, which drives it in a worker of its own.
function waitForIdle(idleFor, quietMs, maxMs) {
  const started = performance.now();
  return new Promise((resolve) => {
    const check = () => {
      const idle = idleFor();
      if (idle >= quietMs || performance.now() - started >= maxMs) resolve();
      else setTimeout(check, Math.max(50, quietMs - idle));
    };
    setTimeout(check, 500);
  });
}

export async function startPython(archiveFetch, wantSnapshot) {
  wantSnapshot = wantSnapshot && IN_WORKER && typeof indexedDB !== "undefined";
  const phases = {}; // ms per step, reported in the ready timings
  let lapStart = performance.now();
  const lap = (name) => {
    const now = performance.now();
    phases[name] = Math.round(now - lapStart);
    lapStart = now;
  };
  const snapshot = { state: wantSnapshot ? "none" : "off", fresh: null, heap: null, phases, keepLater: async () => false };
  // Whether this browser keeps a snapshot of this very build: a small record,
  // read while pyodide.mjs loads.
  const [{ loadPyodide }, meta] = await Promise.all([
    import(new URL(`${PYODIDE_DIR}/pyodide.mjs`, base).href),
    wantSnapshot ? snapshotStore("get", "meta").catch(() => null) : null,
  ]);
  lap("import");
  const options = {
    indexURL: new URL(`${PYODIDE_DIR}/`, base).href,
    stdLibURL: new URL(STDLIB_ZIP, base).href,
    stdout: () => {},
    stderr: (line) => console.debug("[proactive] python:", line),
  };
  if (meta && meta.key !== SNAPSHOT_KEY) snapshot.state = "refused"; // another build's heap expects another stdlib
  if (meta && meta.key === SNAPSHOT_KEY) {
    try {
      // The 31 MB read overlaps with fetching and compiling the wasm.
      const bytes = snapshotStore("get", "current").then((b) => {
        if (!(b instanceof ArrayBuffer || ArrayBuffer.isView(b))) throw new Error("the snapshot's bytes are missing");
        return b;
      });
      bytes.catch(() => {});
      const pyodide = await loadPyodide({ ...options, _loadSnapshot: bytes });
      lap("restore");
      pyodide.unpackArchive(await archiveFetch, "tar", { extractDir: "/proactive" }); // files are not in the heap
      lap("unpack");
      snapshot.fresh = pyodide.runPython(AFTER_RESTORE);
      lap("check");
      snapshot.state = "restored";
      snapshot.heap = pyodide._module.HEAP8.length;
      return { pyodide, snapshot, tPyodide: performance.now() };
    } catch (err) {
      console.debug("[proactive] the kept snapshot did not restore; starting afresh:", err);
      snapshot.state = "failed";
    }
  }
  const pyodide = await loadPyodide({ ...options, _makeSnapshot: wantSnapshot });
  const tPyodide = performance.now();
  lap("load");
  pyodide.unpackArchive(await archiveFetch, "tar", { extractDir: "/proactive" });
  lap("unpack");
  pyodide.runPython(PREPARE);
  lap("imports");
  if (wantSnapshot) {
    try {
      const bytes = pyodide.makeMemorySnapshot();
      lap("snapshot");
      snapshot.state = snapshot.state === "none" ? "made" : `${snapshot.state}, made`;
      // Kept once the runtime is live, off the critical path: storing 31 MB
      // in IndexedDB stalls the worker (and a frame) for tens of ms, so it
      // waits until no event has been handled for a second (at most 30 s).
      // Resolves true once stored.
      snapshot.keepLater = (idleFor = () => Infinity) => waitForIdle(idleFor, 1000, 30000)
        .then(() => snapshotStore("put", { meta: { key: SNAPSHOT_KEY, made: Date.now(), bytes: bytes.length }, current: bytes }))
        .then(() => true, (err) => {
          console.debug("[proactive] the snapshot could not be kept:", err);
          return false;
        });
    } catch (err) {
      console.debug("[proactive] no memory snapshot:", err);
      snapshot.state = "unavailable";
    }
  }
  snapshot.heap = pyodide._module.HEAP8.length; // the worker's wasm memory (most of its footprint)
  return { pyodide, snapshot, tPyodide };
}

// Two IndexedDB records: "meta" ({key, made, bytes}) and "current" (the heap).
// snapshotStore("get", name) → the record or null; snapshotStore("put", {meta, current}).
export function snapshotStore(op, value) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("proactive-snapshot", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("snapshots");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction("snapshots", op === "get" ? "readonly" : "readwrite");
      const store = tx.objectStore("snapshots");
      let result = null;
      if (op === "get") {
        const req = store.get(value);
        req.onsuccess = () => { result = req.result ?? null; };
      } else {
        for (const [name, record] of Object.entries(value)) store.put(record, name);
      }
      tx.oncomplete = () => { db.close(); resolve(result); };
      tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
    };
  });
}
