// The auto messages studio (docs/studio.md): the list of messages, the
// editor in the seed's order and wording, live validation, simulate, save
// and publish. The page holds the document as JSON; the studio server
// (proactive/cmd_studio.py) validates and simulates it with the project's
// own Python, writes the file keeping what was not edited, and signs.

import { conformanceSection } from "./conformance.js";
import { attachmentList, capsFields, linkList, senderAvatar } from "./composer.js";
import { imageDetails, siteSettings } from "./settings.js";
import { createPreview } from "./preview.js";
import { loadStats, statsCells, statsHeaders, statsNote } from "./stats.js";

const API = "api/";
const S = {
  doc: null,          // the document being edited (site, widgets, messages, ...)
  origins: [],        // origins[i]: the index in the file message i came from (null: new)
  etag: null,
  problems: [],
  catalog: null,
  editing: null,      // index of the message in the editor, or null (the list)
  dirty: false,
  malformed: false,
  file: "",
  bundle: "",
};

const TYPES = [["proactive", "Proactive chat"], ["targeted", "Targeted chat"], ["email", "Email"]];
const TEAM = [["any", "any"], ["online", "online"], ["offline", "offline"]];
const AUDIENCE = [["visitors", "visitors"], ["users", "authenticated users"], ["all", "all"]];
const OPS = {
  equals: "equals", is_not: "is not", contains: "contains", not_contains: "does not contain",
  greater: "greater than", less: "less than", exists: "exists", not_exists: "does not exist",
  is_true: "is true", is_false: "is false", matches: "matches (* wildcards)",
};
// The catalog grouped as the seed lists it.
const GROUPS = [
  ["Visitor", ["browser_language", "country", "city", "user_agent", "platform", "visits", "chat_history", "rating"]],
  ["Page and visit", ["page_url", "time_on_page", "time_this_visit", "page_views", "source_url", "referrer_url",
    "time_before_exit_intent"]],
  ["Chat widget", ["widget_opened", "time_since_widget_closed", "time_without_agent_reply", "invitations_sent",
    "time_since_last_invitation"]],
  ["Campaign (UTM)", ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]],
];
const STEP_TYPES = [["page_view", "Page view"], ["exit_intent", "Exit intent"], ["widget_open", "Widget opened"],
  ["widget_close", "Widget closed"], ["visitor_message", "Visitor message"], ["agent_message", "Agent message"],
  ["dismiss", "Message dismissed"], ["rating", "Chat rated"], ["team", "Team online / offline"]];
const UTM = [["utm_source", "UTM source"], ["utm_medium", "UTM medium"], ["utm_campaign", "UTM campaign"]];

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

// -- DOM helpers ---------------------------------------------------------------------------
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// A control with its visible label; `path` ties it to the validator's problems.
export function field(label, control, path, hint) {
  const id = control.id || (control.id = nextId("f"));
  const wrap = h("div", {class: "field", "data-path": path ? path.join(".") : null},
    h("label", {for: id, text: label}), control);
  if (hint) {
    const hid = nextId("hint");
    wrap.append(h("small", {id: hid, class: "muted", text: hint}));
    control.setAttribute("aria-describedby", hid);
  }
  if (path) control.dataset.path = path.join(".");
  return wrap;
}

export function select(options, value, onchange) {
  const el = h("select", {onchange: (e) => onchange(e.target.value)});
  for (const [v, label] of options) el.append(h("option", {value: v, text: label}));
  el.value = value;
  return el;
}

// -- server ----------------------------------------------------------------------------------
async function api(path, body) {
  const init = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)};
  const response = await fetch(API + path, init);
  let data = {};
  try { data = await response.json(); } catch (e) { data = {error: `HTTP ${response.status}`}; }
  return {ok: response.ok, status: response.status, data};
}

function status(text, kind = "") {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = kind;
}

function setDirty(dirty) {
  S.dirty = dirty;
  document.getElementById("save").disabled = !dirty || S.malformed;
  if (dirty) status("Unsaved changes");
}

// -- validation (live) ----------------------------------------------------------------------
let validating = 0;
let timer = null;
export function changed(structural = false) {
  setDirty(true);
  if (structural) render();
  clearTimeout(timer);
  timer = setTimeout(validate, 30);
}

// The project's validator, in this page's Python (studio_main.py under
// PyScript, in a worker) once it is loaded; until then the studio server runs
// the same function. An answer older than the last change is dropped.
async function validate() {
  const ticket = ++validating;
  let problems;
  if (S.python) {
    const started = performance.now();
    problems = JSON.parse(await S.python.sync.check(JSON.stringify(S.doc)));
    if (ticket === validating) S.lastCheckMs = window.__lastCheckMs = performance.now() - started;
  } else {
    const {ok, data} = await api("validate", {document: S.doc});
    if (!ok) return;
    problems = data.problems;
  }
  if (ticket !== validating) return;
  S.problems = problems;
  showProblems();
  if (S.editing !== null) previewOf(S.editing).update(S.doc.messages[S.editing]);
}

// The editor's card preview (preview.js), one per message edited; the
// content resolved by the page's Python once loaded, else by the studio server.
function previewOf(index) {
  if (S.preview && S.preview.index === index && S.preview.message === S.doc.messages[index]) return S.preview;
  const message = S.doc.messages[index];
  S.preview = Object.assign(createPreview(async (language, variant) => {
    if (S.python) return JSON.parse(await S.python.sync.preview(JSON.stringify(S.doc), index, language, variant));
    const {data} = await api("preview", {document: S.doc, index, language, variant});
    return data;
  }), {index, message});
  return S.preview;
}

