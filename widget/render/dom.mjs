// DOM building blocks for the renderer. Safety: nothing is ever parsed as
// HTML; text goes in with textContent, and every URL is checked again here
// with the browser's own URL parser before it becomes an href or a src.

const ICONS = {
  chat: ["0 0 24 24", "M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1-.2 1.5-.9 2.9-2 3.9 2.1.1 4.1-.6 5.6-1.8 1 .3 2.1.4 3.3.4 5.5 0 10-3.8 10-8.5S17.5 3 12 3z"],
  close: ["0 0 14 14", "M2 2l10 10M12 2L2 12"],
  send: ["0 0 24 24", "M3.4 20.4l17.5-7.5c.8-.4.8-1.5 0-1.8L3.4 3.6c-.7-.3-1.4.3-1.2 1l1.9 6.4 8.4 1-8.4 1-1.9 6.4c-.2.7.5 1.3 1.2 1z"],
  file: ["0 0 24 24", "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5L13 3.5z"],
};
const SAFE_LINK = new Set(["http:", "https:", "mailto:", "tel:"]);
const SAFE_IMAGE = new Set(["http:", "https:"]);
const DATA_IMAGE = /^data:image\/(png|gif|jpeg|webp|avif);base64,[A-Za-z0-9+/=\s]+$/i;
const EDITABLE = /^(INPUT|TEXTAREA|SELECT)$/;

/** The URL as an absolute href if the browser would open it as an allowed
 * scheme; null otherwise (javascript:, data:, vbscript:, blob:, …). */
export function safeHref(raw, { image = false } = {}) {
  if (typeof raw !== "string" || !raw.trim()) return null;
  let url;
  try {
    url = new URL(raw.trim(), document.baseURI);
  } catch {
    return null;
  }
  if (image) {
    if (SAFE_IMAGE.has(url.protocol)) return url.href;
    return url.protocol === "data:" && DATA_IMAGE.test(raw.trim()) ? raw.trim() : null;
  }
  return SAFE_LINK.has(url.protocol) ? url.href : null;
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function icon(name) {
  const [box, d] = ICONS[name];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", box);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", d);
  svg.appendChild(path);
  return svg;
}

export function link(href, className, text) {
  const a = el("a", className, text);
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  return a;
}

/** Typed nodes → DOM (text nodes, <strong>, <em>, <a>, <br>). Unknown
 * node kinds and refused URLs degrade to their text. */
export function renderNodes(nodes, parent, depth = 0) {
  if (!Array.isArray(nodes) || depth > 8) return parent;
  for (const n of nodes) {
    if (!Array.isArray(n)) continue;
    const kind = n[0];
    if (kind === "t") parent.appendChild(document.createTextNode(String(n[1] ?? "")));
    else if (kind === "br") parent.appendChild(document.createElement("br"));
    else if (kind === "b" || kind === "i") renderNodes(n[1], parent.appendChild(document.createElement(kind === "b" ? "strong" : "em")), depth + 1);
    else if (kind === "a") {
      const href = safeHref(n[1]);
      renderNodes(n[2], href ? parent.appendChild(link(href)) : parent, depth + 1);
    }
  }
  return parent;
}

// Whether the visitor is typing in one of the page's own fields (then the
// widget neither takes focus nor reads Esc).
export function isTypingInPage() {
  const a = document.activeElement;
  return !!a && (EDITABLE.test(a.tagName) || a.isContentEditable) && a.tagName !== "PROACTIVE-WIDGET";
}
