// The runtime host: starts Pyodide and the runtime (python.mjs), fetches and
// verifies the signed bundle (../bundle/), and runs the rule engine on the
// events the main thread sends. It never reads a clock for decisions: every
// `now` comes from the main thread. It runs inside the module worker
// (worker.mjs) or, in main-thread mode, on the page itself.

import { fetchBundle } from "../bundle/fetch.mjs";
import { verifySignature } from "../bundle/verify.mjs";
import { IN_WORKER, SNAPSHOTS, fetchRuntime, forgetSnapshot, startPython } from "./python.mjs";

export { snapshotStore, startPython } from "./python.mjs";

// The bundle: the last good one cached in this browser runs at once; the
// fetched one replaces it when it verifies and is newer, so triggering never
// waits on the network (see docs/publishing.md). Which bundle runs, which one
// the page keeps and the rollback floor are widget/runtime/trust.py's
// (BundleTrust); here only the timing. `offer(bytes, which, now)` hands a bundle
// to it. Resolves to {accepted, lateFetch, judge}, or null (warned: no usable
// bundle); `judge(fetched, now)` is for later fetches (revalidation).
async function chooseBundle({ msg, bundleFetch, offer, postToMain, warn }) {
  let running = null; // what runs: {ok, site, version, source, widgets, team}
  let cachedProblem = "nothing cached from an earlier visit";
  if (typeof msg.cachedBundle === "string" && msg.cachedBundle) {
    const r = await offer(new TextEncoder().encode(msg.cachedBundle), "cached", msg.now);
    if (r.ok) [running, cachedProblem] = [facts(r, "cached"), null];
    else cachedProblem = `the cached bundle was rejected: ${r.error}`;
  }
  // {problem} | {swap: true}: a newer bundle is staged | {}: keep what runs
  const judge = async (fresh, now = msg.now) => {
    if (fresh.problem) return { problem: fresh.problem };
    const r = await offer(fresh.bytes, "fetched", now); // at init's `now`, even when late
    if (!r.ok) return { problem: `bundle ${msg.config.bundle} rejected: ${r.error}` };
    if (r.keep.store) {
      // The last good bundle for the next page (`untrustedFloor`: the stored
      // version came from a key no longer pinned; replace it).
      postToMain({ type: "bundle", envelope: new TextDecoder().decode(fresh.bytes), bundle: facts(r, "fetched"), version: r.version, untrustedFloor: r.keep.lowerFloor });
    }
    if (!r.keep.run) return {};
    running = facts(r, "fetched");
    return { swap: true };
  };
  let fetchOutcome = null;
  const settledNow = await Promise.race([bundleFetch, Promise.resolve(null)]);
  if (settledNow) fetchOutcome = await judge(settledNow);
  else if (!running) fetchOutcome = await judge(await bundleFetch); // nothing to run meanwhile
  if (!running) {
    const why = [fetchOutcome && fetchOutcome.problem, cachedProblem].filter(Boolean).join("; ");
    warn(`${why}: no auto message will be shown`);
    return null;
  }
  const accepted = running;
  const usingCache = `using the cached bundle (version ${accepted.version})`;
  if (fetchOutcome && fetchOutcome.problem) warn(`${fetchOutcome.problem}; ${usingCache}`);
  // Judged after going live: a slow endpoint never delays triggering.
  const lateFetch = fetchOutcome ? null : async () => {
    const outcome = await judge(await bundleFetch);
    if (outcome.problem) warn(`${outcome.problem}; ${usingCache}`);
    if (!outcome.swap) return;
    // Staged. The page first drops the older engine's answers and says so
    // ("swap", in order after every event it sent on them): those events are
    // then decided by the engine that answered them.
    postToMain({ type: "swapReady" });
  };
  return { accepted, lateFetch, judge };
}

function facts(r, source) {
  return { ok: true, site: r.site, version: r.version, source, widgets: r.widgets || [], rollout: r.rollout || null,
           team: Boolean(r.team) };
}

// data-revalidate: the bundle fetched again (a conditional request: 304
// when unchanged), judged like the first fetch (`judge` from chooseBundle);
// a newer one is staged and swapped in as the late fetch's is, so a kill
// switch (`proactive pause`) reaches pages that stay open.
function createRevalidation(postToMain, warn) {
  let judge = null;
  let url = null;
  let busy = false;
  let lastFetched = ""; // the bytes last judged, as text: an unchanged bundle is not judged again
  return {
    arm(judgeFn, bundleUrl) {
      judge = judgeFn;
      url = bundleUrl;
    },
    async run(now) {
      if (busy || !judge) return;
      busy = true;
      try {
        const fresh = await fetchBundle(url);
        const text = fresh.bytes ? new TextDecoder().decode(fresh.bytes) : null;
        if (text !== null && text === lastFetched) return;
        const outcome = await judge(fresh, now);
        if (text !== null) lastFetched = text;
        if (outcome.problem) warn(`${outcome.problem}; the running bundle stays`);
        else if (outcome.swap) postToMain({ type: "swapReady" });
      } catch (err) {
        warn(`the bundle could not be revalidated: ${err && err.message}`);
      } finally {
        busy = false;
      }
    },
  };
}