// PyScript and Pyodide load in a worker: the page stays usable meanwhile.
async function startPython() {
  const engine = document.getElementById("engine");
  if (location.hash === "#server") {   // a slow machine: no Pyodide in the page, the server checks
    engine.textContent = "Python: the studio server checks (this page was opened with #server)";
    return;
  }
  const base = new URL(".", location.href);
  const wheel = new URL(JSON.parse(document.body.dataset.studioWheel), base).href;
  try {
    const {PyWorker} = await import(new URL("pyscript/core.js", base).href);
    // `version`: the interpreter module's URL (polyscript's XWorker), the pinned Pyodide beside the page
    const pyodide = new URL("pyodide/pyodide.mjs", base).href;
    const config = {interpreter: pyodide, files: {[wheel]: "./studio.whl"}};
    S.python = await PyWorker(new URL("studio_main.py", base).href, {config, version: pyodide});
    await S.python.sync.check(JSON.stringify({site: "warm-up", messages: []}));
  } catch (error) {
    S.python = null;
    engine.textContent = "Python: not available in this page; the studio server checks instead";
    console.warn("studio: the page's Python did not start", error);
    return;
  }
  engine.textContent = "Python: running in this page (PyScript)";
  document.body.dataset.python = "page";
  if (S.doc) validate();
}

function showProblems() {
  for (const el of document.querySelectorAll(".problem")) el.remove();
  for (const el of document.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    const keep = (el.getAttribute("aria-describedby") || "").split(" ").filter((x) => !x.startsWith("err-")).join(" ");
    keep ? el.setAttribute("aria-describedby", keep) : el.removeAttribute("aria-describedby");
  }
  const general = document.getElementById("problems");
  const errors = S.problems.filter((p) => !p.warning);
  for (const p of S.problems) {
    const text = `${p.warning ? "" : "Problem: "}${p.message}${p.expected ? ` (expected ${p.expected})` : ""}`;
    const target = targetOf(p.path);
    const note = h("p", {class: p.warning ? "problem warning" : "problem", id: nextId("err"), text});
    if (target) {
      target.after(note);
      const control = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
      if (control) {
        if (!p.warning) control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", `${control.getAttribute("aria-describedby") || ""} ${note.id}`.trim());
      }
    } else if (general && (S.editing === null || pathInEditor(p.path))) {
      note.textContent = `${p.where}: ${text}`;
      general.append(note);
    }
  }
  const count = document.getElementById("problem-count");
  if (count) count.textContent = errors.length ? `${errors.length} problem(s): they must be fixed before publishing` : "No problems";
  for (const row of document.querySelectorAll("tr[data-index]")) {
    const n = errors.filter((p) => p.path[0] === "messages" && p.path[1] === Number(row.dataset.index)).length;
    row.querySelector(".row-problems").textContent = n ? `${n} problem(s)` : "";
  }
}

function pathInEditor(path) {
  return S.editing === null || (path[0] === "messages" && path[1] === S.editing) || path[0] !== "messages";
}

// The control (or its field) for a problem's path: the path itself, else its nearest parent shown.
function targetOf(path) {
  for (let n = path.length; n > 0; n--) {
    const key = path.slice(0, n).join(".");
    const control = document.querySelector(`[data-path="${CSS.escape(key)}"]:is(input, select, textarea)`);
    if (control) return control;
    const box = document.querySelector(`[data-path="${CSS.escape(key)}"]`);
    if (box) return box;
  }
  return null;
}

// -- the list ----------------------------------------------------------------------------------
function summary(m) {
  const c = m.content || (m.variants && m.variants[0] && m.variants[0].content) || {};
  const block = typeof c.text === "string" || !Object.keys(c).length ? c : c[Object.keys(c)[0]] || {};
  return (block.text || "").slice(0, 80);
}

// The list or the editor is redrawn on every structural change; the
// simulation panel below it only when its own steps change.
function render() {
  const main = document.getElementById("main");
  let view = document.getElementById("view");
  if (!view) {
    view = h("div", {id: "view", class: "stack"});
    main.replaceChildren(view);
  }
  view.replaceChildren();
  if (S.malformed) { document.getElementById("simulate")?.remove(); renderMalformed(view); return; }
  if (S.editing === null) renderList(view); else renderEditor(view);
  if (!document.getElementById("simulate")) main.append(renderSimulate());
  if (!document.getElementById("conformance")) main.append(conformanceSection(() => S.python));
  showProblems();
  if (S.editing !== null) previewOf(S.editing).update(S.doc.messages[S.editing]);
}

function renderSim() {
  document.getElementById("simulate").replaceWith(renderSimulate());
}

function renderMalformed(main) {
  const raw = h("textarea", {rows: 18, value: S.rawText, spellcheck: "false"});
  main.append(h("section", {class: "card"},
    h("h2", {text: `${S.file} cannot be read`}),
    h("p", {text: "The studio will not rewrite it from a partial read. Fix these lines in the raw text below " +
      "(or in any editor, then reload):"}),
    h("ul", {id: "problems"}, S.problems.map((p) => h("li", {class: "problem", text: `line ${p.line}, column ${p.col}: ${p.message}`}))),
    field("Raw text", raw),
    h("button", {type: "button", class: "primary", text: "Save text", onclick: async () => {
      const {ok, data} = await api("save-text", {text: raw.value, etag: S.etag});
      if (!ok) { status(`Not saved: ${data.error}`, "error"); return; }
      load(data);
      status(S.malformed ? "Saved; the file still cannot be read" : `Saved ${S.file}`);
    }})));
}

