// Rendering: the visible widget inside one <proactive-widget> element with an
// open shadow root — message cards, the launcher bubble and the chat panel.
//
// Safety: content arrives resolved by the engine (widget/runtime/content.py):
// markup already parsed into typed nodes ["t", text] ["b", [...]] ["i", [...]]
// ["a", url, [...]] ["br"], placeholders already filled as plain text. This
// file builds DOM nodes from them with createElement + textContent; nothing is
// ever parsed as HTML, and every URL is checked again here with the browser's
// own URL parser before it becomes an href or a src.
// Styles: constructed stylesheets only (strict-CSP friendly); the site owner's
// colour goes in through CSSOM setProperty, never through CSS text.
// Accessibility: a polite live region announces cards; everything is a real
// button or link; Esc dismisses; focus moves only on the visitor's own action.

const CSS = `
/* !important on :host: a shadow root's important rules beat the page's
   (e.g. "* { all: unset !important }"), its normal ones do not. */
:host { all: initial !important; display: block !important; position: fixed !important; z-index: 2147483000 !important;
  bottom: 20px !important; right: 20px !important;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif !important;
  color: #1f2937 !important; --accent: #4f46e5; --on-accent: #ffffff; --accent-ink: #4f46e5; --radius: 16px;
  -webkit-font-smoothing: antialiased !important; }
:host([data-position="left"]) { right: auto !important; left: 20px !important; }
*, *::before, *::after { box-sizing: border-box; }
button, input, textarea { font: inherit; color: inherit; }
a { color: var(--accent-ink); }
.launcher { position: relative; width: 60px; height: 60px; border: 0; border-radius: 50%; padding: 0; cursor: pointer;
  background: var(--accent); color: var(--on-accent); box-shadow: 0 8px 24px rgba(15,23,42,.28);
  display: grid; place-items: center; transition: transform .15s ease, box-shadow .15s ease; }
.launcher:hover { transform: scale(1.06); box-shadow: 0 10px 28px rgba(15,23,42,.34); }
.launcher:focus-visible { outline: 3px solid var(--accent); outline-offset: 3px; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.launcher .badge { position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 6px;
  border-radius: 10px; background: #ef4444; color: #fff; font-size: 12px; font-weight: 700; line-height: 20px;
  text-align: center; border: 2px solid #fff; }
:host([data-launcher="none"]) .launcher { display: none; }
.stack { position: absolute; bottom: 76px; right: 0; display: flex; flex-direction: column; align-items: flex-end;
  gap: 10px; width: 340px; max-width: calc(100vw - 40px); }
:host([data-position="left"]) .stack { right: auto; left: 0; align-items: flex-start; }
:host([data-launcher="none"]) .stack, :host([data-launcher="none"]) .panel { bottom: 0; }
.card { position: relative; width: 100%; background: #fff; border-radius: var(--radius);
  border: 1px solid rgba(15,23,42,.06); box-shadow: 0 12px 32px rgba(15,23,42,.16), 0 2px 6px rgba(15,23,42,.06);
  padding: 14px 16px 14px; animation: pop .22s cubic-bezier(.2,.8,.2,1); overflow: hidden auto;
  max-height: calc(100vh - 120px); overscroll-behavior: contain; }
.card .sender { display: flex; align-items: center; gap: 10px; margin: 0 28px 8px 0; }
.avatar { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; flex: none; background: var(--accent);
  color: var(--on-accent); display: grid; place-items: center; font-weight: 700; font-size: 14px; }
.sender .name { font-weight: 600; font-size: 13px; color: #111827; }
.sender .role { font-size: 12px; color: #6b7280; }
.text { white-space: normal; overflow-wrap: anywhere; font-size: 15px; color: #111827; }
.card .text { margin-right: 22px; }
.card .sender + .text { margin-right: 0; }
.text a { text-decoration: underline; text-underline-offset: 2px; }
.media { display: block; margin-top: 10px; max-width: 100%; max-height: 220px; border-radius: 12px; object-fit: cover; }
.links { margin: 10px 0 0; padding: 0; list-style: none; display: grid; gap: 4px; }
.links a { font-weight: 500; text-decoration: none; }
.links a:hover, .links a:focus-visible { text-decoration: underline; }
.files { margin: 10px 0 0; padding: 0; list-style: none; display: grid; gap: 6px; }
.file { display: flex; align-items: center; gap: 10px; padding: 8px 10px; border-radius: 10px;
  background: #f3f4f6; color: #111827; text-decoration: none; }
.file:hover, .file:focus-visible { background: #e5e7eb; outline: none; }
.file svg { width: 20px; height: 20px; flex: none; fill: var(--accent); }
.file .fname { font-weight: 500; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.file .fsize { margin-left: auto; color: #6b7280; font-size: 12px; flex: none; }
.buttons { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 12px; }
.btn { display: inline-flex; align-items: center; justify-content: center; min-height: 36px; padding: 7px 14px;
  border-radius: 999px; border: 1.5px solid var(--accent); background: #fff; color: var(--accent-ink);
  font-weight: 600; font-size: 14px; cursor: pointer; text-decoration: none; transition: background .12s ease; }
.btn:hover { background: color-mix(in srgb, var(--accent) 10%, #fff); }
.btn.primary { background: var(--accent); color: var(--on-accent); }
.btn.primary:hover { background: color-mix(in srgb, var(--accent) 88%, #000); }
.btn:focus-visible, .close:focus-visible, .send:focus-visible, .links a:focus-visible, .text a:focus-visible {
  outline: 3px solid color-mix(in srgb, var(--accent) 45%, transparent); outline-offset: 2px; }
.reply { display: flex; gap: 8px; margin-top: 12px; padding-top: 12px; border-top: 1px solid #f1f5f9; }
.reply input { flex: 1; min-width: 0; border: 1px solid #e5e7eb; border-radius: 999px; padding: 8px 14px;
  background: #f9fafb; outline: none; }
.reply input:focus { border-color: var(--accent); background: #fff; }
.close { position: absolute; top: 8px; right: 8px; width: 28px; height: 28px; border: 0; border-radius: 50%;
  background: transparent; color: #6b7280; cursor: pointer; padding: 0; display: grid; place-items: center; }
.close:hover { background: #f3f4f6; color: #111827; }
.close svg { width: 14px; height: 14px; stroke: currentColor; stroke-width: 2.2; fill: none; stroke-linecap: round; }
.panel { position: absolute; bottom: 76px; right: 0; width: 370px; height: min(600px, calc(100vh - 120px));
  display: flex; flex-direction: column; background: #fff; border-radius: 20px; overflow: hidden;
  box-shadow: 0 20px 50px rgba(15,23,42,.25), 0 2px 8px rgba(15,23,42,.08); animation: rise .22s cubic-bezier(.2,.8,.2,1); }
:host([data-position="left"]) .panel { right: auto; left: 0; }
.panel[hidden], .stack[hidden], .rate[hidden] { display: none; }
.head { background: var(--accent); color: var(--on-accent); padding: 16px 52px 16px 18px; position: relative; }
.head .title { font-weight: 700; font-size: 17px; }
.head .status { font-size: 13px; opacity: .9; display: flex; align-items: center; gap: 6px; margin-top: 2px; }
.head .dot { width: 8px; height: 8px; border-radius: 50%; background: #9ca3af; }
.head .dot.online { background: #22c55e; }
.head .close { top: 14px; right: 12px; color: inherit; }
.head .close:hover { background: rgba(255,255,255,.18); color: inherit; }
.log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; background: #f8fafc; }
.bubble { max-width: 85%; padding: 10px 14px; border-radius: 18px; overflow-wrap: anywhere; white-space: pre-wrap; }
.bubble.agent { align-self: flex-start; background: #fff; border: 1px solid #eef2f7; border-bottom-left-radius: 6px; }
.bubble.visitor { align-self: flex-end; background: var(--accent); color: var(--on-accent); border-bottom-right-radius: 6px; }
.bubble.auto { white-space: normal; }
.bubble .who { font-size: 12px; font-weight: 600; color: #6b7280; margin-bottom: 2px; }
.bubble.pending { opacity: .65; }
.bubble.failed { background: #fee2e2; color: #991b1b; }
.note { align-self: center; font-size: 12px; color: #6b7280; text-align: center; }
.compose { display: flex; align-items: flex-end; gap: 8px; padding: 10px 12px; border-top: 1px solid #eef2f7; background: #fff; }
.compose textarea { flex: 1; resize: none; border: 1px solid #e5e7eb; border-radius: 20px; padding: 9px 14px;
  max-height: 120px; min-height: 40px; outline: none; background: #f9fafb; line-height: 1.4; }
.compose textarea:focus { border-color: var(--accent); background: #fff; }
.send { width: 40px; height: 40px; border: 0; border-radius: 50%; background: var(--accent); color: var(--on-accent);
  cursor: pointer; display: grid; place-items: center; flex: none; }
.send svg { width: 18px; height: 18px; fill: currentColor; }
.rate { display: flex; gap: 6px; justify-content: center; align-items: center; padding: 6px 0 4px; background: #f8fafc; }
.rate .ask { font-size: 12px; color: #6b7280; margin-right: 2px; }
.rate button { border: 1px solid #e5e7eb; background: #fff; border-radius: 999px; padding: 4px 10px; cursor: pointer; font-size: 12px; }
.rate button[aria-pressed="true"] { border-color: var(--accent); color: var(--accent-ink); font-weight: 600; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@keyframes pop { from { transform: translateY(10px) scale(.98); opacity: 0; } to { transform: none; opacity: 1; } }
@keyframes rise { from { transform: translateY(16px); opacity: 0; } to { transform: none; opacity: 1; } }
@media (max-width: 480px) {
  :host { bottom: 12px !important; right: 12px !important; }
  :host([data-position="left"]) { left: 12px !important; right: auto !important; }
  .launcher { width: 54px; height: 54px; }
  .stack { position: fixed; left: 12px; right: 12px; bottom: 78px; width: auto; max-width: none; }
  :host([data-position="left"]) .stack { left: 12px; right: 12px; }
  .panel, :host([data-position="left"]) .panel { position: fixed; inset: 0; width: auto; height: auto; border-radius: 0; }
  :host([data-open]) .launcher { display: none; }
  .text { font-size: 16px; }
  .compose textarea, .reply input { font-size: 16px; }
}
@media (prefers-reduced-motion: reduce) {
  .card, .panel { animation: none; }
  .launcher, .btn { transition: none; }
  .launcher:hover { transform: none; }
}
`;

