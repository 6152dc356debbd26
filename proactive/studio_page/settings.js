// The file-wide settings under the list (docs/authoring.md, *Top level* and
// *Appearance*): the widgets' look, the team's business hours (time zone, hours per day or range of days,
// holidays) and the delivery defaults (minimum gap between invitations, the
// dismissal cooldown). Each edits the document's JSON in place and reports
// the change like every other field; the validator's problems land under
// their fields (`team.hours.mon-fri`, `delivery.min_gap`, …).

import { changed, field, h, select, setNumber } from "./studio.js";

const DAYS_HINT = "mon … sun, a range (mon-fri), a list (sat,sun), daily, weekdays or weekend";
const HOURS_HINT = "09:00-18:00, several ranges (09:00-12:00, 13:00-17:30), 22:00-02:00 or closed";

export function siteSettings(doc) {
  return h("section", {id: "site-settings", class: "card", "aria-labelledby": "settings-title"},
    h("h2", {id: "settings-title", text: "Site settings"}),
    widgetsEditor(doc), businessHours(doc), deliveryDefaults(doc));
}

// widgets: [{id, color, position, launcher, title}]; no list means one widget, `main`.
function widgetsEditor(doc) {
  const widgets = Array.isArray(doc.widgets) ? doc.widgets : [];
  const own = () => (doc.widgets = Array.isArray(doc.widgets) ? doc.widgets : widgets);
  const box = h("fieldset", {class: "items", "data-path": "widgets"}, h("legend", {text: "Widgets"}));
  if (!widgets.length) box.append(h("p", {class: "muted", text: "One widget, “main”, in the default look."}));
  widgets.forEach((w, n) => {
    if (!w || typeof w !== "object") return;
    const here = ["widgets", n];
    const setText = (key) => (e) => { const v = e.target.value.trim(); if (v) w[key] = v; else delete w[key]; changed(); };
    box.append(h("div", {class: "inline", role: "group", "aria-label": `Widget ${n + 1}`},
      field("Widget ID", h("input", {type: "text", value: w.id ?? "", size: 10, autocomplete: "off",
        onchange: (e) => { w.id = e.target.value.trim(); changed(true); }}), [...here, "id"]),
      field("Colour", h("input", {type: "color", value: /^#[0-9a-f]{6}$/i.test(w.color || "") ? w.color : "#0f766e",
        oninput: (e) => { w.color = e.target.value; changed(); }}), [...here, "color"]),
      field("Position", select([["right", "right"], ["left", "left"]], w.position || "right",
        (v) => { if (v === "right") delete w.position; else w.position = v; changed(); }), [...here, "position"]),
      field("Launcher", select([["bubble", "a chat bubble"], ["none", "none (your own button)"]], w.launcher || "bubble",
        (v) => { if (v === "bubble") delete w.launcher; else w.launcher = v; changed(); }), [...here, "launcher"]),
      field("Chat title", h("input", {type: "text", value: w.title ?? "", oninput: setText("title")}), [...here, "title"]),
      widgets.length > 1 ? h("button", {type: "button", text: `Remove widget ${w.id || n + 1}`,
        onclick: () => { widgets.splice(n, 1); changed(true); }}) : null));
  });
  box.append(h("button", {type: "button", text: "Add widget", onclick: () => {
    const ids = new Set(widgets.map((w) => w && w.id));
    const list = own();
    if (!list.length) list.push({id: "main"});
    let k = list.length + 1;
    while (ids.has(`widget-${k}`)) k += 1;
    if (ids.size || list.length > 1) list.push({id: `widget-${k}`});
    changed(true);
  }}));
  return box;
}

function objectAt(doc, key) {
  return doc[key] && typeof doc[key] === "object" && !Array.isArray(doc[key]) ? doc[key] : null;
}

// Drops an emptied block so the file does not grow `team: {}`.
function tidy(doc, key) {
  const block = objectAt(doc, key);
  if (block && !Object.keys(block).length) delete doc[key];
}

