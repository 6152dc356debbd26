// The conversation's log in the chat panel: auto messages, the visitor's
// messages (pending until the endpoint echoes them) and the team's replies.

import { el } from "./dom.mjs";
import { messageBody } from "./message.mjs";

// `onButton(messageId, button)`: an auto message's button; `onAgent()`: the
// team has replied (the panel then offers a rating).
export function createTranscript({ L, onButton, onAgent }) {
  let log = null;
  const pending = []; // visitor messages awaiting the endpoint's echo
  const seen = new Set(); // endpoint message ids already in the log
  const autoInLog = new Set();

  function scroll() {
    if (log) log.scrollTop = log.scrollHeight;
  }

  function addBubble(sender, text, extra = "") {
    const bubble = el("div", `bubble ${sender === "visitor" ? "visitor" : "agent"} ${extra}`.trim());
    bubble.dir = "auto";
    bubble.textContent = String(text);
    log.appendChild(bubble);
    scroll();
    return bubble;
  }

  return {
    element() {
      log = el("div", "log");
      log.setAttribute("role", "log");
      log.setAttribute("aria-live", "polite");
      log.setAttribute("aria-label", L.conversation);
      return log;
    },
    scroll,
    addAuto(decision) {
      if (autoInLog.has(decision.message)) return;
      autoInLog.add(decision.message);
      const content = decision.content || {};
      const bubble = el("div", "bubble agent auto");
      bubble.dataset.messageId = decision.message;
      if (content.sender && content.sender.name) bubble.appendChild(el("div", "who", content.sender.name));
      bubble.appendChild(messageBody(content, decision.message, onButton));
      log.appendChild(bubble);
      scroll();
    },
    // An auto message taken back (shown ahead of the engine, not decided).
    removeAuto(id) {
      if (!autoInLog.delete(id) || !log) return;
      for (const bubble of [...log.children]) if (bubble.dataset.messageId === id) bubble.remove();
    },
    // The visitor's message, pending until the endpoint has it.
    sending(text) {
      pending.push({ text, bubble: addBubble("visitor", text, "pending") });
    },
    message(m) {
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
        onAgent();
      }
    },
    failed(text) {
      const i = pending.findIndex((p) => p.text === String(text || "").trim());
      const p = i >= 0 ? pending.splice(i, 1)[0] : null;
      if (p) {
        p.bubble.classList.remove("pending");
        p.bubble.classList.add("failed");
      }
      log.appendChild(el("div", "note", L.notDelivered));
      scroll();
    },
  };
}
