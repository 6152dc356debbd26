// Beacons (POST /events): shown / clicked / dismissed / replied, batched,
// kept in storage until the endpoint confirms them, retried on the next
// page, handed to sendBeacon when the page hides. And delivery requests for
// `email` messages (POST /deliveries).

import { randomId } from "./client.mjs";

const FLUSH_DELAY_MS = 2000;
const MAX_QUEUE = 500;

// `ctx`: {client, store, site, sender, warn, isClosed, allowed}: nothing is
// sent while consent is pending (the queue waits in memory).
export function createBeacons(ctx) {
  const { client, store, site } = ctx;
  let flushTimer = null;
  let attributes = {}; // the visitor's identify() attributes, for deliveries

  const arms = new Map(); // message → {arm, visitor} of its show on this page (for clicked, replied)

  function track(type, detail) {
    if (!detail || typeof detail.message !== "string") return;
    const queue = store.get("beacons") || [];
    const event = { id: randomId(), type, message: detail.message, t: Date.now() };
    if (detail.button !== undefined && detail.button !== null) event.button = String(detail.button);
    // Experiments: the arm and the stored visitor id (none: not counted).
    if (type === "shown" || type === "exposed") {
      if (typeof detail.visitor === "string" && typeof detail.arm === "string") {
        arms.set(detail.message, { arm: detail.arm, visitor: detail.visitor });
      } else if (type === "shown") arms.delete(detail.message);
    }
    const arm = typeof detail.arm === "string" && typeof detail.visitor === "string"
      ? { arm: detail.arm, visitor: detail.visitor } : arms.get(detail.message);
    if (arm) Object.assign(event, arm);
    if (type === "exposed" && typeof detail.control === "string") event.control = detail.control;
    if (type === "exposed" && typeof detail.share === "number") event.share = detail.share;
    if (type === "exposed" && typeof detail.experiment === "string") event.experiment = detail.experiment;
    if (type === "goal") event.goal = String(detail.goal);
    if ((type === "exposed" || type === "goal") && !arm) return;
    queue.push(event);
    store.set("beacons", queue.slice(-MAX_QUEUE));
    if (!flushTimer && !ctx.isClosed()) flushTimer = setTimeout(() => { flushTimer = null; flush(false); }, FLUSH_DELAY_MS);
  }

  async function flush(hiding) {
    const queue = (store.get("beacons") || []).slice(0, 200);
    if (!queue.length || !ctx.allowed()) return;
    const body = JSON.stringify({ sender: ctx.sender, site, events: queue });
    if (hiding) {
      // The page may be gone before a fetch answers: hand the batch to the
      // browser. It stays queued; the next page re-sends and the endpoint
      // ignores ids it has already counted.
      try { navigator.sendBeacon(client.url("/events"), body); } catch { /* retried next page */ }
      return;
    }
    try {
      const response = await fetch(client.url("/events"), {
        method: "POST", body, mode: "cors", credentials: "omit", keepalive: body.length < 60000,
        headers: { "content-type": "text/plain;charset=UTF-8" },
      });
      if (!response.ok) return;
      const sent = new Set(queue.map((e) => e.id));
      store.set("beacons", (store.get("beacons") || []).filter((e) => !sent.has(e.id)));
    } catch { /* offline: retried on the next page */ }
  }

  async function requestDelivery(decision) {
    if (!decision || typeof decision.message !== "string") return null;
    try {
      await client.ensureVisitor();
      const data = await client.call("POST", "/deliveries", {
        message: decision.message, site: site || undefined, attributes,
      });
      return data.delivery;
    } catch (err) {
      ctx.warn(`the delivery request for ${decision.message} could not be sent (${err.message})`);
      return null;
    }
  }

  return {
    track,
    flush,
    requestDelivery,
    identify(more) {
      if (more && typeof more === "object") attributes = { ...attributes, ...more };
    },
    pending: () => (store.get("beacons") || []).length > 0,
    close: () => clearTimeout(flushTimer),
  };
}
