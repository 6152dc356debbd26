// One auto message's content as DOM, for a card and for the conversation.
// Content arrives resolved by the engine (widget/runtime/content.py): markup
// already parsed into typed nodes ["t", text] ["b", [...]] ["i", [...]]
// ["a", url, [...]] ["br"], placeholders already filled as plain text.

import { el, icon, link, renderNodes, safeHref } from "./dom.mjs";

function initials(name) {
  const parts = String(name || "").trim().split(/\s+/).filter(Boolean);
  return (parts.slice(0, 2).map((p) => p[0]).join("") || "?").toUpperCase();
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

// `onButton(messageId, button)`: a button was clicked (url buttons are real
// links: the browser opens them, in a new tab).
function buttons(content, messageId, onButton) {
  const row = el("div", "buttons");
  content.buttons.forEach((b, i) => {
    const cls = i === 0 ? "btn primary" : "btn";
    let node;
    if (b.action === "url") {
      const href = safeHref(b.url);
      if (!href) return;
      node = link(href, cls, b.label);
    } else {
      node = el("button", cls, b.label);
      node.type = "button";
    }
    node.dataset.button = String(b.id);
    node.dataset.action = b.action;
    node.addEventListener("click", () => onButton(messageId, b));
    row.appendChild(node);
  });
  return row;
}

// Text, image, links, attachments and buttons, as a fragment.
export function messageBody(content, messageId, onButton) {
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
  if (content.buttons && content.buttons.length) frag.appendChild(buttons(content, messageId, onButton));
  return frag;
}