function renderList(main) {
  const messages = S.doc.messages || (S.doc.messages = []);
  const table = h("table", {},
    h("caption", {text: `${messages.length} auto message(s)`}),
    h("thead", {}, h("tr", {},
      h("th", {scope: "col", text: "Message"}), h("th", {scope: "col", text: "Type"}), h("th", {scope: "col", text: "Widget"}),
      h("th", {scope: "col", text: "Status"}), h("th", {scope: "col", id: "col-priority", text: "Priority"}),
      S.endpoint ? statsHeaders() : null,
      h("th", {scope: "col", text: "Actions"}))),
    h("tbody", {}, messages.map((m, i) => {
      const paused = m.enabled === false;
      const rowName = nextId("row");
      const priority = h("input", {type: "number", step: 1, value: m.priority ?? 0,
        "aria-labelledby": `col-priority ${rowName}`, "data-path": `messages.${i}.priority`,
        oninput: (e) => { setNumber(m, "priority", e.target.value); changed(); }});
      return h("tr", {"data-index": i},
        h("th", {scope: "row"}, h("span", {id: rowName, class: "id", text: m.id || "(no id)"}),
          h("small", {class: "muted", text: summary(m)}), h("small", {class: "row-problems"})),
        h("td", {text: (TYPES.find(([v]) => v === (m.type || "proactive")) || [0, m.type])[1]}),
        h("td", {text: m.widget || "any"}),
        h("td", {}, h("span", {class: paused ? "paused" : "active", text: paused ? "Paused" : "Active"})),
        h("td", {}, priority),
        S.endpoint ? statsCells(m.id) : null,
        h("td", {class: "row-actions"},
          h("button", {type: "button", text: "Edit", onclick: () => { S.editing = i; render(); focusEditor(); }}),
          h("button", {type: "button", text: "Duplicate", onclick: () => duplicate(i)}),
          h("button", {type: "button", text: paused ? "Activate" : "Pause", onclick: () => {
            if (paused) delete m.enabled; else m.enabled = false;
            changed(true);
          }}),
          h("button", {type: "button", text: "Delete", onclick: () => confirmDelete(i)})));
    })));
  main.append(h("section", {class: "card", "aria-labelledby": "list-title"},
    h("div", {class: "row"}, h("h2", {id: "list-title", text: "Auto messages list"}),
      h("button", {type: "button", class: "primary", text: "Add new auto message", onclick: addMessage})),
    h("p", {id: "problem-count", class: "muted"}),
    S.endpoint ? statsNote() : null,
    table,
    h("div", {id: "problems"})));
  main.append(siteSettings(S.doc));
}

export function setNumber(obj, key, raw) {
  if (raw === "") { delete obj[key]; return; }
  const n = Number(raw);
  obj[key] = Number.isFinite(n) ? n : raw;
}

function freshId(base) {
  const ids = new Set((S.doc.messages || []).map((m) => m.id));
  let id = base, n = 2;
  while (ids.has(id)) id = `${base}-${n++}`;
  return id;
}

function addMessage() {
  S.doc.messages.push({id: freshId("new-message"), type: "proactive", content: {text: ""}, rules: []});
  S.origins.push(null);
  S.editing = S.doc.messages.length - 1;
  changed(true);
  focusEditor();
}

function duplicate(i) {
  const copy = JSON.parse(JSON.stringify(S.doc.messages[i]));
  copy.id = freshId(`${copy.id || "message"}-copy`);
  delete copy.experiment;
  S.doc.messages.splice(i + 1, 0, copy);
  S.origins.splice(i + 1, 0, null);
  changed(true);
}

function dialog(title, body, buttons) {
  const d = document.getElementById("dialog");
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-body").replaceChildren(...body);
  document.getElementById("dialog-actions").replaceChildren(...buttons.map(([label, action, primary]) =>
    h("button", {type: "button", class: primary ? "primary" : null, text: label,
      onclick: async () => { if (action) await action(); else d.close(); }})));
  if (!d.open) d.showModal();
  return d;
}

function confirmDelete(i) {
  const m = S.doc.messages[i];
  dialog(`Delete ${m.id}?`, [h("p", {text: "The message is removed from the file on the next save. Visitors stop getting it after the next publish."})],
    [["Cancel", null], ["Delete", () => {
      S.doc.messages.splice(i, 1);
      S.origins.splice(i, 1);
      document.getElementById("dialog").close();
      changed(true);
    }, true]]);
}

// -- the editor ------------------------------------------------------------------------------
function focusEditor() {
  const first = document.querySelector("#editor select, #editor input");
  if (first) first.focus();
}

function renderEditor(main) {
  const i = S.editing;
  const m = S.doc.messages[i];
  const p = (...rest) => ["messages", i, ...rest];
  const widgets = (S.doc.widgets || [{id: "main"}]).map((w) => w && w.id).filter(Boolean);
  const type = m.type || "proactive";
  const defaultAudience = type === "proactive" ? "visitors" : "users";
  const section = h("section", {id: "editor", class: "card", "aria-labelledby": "editor-title"},
    h("div", {class: "row"},
      h("h2", {id: "editor-title", text: `Auto message ${m.id || ""}`}),
      h("button", {type: "button", text: "Back to the list", onclick: () => { S.editing = null; render(); }})),
    h("div", {id: "problems"}),
    h("ol", {class: "steps"},
      h("li", {}, field("Message type", select(TYPES, type, (v) => { m.type = v; changed(true); }), p("type"))),
      h("li", {}, field("Widget", select([["", "any widget"], ...widgets.map((w) => [w, w])], m.widget || "",
        (v) => { if (v) m.widget = v; else delete m.widget; changed(); }), p("widget"))),
      h("li", {}, field("Send when team", select(TEAM, m.team || "any", (v) => { m.team = v; changed(); }), p("team"),
        "online / offline: live presence, else your business hours")),
      h("li", {}, field("Send to", select(AUDIENCE, m.audience || defaultAudience, (v) => { m.audience = v; changed(); }),
        p("audience"))),
      h("li", {}, checkbox("Send only once per user", m.once_per_user ?? type === "email",
        (v) => { m.once_per_user = v; changed(); }, p("once_per_user"))),
      h("li", {}, compose(m, p), previewOf(i).element),
      h("li", {}, experimentEditor(m, p)),
      h("li", {}, rulesEditor(m, p))),
    h("fieldset", {}, h("legend", {text: "Delivery"}),
      field("Message ID", h("input", {type: "text", value: m.id || "", autocomplete: "off",
        oninput: (e) => { m.id = e.target.value; changed(); }}), p("id"), "lower-case letters, digits and '-'"),
      field("Delay (seconds)", h("input", {type: "number", min: 0, step: "any", value: m.delay ?? "",
        oninput: (e) => { setNumber(m, "delay", e.target.value); changed(); }}), p("delay"),
        "between the rules holding and the message showing"),
      field("Priority", h("input", {type: "number", step: 1, value: m.priority ?? 0,
        oninput: (e) => { setNumber(m, "priority", e.target.value); changed(); }}), p("priority"), "higher wins"),
      field("Start date", h("input", {type: "text", placeholder: "2026-12-01", value: m.start ?? "",
        oninput: (e) => { e.target.value ? m.start = e.target.value : delete m.start; changed(); }}), p("start")),
      field("End date", h("input", {type: "text", placeholder: "2026-12-31", value: m.end ?? "",
        oninput: (e) => { e.target.value ? m.end = e.target.value : delete m.end; changed(); }}), p("end")),
      capsFields(m, p),
      checkbox("Active", m.enabled !== false, (v) => { if (v) delete m.enabled; else m.enabled = false; changed(); },
        p("enabled"))));
  main.append(section);
}

