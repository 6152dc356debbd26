// The debug view: why each auto message of the bundle shows or not, live.
//
// Loaded by the shell (dynamic import) only when asked for, with
// proactive('debug', true) or ?proactive_debug=1 in the page's URL; a visitor
// never downloads it otherwise. It lives inside the widget's shadow root, is
// styled by a constructed stylesheet (no <style>, no inline style attribute:
// strict-CSP friendly) and sets every string as text.
//
// What it shows, from proactive('status') and proactive('explain'):
//   the bundle (site, version, signature status), the runtime mode, the next
//   wake-up; per message its result, every condition (rule, operator,
//   expected value, observed value, result) and every delivery gate.

const CSS = `
.pd { all: initial; position: fixed; top: 12px; left: 12px; z-index: 2147483001; box-sizing: border-box;
  width: min(620px, calc(100vw - 24px)); max-height: calc(100vh - 24px); overflow: auto; display: block;
  background: #0d1117; color: #e6edf3; border-radius: 10px; box-shadow: 0 8px 30px rgba(0,0,0,.35);
  font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; padding: 10px 12px; }
.pd-title { display: block; font: 600 13px/1.4 system-ui, sans-serif; margin: 0 28px 6px 0; }
.pd-x { position: absolute; top: 6px; right: 8px; border: 0; background: transparent; color: #8b949e;
  font: 18px/1 system-ui, sans-serif; cursor: pointer; padding: 2px 6px; }
.pd-x:hover, .pd-x:focus-visible { color: #fff; outline: none; }
.pd-meta { color: #8b949e; margin-bottom: 8px; }
.pd-meta b { color: #e6edf3; font-weight: 600; }
.pd-msg { border-top: 1px solid #30363d; padding: 6px 0; }
.pd-id { font-weight: 600; }
.pd-badge { display: inline-block; padding: 0 6px; border-radius: 8px; margin-left: 6px; font-weight: 400; }
.pd-delivered, .pd-ready { background: #1f6feb; } .pd-pending { background: #9e6a03; }
.pd-rules_false { background: #30363d; } .pd-blocked { background: #8e1519; }
.pd table { border-collapse: collapse; margin-top: 3px; }
.pd td { padding: 1px 10px 1px 0; vertical-align: top; white-space: nowrap; color: inherit; font: inherit; }
.pd td.pd-observed { white-space: normal; overflow-wrap: anywhere; }
.pd .pd-true { color: #3fb950; } .pd .pd-false { color: #f85149; } .pd .pd-unknown { color: #d29922; }
.pd-gates { color: #8b949e; margin-top: 3px; }
.pd-warn { color: #d29922; }
`;