const ICONS = {
  chat: ["0 0 24 24", "M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1-.2 1.5-.9 2.9-2 3.9 2.1.1 4.1-.6 5.6-1.8 1 .3 2.1.4 3.3.4 5.5 0 10-3.8 10-8.5S17.5 3 12 3z"],
  close: ["0 0 14 14", "M2 2l10 10M12 2L2 12"],
  send: ["0 0 24 24", "M3.4 20.4l17.5-7.5c.8-.4.8-1.5 0-1.8L3.4 3.6c-.7-.3-1.4.3-1.2 1l1.9 6.4 8.4 1-8.4 1-1.9 6.4c-.2.7.5 1.3 1.2 1z"],
  file: ["0 0 24 24", "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5L13 3.5z"],
};
const SAFE_LINK = new Set(["http:", "https:", "mailto:", "tel:"]);
const SAFE_IMAGE = new Set(["http:", "https:"]);
const DATA_IMAGE = /^data:image\/(png|gif|jpeg|webp|avif);base64,[A-Za-z0-9+/=\s]+$/i;
const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;
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

/** #rgb / #rrggbb → the text colour that reads on it. */
function contrastOn(hex) {
  let h = hex.slice(1);
  if (h.length === 3) h = h.split("").map((c) => c + c).join("");
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return lum > 0.4 ? "#111827" : "#ffffff";
}