function checkbox(label, value, onchange, path) {
  const id = nextId("c");
  return h("div", {class: "field check", "data-path": path.join(".")},
    h("input", {type: "checkbox", id, checked: value, "data-path": path.join("."),
      onchange: (e) => onchange(e.target.checked)}),
    h("label", {for: id, text: label}));
}

// Content: one block for everyone, or language variants {en: {...}, de: {...}}.
function variantsOf(m) {
  const c = m.content;
  if (!c || typeof c !== "object") return [["", {}]];
  const keys = Object.keys(c);
  const isLanguages = keys.length > 0 && keys.every((k) => /^[a-z]{2,3}(-[a-z0-9]{1,8})*$/.test(k)) &&
    keys.every((k) => c[k] && typeof c[k] === "object" && !Array.isArray(c[k]));
  return isLanguages ? keys.map((k) => [k, c[k]]) : [["", c]];
}

// Compose: the message's content, or (an experiment) each A/B variant's.
function compose(m, p) {
  const experiment = Array.isArray(m.variants);
  const box = h("fieldset", {"data-path": p(experiment ? "variants" : "content").join(".")}, h("legend", {text: "Compose"}));
  if (experiment) m.variants.forEach((v, vi) => box.append(abVariant(m, v, vi, p)));
  else contentEditor(m, p("content"), box);
  box.append(h("button", {type: "button", text: "Add A/B variant", onclick: () => addAbVariant(m)}));
  return box;
}

// The content of `holder` (a message, or one of its A/B variants) at `path`.
function contentEditor(m, path, box) {
  const variants = variantsOf(m);
  variants.forEach(([lang, block], vi) => {
    const base = lang ? [...path, lang] : path;
    const group = h("fieldset", {class: "variant"}, h("legend", {text: lang ? `Language ${lang}` : "All languages"}));
    if (lang) {
      group.append(field("Language", h("input", {type: "text", value: lang, size: 6,
        onchange: (e) => { renameLanguage(m, lang, e.target.value.trim().toLowerCase()); changed(true); }}),
      null, "a language tag: en, de, pt-br"));
    }
    const senderName = typeof block.sender === "string" ? block.sender : (block.sender && block.sender.name) || "";
    group.append(
      field("Sender name", h("input", {type: "text", value: senderName, oninput: (e) => {
        const v = e.target.value;
        if (!v) delete block.sender;
        else if (block.sender && typeof block.sender === "object") block.sender.name = v;
        else block.sender = v;
        changed();
      }}), [...base, "sender"]),
      senderAvatar(block, base),
      field("Message text", h("textarea", {rows: 4, value: block.text || "",
        oninput: (e) => { block.text = e.target.value; changed(); }}), [...base, "text"],
      "**bold**, *italic*, [label](https://…), {{name|fallback}}"),
      field("Image or GIF URL", h("input", {type: "url", value: typeof block.image === "string" ? block.image :
        (block.image && block.image.src) || "", oninput: (e) => {
        const v = e.target.value.trim();
        if (!v) delete block.image;
        else if (block.image && typeof block.image === "object") block.image.src = v;
        else block.image = v;
        changed();
      }, onchange: (e) => {   // the image's description and size appear (or go) once the URL is in
        if (!!e.target.value.trim() !== !!e.target.closest(".variant").querySelector("[aria-label='Image details']")) changed(true);
      }}), [...base, "image"]), imageDetails(block, base));
    const buttons = block.buttons || [];
    const list = h("fieldset", {class: "buttons", "data-path": [...base, "buttons"].join(".")}, h("legend", {text: "Buttons"}));
    buttons.forEach((b, bi) => {
      const bp = [...base, "buttons", bi];
      if (typeof b !== "object" || !b) return;
      list.append(h("div", {class: "inline", role: "group", "aria-label": `Button ${bi + 1}`},
        field("Button label", h("input", {type: "text", value: b.label || "", oninput: (e) => { b.label = e.target.value; changed(); }}), [...bp, "label"]),
        field("Button action", select([["chat", "open the chat"], ["url", "open a link"], ["reply", "quick reply"]], b.action || "chat",
          (v) => { b.action = v; if (v !== "url") delete b.url; changed(true); }), [...bp, "action"]),
        b.action === "url" ? field("Button URL", h("input", {type: "text", value: b.url || "", oninput: (e) => { b.url = e.target.value; changed(); }}), [...bp, "url"]) : null,
        h("button", {type: "button", text: "Remove button", onclick: () => { buttons.splice(bi, 1); if (!buttons.length) delete block.buttons; changed(true); }})));
    });
    list.append(h("button", {type: "button", text: "Add button", onclick: () => {
      (block.buttons = buttons).push({label: "Chat with us", action: "chat"}); changed(true);
    }}));
    group.append(list, linkList(block, base), attachmentList(block, base));
    if (lang && variants.length > 1) {
      group.append(h("button", {type: "button", text: `Remove language ${lang}`, onclick: () => { delete m.content[lang]; changed(true); }}));
    }
    box.append(group);
  });
  box.append(h("button", {type: "button", text: "Add language variant", onclick: () => addLanguage(m)}));
}

