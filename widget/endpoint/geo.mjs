// Geo: GET /geo once per visit (a visit ends after 30 minutes without a
// page), cached; country and city rules read "unknown" without it.

import { VISIT_GAP_MS } from "../constants.mjs";

export async function loadGeo({ client, store, send, warn, isClosed }) {
  const now = Date.now();
  const cached = store.get("geo");
  if (cached && typeof cached.seen === "number" && now - cached.seen < VISIT_GAP_MS && now >= cached.seen) {
    store.set("geo", { ...cached, seen: now });
    send({ type: "geo", country: cached.country ?? null, city: cached.city ?? null });
    return;
  }
  try {
    const geo = await client.call("GET", "/geo", undefined, { auth: false });
    if (isClosed() || !geo) return;
    const answer = { country: geo.country ?? null, city: geo.city ?? null };
    store.set("geo", { ...answer, seen: Date.now() });
    send({ type: "geo", ...answer });
  } catch (err) {
    warn(`the endpoint's geo answer is unavailable (${err.message}); country and city rules read "unknown"`);
  }
}
