// The JS API: window.proactive(name, ...args) once the shell runs (the
// loader's stub queues calls until then). docs/embedding.md is its manual.

import { armsOf } from "./record.mjs";
import { warnOnce } from "./warn.mjs";
import { plainAttributes, trackedEvent } from "../signals/signals.mjs";

const snapshot = (status) => JSON.parse(JSON.stringify(status));

// The visitor's experiments: their id (null: not stored, not counted) and
// the arm of each experiment, exposed (the record) or only shown on this page.
function experimentStatus(status, record) {
  status.visitor = (record && record.visitor_id) || null;
  const arms = {};
  for (const shown of status.shown) if (shown.arm !== undefined) arms[shown.message] = shown.arm;
  status.arms = Object.assign(arms, armsOf(record));
}

// `widget`: {events, send, setOpen, qa, channel, reactions, store, status,
// isReady, isStopped, shutdown, claims, consent}.
export function createApi(widget) {
  const { events, send, setOpen, qa, channel, reactions, store, status, claims } = widget;
  const plan = widget.plan || { now() {} }; // when the engine starts (./boot.mjs)

  // Everything sent before has been handled, claims across tabs included:
  // a claim answered while a round trip was on its way sent its `claim`
  // event after that round trip's ping, so one more round trip follows it.
  async function syncAll() {
    for (;;) {
      const answered = claims.answered;
      const ok = await channel.ask("sync");
      if (!ok) return ok;
      if (claims.pending) await claims.settled();
      else if (claims.answered === answered) return ok;
    }
  }

  function stoppedCommand(name) {
    if (name === "status") return snapshot(status);
    if (name === "sync" || name === "explain") return Promise.resolve(null);
    return undefined;
  }

  function run(name, args) {
    switch (name) {
      case "on":
        events.on(args[0], args[1]);
        return undefined;
      case "off":
        events.off(args[0], args[1]);
        return undefined;
      case "open":
        setOpen(true, false);
        return undefined;
      case "close":
        setOpen(false, false);
        return undefined;
      case "goal": {
        // A conversion from the site's code, for the arm of every experiment
        // the visitor was exposed to (the endpoint keeps those within its window).
        const name = typeof args[0] === "string" ? args[0].trim().slice(0, 128) : "";
        if (!name) {
          warnOnce("proactive('goal', name): the name must be a non-empty text");
          return undefined;
        }
        const record = store.read();
        const exposures = Object.entries(armsOf(record)).map(([message, arm]) => ({ message, arm }));
        events.emit("goal", { goal: name, visitor: (record && record.visitor_id) || null, exposures, t: Date.now() });
        return undefined;
      }
      case "arms": {
        // Force experiments' arms (the QA kit's as_visitor(arms=…)): {message: arm}.
        const arms = {};
        for (const [k, v] of Object.entries(args[0] || {})) if (typeof v === "string") arms[String(k)] = v;
        send({ type: "context", arms, t: Date.now() });
        return undefined;
      }
      case "identify": {
        const attributes = plainAttributes(args[0]);
        send({ type: "identify", attributes, t: Date.now() }, "identify", { attributes });
        return undefined;
      }
      case "track": {
        const { event, detail } = trackedEvent(args[0], args[1], Date.now());
        send(event, "track", detail);
        return undefined;
      }
      case "debug":
        qa.setDebug(args[0] !== false);
        if (qa.debug && widget.isReady()) qa.logSnapshot();
        return undefined;
      case "seed":
        qa.seed(args[0]);
        return undefined;
      case "boot":
        // Start the engine now rather than just in time (./boot.mjs).
        plan.now("proactive('boot')");
        return undefined;
      case "sync":
        // Resolves once the runtime has handled everything sent before
        // (the engine starts now if it has not: it is the one that answers).
        plan.now("proactive('sync')");
        return syncAll();
      case "explain":
        plan.now("proactive('explain')");
        return channel.ask("explain");
      case "status":
        // The QA kit waits for `ready`: status starts the engine, unless
        // asked not to (status {boot: false}: what the page is waiting for).
        if (!(args[0] && args[0].boot === false)) plan.now("proactive('status')");
        if (channel.mode !== undefined) status.mode = channel.mode;
        status.prepared = reactions.prepared; // the engine's answer for the next exit intent / route change is here
        status.storage = store.persistent ? "localStorage" : "memory";
        status.consent = widget.consent.granted ? "granted" : "pending";
        experimentStatus(status, store.read());
        return snapshot(status);
      case "consent":
        // data-consent: true gives consent, false withdraws it (docs/embedding.md).
        // Resolves to {consent, deleted} once done.
        if (typeof args[0] !== "boolean") {
          warnOnce("proactive('consent', …) takes true or false");
          return undefined;
        }
        return widget.consent.set(args[0]);
      case "shutdown":
        widget.shutdown();
        return undefined;
      default:
        warnOnce(`unknown command ${JSON.stringify(String(name))}`);
        return undefined;
    }
  }

  return function command(name, ...args) {
    try {
      return widget.isStopped() ? stoppedCommand(name) : run(name, args);
    } catch (err) {
      warnOnce(`command ${String(name)} failed: ${err.message}`);
      return undefined;
    }
  };
}
