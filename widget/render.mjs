// Rendering: one <proactive-widget> element with an open shadow root. Styles
// are a constructed stylesheet (no <style> element: strict-CSP friendly) and
// `:host { all: initial }` keeps the host page's CSS out. Every string is set
// as text; nothing from a bundle or a visitor is parsed as HTML.

const CSS = `
:host { all: initial; position: fixed; z-index: 2147483000; bottom: 20px; right: 20px;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
.card { box-sizing: border-box; max-width: 320px; margin-top: 8px; padding: 14px 36px 14px 14px;
  background: #fff; border-radius: 14px; box-shadow: 0 6px 24px rgba(0,0,0,.18); position: relative;
  animation: pop .18s ease-out; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.close { position: absolute; top: 6px; right: 6px; width: 24px; height: 24px; border: 0; border-radius: 12px;
  background: transparent; color: #57606a; cursor: pointer; font: 18px/24px system-ui, sans-serif; padding: 0; }
.close:hover, .close:focus-visible { background: #eef1f4; outline: none; }
@keyframes pop { from { transform: translateY(8px); opacity: 0; } to { transform: none; opacity: 1; } }
@media (prefers-reduced-motion: reduce) { .card { animation: none; } }
`;

export function createRenderer({ onDismiss }) {
  let host = null;
  let root = null;
  const cards = new Map();

  function mount() {
    if (host) return;
    host = document.createElement("proactive-widget");
    root = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
    (document.body || document.documentElement).appendChild(host);
  }

  function show(decision) {
    mount();
    if (cards.has(decision.message)) return;
    const content = decision.content || {};
    const card = document.createElement("div");
    card.className = "card";
    card.setAttribute("role", "status");
    card.setAttribute("aria-live", "polite");
    card.dataset.messageId = decision.message;
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = typeof content.text === "string" ? content.text : "";
    const close = document.createElement("button");
    close.className = "close";
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => dismiss(decision.message, true));
    card.append(text, close);
    root.appendChild(card);
    cards.set(decision.message, card);
  }

  function dismiss(id, byVisitor) {
    const card = cards.get(id);
    if (!card) return;
    card.remove();
    cards.delete(id);
    if (byVisitor) onDismiss(id);
  }

  return {
    show,
    dismiss,
    open() {},
    close() {},
    destroy() {
      if (host) host.remove();
      host = null;
      root = null;
      cards.clear();
    },
  };
}
