// Message cards: an auto message on the page, above the launcher, with its
// reply field and a close button. The engine shows one message at a time.

import { el, icon } from "./dom.mjs";
import { messageBody, senderRow } from "./message.mjs";

// `ui`: the renderer's shared parts (render.mjs): L, appearance(), mount(),
// parts() ({root, stack, launcher}), updateBadge(), panel, onDismiss, onButton.
export function createCards(ui) {
  const cards = new Map(); // message id → {card, decision}
  const { L } = ui;

  function replyForm(id) {
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
      ui.panel.open(true, true);
      ui.panel.sendReply(text, id);
    });
    return reply;
  }

  function show(decision) {
    ui.mount();
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
    const title = ui.appearance().title;
    if (sender) card.appendChild(senderRow(sender, title === L.title ? L.team : title));
    card.appendChild(messageBody(content, id, ui.onButton, ui.bodyOptions(id)));
    if (ui.chat) card.append(replyForm(id));
    card.append(close);
    cards.set(id, { card, decision: { ...decision, shownAt: Date.now() } });
    if (ui.panel.isOpen()) ui.panel.addAuto(decision);
    else {
      const { stack } = ui.parts();
      stack.appendChild(card);
      stack.hidden = false;
    }
    ui.updateBadge();
  }

  function dismiss(id, byVisitor) {
    const entry = cards.get(id);
    if (!entry) return;
    const { root, launcher } = ui.parts();
    const hadFocus = entry.card.contains(root.activeElement);
    entry.card.remove();
    cards.delete(id);
    ui.updateBadge();
    if (hadFocus && launcher) launcher.focus();
    if (byVisitor) ui.onDismiss(id);
  }

  return {
    show,
    dismiss,
    get size() { return cards.size; },
    last: () => [...cards.keys()].pop(),
    // The card(s) on screen leave the page (they move into the conversation).
    take() {
      const decisions = [];
      for (const [id, entry] of cards) {
        decisions.push(entry.decision);
        entry.card.remove();
        cards.delete(id);
      }
      return decisions;
    },
    clear: () => cards.clear(),
  };
}