// -- experiments (docs/authoring.md, "Experiments") -------------------------------------------
function abVariant(m, v, vi, p) {
  const vp = p("variants", vi);
  const box = h("fieldset", {class: "ab-variant", "data-path": vp.join(".")}, h("legend", {text: `A/B variant ${vi + 1}`}));
  if (!v.content || typeof v.content !== "object" || Array.isArray(v.content)) v.content = {text: ""};
  box.append(h("div", {class: "inline"},
    field("Variant ID", h("input", {type: "text", value: v.id ?? "", autocomplete: "off",
      oninput: (e) => { v.id = e.target.value; changed(); showShares(m); }}), [...vp, "id"],
    "lower-case letters, digits and '-'; renaming one starts the experiment over"),
    field("Weight", h("input", {type: "number", min: 0, step: "any", value: v.weight ?? 1,
      oninput: (e) => { setNumber(v, "weight", e.target.value); changed(); showShares(m); }}), [...vp, "weight"],
    "relative to the other variants")));
  contentEditor(v, [...vp, "content"], box);
  if (m.variants.length > 1) {
    box.append(h("button", {type: "button", text: `Remove A/B variant ${vi + 1}`,
      onclick: () => { m.variants.splice(vi, 1); changed(true); }}));
  }
  return box;
}

// A message's own content becomes its first variant; a new variant joins it.
function addAbVariant(m) {
  if (!Array.isArray(m.variants)) {
    const content = m.content && typeof m.content === "object" ? m.content : {text: ""};
    delete m.content;
    m.variants = [{id: "a", weight: 1, content}];
  }
  const ids = new Set(m.variants.map((v) => v.id));
  const id = [..."abcdefghijklmnopqrstuvwxyz"].find((c) => !ids.has(c)) || `v${m.variants.length + 1}`;
  m.variants.push({id, weight: 1, content: {text: ""}});
  changed(true);
}

// Holdout and experiment name; each arm's share of the eligible visitors, as the engine assigns them.
function experimentEditor(m, p) {
  const box = h("fieldset", {"data-path": p("holdout").join(".")}, h("legend", {text: "Experiment"}),
    h("p", {class: "muted", text: "Add A/B variants above to compare wordings; a holdout compares with showing nothing. " +
      "Each visitor keeps their group on every page and visit."}));
  box.append(h("div", {class: "inline"},
    field("Holdout (% who see nothing)", h("input", {type: "number", min: 0, max: 50, step: "any", value: m.holdout ?? "",
      oninput: (e) => { setNumber(m, "holdout", e.target.value); changed(); showShares(m); }}), p("holdout"),
    "0 to 50: the control group"),
    field("Experiment name", h("input", {type: "text", value: m.experiment ?? "", autocomplete: "off", oninput: (e) => {
      if (e.target.value) m.experiment = e.target.value; else delete m.experiment;
      changed();
    }}), p("experiment"), "optional; a new name starts the experiment over")));
  box.append(h("p", {id: "experiment-shares", "aria-live": "polite"}));
  showShares(m, box.lastChild);
  return box;
}

function armShares(m) {
  const holdout = typeof m.holdout === "number" ? m.holdout : 0;
  const arms = Array.isArray(m.variants) ? m.variants.map((v) => [v.id, v.weight ?? 1]) : holdout > 0 ? [["the message", 1]] : [];
  const total = arms.reduce((sum, [, w]) => sum + w, 0);
  if (!arms.length || !(holdout >= 0 && holdout <= 50) || arms.some(([, w]) => !(typeof w === "number" && w > 0))) return null;
  const out = arms.map(([id, w]) => [id, (w / total) * (100 - holdout)]);
  if (holdout > 0) out.push(["holdout (sees nothing)", holdout]);
  return out;
}

function showShares(m, el = document.getElementById("experiment-shares")) {
  if (!el) return;
  const shares = armShares(m);
  el.textContent = shares ? `Visitors: ${shares.map(([id, share]) => `${id} ${+share.toFixed(1)} %`).join(", ")}` : "";
}

function renameLanguage(m, from, to) {
  if (!to || to === from || m.content[to]) return;
  const out = {};
  for (const [k, v] of Object.entries(m.content)) out[k === from ? to : k] = v;
  m.content = out;
}

function addLanguage(m) {
  const variants = variantsOf(m);
  if (variants.length === 1 && variants[0][0] === "") m.content = {en: m.content || {}};
  let code = "de", n = 0;
  const spare = ["de", "fr", "es", "it", "nl", "pt"];
  while (m.content[code]) code = spare[++n] || `x${n}`;
  m.content[code] = {text: ""};
  changed(true);
}

// Rules: a condition, {all: [...]}, {any: [...]} or a list (all of them).
function rulesEditor(m, p) {
  if (m.rules === undefined) m.rules = [];
  const box = h("fieldset", {"data-path": p("rules").join(".")}, h("legend", {text: "Rules"}),
    h("p", {class: "muted", text: "The message shows when these hold (none: on every page)."}));
  if (!Array.isArray(m.rules)) m.rules = [m.rules];   // a single condition or group is a list of one
  box.append(group(m.rules, p("rules"), "all", null, 0));
  return box;
}

