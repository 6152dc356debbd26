// One auto message's content as DOM, for a card and for the conversation.
// Content arrives resolved by the engine (widget/runtime/content.py): markup
// already parsed into typed nodes ["t", text] ["b", [...]] ["i", [...]]
// ["a", url, [...]] ["br"], placeholders already filled as plain text.

import { el, icon, link, renderNodes, safeHref } from "./dom.mjs";

// A person's initials from a sender's name: the name before "from", "at",
// "|", "-" or "," ("Maya from the demo team" → M, "Ana Lima | Acme" → AL),
// its first and last capitalised words.
export function initials(name) {
  const person = String(name || "").trim().split(/\s+(?:from|at|of|von|de|chez|@)\s+|\s*[|,–—]\s*|\s+-\s+/i)[0];
  const words = person.split(/\s+/).filter(Boolean);
  const capitalised = words.filter((w) => /^\p{Lu}/u.test(w));
  const picked = capitalised.length ? capitalised : words;
  const letters = picked.length > 1 ? [picked[0], picked[picked.length - 1]] : picked;
  return (letters.map((w) => [...w][0]).join("") || "?").toUpperCase();
}

// The sender's avatar (or initials), name and `role` line.
export function senderRow(sender, role) {
  const row = el("div", "sender");
  const avatarUrl = sender.avatar ? safeHref(sender.avatar, { image: true }) : null;
  let avatar;
  if (avatarUrl) {
    avatar = el("img", "avatar");
    avatar.alt = "";
    avatar.src = avatarUrl;
    avatar.referrerPolicy = "no-referrer";
  } else {
    avatar = el("span", "avatar", initials(sender.name));
    avatar.setAttribute("aria-hidden", "true");
  }
  const who = el("div");
  who.append(el("div", "name", sender.name), el("div", "role", role));
  row.append(avatar, who);
  return row;
}

function image(content) {
  const img = content.image && safeHref(content.image.src, { image: true });
  if (!img) return null;
  const node = el("img", "media");
  node.src = img;
  node.alt = typeof content.image.alt === "string" ? content.image.alt : "";
  node.referrerPolicy = "no-referrer";
  node.loading = "lazy";
  for (const dim of ["width", "height"]) if (Number.isInteger(content.image[dim])) node[dim] = content.image[dim];
  return node;
}

function files(content) {
  const items = (content.attachments || []).map((f) => [safeHref(f.url), f]).filter(([h]) => h);
  if (!items.length) return null;
  const list = el("ul", "files");
  for (const [href, f] of items) {
    const a = link(href, "file");
    a.setAttribute("download", "");
    a.append(icon("file"), el("span", "fname", f.name));
    if (f.size_text) a.appendChild(el("span", "fsize", f.size_text));
    a.setAttribute("aria-label", f.size_text ? `${f.name}, ${f.size_text}` : String(f.name));
    list.appendChild(el("li")).appendChild(a);
  }
  return list;
}

// Button actions that need a conversation (an endpoint).
const CONVERSATION_ACTIONS = new Set(["chat", "reply"]);

// `onButton(messageId, button)`: a button was clicked (url buttons are real
// links: the browser opens them, in a new tab). Without a conversation
// (`chat` false) chat and reply buttons are left out; once a quick reply was
// used (`answered`), reply buttons are disabled.
function buttons(content, messageId, onButton, { chat = true, answered = false } = {}) {
  const row = el("div", "buttons");
  content.buttons.filter((b) => chat || !CONVERSATION_ACTIONS.has(b.action)).forEach((b, i) => {
    const cls = i === 0 ? "btn primary" : "btn";
    let node;
    if (b.action === "url") {
      const href = safeHref(b.url);
      if (!href) return;
      node = link(href, cls, b.label);
    } else {
      node = el("button", cls, b.label);
      node.type = "button";
      node.disabled = answered && b.action === "reply";
    }
    node.dataset.button = String(b.id);
    node.dataset.action = b.action;
    node.addEventListener("click", () => onButton(messageId, b));
    row.appendChild(node);
  });
  return row;
}

// Text, image, links, attachments and buttons, as a fragment. `options`:
// {chat, answered} (buttons above).
export function messageBody(content, messageId, onButton, options = {}) {
  const frag = document.createDocumentFragment();
  const text = renderNodes(content.body, el("div", "text"));
  text.dir = "auto"; // right-to-left languages read right
  if (!content.body && typeof content.text === "string") text.textContent = content.text;
  frag.appendChild(text);
  const media = image(content);
  if (media) frag.appendChild(media);
  const links = (content.links || []).map((l) => [safeHref(l.url), l.label]).filter(([h]) => h);
  if (links.length) {
    const list = el("ul", "links");
    for (const [href, label] of links) list.appendChild(el("li")).appendChild(link(href, "", label));
    frag.appendChild(list);
  }
  const attachments = files(content);
  if (attachments) frag.appendChild(attachments);
  const row = content.buttons && content.buttons.length ? buttons(content, messageId, onButton, options) : null;
  if (row && row.childElementCount) frag.appendChild(row);
  return frag;
}
