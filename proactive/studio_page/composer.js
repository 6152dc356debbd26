// The composer's parts beyond the text and buttons (docs/authoring.md,
// *Content* and *Delivery settings*): the sender's avatar, links,
// attachments, and the caps and dismissal cooldown of a message. Each edits
// the message's JSON in place and reports the change like every other field.

import { changed, field, h, setNumber } from "./studio.js";

// A sender is a name, or {name, avatar}: the avatar's URL turns the name into the mapping.
export function senderAvatar(block, base) {
  const sender = block.sender;
  const avatar = sender && typeof sender === "object" ? sender.avatar || "" : "";
  return field("Sender avatar URL", h("input", {type: "url", value: avatar, oninput: (e) => {
    const v = e.target.value.trim();
    const name = typeof block.sender === "string" ? block.sender : (block.sender && block.sender.name) || "";
    if (v) block.sender = {name, avatar: v};
    else if (name) block.sender = name;
    else delete block.sender;
    changed();
  }}), [...base, "sender", "avatar"], "without one, the sender's initials");
}

// A list of small records ({label, url} links, {name, url, size} attachments):
// one row per item, "Add …" and "Remove …" buttons.
function itemList({block, base, key, title, noun, fresh, inputs}) {
  const items = Array.isArray(block[key]) ? block[key] : [];
  const box = h("fieldset", {class: "items", "data-path": [...base, key].join(".")}, h("legend", {text: title}));
  items.forEach((item, n) => {
    const here = [...base, key, n];
    const row = typeof item === "string"   // a bare URL (its own label), kept as written
      ? field(`${noun} URL`, h("input", {type: "text", value: item, oninput: (e) => { items[n] = e.target.value; changed(); }}), here)
      : item && typeof item === "object" ? inputs(item, here) : null;
    if (!row) return;
    box.append(h("div", {class: "inline", role: "group", "aria-label": `${noun} ${n + 1}`},
      row,
      h("button", {type: "button", text: `Remove ${noun.toLowerCase()}`, onclick: () => {
        items.splice(n, 1);
        if (!items.length) delete block[key];
        changed(true);
      }})));
  });
  box.append(h("button", {type: "button", text: `Add ${noun.toLowerCase()}`, onclick: () => {
    (block[key] = items).push(fresh());
    changed(true);
  }}));
  return box;
}

function text(label, item, prop, path, attrs = {}) {
  return field(label, h("input", {type: "text", value: item[prop] ?? "", ...attrs,
    oninput: (e) => { item[prop] = e.target.value; changed(); }}), [...path, prop]);
}

export function linkList(block, base) {
  return itemList({block, base, key: "links", title: "Links", noun: "Link",
    fresh: () => ({label: "Read the FAQ", url: "https://"}),
    inputs: (item, here) => [text("Link label", item, "label", here), text("Link URL", item, "url", here)]});
}

export function attachmentList(block, base) {
  return itemList({block, base, key: "attachments", title: "Attachments", noun: "Attachment",
    fresh: () => ({name: "", url: "https://"}),
    inputs: (item, here) => [
      text("File name", item, "name", here, {placeholder: "Price list.pdf"}),
      text("File URL", item, "url", here),
      field("Size (bytes)", h("input", {type: "number", min: 0, step: 1, value: item.size ?? "",
        oninput: (e) => { setNumber(item, "size", e.target.value); changed(); }}), [...here, "size"],
      "optional; shown as “245 kB”"),
    ]});
}

// caps {per_visit, per_day, lifetime} and dismissed_for, under Delivery.
export function capsFields(m, p) {
  const caps = m.caps && typeof m.caps === "object" ? m.caps : {};
  const cap = (label, key, hint) => field(label, h("input", {type: "number", min: 1, step: 1, value: caps[key] ?? "",
    oninput: (e) => {
      const holder = m.caps && typeof m.caps === "object" ? m.caps : (m.caps = {});
      setNumber(holder, key, e.target.value);
      if (!Object.keys(holder).length) delete m.caps;
      changed();
    }}), p("caps", key), hint);
  return h("div", {class: "inline", role: "group", "aria-label": "Caps"},
    cap("Shows per visit", "per_visit", "empty: no limit"),
    cap("Shows per day", "per_day", "a rolling 24 hours"),
    cap("Shows ever", "lifetime", "for this visitor, across visits"),
    field("Stays away after a dismissal (seconds)", h("input", {type: "number", min: 0, step: 1,
      value: m.dismissed_for ?? "", oninput: (e) => { setNumber(m, "dismissed_for", e.target.value); changed(); }}),
    p("dismissed_for"), "empty: the file's default (a day); 0: may show again on the next page"));
}