function group(items, path, kind, remove, depth) {
  const label = kind === "any" ? "Any of these (OR)" : "All of these (AND)";
  const box = h("div", {class: `group depth-${depth}`, role: "group", "aria-label": `${label}, level ${depth + 1}`},
    h("p", {class: "group-title", text: label}));
  items.forEach((item, i) => {
    const here = [...path, i];
    const drop = () => { items.splice(i, 1); changed(true); };
    if (item && typeof item === "object" && (Array.isArray(item.all) || Array.isArray(item.any))) {
      const k = Array.isArray(item.any) ? "any" : "all";
      box.append(group(item[k], [...here, k], k, drop, depth + 1));
    } else {
      box.append(condition(item, items, i, here, drop));
    }
  });
  box.append(h("div", {class: "inline"},
    h("button", {type: "button", text: "Add rule", onclick: () => {
      items.push({rule: "time_on_page", op: "greater", value: 10}); changed(true);
      const rows = document.querySelectorAll(`[data-path="${CSS.escape([...path, items.length - 1].join("."))}"] select`);
      if (rows[0]) rows[0].focus();
    }}),
    h("button", {type: "button", text: "Add AND group", onclick: () => { items.push({all: []}); changed(true); }}),
    h("button", {type: "button", text: "Add OR group", onclick: () => { items.push({any: []}); changed(true); }}),
    remove ? h("button", {type: "button", text: "Remove group", onclick: remove}) : null));
  return box;
}

function ruleOf(id) {
  return S.catalog.rules.find((r) => r.id === id);
}

function condition(c, items, i, path, drop) {
  if (!c || typeof c !== "object") c = items[i] = {rule: "time_on_page", op: "greater", value: 10};
  const rule = ruleOf(c.rule);
  const row = h("div", {class: "condition inline", role: "group", "aria-label": `Rule ${i + 1}`, "data-path": path.join(".")});
  const ruleSelect = h("select", {onchange: (e) => {
    const r = ruleOf(e.target.value);
    c.rule = r.id;
    if (!r.ops.includes(c.op)) c.op = r.ops[0];
    c.value = defaultValue(r, c.op);
    if (c.value === undefined) delete c.value;
    changed(true);
  }});
  for (const [name, ids] of GROUPS) {
    ruleSelect.append(h("optgroup", {label: name}, ids.map((id) => ruleOf(id)).filter(Boolean)
      .map((r) => h("option", {value: r.id, text: r.title}))));
  }
  if (!rule) ruleSelect.append(h("option", {value: c.rule, text: `${c.rule} (unknown)`}));
  ruleSelect.value = c.rule;
  row.append(field("Rule", ruleSelect, [...path, "rule"]));
  const ops = rule ? rule.ops : [c.op];
  row.append(field("Operator", select(ops.map((o) => [o, OPS[o] || o]), c.op, (v) => {
    c.op = v;
    if (S.catalog.no_value_ops.includes(v)) delete c.value;
    else if (c.value === undefined) c.value = defaultValue(rule, v);
    changed(true);
  }), [...path, "op"]));
  if (rule && !S.catalog.no_value_ops.includes(c.op)) row.append(valueInput(rule, c, path));
  row.append(h("button", {type: "button", text: "Remove rule", onclick: drop}));
  return row;
}

function defaultValue(rule, op) {
  if (S.catalog.no_value_ops.includes(op)) return undefined;
  if (rule.value === "seconds" || rule.value === "count") return 1;
  if (rule.value === "bool") return true;
  if (rule.value === "enum") return rule.choices[0];
  if (rule.kind === "country") return "US";
  if (rule.kind === "language") return "en";
  return "";
}

function valueInput(rule, c, path) {
  const vp = [...path, "value"];
  const set = (v) => { c.value = v; changed(); };
  if (rule.value === "seconds" || rule.value === "count") {
    const hint = rule.value === "seconds" ? "seconds" : "a whole number";
    return field(rule.value === "seconds" ? "Value (seconds)" : "Value", h("input", {type: "number", step: "any",
      value: c.value ?? "", oninput: (e) => { const n = e.target.value === "" ? null : Number(e.target.value); set(n); }}), vp, hint);
  }
  if (rule.value === "bool") {
    return field("Value", select([["true", "true"], ["false", "false"]], String(c.value !== false),
      (v) => set(v === "true")), vp);
  }
  if (rule.value === "enum") {
    return field("Value", select(rule.choices.map((x) => [x, x]), c.value, set), vp);
  }
  if (rule.kind === "country" || rule.kind === "language") {
    const options = rule.kind === "country" ? S.catalog.countries : S.catalog.languages;
    const el = h("select", {multiple: true, size: 4, onchange: (e) => {
      const chosen = [...e.target.selectedOptions].map((o) => o.value);
      set(chosen.length === 1 ? chosen[0] : chosen);
    }});
    const current = new Set((Array.isArray(c.value) ? c.value : [c.value]).map((v) => String(v)));
    for (const [code, name] of options) {
      el.append(h("option", {value: code, text: `${name} (${code})`, selected: current.has(code) || current.has(name)}));
    }
    return field("Value", el, vp, "several: hold Ctrl (⌘) while choosing");
  }
  const text = Array.isArray(c.value) ? c.value.join(", ") : (c.value ?? "");
  return field("Value", h("input", {type: rule.kind === "url" ? "text" : "text", value: text, oninput: (e) => {
    const parts = e.target.value.split(",").map((s) => s.trim()).filter(Boolean);
    set(parts.length > 1 ? parts : e.target.value);
  }}), vp, rule.kind === "url" ? "a URL, a path, or * wildcards with “matches”; several: separate with commas"
    : "several: separate with commas");
}

