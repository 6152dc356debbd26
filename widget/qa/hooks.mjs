// The QA kit's hooks in the shell (docs/qa.md): the debug view and the
// console log of decisions, and a seeded visitor. debug.mjs loads only when
// asked for: proactive('debug', true) or ?proactive_debug=1 in the page's
// URL. `seed` replaces the visitor record before the runtime starts (the
// pytest plugin queues it before the loader).

import { warnOnce } from "../shell/warn.mjs";

function describeCondition(c) {
  const expected = c.expected === null || c.expected === undefined ? "" : ` ${JSON.stringify(c.expected)}`;
  return `${c.rule} ${c.op}${expected} → ${c.result} (observed ${JSON.stringify(c.observed)})`;
}

// `command`: the widget's API (the debug view reads status and explain).
export function createQa({ renderer, channel, record, command, isStopped }) {
  let debug = false;
  let view = null;
  let loading = null;
  const warnings = []; // the runtime's warnings, for the debug view

  function setDebug(on) {
    debug = on;
    if (!on) {
      if (view) view.close();
      view = null;
      return;
    }
    if (view || loading) return;
    loading = import("./debug.mjs")
      .then((m) => {
        if (debug && !isStopped()) view = m.openDebug({ command, renderer, warnings, onClose: () => setDebug(false) });
      })
      .catch((err) => warnOnce(`the debug view could not load: ${err.message}`))
      .finally(() => { loading = null; });
  }

  // proactive('debug', true): each decision with its reasons, in the console.
  function logDecision(d) {
    const when = new Date(d.t).toISOString();
    channel.ask("explain", d.t).then((explain) => {
      const entry = explain && explain[d.message];
      const reasons = entry ? entry.conditions.map(describeCondition) : [];
      console.info(`[proactive] ${d.action} "${d.message}" at ${when}: ${reasons.length ? reasons.join("; ") : "no rules"}`, entry || d);
    });
  }

  function logSnapshot() {
    channel.ask("explain").then((explain) => {
      if (!explain) return;
      for (const [id, entry] of Object.entries(explain)) {
        const blocked = entry.blocked_by && entry.blocked_by.length ? ` blocked by ${entry.blocked_by.join(", ")}` : "";
        console.info(`[proactive] "${id}": ${entry.result}${blocked}: ${entry.conditions.map(describeCondition).join("; ") || "no rules"}`, entry);
      }
    });
  }

  function seed(value) {
    if (channel.booted) return warnOnce("seed must come before the widget starts (queue it before the loader runs)");
    record.save(value && typeof value === "object" ? JSON.parse(JSON.stringify(value)) : null);
  }

  try {
    if (new URLSearchParams(location.search).get("proactive_debug") === "1") queueMicrotask(() => setDebug(true));
  } catch { /* no debug view */ }

  return {
    get debug() { return debug; },
    warnings,
    setDebug,
    seed,
    logDecision,
    logSnapshot,
    update() { if (view) view.update(); },
  };
}