// The widget's own words, in the visitor's browser language (en, de, fr, es;
// English otherwise). Message content has its own per-language variants.
const LABELS = {
  en: { title: "Chat with us", team: "Team", messages: "Messages from the team", open: "Open chat", close: "Close chat",
    unread: (n) => `Open chat (${n} new message${n > 1 ? "s" : ""})`, messageFrom: (name) => `Message from ${name}`,
    message: "Message", dismiss: "Dismiss message", replyPlaceholder: "Write a reply…", replyLabel: "Reply to this message",
    chat: "Chat", conversation: "Conversation", writePlaceholder: "Write a message…", writeLabel: "Write a message",
    send: "Send", rateLabel: "Rate this conversation", rateAsk: "How did we do?", great: "Great", average: "Okay", poor: "Poor",
    online: "We're online", offline: "We'll get back to you soon", notDelivered: "Not delivered — please try again later." },
  de: { title: "Chatte mit uns", team: "Team", messages: "Nachrichten vom Team", open: "Chat öffnen", close: "Chat schließen",
    unread: (n) => `Chat öffnen (${n} neue Nachricht${n > 1 ? "en" : ""})`, messageFrom: (name) => `Nachricht von ${name}`,
    message: "Nachricht", dismiss: "Nachricht schließen", replyPlaceholder: "Antwort schreiben…", replyLabel: "Auf diese Nachricht antworten",
    chat: "Chat", conversation: "Unterhaltung", writePlaceholder: "Nachricht schreiben…", writeLabel: "Nachricht schreiben",
    send: "Senden", rateLabel: "Unterhaltung bewerten", rateAsk: "Wie war unser Service?", great: "Super", average: "Okay", poor: "Schlecht",
    online: "Wir sind online", offline: "Wir melden uns bald", notDelivered: "Nicht zugestellt – bitte später erneut versuchen." },
  fr: { title: "Discutez avec nous", team: "Équipe", messages: "Messages de l'équipe", open: "Ouvrir le chat", close: "Fermer le chat",
    unread: (n) => `Ouvrir le chat (${n} nouveau${n > 1 ? "x" : ""} message${n > 1 ? "s" : ""})`, messageFrom: (name) => `Message de ${name}`,
    message: "Message", dismiss: "Fermer le message", replyPlaceholder: "Écrire une réponse…", replyLabel: "Répondre à ce message",
    chat: "Chat", conversation: "Conversation", writePlaceholder: "Écrire un message…", writeLabel: "Écrire un message",
    send: "Envoyer", rateLabel: "Évaluer cette conversation", rateAsk: "Comment était-ce ?", great: "Super", average: "Correct", poor: "Mauvais",
    online: "Nous sommes en ligne", offline: "Nous vous répondrons bientôt", notDelivered: "Non envoyé — veuillez réessayer plus tard." },
  es: { title: "Chatea con nosotros", team: "Equipo", messages: "Mensajes del equipo", open: "Abrir chat", close: "Cerrar chat",
    unread: (n) => `Abrir chat (${n} mensaje${n > 1 ? "s" : ""} nuevo${n > 1 ? "s" : ""})`, messageFrom: (name) => `Mensaje de ${name}`,
    message: "Mensaje", dismiss: "Cerrar mensaje", replyPlaceholder: "Escribe una respuesta…", replyLabel: "Responder a este mensaje",
    chat: "Chat", conversation: "Conversación", writePlaceholder: "Escribe un mensaje…", writeLabel: "Escribe un mensaje",
    send: "Enviar", rateLabel: "Valora esta conversación", rateAsk: "¿Qué tal lo hicimos?", great: "Genial", average: "Normal", poor: "Mal",
    online: "Estamos en línea", offline: "Te responderemos pronto", notDelivered: "No enviado: inténtalo de nuevo más tarde." },
};