// -- simulate -----------------------------------------------------------------------------
const JOURNEY = {visitor: {language: "en-US", country: "", platform: "desktop"}, team: "", steps: [
  {t: 0, type: "page_view", url: "https://example.com/", referrer: ""},
], until: 120};

function renderSimulate() {
  const j = JOURNEY;
  const steps = h("ol", {class: "journey"}, j.steps.map((s, i) => h("li", {role: "group", "aria-label": `Step ${i + 1}`},
    h("div", {class: "inline"},
      field("At (seconds)", h("input", {type: "number", min: 0, step: "any", value: s.t, oninput: (e) => { s.t = Number(e.target.value) || 0; }})),
      field("Step", select(STEP_TYPES, s.type, (v) => { s.type = v; renderSim(); })),
      s.type === "page_view" ? field("Page URL", h("input", {type: "text", value: s.url || "", oninput: (e) => { s.url = e.target.value; }})) : null,
      s.type === "page_view" ? field("Referrer", h("input", {type: "text", value: s.referrer || "", oninput: (e) => { s.referrer = e.target.value; }})) : null,
      s.type === "page_view" ? UTM.map(([key, label]) => field(label, h("input", {type: "text", value: s[key] || "", size: 10,
        oninput: (e) => { s[key] = e.target.value.trim(); }}))) : null,
      s.type === "dismiss" ? field("Dismissed message", h("input", {type: "text", value: s.message || "", oninput: (e) => { s.message = e.target.value; }})) : null,
      s.type === "rating" ? field("Rating", select(S.catalog.ratings.map((r) => [r, r]), s.value || (s.value = S.catalog.ratings[0]),
        (v) => { s.value = v; })) : null,
      s.type === "team" ? field("Team now", select([["online", "online"], ["offline", "offline"]], s.value || (s.value = "offline"),
        (v) => { s.value = v; })) : null,
      h("button", {type: "button", text: "Remove step", onclick: () => { j.steps.splice(i, 1); renderSim(); }})))));
  return h("section", {id: "simulate", class: "card", "aria-labelledby": "sim-title"},
    h("h2", {id: "sim-title", text: "Simulate a visitor journey"}),
    h("div", {class: "inline"},
      field("Visitor language", h("input", {type: "text", value: j.visitor.language, oninput: (e) => { j.visitor.language = e.target.value; }})),
      field("Visitor country", select([["", "unknown"], ...S.catalog.countries], j.visitor.country, (v) => { j.visitor.country = v; })),
      field("Visitor city", h("input", {type: "text", value: j.visitor.city || "", size: 12, oninput: (e) => { j.visitor.city = e.target.value; }})),
      field("User agent", h("input", {type: "text", value: j.visitor.user_agent || "", oninput: (e) => { j.visitor.user_agent = e.target.value; }}),
        null, "the browser's User-Agent text (user agent and platform rules)"),
      field("Earlier visits", h("input", {type: "number", min: 0, step: 1, value: j.visitor.earlier || 0, size: 4,
        oninput: (e) => { j.visitor.earlier = Math.max(0, Math.floor(Number(e.target.value) || 0)); }}),
        null, "0: a first visit; more: a returning visitor"),
      field("Visitor platform", select([["desktop", "desktop"], ["mobile", "mobile"]], j.visitor.platform, (v) => { j.visitor.platform = v; })),
      field("Team", select([["", "unknown (business hours)"], ["online", "online"], ["offline", "offline"]], j.team, (v) => { j.team = v; })),
      checkbox("Logged-in user", !!j.visitor.authenticated, (v) => { j.visitor.authenticated = v; }, ["journey", "authenticated"])),
    steps,
    h("div", {class: "inline"},
      h("button", {type: "button", text: "Add step", onclick: () => {
        const last = j.steps[j.steps.length - 1];
        j.steps.push({t: (last ? last.t : 0) + 10, type: "page_view", url: "https://example.com/", referrer: ""}); renderSim();
      }}),
      field("Journey ends at (seconds)", h("input", {type: "number", min: 0, value: j.until, oninput: (e) => { j.until = Number(e.target.value) || 0; }})),
      h("button", {type: "button", class: "primary", text: "Simulate", onclick: simulate})),
    h("pre", {id: "timeline", tabindex: 0, "aria-label": "Simulation timeline", "aria-live": "polite"}));
}

// A page view's URL with the UTM fields of its step in its query.
function withUtm(step) {
  const pairs = UTM.filter(([key]) => step[key]).map(([key]) => [key, step[key]]);
  if (!pairs.length) return step.url;
  try {
    const url = new URL(step.url);
    for (const [key, value] of pairs) url.searchParams.set(key, value);
    return url.href;
  } catch (error) {   // not an absolute URL: the simulation reports it as it is
    return step.url + (step.url.includes("?") ? "&" : "?") + new URLSearchParams(pairs).toString();
  }
}

// A returning visitor: the stored record of `earlier` visits, the last one a day before the journey.
function returningRecord(earlier) {
  const day = 86400000;
  return {visits: earlier, visit_start: -day, last_seen: -day + 600000, page_views: 1};
}

