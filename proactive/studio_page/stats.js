// The list's stats (docs/studio.md, *The list*): with `proactive studio
// --endpoint URL --agent-token TOKEN`, each message's shown, clicked and
// replied counts and reply rate over the last 7 days, from the endpoint's
// GET /api/agent/stats — fetched by the studio server (the agent token stays
// there). An endpoint that does not answer: "unavailable"; the rest of the
// studio works as without one.

import { h } from "./studio.js";

const COLUMNS = [["shown", "Shown"], ["clicked", "Clicked"], ["replied", "Replied"], ["reply_rate", "Reply rate"]];
let stats = null;   // {days, messages: {id: {...}}} or {unavailable}; null: not loaded yet

// Fetch once; `done()` redraws the list.
export async function loadStats(api, done) {
  const {ok, data} = await api("stats");
  stats = ok ? data : {unavailable: data.error || "the studio did not answer"};
  done();
}

export function statsHeaders() {
  return COLUMNS.map(([, label]) => h("th", {scope: "col", text: `${label} (7 days)`}));
}

function format(key, value) {
  if (value === null || value === undefined) return "—";
  return key === "reply_rate" ? `${(value * 100).toFixed(1)} %` : String(value);
}

export function statsCells(id) {
  const row = stats && stats.messages ? stats.messages[id] || {shown: 0, clicked: 0, replied: 0, reply_rate: null} : null;
  return COLUMNS.map(([key]) => h("td", {class: "stat", "data-stat": key,
    text: row ? format(key, row[key]) : stats ? "unavailable" : "…"}));
}

export function statsNote() {
  if (!stats) return h("p", {class: "muted", id: "stats-note", text: "Stats (last 7 days): loading…"});
  return h("p", {class: stats.unavailable ? "stats-unavailable" : "muted", id: "stats-note",
    text: stats.unavailable ? `Stats unavailable: ${stats.unavailable}` : `Stats of the last ${stats.days} days, from the endpoint`});
}
