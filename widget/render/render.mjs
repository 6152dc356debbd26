// Rendering: the visible widget inside one <proactive-widget> element with an
// open shadow root — message cards (cards.mjs), the launcher bubble and the
// chat panel (panel.mjs).
//
// Safety: content arrives resolved by the engine (widget/runtime/content.py)
// and becomes DOM with createElement + textContent only; every URL is checked
// again (dom.mjs). Styles: constructed stylesheets only (strict-CSP
// friendly); the site owner's colour goes in through CSSOM setProperty, never
// through CSS text. Accessibility: a polite live region announces cards;
// everything is a real button or link; Esc dismisses; focus moves only on the
// visitor's own action.

import { createCards } from "./cards.mjs";
import { el, icon, isTypingInPage } from "./dom.mjs";
import { widgetLabels } from "./labels.mjs";
import { createPanel } from "./panel.mjs";
import { CSS } from "./styles.mjs";
import { warnOnce } from "../shell/warn.mjs";

export { renderNodes, safeHref } from "./dom.mjs";
export { widgetLabels } from "./labels.mjs";

const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;
const ELEMENT = "proactive-widget";

// Our element is a plain element (never defined). A page that defines
// <proactive-widget> itself would run its own code in ours: the widget then
// uses the first free <proactive-widget-N>, and says so once.
function elementName() {
  const registry = typeof customElements !== "undefined" ? customElements : null;
  if (!registry || !registry.get(ELEMENT)) return ELEMENT;
  let n = 1;
  while (registry.get(`${ELEMENT}-${n}`)) n += 1;
  warnOnce(`the page defines its own <${ELEMENT}> element: the widget renders into <${ELEMENT}-${n}> instead`);
  return `${ELEMENT}-${n}`;
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

function browserLanguages() {
  if (typeof navigator === "undefined") return [];
  return navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
}

// The launcher: opens and closes the panel; its badge counts the cards.
function createLauncher(L, onToggle) {
  const launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", L.open);
  launcher.setAttribute("aria-expanded", "false");
  launcher.appendChild(icon("chat"));
  const badge = el("span", "badge");
  badge.hidden = true;
  badge.setAttribute("aria-hidden", "true");
  launcher.appendChild(badge);
  launcher.addEventListener("click", onToggle);
  return { launcher, badge };
}

// The page's document.open() empties the document (and drops every
// listener): put the element back, say so once, and let the caller re-add
// its listeners. Returns the undo.
function watchRemoval(host, relisten) {
  const watcher = new MutationObserver(() => {
    const node = host();
    if (!node || node.isConnected) return;
    const parent = document.body || document.documentElement;
    if (!parent) return;
    parent.appendChild(node);
    warnOnce("the page called document.open(), which removed the widget and its listeners; they are back");
    relisten();
  });
  watcher.observe(document, { childList: true });
  return () => watcher.disconnect();
}

// `chat`: false on a static host without an endpoint (data-endpoint="off"):
// no conversation can happen, so there is no reply field, no chat panel and
// no launcher, and buttons that need a conversation are left out.
// `container` (default: the page's body) and `languages` (default: the
// browser's) are for the studio's card preview, which draws the widget into
// a frame of its own page in the language of the variant previewed.
export function createRenderer({
  onDismiss = () => {}, onClick = () => {}, onOpen = () => {}, onClose = () => {},
  onReply = () => {}, onRate = null, onRemount = () => {}, chat = true,
  container = null, languages = null,
} = {}) {
  const L = widgetLabels(languages || browserLanguages());
  let appearance = { color: null, position: "right", launcher: "bubble", title: L.title };
  let parts = null; // {host, root, accent, stack, launcher, badge} once mounted
  const listeners = [];
  const answered = new Set(); // auto messages whose quick reply was used
  const ui = {
    L, onDismiss, onOpen, onClose, onReply, onRate, chat,
    bodyOptions: (id) => ({ chat, answered: answered.has(id) }),
    appearance: () => appearance,
    parts: () => parts || {},
    mount,
    updateBadge,
    onButton: buttonClicked,
  };
  ui.cards = createCards(ui);
  ui.panel = createPanel(ui);
  const { cards, panel } = ui;

  function buttonClicked(messageId, button) {
    if (button.action === "reply" && answered.has(messageId)) return; // a quick reply is used once
    onClick(messageId, String(button.id), { action: button.action, label: button.label });
    if (button.action === "chat") {
      panel.open(true, true);
    } else if (button.action === "reply") {
      answered.add(messageId);
      panel.open(true, false);
      panel.sendReply(button.label, messageId);
      for (const b of parts.root.querySelectorAll('button[data-action="reply"]')) {
        if (b.closest("[data-message-id]").dataset.messageId === messageId) b.disabled = true;
      }
    }
    // url buttons are real links: the browser opens them (new tab)
  }

  // Esc: dismisses the card (or closes the panel) unless the visitor is
  // typing in one of the page's own fields.
  function onEscape(e) {
    if (e.key !== "Escape" || e.defaultPrevented) return;
    const inside = e.composedPath().includes(parts.host);
    if (!inside && isTypingInPage()) return;
    if (panel.isOpen() && (inside || !cards.size)) { panel.close(true); if (inside) parts.launcher.focus(); return; }
    const last = cards.last();
    if (last !== undefined) cards.dismiss(last, true);
  }

  function mount() {
    if (parts) return;
    const host = document.createElement(elementName());
    const root = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    const accent = new CSSStyleSheet(); // the site's colours
    accent.replaceSync(":host {}");
    root.adoptedStyleSheets = [sheet, accent];
    const stack = el("div", "stack");
    stack.setAttribute("role", "region");
    stack.setAttribute("aria-label", L.messages);
    stack.setAttribute("aria-live", "polite");
    stack.setAttribute("aria-relevant", "additions");
    const { launcher, badge } = createLauncher(L, () => (panel.isOpen() ? panel.close(true) : panel.open(true, true)));
    parts = { host, root, accent, stack, launcher, badge };
    applyAppearance();
    root.append(stack, launcher);
    if (container) { // a preview: its frame is the studio's, not a site's page
      container.appendChild(host);
      return;
    }
    document.addEventListener("keydown", onEscape);
    listeners.push(() => document.removeEventListener("keydown", onEscape));
    (document.body || document.documentElement).appendChild(host);
    listeners.push(watchRemoval(() => parts && parts.host, () => {
      document.addEventListener("keydown", onEscape);
      onRemount();
    }));
  }

  function applyAppearance() {
    if (!parts) return;
    const { host, accent } = parts;
    host.dataset.position = appearance.position === "left" ? "left" : "right";
    host.dataset.launcher = appearance.launcher === "none" || !chat ? "none" : "bubble";
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
    panel.setTitle(appearance.title);
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
    if (!parts) return;
    const { badge, launcher } = parts;
    const open = panel.isOpen();
    const n = open ? 0 : cards.size;
    badge.hidden = n === 0;
    badge.textContent = String(n);
    launcher.setAttribute("aria-label", open ? L.close : n ? L.unread(n) : L.open);
  }

  return {
    show: cards.show,
    dismiss: cards.dismiss,
    // Take back a message shown ahead of the engine that the engine did not
    // decide (widget/decisions/reactions.mjs): its card, or its entry in the
    // conversation.
    retract(id) {
      cards.dismiss(id, false);
      panel.removeAuto(id);
    },
    open: () => panel.open(false, false),
    close: () => panel.close(false),
    configure,
    chat: panel.chat,
    setTeam: panel.setTeam,
    isOpen: panel.isOpen,
    root() { mount(); return parts.root; }, // the shadow root (the QA kit's debug view lives in it)
    destroy() {
      for (const undo of listeners.splice(0)) undo();
      if (parts) parts.host.remove();
      parts = null;
      panel.forget();
      cards.clear();
    },
  };
}