export function openDebug({ command, renderer, warnings = [], onClose = () => {} }) {
  const root = renderer.root();
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  const panel = el("section", "pd");
  panel.setAttribute("aria-label", "Proactive debug view");
  panel.dataset.proactiveDebug = "";
  const close = el("button", "pd-x", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Close the debug view");
  close.addEventListener("click", () => onClose());
  const body = el("div");
  panel.append(close, el("div", "pd-title", "Proactive — debug view"), body);
  root.appendChild(panel);

  let closed = false;
  let busy = false;
  let again = false;
  // Time-based conditions change between decisions: refresh every second.
  // The timer is the page's own, so Playwright's clock drives it too.
  const timer = setInterval(() => (panel.isConnected ? update() : stop()), 1000);

  async function update() {
    if (closed) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const status = command("status") || {};
      const explain = status.ready ? await command("explain") : null;
      if (!closed) render(status, explain);
    } catch (err) {
      body.replaceChildren(el("div", "pd-warn", `debug view: ${err && err.message}`));
    } finally {
      busy = false;
      if (again) { again = false; update(); }
    }
  }

  function render(status, explain) {
    const now = Date.now();
    const meta = el("div", "pd-meta");
    const b = status.bundle;
    const rejected = warnings.filter((w) => /\bbundle\b.* rejected: /.test(w));
    line(meta, "bundle", b ? `site ${b.site}, version ${b.version}` : status.failed ? "none" : "loading…");
    line(meta, "signature", b ? `verified (Ed25519, ${b.source === "cached" ? "cached copy" : "fetched"})`
      : rejected.length ? "rejected" : status.failed ? "no valid bundle" : "not checked yet");
    for (const w of rejected) meta.append(el("div", "pd-warn", w));
    if (status.failed) meta.append(el("div", "pd-warn", `runtime: ${status.failed}`));
    line(meta, "runtime", `${status.mode || "starting"}${status.ready ? ", ready" : ""}`);
    line(meta, "now", `${secs(now - status.navStart)} on this page`);
    line(meta, "next wake-up", status.nextWakeup == null ? "none (only an event can change a decision)"
      : `in ${secs(status.nextWakeup - now)} (${secs(status.nextWakeup - status.navStart)} on this page)`);
    const shown = (status.shown || []).map((s) => s.message);
    line(meta, "shown", shown.length ? shown.join(", ") : "nothing yet");
    const arms = Object.entries(status.arms || {}).map(([m, a]) => `${m} = ${a}`);
    if (arms.length || status.visitor === null) {
      line(meta, "experiments", `${arms.length ? arms.join(", ") : "no arm yet"}; visitor ${status.visitor || "not stored (first variants, not counted)"}`);
    }
    line(meta, "exit / route answers", `${status.prepared ? "held by the page" : "being computed"}; ${status.ahead || 0} shown in their event's own handler`);
    const nodes = [meta];
    for (const [id, entry] of Object.entries(explain || {})) nodes.push(message(id, entry, now));
    body.replaceChildren(...nodes);
  }

  function message(id, entry, now) {
    const box = el("div", "pd-msg");
    box.dataset.message = id;
    const head = el("div", "pd-id", id);
    head.append(el("span", `pd-badge pd-${entry.result}`, resultText(entry, now)));
    box.append(head);
    const table = el("table");
    for (const c of entry.conditions || []) {
      const row = el("tr");
      row.dataset.rule = c.rule;
      row.append(
        el("td", "", c.rule),
        el("td", "", c.op),
        el("td", "", c.expected == null ? "" : fmt(c.expected)),
        el("td", "pd-observed", `observed ${observed(c)}`),
        el("td", `pd-${c.result}`, c.result),
      );
      table.append(row);
    }
    if (!(entry.conditions || []).length) table.append(row1("no conditions (always true)"));
    box.append(table);
    // Delivery gates (team, audience, caps, once per user, …): closed ones
    // with why, in the engine's words (its gate table words every gate).
    const gates = el("div", "pd-gates");
    const all = Object.entries(entry.gates || {});
    for (const [name, g] of all.filter(([, g]) => !g.ok)) {
      gates.append(el("span", "pd-false", `${name} blocks`), `: ${g.text || name}; `);
    }
    const open = all.filter(([, g]) => g.ok).map(([name]) => name);
    if (open.length) gates.append("gates open: ", el("span", "pd-true", open.join(", ")));
    box.append(gates);
    return box;
  }

  function stop() {
    closed = true;
    clearInterval(timer);
  }

  update();
  return {
    update,
    close() {
      stop();
      panel.remove();
      root.adoptedStyleSheets = root.adoptedStyleSheets.filter((s) => s !== sheet);
    },
  };
}

function resultText(entry, now) {
  switch (entry.result) {
    case "delivered": return "shown on this page";
    case "pending": return entry.due != null ? `delayed, due in ${secs(entry.due - now)}` : "delayed";
    case "rules_false": return "rules do not hold";
    case "blocked": return `blocked by ${(entry.blocked_by || []).join(", ")}`;
    case "ready": return "rules hold, deliverable";
    default: return String(entry.result);
  }
}

function observed(c) {
  if (c.result === "unknown" && c.observed == null) return "unknown";
  if (c.observed_as) return `${fmt(c.observed_as)}`;
  if (typeof c.observed === "number" && /^time_/.test(c.rule)) return secs(c.observed * 1000);
  return fmt(c.observed);
}

function fmt(v) {
  if (v == null) return "—";
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function secs(ms) {
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 1 : 3).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, ".0")} s`;
}

function line(parent, label, text) {
  const d = el("div");
  d.append(el("b", "", `${label}: `), text);
  parent.append(d);
}

function row1(text) {
  const r = el("tr");
  const td = el("td", "", text);
  td.colSpan = 5;
  r.append(td);
  return r;
}

function el(tag, className = "", text = null) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}