export function widgetLabels(languages) {
  for (const tag of languages || []) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (LABELS[primary]) return LABELS[primary];
  }
  return LABELS.en;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function icon(name) {
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

function link(href, className, text) {
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

function initials(name) {
  const parts = String(name || "").trim().split(/\s+/).filter(Boolean);
  return (parts.slice(0, 2).map((p) => p[0]).join("") || "?").toUpperCase();
}

function isTypingInPage() {
  const a = document.activeElement;
  return !!a && (EDITABLE.test(a.tagName) || a.isContentEditable) && a.tagName !== "PROACTIVE-WIDGET";
}

export function createRenderer({
  onDismiss = () => {}, onClick = () => {}, onOpen = () => {}, onClose = () => {},
  onReply = () => {}, onRate = null,
} = {}) {
  let host = null;
  let root = null;
  let accent = null; // the stylesheet holding the site's colours
  let launcher = null;
  let badge = null;
  let stack = null;
  let panel = null;
  let log = null;
  let statusLine = null;
  let input = null;
  let isOpen = false;
  const L = widgetLabels(typeof navigator !== "undefined" ? (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]) : []);
  let appearance = { color: null, position: "right", launcher: "bubble", title: L.title };
  let team = null;
  const cards = new Map(); // message id → {card, decision}
  const pending = []; // visitor messages awaiting the endpoint's echo
  const seen = new Set(); // endpoint message ids already in the log
  const autoInLog = new Set();
  const listeners = [];

  const listen = (target, type, fn, opts) => {
    target.addEventListener(type, fn, opts);
    listeners.push(() => target.removeEventListener(type, fn, opts));
  };

  function mount() {
    if (host) return;
    host = document.createElement("proactive-widget");
    root = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    accent = new CSSStyleSheet();
    accent.replaceSync(":host {}");
    root.adoptedStyleSheets = [sheet, accent];
    applyAppearance();

    stack = el("div", "stack");
    stack.setAttribute("role", "region");
    stack.setAttribute("aria-label", L.messages);
    stack.setAttribute("aria-live", "polite");
    stack.setAttribute("aria-relevant", "additions");

    launcher = el("button", "launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-label", L.open);
    launcher.setAttribute("aria-expanded", "false");
    launcher.appendChild(icon("chat"));
    badge = el("span", "badge");
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(badge);
    launcher.addEventListener("click", () => (isOpen ? close(true) : open(true, true)));

    root.append(stack, launcher);
    // Esc: dismisses the card (or closes the panel) unless the visitor is
    // typing in one of the page's own fields.
    listen(document, "keydown", (e) => {
      if (e.key !== "Escape" || e.defaultPrevented) return;
      const inside = e.composedPath().includes(host);
      if (!inside && isTypingInPage()) return;
      if (isOpen && (inside || !cards.size)) { close(true); if (inside) launcher.focus(); return; }
      const last = [...cards.keys()].pop();
      if (last !== undefined) dismiss(last, true);
    });
    (document.body || document.documentElement).appendChild(host);
  }

  function applyAppearance() {
    if (!host) return;
    host.dataset.position = appearance.position === "left" ? "left" : "right";
    host.dataset.launcher = appearance.launcher === "none" ? "none" : "bubble";
    const rule = accent.cssRules[0];
    if (appearance.color && HEX.test(appearance.color)) {
      rule.style.setProperty("--accent", appearance.color);
      const on = contrastOn(appearance.color);
      rule.style.setProperty("--on-accent", on);
      // Text in the accent colour on white: darkened when the accent is light.
      rule.style.setProperty("--accent-ink", on === "#ffffff" ? appearance.color : `color-mix(in srgb, ${appearance.color} 55%, #000)`);
    } else {
      for (const name of ["--accent", "--on-accent", "--accent-ink"]) rule.style.removeProperty(name);
    }
    if (panel) panel.querySelector(".title").textContent = appearance.title;
  }

  /** Site-owner appearance: the bundle's widget entry, overridden by the
   * tag's data- attributes. {color, position, launcher, title} */
  function configure(options = {}) {
    const next = { ...appearance };
    for (const key of ["color", "position", "launcher", "title"]) {
      const v = options[key];
      if (typeof v === "string" && v.trim()) next[key] = v.trim().slice(0, 80);
    }
    if (!HEX.test(next.color || "")) next.color = null;
    if (!["left", "right"].includes(next.position)) next.position = "right";
    if (!["bubble", "none"].includes(next.launcher)) next.launcher = "bubble";
    appearance = next;
    mount();
    applyAppearance();
  }

  function updateBadge() {
    if (!badge) return;
    const n = isOpen ? 0 : cards.size;
    badge.hidden = n === 0;
    badge.textContent = String(n);
    launcher.setAttribute("aria-label", isOpen ? L.close : n ? L.unread(n) : L.open);
  }

  // -- message cards ------------------------------------------------------
  function senderRow(sender) {
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
    who.append(el("div", "name", sender.name), el("div", "role", appearance.title === L.title ? L.team : appearance.title));
    row.append(avatar, who);
    return row;
  }

  function body(content, messageId, { withButtons = true } = {}) {
    const frag = document.createDocumentFragment();
    const text = renderNodes(content.body, el("div", "text"));
    text.dir = "auto"; // right-to-left languages read right
    if (!content.body && typeof content.text === "string") text.textContent = content.text;
    frag.appendChild(text);
    const img = content.image && safeHref(content.image.src, { image: true });
    if (img) {
      const image = el("img", "media");
      image.src = img;
      image.alt = typeof content.image.alt === "string" ? content.image.alt : "";
      image.referrerPolicy = "no-referrer";
      image.loading = "lazy";
      for (const dim of ["width", "height"]) if (Number.isInteger(content.image[dim])) image[dim] = content.image[dim];
      frag.appendChild(image);
    }
    const links = (content.links || []).map((l) => [safeHref(l.url), l.label]).filter(([h]) => h);
    if (links.length) {
      const list = el("ul", "links");
      for (const [href, label] of links) list.appendChild(el("li")).appendChild(link(href, "", label));
      frag.appendChild(list);
    }
    const files = (content.attachments || []).map((f) => [safeHref(f.url), f]).filter(([h]) => h);
    if (files.length) {
      const list = el("ul", "files");
      for (const [href, f] of files) {
        const a = link(href, "file");
        a.setAttribute("download", "");
        a.append(icon("file"), el("span", "fname", f.name));
        if (f.size_text) a.appendChild(el("span", "fsize", f.size_text));
        a.setAttribute("aria-label", f.size_text ? `${f.name}, ${f.size_text}` : String(f.name));
        list.appendChild(el("li")).appendChild(a);
      }
      frag.appendChild(list);
    }
    if (withButtons && content.buttons && content.buttons.length) {
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
        node.addEventListener("click", () => buttonClicked(messageId, b));
        row.appendChild(node);
      });
      frag.appendChild(row);
    }
    return frag;
  }

  function buttonClicked(messageId, button) {
    onClick(messageId, String(button.id), { action: button.action, label: button.label });
    if (button.action === "chat") {
      open(true, true);
    } else if (button.action === "reply") {
      open(true, false);
      sendReply(button.label, messageId);
    }
    // url buttons are real links: the browser opens them (new tab)
  }

  function show(decision) {
    mount();
    const id = decision.message;
    // The engine shows one message at a time: a new decision means the
    // screen is free again (e.g. a single-page-app route change), so a card
    // still on screen is replaced, not stacked (and not "dismissed").
    for (const [old, entry] of cards) {
      entry.card.remove();
      cards.delete(old);
    }
    const content = decision.content || {};
    const card = el("article", "card");
    card.dataset.messageId = id;
    const sender = content.sender && content.sender.name ? content.sender : null;
    card.setAttribute("aria-label", sender ? L.messageFrom(sender.name) : L.message);
    if (content.lang) card.lang = content.lang;
    const close = el("button", "close");
    close.type = "button";
    close.setAttribute("aria-label", L.dismiss);
    close.dataset.action = "dismiss"; // a stable hook for test tools, whatever the language
    close.appendChild(icon("close"));
    close.addEventListener("click", () => dismiss(id, true));
    if (sender) card.appendChild(senderRow(sender));
    card.appendChild(body(content, id));
    const reply = el("form", "reply");
    const field = el("input");
    field.type = "text";
    field.placeholder = L.replyPlaceholder;
    field.setAttribute("aria-label", L.replyLabel);
    field.maxLength = 2000;
    reply.appendChild(field);
    reply.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = field.value.trim();
      if (!text) return;
      field.value = "";
      open(true, true);
      sendReply(text, id);
    });
    card.append(reply, close);
    cards.set(id, { card, decision });
    if (isOpen) addAutoToLog(decision);
    else {
      stack.appendChild(card);
      stack.hidden = false;
    }
    updateBadge();
  }

  function dismiss(id, byVisitor) {
    const entry = cards.get(id);
    if (!entry) return;
    const hadFocus = entry.card.contains(root.activeElement);
    entry.card.remove();
    cards.delete(id);
    updateBadge();
    if (hadFocus && launcher) launcher.focus();
    if (byVisitor) onDismiss(id);
  }

  // Take back a message shown ahead of the engine that the engine did not
  // decide (widget/shell.mjs): its card, or its entry in the conversation.
  function retract(id) {
    dismiss(id, false);
    if (!autoInLog.delete(id) || !log) return;
    for (const bubble of [...log.children]) if (bubble.dataset.messageId === id) bubble.remove();
  }

  // -- the chat panel -------------------------------------------------------
  function buildPanel() {
    panel = el("section", "panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", L.chat);
    panel.hidden = true;
    const head = el("header", "head");
    const title = el("div", "title", appearance.title);
    title.id = "pw-title";
    statusLine = el("div", "status");
    const close = el("button", "close");
    close.type = "button";
    close.setAttribute("aria-label", L.close);
    close.appendChild(icon("close"));
    close.addEventListener("click", () => { close.blur(); closePanel(true); launcher.focus(); });
    head.append(title, statusLine, close);
    panel.setAttribute("aria-labelledby", "pw-title");
    log = el("div", "log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", L.conversation);
    const form = el("form", "compose");
    input = el("textarea");
    input.rows = 1;
    input.placeholder = L.writePlaceholder;
    input.setAttribute("aria-label", L.writeLabel);
    input.maxLength = 2000;
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    const send = el("button", "send");
    send.type = "submit";
    send.setAttribute("aria-label", L.send);
    send.appendChild(icon("send"));
    form.append(input, send);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      sendReply(text, null);
    });
    panel.append(head, log, form);
    if (onRate) {
      const rate = el("div", "rate");
      rate.setAttribute("role", "group");
      rate.setAttribute("aria-label", L.rateLabel);
      rate.appendChild(el("span", "ask", L.rateAsk));
      for (const [value, label] of [["great", L.great], ["average", L.average], ["poor", L.poor]]) {
        const b = el("button", "", label);
        b.type = "button";
        b.dataset.rating = value;
        b.setAttribute("aria-pressed", "false");
        b.addEventListener("click", () => { markRating(value); onRate(value); });
        rate.appendChild(b);
      }
      rate.hidden = true;
      panel.insertBefore(rate, form);
    }
    renderTeam();
    root.insertBefore(panel, launcher);
  }

  function markRating(value) {
    if (!panel) return;
    for (const b of panel.querySelectorAll(".rate button")) b.setAttribute("aria-pressed", String(b.dataset.rating === value));
  }

  function renderTeam() {
    if (!statusLine) return;
    statusLine.textContent = "";
    const dot = el("span", team === "online" ? "dot online" : "dot");
    dot.setAttribute("aria-hidden", "true");
    // No presence known (no endpoint, or it is down): say nothing rather than promise a reply time.
    if (team !== "online" && team !== "offline") return;
    statusLine.append(dot, el("span", "", team === "online" ? L.online : L.offline));
  }

  function addAutoToLog(decision) {
    if (autoInLog.has(decision.message)) return;
    autoInLog.add(decision.message);
    const content = decision.content || {};
    const bubble = el("div", "bubble agent auto");
    bubble.dataset.messageId = decision.message;
    if (content.sender && content.sender.name) bubble.appendChild(el("div", "who", content.sender.name));
    bubble.appendChild(body(content, decision.message));
    log.appendChild(bubble);
    scrollLog();
  }

  function scrollLog() {
    if (log) log.scrollTop = log.scrollHeight;
  }

  function addBubble(sender, text, extra = "") {
    const bubble = el("div", `bubble ${sender === "visitor" ? "visitor" : "agent"} ${extra}`.trim());
    bubble.dir = "auto";
    bubble.textContent = String(text);
    log.appendChild(bubble);
    scrollLog();
    return bubble;
  }

  function sendReply(text, messageId) {
    mount();
    if (!panel) buildPanel();
    const bubble = addBubble("visitor", text, "pending");
    pending.push({ text, bubble });
    onReply(text, messageId);
  }

  function open(byVisitor, focus) {
    mount();
    if (!panel) buildPanel();
    if (isOpen) return;
    isOpen = true;
    // The card(s) on screen move into the conversation.
    for (const [id, entry] of cards) {
      addAutoToLog(entry.decision);
      entry.card.remove();
      cards.delete(id);
    }
    panel.hidden = false;
    stack.hidden = true;
    host.dataset.open = "";
    launcher.setAttribute("aria-expanded", "true");
    updateBadge();
    if (focus && !isTypingInPage()) input.focus({ preventScroll: true });
    scrollLog();
    if (byVisitor) onOpen();
  }

  function closePanel(byVisitor) {
    if (!isOpen) return;
    isOpen = false;
    panel.hidden = true;
    stack.hidden = false;
    delete host.dataset.open;
    launcher.setAttribute("aria-expanded", "false");
    updateBadge();
    if (byVisitor) onClose();
  }
  const close = closePanel;

  /** News from the endpoint (endpoint.mjs onMessage): history, message,
   * failed, rating. */
  function chat(news) {
    if (!news || typeof news !== "object") return;
    mount();
    if (!panel) buildPanel();
    if (news.type === "history") {
      for (const m of news.messages || []) chat({ type: "message", message: m });
    } else if (news.type === "message" && news.message) {
      const m = news.message;
      if (m.id !== undefined && seen.has(m.id)) return;
      if (m.id !== undefined) seen.add(m.id);
      if (m.sender === "visitor") {
        const i = pending.findIndex((p) => p.text === String(m.text).trim());
        if (i >= 0) {
          pending[i].bubble.classList.remove("pending");
          pending.splice(i, 1);
          return;
        }
        addBubble("visitor", m.text);
      } else {
        const bubble = addBubble("agent", "");
        if (m.author) bubble.appendChild(el("div", "who", m.author));
        bubble.appendChild(document.createTextNode(String(m.text ?? "")));
        const rate = panel.querySelector(".rate");
        if (rate) rate.hidden = false;
      }
    } else if (news.type === "failed") {
      const i = pending.findIndex((p) => p.text === String(news.text || "").trim());
      const p = i >= 0 ? pending.splice(i, 1)[0] : null;
      if (p) {
        p.bubble.classList.remove("pending");
        p.bubble.classList.add("failed");
      }
      log.appendChild(el("div", "note", L.notDelivered));
      scrollLog();
    } else if (news.type === "rating") {
      markRating(news.value);
    }
  }

  function setTeam(value) {
    team = value === "online" || value === "offline" ? value : null;
    renderTeam();
  }

  return {
    show,
    dismiss,
    retract,
    open: () => open(false, false),
    close: () => close(false),
    configure,
    chat,
    setTeam,
    isOpen: () => isOpen,
    root() { mount(); return root; }, // the shadow root (the QA kit's debug view lives in it)
    destroy() {
      for (const undo of listeners.splice(0)) undo();
      if (host) host.remove();
      host = null;
      root = null;
      panel = null;
      cards.clear();
    },
  };
}
