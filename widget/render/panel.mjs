// The chat panel: its header (title, the team's presence), the conversation
// (transcript.mjs), the rating row and the compose field.

import { RATINGS } from "../constants.mjs";
import { el, icon, isTypingInPage } from "./dom.mjs";
import { createTranscript } from "./transcript.mjs";

// The compose field: Enter sends, Shift+Enter breaks the line.
function compose(L, onSend) {
  const form = el("form", "compose");
  const input = el("textarea");
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
    onSend(text);
  });
  return { form, input };
}

// great / average / poor, hidden until the team has replied.
function ratingRow(L, onRate) {
  const rate = el("div", "rate");
  rate.setAttribute("role", "group");
  rate.setAttribute("aria-label", L.rateLabel);
  rate.appendChild(el("span", "ask", L.rateAsk));
  for (const value of RATINGS) {
    const b = el("button", "", L[value]);
    b.type = "button";
    b.dataset.rating = value;
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", () => onRate(value));
    rate.appendChild(b);
  }
  rate.hidden = true;
  return rate;
}

// `ui`: the renderer's shared parts (render.mjs): L, appearance(), mount(),
// parts() ({host, root, stack, launcher}), updateBadge(), cards, onButton,
// onOpen, onClose, onReply, onRate.
export function createPanel(ui) {
  const { L } = ui;
  let panel = null;
  let statusLine = null;
  let input = null;
  let isOpen = false;
  let team = null;
  const transcript = createTranscript({
    L,
    onButton: ui.onButton,
    bodyOptions: ui.bodyOptions,
    onAgent: () => {
      const rate = panel.querySelector(".rate");
      if (rate) rate.hidden = false;
    },
  });

  function build() {
    const { root, launcher } = ui.parts();
    panel = el("section", "panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", L.chat);
    panel.hidden = true;
    const head = el("header", "head");
    const title = el("div", "title", ui.appearance().title);
    title.id = "pw-title";
    statusLine = el("div", "status");
    const close = el("button", "close");
    close.type = "button";
    close.setAttribute("aria-label", L.close);
    close.appendChild(icon("close"));
    close.addEventListener("click", () => { close.blur(); closePanel(true); launcher.focus(); });
    head.append(title, statusLine, close);
    panel.setAttribute("aria-labelledby", "pw-title");
    const { form, input: field } = compose(L, (text) => sendReply(text, null));
    input = field;
    panel.append(head, transcript.element(), form);
    if (ui.onRate) panel.insertBefore(ratingRow(L, (value) => { markRating(value); ui.onRate(value); }), form);
    renderTeam();
    root.insertBefore(panel, launcher);
  }

  function ensure() {
    ui.mount();
    if (!panel) build();
  }

  function markRating(value) {
    if (!panel) return;
    for (const b of panel.querySelectorAll(".rate button")) b.setAttribute("aria-pressed", String(b.dataset.rating === value));
    const ask = panel.querySelector(".rate .ask");
    if (ask && value) ask.textContent = L.thanks;
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

  function sendReply(text, messageId) {
    ensure();
    transcript.sending(text);
    ui.onReply(text, messageId);
  }

  function open(byVisitor, focus) {
    if (!ui.chat) return; // no endpoint: no conversation to open
    ensure();
    if (isOpen) return;
    isOpen = true;
    // The card(s) on screen move into the conversation.
    for (const decision of ui.cards.take()) transcript.addAuto(decision);
    const { host, stack, launcher } = ui.parts();
    panel.hidden = false;
    stack.hidden = true;
    host.dataset.open = "";
    launcher.setAttribute("aria-expanded", "true");
    ui.updateBadge();
    if (focus && !isTypingInPage()) input.focus({ preventScroll: true });
    transcript.scroll();
    if (byVisitor) ui.onOpen();
  }

  function closePanel(byVisitor) {
    if (!isOpen) return;
    isOpen = false;
    const { host, stack, launcher } = ui.parts();
    panel.hidden = true;
    stack.hidden = false;
    delete host.dataset.open;
    launcher.setAttribute("aria-expanded", "false");
    ui.updateBadge();
    if (byVisitor) ui.onClose();
  }

  /** News from the endpoint (endpoint.mjs onMessage): history, message,
   * failed, rating. */
  function chat(news) {
    if (!news || typeof news !== "object") return;
    ensure();
    if (news.type === "history") {
      for (const m of news.messages || []) chat({ type: "message", message: m });
    } else if (news.type === "message" && news.message) {
      transcript.message(news.message);
    } else if (news.type === "failed") {
      transcript.failed(news.text);
    } else if (news.type === "rating") {
      markRating(news.value);
    }
  }

  return {
    open,
    close: closePanel,
    isOpen: () => isOpen,
    sendReply,
    addAuto: (decision) => transcript.addAuto(decision),
    removeAuto: (id) => transcript.removeAuto(id),
    chat,
    setTeam(value) {
      team = value === "online" || value === "offline" ? value : null;
      renderTeam();
    },
    setTitle(title) {
      if (panel) panel.querySelector(".title").textContent = title;
    },
    forget() { panel = null; }, // the element is gone (destroy)
  };
}
