// The conformance cases (tests/cases.json: every rule's edge cases, and
// journeys with their expected decisions) run by the page's own Python — the
// engine the studio validates and simulates with — as every other engine of
// the project runs them (widget/runtime/conformance.py). The studio server
// only hands over the file.

import { h } from "./studio.js";

export function conformanceSection(python) {
  const out = h("p", {id: "conformance-result", "aria-live": "polite"});
  const run = h("button", {type: "button", text: "Run the conformance cases", onclick: async () => {
    const py = python();
    if (!py) { out.textContent = "The page's Python is not running yet (or not available): try again once the header says it runs."; return; }
    run.disabled = true;
    out.textContent = "Running…";
    try {
      const response = await fetch("api/cases");
      if (!response.ok) { out.textContent = `The cases file is not available (HTTP ${response.status})`; return; }
      const started = performance.now();
      const result = JSON.parse(await py.sync.conformance(await response.text()));
      const ms = Math.round(performance.now() - started);
      out.textContent = result.failures.length
        ? `${result.total - result.failures.length} of ${result.total} cases pass; failing: ` +
          result.failures.map(([name, expected, actual]) => `${name} (expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)})`).join("; ")
        : `All ${result.total} cases pass in this page's Python (${ms} ms)`;
    } finally {
      run.disabled = false;
    }
  }});
  return h("section", {id: "conformance", class: "card", "aria-labelledby": "conformance-title"},
    h("h2", {id: "conformance-title", text: "Engine conformance"}),
    h("p", {class: "muted", text: "The project's conformance cases (every rule's edge cases, journeys and their decisions), " +
      "run by the Python this page validates and simulates with."}),
    run, out);
}
