// The conversation: the chat panel's messages and ratings go to the endpoint
// module (widget/endpoint/endpoint.mjs), its news come back to the panel,
// and the endpoint's side channel for this page starts here: geo, presence,
// chat and beacons become engine events when they arrive. Nothing waits on
// it; when it is down those rules read "unknown". data-endpoint picks
// another backend ("off" disables it); docs/endpoint.md.

export function startConversation({ config, renderer, events, send, warn, cleanup, isStopped }) {
  let chat = null; // the endpoint module, once loaded
  let lastShown = null; // the auto message a reply answers
  events.on("team", (d) => renderer.setTeam(d && d.value));
  events.on("dismissed", (d) => { if (d && d.message === lastShown) lastShown = null; });

  import("../endpoint/endpoint.mjs").then((endpoint) => {
    if (isStopped()) return;
    chat = endpoint;
    cleanup.push(endpoint.onMessage((news) => renderer.chat(news)));
    const base = endpoint.endpointBase(config.endpoint, config.src);
    if (!base) return;
    const connection = endpoint.connect({
      base, site: config.site, emit: events.emit, warn,
      send: (event) => send({ ...event, t: Date.now() }),
      on: events.on,
    });
    cleanup.push(() => connection.close());
  }).catch((err) => warn(`the chat endpoint module could not load: ${err && err.message}`));

  return {
    shown(id) { lastShown = id; },
    // The visitor's reply, announced as "replied" with the auto message it
    // answers (not any chat message).
    reply(text, id) {
      const message = id || lastShown;
      if (message) events.emit("replied", { message, text });
      const sending = chat ? chat.sendMessage(text, message ? { message } : {}) : Promise.resolve(null);
      sending.then((sent) => { if (!sent) renderer.chat({ type: "failed", text }); }, () => renderer.chat({ type: "failed", text }));
    },
    rate(value) {
      return chat && chat.rate(value);
    },
  };
}