async function simulate() {
  const j = JOURNEY;
  const visitor = {language: j.visitor.language || undefined, platform: j.visitor.platform};
  if (j.visitor.country) visitor.country = j.visitor.country;
  if (j.visitor.city) visitor.city = j.visitor.city;
  if (j.visitor.user_agent) visitor.user_agent = j.visitor.user_agent;
  if (j.visitor.authenticated) visitor.authenticated = true;
  const journey = {visitor, events: j.steps.map((s) => {
    const e = {t: s.t, type: s.type};
    if (s.type === "page_view") Object.assign(e, {url: withUtm(s), referrer: s.referrer || ""});
    if (s.type === "rating" || s.type === "team") e.value = s.value;
    if (s.type === "dismiss") e.message = s.message;
    if (s.type === "visitor_message" || s.type === "agent_message") e.text = "hello";
    return e;
  }), until: j.until};
  if (j.team) journey.team = j.team;
  if (j.visitor.earlier) journey.record = returningRecord(j.visitor.earlier);
  const out = document.getElementById("timeline");
  out.textContent = "Simulating…";
  let data;
  if (S.python) {
    data = JSON.parse(await S.python.sync.simulate(JSON.stringify(S.doc), JSON.stringify(journey)));
  } else {
    data = (await api("simulate", {document: S.doc, journey})).data;
  }
  out.textContent = data.error ? `Cannot simulate: ${data.error}` : data.timeline;
}

// -- save and publish -----------------------------------------------------------------------
async function save() {
  const {ok, status: code, data} = await api("save", {document: S.doc, etag: S.etag, origins: S.origins});
  if (!ok) {
    status(code === 409 ? `Not saved: ${data.error}` : `Not saved: ${data.error}`, "error");
    return false;
  }
  S.etag = data.etag;
  S.origins = (S.doc.messages || []).map((_, i) => i);
  setDirty(false);
  const errors = data.problems.filter((p) => !p.warning).length;
  status(errors ? `Saved as a draft (${errors} problem(s) to fix before publishing)` : `Saved ${S.file}`);
  return true;
}

async function publish() {
  if (S.dirty && !(await save())) return;
  const {ok, data} = await api("publish/preview", {});
  if (!ok) { status(`Cannot publish: ${data.error}`, "error"); return; }
  const c = data.changes;
  const line = (label, ids) => h("li", {text: `${label}: ${ids.length ? ids.join(", ") : "none"}`});
  const body = [h("ul", {class: "changes"}, line("Added", c.added), line("Removed", c.removed),
    line("Changed", c.changed), line("Paused", c.paused), line("Activated", c.activated))];
  if (data.problems.length) {
    body.push(h("p", {class: "problem", text: `Publishing is refused: ${data.problems.length} problem(s) to fix first.`}));
    body.push(h("ul", {}, data.problems.map((p) => h("li", {text: `${p.where}: ${p.message}`}))));
    dialog("Publish", body, [["Close", null]]);
    return;
  }
  body.push(...rolloutControls(data));
  const share = () => Number(document.getElementById("rollout-percent").value);
  // over a rollout in progress, the same messages keep their version (widening): the server says which
  const label = data.published && data.published.rollout ? "Publish" : `Publish version ${data.version}`;
  dialog(`${label}?`, body, [["Cancel", null], [label, async () => {
    const percent = share();
    if (!(percent > 0 && percent <= 100)) { status("Not published: the share of visitors is a percentage above 0, at most 100", "error"); return; }
    const r = await api("publish", {etag: data.etag, rollout: percent});
    document.getElementById("dialog").close();
    const staged = r.data.rollout;
    const sent = r.data.uploaded ? `; uploaded to the endpoint (${r.data.uploaded.url})`
      : r.data.upload_error ? `; not uploaded to the endpoint: ${r.data.upload_error}` : "";
    if (r.ok) status(`Published version ${r.data.version}` + (staged ? ` to ${staged.percent} % of visitors (version ${staged.previous} to the others)` : "") +
      ` to ${r.data.bundle}${sent}`, r.data.upload_error ? "error" : "ok");
    else status(`Not published: ${r.data.error} ${(r.data.problems || []).join("; ")}`, "error");
  }, true]]);
}

// A staged rollout (docs/publishing.md, `proactive sign --rollout`): the new
// version to a share of visitors, the published one to the others.
function rolloutControls(data) {
  const now = data.published;
  const staged = now && now.rollout;
  const input = h("input", {type: "number", id: "rollout-percent", min: 1, max: 100, step: "any", value: 100,
    disabled: !now});
  return [
    h("p", {class: "muted", text: !now ? "The first version goes to every visitor." : staged
      ? `Now: version ${now.version} to ${staged.percent} % of visitors, version ${staged.previous} to the others.`
      : `Now: version ${now.version} to every visitor.`}),
    field("Roll out to (% of visitors)", input, null,
      "100: everyone. Less: a staged rollout — the new version to that share, the published one to the others; publish again with more to widen it"),
  ];
}

// -- start -----------------------------------------------------------------------------------
function load(data) {
  S.etag = data.etag;
  S.malformed = data.malformed;
  S.rawText = data.text;
  S.problems = data.problems;
  S.doc = data.document;
  S.origins = data.exists && S.doc ? (S.doc.messages || []).map((_, i) => i) : [];
  if (S.doc && !Array.isArray(S.doc.messages)) S.doc.messages = [];
  render();
}

async function start() {
  const {ok, data} = await api("state");
  if (!ok) { status(`Cannot load: ${data.error}`, "error"); return; }
  S.catalog = data.catalog;
  S.file = data.file;
  S.bundle = data.bundle;
  S.endpoint = data.endpoint;
  load(data);
  document.getElementById("file").textContent = `${S.file}${data.exists ? "" : " (new: created on the first save)"} → publishes ${S.bundle}` +
    (data.published ? ` (now version ${data.published})` : "");
  document.getElementById("save").addEventListener("click", save);
  document.getElementById("publish").addEventListener("click", publish);
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); if (S.dirty) save(); }
  });
  window.addEventListener("beforeunload", (e) => { if (S.dirty) e.preventDefault(); });
  status(S.malformed ? "The file cannot be read" : "Ready");
  if (S.endpoint) loadStats(api, () => { if (S.editing === null && !S.malformed) render(); });
  startPython();
}

window.__studio = S;   // the studio's state, for bench/studio.py
start();
