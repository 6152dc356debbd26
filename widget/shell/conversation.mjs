// The conversation: the chat panel's messages and ratings go to the endpoint
// module (widget/endpoint/endpoint.mjs), its news come back to the panel,
// and the endpoint's side channel for this page starts here: geo, presence,
// chat and beacons become engine events when they arrive. Nothing waits on
// it; when it is down those rules read "unknown". data-endpoint picks
// another backend ("off" disables it); docs/endpoint.md.

export function startConversation({ config, renderer, events, send, warn, cleanup, isStopped, consent }) {
  let chat = null; // the endpoint module, once loaded
  let connection = null; // this page's, when there is an endpoint
  let lastShown = null; // the auto message a reply answers
  let team = false; // the running bundle has a message that depends on the team
  events.on("team", (d) => renderer.setTeam(d && d.value));
  events.on("ready", (d) => {
    team = Boolean(d && d.bundle && d.bundle.team);
    if (connection) connection.needTeam(team);
  });
  events.on("dismissed", (d) => { if (d && d.message === lastShown) lastShown = null; });

  const loaded = import("../endpoint/endpoint.mjs").then((endpoint) => {
    if (isStopped()) return;
    chat = endpoint;
    cleanup.push(endpoint.onMessage((news) => renderer.chat(news)));
    const base = endpoint.endpointBase(config.endpoint, config.src);
    if (!base) return;
    connection = endpoint.connect({
      base, site: config.site, emit: events.emit, warn, consent, team,
      send: (event) => send({ ...event, t: Date.now() }),
      on: events.on,
    });
    cleanup.push(() => connection.close());
  }).catch((err) => warn(`the chat endpoint module could not load: ${err && err.message}`));

  return {
    // Consent given / withdrawn (../shell/consent.mjs): once the endpoint's
    // module is here. `withdraw` resolves to the endpoint's answer or null.
    consented: () => loaded.then(() => connection && connection.consented()),
    withdraw: () => loaded.then(() => (connection ? connection.withdraw() : null)),
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
