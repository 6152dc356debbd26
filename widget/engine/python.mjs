// Pyodide and the runtime, started for the host (host.mjs).
//
// Build-time placeholders (replaced by build/build.py):
const PYODIDE_DIR = "__PYODIDE_DIR__";
const RUNTIME_ARCHIVE = "__RUNTIME_ARCHIVE__";
const STDLIB_ZIP = "__STDLIB_ZIP__"; // the trimmed, precompiled stdlib (content-hashed)
const SNAPSHOT = "__SNAPSHOT__"; // "local": keep a memory snapshot in this browser for later loads; "off"
const LOCK_INFO = "__PYODIDE_LOCK_INFO__"; // the `info` of Pyodide's lock file, as JSON

// Pyodide's lock file lists the 357 packages it could install (22 KB of
// brotli, fetched at every cold start); the widget installs none, so Pyodide
// gets a lock file with the same `info` and no packages instead.
function emptyLockFile() {
  try {
    return { info: JSON.parse(LOCK_INFO), packages: {} };
  } catch {
    return undefined; // an unbuilt copy: Pyodide fetches its own
  }
}

import { untarInto } from "./untar.mjs";

const base = new URL(".", import.meta.url); // the widget's folder (the build serves every module from it)

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
const SNAPSHOT_DB = "proactive-snapshot"; // the IndexedDB database (deleted when consent is withdrawn)
export const IN_WORKER = typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope;
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

// The runtime archive, fetched from the widget's origin.
export function fetchRuntime() {
  return fetch(new URL(RUNTIME_ARCHIVE, base)).then((r) => {
    if (!r.ok) throw new Error(`runtime archive: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
}

// Whether this build keeps memory snapshots (build --snapshot local).
export const SNAPSHOTS = SNAPSHOT === "local";

// Exported for e2e/test_startup.py, which drives it in a worker of its own.
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
  const lockFile = emptyLockFile();
  if (lockFile) options.lockFileContents = lockFile;
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
      untarInto(pyodide.FS, await archiveFetch, "/proactive"); // files are not in the heap
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
  untarInto(pyodide.FS, await archiveFetch, "/proactive");
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
      // `allowed()`: still wanted then (consent may have been withdrawn).
      snapshot.keepLater = (idleFor = () => Infinity, allowed = () => true) => waitForIdle(idleFor, 1000, 30000)
        .then(() => allowed() && snapshotStore("put", { meta: { key: SNAPSHOT_KEY, made: Date.now(), bytes: bytes.length }, current: bytes }))
        .then((stored) => stored !== false, (err) => {
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

// The kept snapshot deleted (consent withdrawn); resolves when done.
export function forgetSnapshot() {
  return new Promise((resolve) => {
    try {
      const req = indexedDB.deleteDatabase(SNAPSHOT_DB);
      req.onsuccess = req.onerror = () => resolve();
    } catch {
      resolve();
    }
  });
}

// Two IndexedDB records: "meta" ({key, made, bytes}) and "current" (the heap).
// snapshotStore("get", name) → the record or null; snapshotStore("put", {meta, current}).
export function snapshotStore(op, value) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(SNAPSHOT_DB, 1);
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
