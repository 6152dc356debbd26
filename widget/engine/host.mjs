// The runtime host: starts Pyodide and the runtime (python.mjs), fetches and
// verifies the signed bundle (../bundle/), and runs the rule engine on the
// events the main thread sends. It never reads a clock for decisions: every
// `now` comes from the main thread. It runs inside the module worker
// (worker.mjs) or, in main-thread mode, on the page itself.

import { fetchBundle } from "../bundle/fetch.mjs";
import { verifySignature } from "../bundle/verify.mjs";
import { IN_WORKER, SNAPSHOTS, fetchRuntime, startPython } from "./python.mjs";

export { snapshotStore, startPython } from "./python.mjs";

function sameBytes(bytes, text) {
  return bytes.length >= text.length && new TextDecoder().decode(bytes) === text;
}

// The bundle: the last good one cached in this browser is used at once; the
// fetched one replaces it when it verifies and is newer, so triggering never
// waits on the network (see docs/publishing.md).
// {accepted, lateFetch} or null (warned: no usable bundle). `tryBundle`
// verifies bytes and stages them in the runtime.
async function chooseBundle({ msg, bundleFetch, tryBundle, postToMain, warn }) {
  const config = msg.config;
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
    return null;
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
  return { accepted, lateFetch };
}

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
    const archiveFetch = fetchRuntime();
    // 2. Pyodide and the runtime (one archive, unpacked into its own
    //    directory): restored from this browser's memory snapshot when it has
    //    one made by this very build, else started and a snapshot made.
    const { pyodide, snapshot, tPyodide } = await startPython(archiveFetch, SNAPSHOTS && config.snapshot !== "off");
    const adapter = pyodide.pyimport("widget.runtime.adapter");
    runtime = adapter.Runtime(JSON.stringify({ site: config.site, keys: config.keys, context: config.context }));
    const tRuntime = performance.now();

    // 3. The bundle (chooseBundle).
    const choice = await chooseBundle({ msg, bundleFetch, tryBundle, postToMain, warn });
    if (!choice) {
      die("no bundle");
      return;
    }
    const { accepted, lateFetch } = choice;

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

  // Checks 1-3 and 5-8 in Python (widget/runtime/trust.py), the signature (4)
  // with WebCrypto. {ok: true, site, version, source} or {ok: false, reason, error};
  // an accepted bundle is staged in the runtime (start / swap run it).
  async function tryBundle(bytes, lastVersion, now, which) {
    const opened = JSON.parse(runtime.open_envelope(bytes));
    if (!opened.ok) return opened;
    const signature = await verifySignature(opened);
    if (!signature.ok) return signature;
    const accepted = JSON.parse(runtime.accept_payload(lastVersion ?? undefined, now));
    if (!accepted.ok) return accepted;
    return { ok: true, site: accepted.site, version: accepted.version, source: which, widgets: accepted.widgets || [] };
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