// The bundle as the page fetched it already (to read its boot hint,
// ../shell/boot.mjs): those bytes, not a second request; else fetched here.
function bundleOf(msg) {
  const f = msg.fetched;
  return f && f.bytes instanceof Uint8Array ? Promise.resolve(f) : fetchBundle(msg.config.bundle);
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
  const revalidation = createRevalidation((m) => postToMain(m), (text) => warn(text));
  let keepSnapshot = true; // false once consent is withdrawn ("forget"): nothing more in IndexedDB

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
    const bundleFetch = bundleOf(msg);
    const archiveFetch = fetchRuntime();
    // 2. Pyodide and the runtime (one archive, unpacked into its own
    //    directory): restored from this browser's memory snapshot when it has
    //    one made by this very build, else started and a snapshot made.
    const { pyodide, snapshot, tPyodide } = await startPython(archiveFetch, SNAPSHOTS && config.snapshot !== "off");
    const adapter = pyodide.pyimport("widget.runtime.adapter");
    const floor = Number.isInteger(msg.lastVersion) ? msg.lastVersion : null; // the rollback floor
    // The stored visitor id: a staged rollout's part goes by it (trust.py).
    const visitor = msg.record && typeof msg.record === "object" ? msg.record.visitor_id : null;
    runtime = adapter.Runtime(JSON.stringify({ site: config.site, keys: config.keys, context: config.context, floor, visitor }));
    const tRuntime = performance.now();

    // 3. The bundle (chooseBundle).
    const choice = await chooseBundle({ msg, bundleFetch, offer, postToMain, warn });
    if (!choice) {
      die("no bundle");
      return;
    }
    const { accepted, lateFetch } = choice;
    const tBundle = performance.now();
    revalidation.arm(choice.judge, config.bundle);

    // 4. Replay what happened before we were ready, then go live.
    const reply = JSON.parse(runtime.start(msg.record ? JSON.stringify(msg.record) : "", JSON.stringify(msg.events || []), msg.now,
      JSON.stringify(Array.isArray(msg.pages) ? msg.pages : []))); // earlier pages that never started the engine
    if (reply.ok && reply.hint_warning) warn(reply.hint_warning);
    ready = true;
    postToMain({
      type: "ready",
      bundle: accepted,
      timings: {
        pyodide: tPyodide - t0, runtime: tRuntime - t0, ready: performance.now() - t0, snapshot: snapshot.state,
        fresh_import: snapshot.fresh, heap_bytes: snapshot.heap, start_phases: snapshot.phases,
        // after the runtime: waiting for the bundle (fetch and signature), then the first step
        bundle_wait: tBundle - tRuntime, first_step: performance.now() - tBundle,
      },
    });
    snapshot.keepLater(() => performance.now() - lastActivity, () => keepSnapshot);
    post(reply);
    const queued = pending;
    pending = [];
    for (const m of queued) handle(m);
    if (lateFetch) lateFetch().catch((err) => warn(`the fetched bundle could not be applied: ${err && err.message}`));
  }

  // A bundle to the trust state (widget/runtime/trust.py): Python opens the
  // envelope and names what to verify, WebCrypto verifies the signature,
  // Python decides. {ok, keep: {kind, run, store, lowerFloor}, site, version,
  // widgets, rollout} or {ok: false, reason, error}.
  async function offer(bytes, which, now) {
    const request = JSON.parse(runtime.signing_request(bytes));
    const signature = request.ok ? await verifySignature(request) : { verdict: null, detail: "" };
    return JSON.parse(runtime.offer(bytes, which, signature.verdict, signature.detail, now));
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
    } else if (msg.type === "revalidate") {
      revalidation.run(msg.now);
    } else if (msg.type === "forget") {
      // Consent withdrawn (../shell/consent.mjs): no snapshot kept from now
      // on, and the one kept is deleted (the page deletes it too).
      keepSnapshot = false;
      forgetSnapshot();
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
    // own next signal without asking (widget/decisions/reactions.mjs): the main thread
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

