// Reactions: the message an exit intent or a single-page-app route change
// shows, answered on the main thread inside the event handler, so the card
// is painted in the very next frame instead of after a round trip to the
// worker (docs/decisions.md, "Reactions"). This is the JavaScript home of
// reactions: reading the engine's answer (below) and the page's state around
// it (createReactions: the answer for the last step sent, the card shown
// ahead, its confirmation or retraction).
//
// The engine decides; this file only reads its answer. After every step the
// worker sends Engine.reactions() (widget/runtime/engine.py): for an exit
// intent, the show decision; for a route change, the messages that could
// show, best first, each with a residual test of the new URL, every value in
// it prepared by the engine's own URL code (widget/runtime/urls.py). What is
// left here is the observed URL's parts and the comparisons, as
// conditions.residual_holds does them in Python (e2e/test_shell_reactions.py runs
// both on the same URLs). Whatever this file cannot be sure of — a URL with
// non-ASCII text after decoding, a URL not in the browser's own form, an
// IPv6 host, utm_* parameters, another
// referrer, an expired answer — it leaves to the engine (null): the message
// then comes a round trip later, never a different one.

// The parts of an observed URL that rules compare (urls.parse), or null.
export function observe(href) {
  if (typeof href !== "string" || !/^[\x20-\x7e]*$/.test(href)) return null;
  let u;
  try {
    u = new URL(href);
  } catch {
    return null;
  }
  // Only a URL as the browser writes it (location.href always is): the
  // parts below are then those Python's urlsplit finds in the same text.
  if (u.href !== href) return null;
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.hostname.startsWith("[")) return null;
  const scheme = u.protocol.slice(0, -1);
  const host = u.hostname.toLowerCase() + (u.port ? `:${u.port}` : "");
  let path = u.pathname || "/";
  path = path.replace(/\/{2,}/g, "/");
  if (path.length > 1 && path.endsWith("/")) path = path.replace(/\/+$/, "") || "/";
  path = path.toLowerCase();
  const query = normalQuery(u.search.slice(1));
  if (query === null) return null;
  const full = `${scheme}://${host}${path}${query ? `?${query}` : ""}`;
  return { scheme, host, path, query, full, raw: href.trim().toLowerCase() };
}

