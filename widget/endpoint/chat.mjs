// The conversation with the endpoint: history (GET /conversation), the
// visitor's messages (POST /conversation/messages) and the rating
// (POST /conversation/rating); its summary becomes the `chat_history` event.

import { RATINGS } from "../constants.mjs";

// `ctx`: {client, site, send, emit, warn, notify, isClosed, lastShown(),
// presence, beacons}.
export function createChat(ctx) {
  const known = new Map(); // message id → message
  let conversationId = null;
  let historyKnown = false;

  function messagesList() {
    return [...known.values()].sort((a, b) => a.id - b.id);
  }

  function receive(m, live) {
    if (!m || typeof m.id !== "number" || known.has(m.id)) return;
    if (m.sender !== "visitor" && m.sender !== "agent") return;
    const message = { id: m.id, sender: m.sender, author: m.author ?? null, text: String(m.text ?? ""), t: m.t };
    known.set(m.id, message);
    if (live && m.sender === "agent") {
      ctx.send({ type: "agent_message", text: message.text });
    }
    if (live) {
      ctx.presence.chatted();
      ctx.notify({ type: "message", message });
      ctx.emit("message", { ...message });
    }
  }

  // The conversation's summary for the engine, in the browser's clock.
  function summarise(conv, offset) {
    const local = (t) => (typeof t === "number" ? t + offset : null);
    let lastVisitor = null;
    let lastAgent = null;
    for (const m of (conv && conv.messages) || []) {
      if (m.sender === "visitor") lastVisitor = local(m.t);
      else lastAgent = local(m.t);
    }
    return {
      exists: Boolean(conv && conv.messages.length),
      visitor_msg_at: lastVisitor, agent_msg_at: lastAgent,
      rating: conv ? conv.rating : null, rating_at: conv ? local(conv.rating_at) : null,
    };
  }

  async function loadHistory() {
    if (!ctx.client.token) {
      historyKnown = true;
      ctx.send({ type: "chat_history", exists: false, visitor_msg_at: null, agent_msg_at: null, rating: null, rating_at: null });
      ctx.notify({ type: "history", messages: [] });
      return;
    }
    try {
      const data = await ctx.client.call("GET", "/conversation");
      if (ctx.isClosed()) return;
      const conv = data.conversation;
      // On a page's first read the messages are history; on a re-read after
      // a reconnect, the ones we had not seen were said meanwhile: news.
      const catchUp = historyKnown;
      for (const m of (conv && conv.messages) || []) receive(m, catchUp);
      conversationId = conv ? conv.id : null;
      historyKnown = true;
      const summary = summarise(conv, typeof data.now === "number" ? Date.now() - data.now : 0);
      // A conversation with a recent message holds the stream (presence.mjs).
      const last = conv && conv.messages.length ? conv.messages[conv.messages.length - 1] : null;
      if (last && typeof data.now === "number") ctx.presence.chatted(data.now - last.t);
      ctx.send({ type: "chat_history", ...summary });
      // The same facts as a partial record: record_sync merges them (latest
      // timestamps win, `chat` ORs) in engines that do not read chat_history
      // yet; merging is idempotent, so an engine that reads both is unaffected.
      if (summary.exists) {
        ctx.send({ type: "record_sync", record: {
          chat: true, visitor_msg_at: summary.visitor_msg_at, agent_msg_at: summary.agent_msg_at,
          rating: summary.rating, rating_at: summary.rating_at,
        } });
      }
      ctx.notify({ type: "history", messages: messagesList() });
    } catch (err) {
      if (err.status === 401) {
        // The endpoint does not know this token (e.g. its data was reset).
        ctx.client.forgetToken();
        ctx.presence.restart();
        return;
      }
      ctx.warn(`chat history is unavailable (${err.message}); the chat history rule reads "unknown"`);
    }
  }

  async function sendMessage(text, options = {}) {
    text = String(text ?? "").trim();
    if (!text || ctx.isClosed()) return null;
    const autoMessage = typeof options.message === "string" ? options.message : ctx.lastShown();
    ctx.send({ type: "visitor_message", text });
    if (autoMessage) ctx.beacons.track("replied", { message: autoMessage });
    try {
      await ctx.client.ensureVisitor();
      const data = await ctx.client.call("POST", "/conversation/messages", {
        text: text.slice(0, 2000), auto_message: autoMessage || undefined, site: ctx.site || undefined,
        page_url: location.href.slice(0, 2048),
      });
      conversationId = data.conversation;
      const m = data.message;
      const isNew = !known.has(m.id);
      receive(m, false);
      ctx.presence.chatted(); // the stream resumes after this message
      if (isNew) {
        ctx.notify({ type: "message", message: known.get(m.id) });
        ctx.emit("message", { ...known.get(m.id) });
      }
      return known.get(m.id);
    } catch (err) {
      ctx.warn(`a chat message could not be sent (${err.message})`);
      ctx.notify({ type: "failed", text, reason: err.message });
      return null;
    }
  }

  async function rate(value) {
    value = String(value ?? "").toLowerCase();
    if (!RATINGS.includes(value) || ctx.isClosed()) return null;
    ctx.send({ type: "rating", value });
    ctx.notify({ type: "rating", value });
    if (!ctx.client.token || conversationId == null) return { rating: value, stored: false };
    try {
      const data = await ctx.client.call("POST", "/conversation/rating", { value });
      return { rating: data.rating, stored: true };
    } catch (err) {
      ctx.warn(`the rating could not be stored (${err.message})`);
      return { rating: value, stored: false };
    }
  }

  return {
    get historyKnown() { return historyKnown; },
    messages: messagesList,
    receive,
    loadHistory,
    sendMessage,
    rate,
  };
}
