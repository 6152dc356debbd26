// The conversation's log in the chat panel: auto messages, the visitor's
// messages (pending until the endpoint echoes them) and the team's replies,
// each with its time of day.
//
// Scrolling: a new message scrolls into view when the visitor was reading
// the end of the log (or sent it); when they had scrolled up to read, the log
// stays where it is and a "new message" marker at its bottom edge takes them
// down. The rating row appearing under the log shrinks it: the scroll
// happens after, so it never hides the newest message.

import { el } from "./dom.mjs";
import { messageBody } from "./message.mjs";

export const TRANSCRIPT_KEPT = 200;
const NEAR_END_PX = 24; // this close to the end counts as reading the end

// `onButton(messageId, button)`: an auto message's button; `onAgent()`: the
// team has replied (the panel then offers a rating); `bodyOptions(id)`: how
// an auto message's buttons render (message.mjs).
export function createTranscript({ L, onButton, onAgent, bodyOptions = () => ({}) }) {
  let log = null;
  let marker = null;
  let clock = null;
  const pending = []; // visitor messages awaiting the endpoint's echo
  const seen = new Set(); // endpoint message ids already in the log
  const autoInLog = new Set();

  const atEnd = () => log.scrollHeight - log.clientHeight - log.scrollTop <= NEAR_END_PX;

  function scroll() {
    if (!log) return;
    log.scrollTop = log.scrollHeight;
    marker.hidden = true;
  }

  // Adds `node` (a bubble or a note); `then()` may change the panel's layout
  // (the rating row) before the log scrolls.
  function add(node, { own = false, then = null } = {}) {
    const follow = own || atEnd();
    log.insertBefore(node, marker);
    // A long session keeps the last TRANSCRIPT_KEPT entries on the page (the marker is one more child).
    while (log.childElementCount > TRANSCRIPT_KEPT + 1) log.firstElementChild.remove();
    if (then) then();
    if (follow) scroll();
    else marker.hidden = false;
    return node;
  }

  function stamp(bubble, t) {
    const when = Number.isFinite(t) ? t : Date.now();
    clock = clock || new Intl.DateTimeFormat(L.lang || "en", { hour: "numeric", minute: "2-digit" });
    bubble.dataset.time = clock.format(new Date(when)); // shown by CSS (::after), outside the text
    bubble.dataset.at = new Date(when).toISOString();
    return bubble;
  }

  function bubble(sender, text, t, extra = "") {
    const node = el("div", `bubble ${sender === "visitor" ? "visitor" : "agent"} ${extra}`.trim());
    node.dir = "auto";
    node.textContent = String(text);
    return stamp(node, t);
  }

  return {
    element() {
      log = el("div", "log");
      log.setAttribute("role", "log");
      log.setAttribute("aria-live", "polite");
      log.setAttribute("aria-label", L.conversation);
      marker = el("button", "new-marker", L.newMessage);
      marker.type = "button";
      marker.hidden = true;
      marker.addEventListener("click", scroll);
      log.appendChild(marker);
      log.addEventListener("scroll", () => { if (atEnd()) marker.hidden = true; }, { passive: true });
      return log;
    },
    scroll,
    addAuto(decision) {
      if (autoInLog.has(decision.message)) return;
      autoInLog.add(decision.message);
      const content = decision.content || {};
      const node = stamp(el("div", "bubble agent auto"), decision.shownAt);
      node.dataset.messageId = decision.message;
      if (content.sender && content.sender.name) node.appendChild(el("div", "who", content.sender.name));
      node.appendChild(messageBody(content, decision.message, onButton, bodyOptions(decision.message)));
      add(node);
    },
    // An auto message taken back (shown ahead of the engine, not decided).
    removeAuto(id) {
      if (!autoInLog.delete(id) || !log) return;
      for (const node of [...log.children]) if (node.dataset.messageId === id) node.remove();
    },
    // The visitor's message, pending until the endpoint has it.
    sending(text) {
      pending.push({ text, bubble: add(bubble("visitor", text, Date.now(), "pending"), { own: true }) });
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
        add(bubble("visitor", m.text, m.t));
      } else {
        const node = bubble("agent", "", m.t);
        if (m.author) node.appendChild(el("div", "who", m.author));
        node.appendChild(document.createTextNode(String(m.text ?? "")));
        add(node, { then: onAgent });
      }
    },
    failed(text) {
      const i = pending.findIndex((p) => p.text === String(text || "").trim());
      const p = i >= 0 ? pending.splice(i, 1)[0] : null;
      if (p) {
        p.bubble.classList.remove("pending");
        p.bubble.classList.add("failed");
      }
      add(el("div", "note", L.notDelivered), { own: true });
    },
  };
}