// parse_qsl(keep_blank_values=True), sorted, joined, case-folded: or null
// when decoding leaves non-ASCII text (Python's casefold is not JS's toLowerCase).
function normalQuery(search) {
  if (!search) return "";
  const pairs = [];
  for (const piece of search.split("&")) {
    if (!piece) continue;
    const at = piece.indexOf("=");
    const [k, v] = at < 0 ? [piece, ""] : [piece.slice(0, at), piece.slice(at + 1)];
    let key;
    let value;
    try {
      key = decodeURIComponent(k.replace(/\+/g, " "));
      value = decodeURIComponent(v.replace(/\+/g, " "));
    } catch {
      return null;
    }
    if (!/^[\x00-\x7f]*$/.test(key + value)) return null;
    if (/^utm_/i.test(key)) return null; // a new campaign (%75tm_ too): the engine updates the visit's utm_*
    pairs.push([key, value]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&").toLowerCase();
}

// urls.comparable: the part of the observed URL a value of this shape names.
function comparable(o, [scheme, host, query]) {
  const q = query ? o.query : "";
  const tail = o.path + (q ? `?${q}` : "");
  if (!host) return tail;
  if (!scheme) return o.host + tail;
  return `${o.scheme}://${o.host}${tail}`;
}

const patterns = new Map(); // case-folded `matches` pattern → its test
function wildcard(p) {
  let test = patterns.get(p);
  if (!test) {
    const rx = (text) => new RegExp(`^${text.split("*").map((s) => s.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&")).join("[\\s\\S]*")}$`);
    const own = rx(p);
    const parent = p.endsWith("/*") ? rx(p.slice(0, -2)) : null; // "/blog/*" also matches "/blog"
    test = (target) => own.test(target) || (parent !== null && parent.test(target));
    if (patterns.size > 500) patterns.clear();
    patterns.set(p, test);
  }
  return test;
}

// conditions.residual_holds: does the residual test hold for this URL?
export function holds(when, o) {
  if (when === true || when === false) return when;
  if (when.all) return when.all.every((w) => holds(w, o));
  if (when.any) return when.any.some((w) => holds(w, o));
  let hit = false;
  for (const test of when.url) {
    if (test[0] === "contains") hit = o.full.includes(test[1]) || o.raw.includes(test[1]);
    else if (test[0] === "equals") hit = comparable(o, test[1]) === test[2];
    else hit = wildcard(test[2])(comparable(o, test[1]));
    if (hit) break;
  }
  return when.not ? !hit : hit;
}

// The show decision for this signal, if the engine's last answer covers it
// (null: ask the engine). `table` is Engine.reactions().
export function reaction(table, event) {
  if (!table || typeof event.t !== "number" || event.t < table.from) return null;
  const live = (answer) => answer && (answer.until === null || event.t < answer.until);
  if (event.type === "exit_intent") return live(table.exit) ? table.exit.show : null;
  if (event.type !== "page_view" || !event.spa) return null;
  const route = table.route;
  if (!live(route) || (route.referrer !== null && event.referrer !== route.referrer)) return null;
  const o = observe(event.url);
  if (!o) return null;
  for (const c of route.candidates) if (holds(c.when, o)) return c.show;
  return null;
}

// The page's side: the engine's last answer (kept only while it belongs to
// the last step sent) and `ahead`, a card shown from it, awaiting the
// engine's step for its event.
export function createReactions({ renderer, warn }) {
  let table = null; // Engine.reactions() with the engine's generation
  let ahead = null; // {seq, message, generation}

  // An exit intent or a route change the engine already answered: the card
  // goes up in this very event handler (the next frame paints it); the
  // engine's step for the event confirms it, and only then is it "shown".
  function showAhead(decision, t, seq, generation) {
    try {
      renderer.show({ ...decision, t });
      ahead = { seq, message: decision.message, generation };
    } catch (err) {
      warn(`internal error showing a message: ${err && err.message}`); // the engine's result shows it
    }
  }

  return {
    get prepared() { return table !== null; }, // the answer for the next exit intent / route change is here
    drop() { table = null; },
    // The worker's "reactions" message: kept if it answers the last step sent.
    keep(msg, lastSeq) {
      if (msg.seq !== lastSeq || !msg.reactions) return false;
      table = { ...msg.reactions, generation: msg.generation };
      return true;
    },
    // When the answers run out (the clock renews them then).
    expiries() {
      return (table ? [table.exit && table.exit.until, table.route && table.route.until] : [])
        .filter((x) => typeof x === "number");
    },
    // `event` is about to be sent as step `seq`: shown now if answered.
    answer(event, seq) {
      const known = reaction(table, event);
      if (known) showAhead(known, event.t, seq, table.generation);
      table = null;
    },
    // A step's result: the message shown ahead that the engine confirmed
    // (then not painted again), or null.
    confirm(msg, decisions) {
      table = null;
      if (!ahead || msg.seq !== ahead.seq) return null;
      // The engine has the last word. They cannot differ (bundles are
      // swapped only once the page has dropped the older engine's answers:
      // "swapReady"); if they ever do, the engine's own decision is shown.
      const same = msg.generation === ahead.generation;
      const decided = decisions.some((d) => d.action === "show" && d.message === ahead.message);
      let painted = null;
      if (decided && same) painted = ahead.message;
      else if (!decided) {
        renderer.retract(ahead.message);
        if (same) warn(`internal: "${ahead.message}" was shown ahead of the engine, which did not decide it; please report`);
      }
      ahead = null;
      return painted;
    },
    // The engine could not take step `seq` (warned): nothing it decided is on screen.
    failed(seq) {
      if (ahead && seq === ahead.seq) {
        renderer.retract(ahead.message);
        ahead = null;
      }
    },
  };
}