function businessHours(doc) {
  const team = () => objectAt(doc, "team") || (doc.team = {});
  const current = objectAt(doc, "team") || {};
  const box = h("fieldset", {"data-path": "team"}, h("legend", {text: "Business hours"}),
    h("p", {class: "muted", text: "Used for “Send when team” while live presence is unknown (no endpoint, or before it answers)."}),
    field("Time zone", h("input", {type: "text", value: current.timezone ?? "", placeholder: "Europe/Berlin",
      autocomplete: "off", oninput: (e) => {
        const v = e.target.value.trim();
        if (v) team().timezone = v; else { delete team().timezone; tidy(doc, "team"); }
        changed();
      }}), ["team", "timezone"], "an IANA name (Europe/Berlin), UTC or an offset (UTC+02:00)"));
  // hours: kept as an ordered list of [days, hours] while editing (a later key overrides an earlier one)
  const hours = current.hours && typeof current.hours === "object" && !Array.isArray(current.hours)
    ? Object.entries(current.hours) : [];
  const writeHours = () => {
    const entries = hours.filter(([days]) => days !== "");
    if (entries.length) team().hours = Object.fromEntries(entries);
    else if (objectAt(doc, "team")) { delete doc.team.hours; tidy(doc, "team"); }
  };
  const list = h("fieldset", {class: "items", "data-path": "team.hours"}, h("legend", {text: "Opening hours"}));
  hours.forEach((entry, n) => {
    const here = ["team", "hours", entry[0]];
    list.append(h("div", {class: "inline", role: "group", "aria-label": `Opening hours ${n + 1}`},
      field("Days", h("input", {type: "text", value: entry[0], size: 10, onchange: (e) => {
        entry[0] = e.target.value.trim().toLowerCase(); writeHours(); changed(true);
      }}), here, DAYS_HINT),
      field("Hours", h("input", {type: "text", value: entry[1] ?? "", oninput: (e) => {
        entry[1] = e.target.value; writeHours(); changed();
      }}), here, HOURS_HINT),
      h("button", {type: "button", text: "Remove opening hours", onclick: () => {
        hours.splice(n, 1); writeHours(); changed(true);
      }})));
  });
  list.append(h("button", {type: "button", text: "Add opening hours", onclick: () => {
    const used = new Set(hours.map(([days]) => days));
    hours.push([used.has("mon-fri") ? "sat" : "mon-fri", "09:00-18:00"]);
    writeHours(); changed(true);
  }}));
  const closed = Array.isArray(current.closed_on) ? current.closed_on.join(", ") : "";
  box.append(list, field("Closed on", h("input", {type: "text", value: closed, placeholder: "2026-12-24, 2026-12-25",
    oninput: (e) => {
      const days = e.target.value.split(/[,\s]+/).filter(Boolean);
      if (days.length) team().closed_on = days;
      else if (objectAt(doc, "team")) { delete doc.team.closed_on; tidy(doc, "team"); }
      changed();
    }}), ["team", "closed_on"], "holidays, as dates (YYYY-MM-DD), separated by commas"));
  return box;
}

function deliveryDefaults(doc) {
  const current = objectAt(doc, "delivery") || {};
  const number = (label, key, hint) => field(label, h("input", {type: "number", min: 0, step: 1,
    value: current[key] ?? "", oninput: (e) => {
      const block = objectAt(doc, "delivery") || (doc.delivery = {});
      setNumber(block, key, e.target.value);
      tidy(doc, "delivery");
      changed();
    }}), ["delivery", key], hint);
  return h("fieldset", {"data-path": "delivery"}, h("legend", {text: "Delivery, for every message"}),
    number("Minimum gap between invitations (seconds)", "min_gap",
      "after one invitation shows, the next waits this long (default 0)"),
    number("After a dismissal, stay away for (seconds)", "dismissed_for",
      "a message's own setting wins; default 86400, a day; 0: it may show again on the next page"));
}

// The image of a card: its URL, and — once there is one — its description
// for screen readers and its size (keeps the page from jumping as it loads).
export function imageDetails(block, base) {
  const image = block.image;
  if (!image) return null;
  const path = [...base, "image"];
  const set = (key, value) => {
    const obj = typeof block.image === "object" && block.image ? block.image : (block.image = {src: block.image});
    if (value === "" || value === undefined) delete obj[key];
    else obj[key] = value;
    const keys = Object.keys(obj);
    if (keys.length === 1 && keys[0] === "src") block.image = obj.src;   // back to the short form
    changed();
  };
  const of = (key) => (typeof image === "object" ? image[key] ?? "" : "");
  const size = (label, key) => field(label, h("input", {type: "number", min: 1, step: 1, value: of(key),
    oninput: (e) => { const n = Number(e.target.value); set(key, e.target.value === "" ? "" : Number.isFinite(n) ? n : e.target.value); }}),
  [...path, key]);
  return h("div", {class: "inline", role: "group", "aria-label": "Image details"},
    field("Image description (alt text)", h("input", {type: "text", value: of("alt"),
      oninput: (e) => set("alt", e.target.value)}), [...path, "alt"], "what the image shows, for screen readers"),
    size("Image width (px)", "width"), size("Image height (px)", "height"));
}
