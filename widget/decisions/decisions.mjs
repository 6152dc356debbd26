// A step's result on the page: paint first, then persist the record (sent
// only when it changed), then tell the site's handlers, then set the clock
// for the engine's next wake-up. A `claim` (a once-per-user message) is
// claimed across tabs first; the engine hears the answer as a `claim` event.

// status().shown keeps the last SHOWN_KEPT shows (a long session would grow
// it without bound); status().shownCount counts them all.
export const SHOWN_KEPT = 100;

// An experiment's arm, and the visitor id when the visitor is counted.
function withArm(detail, d) {
  if (d.arm !== undefined) detail.arm = d.arm;
  if (typeof d.visitor === "string") detail.visitor = d.visitor;
  return detail;
}

export function applyResult(msg, { renderer, reactions, record, events, status, clock, qa, conversation, claims, send }) {
  const decisions = msg.decisions || [];
  const painted = reactions.confirm(msg, decisions); // already on screen, shown ahead
  if (painted) status.ahead += 1;
  for (const d of decisions) {
    if (qa.debug) qa.logDecision(d);
    if (d.action === "show") {
      status.shown.push(d.arm === undefined ? { message: d.message, t: d.t } : { message: d.message, t: d.t, arm: d.arm });
      if (status.shown.length > SHOWN_KEPT) status.shown.splice(0, status.shown.length - SHOWN_KEPT);
      status.shownCount = (status.shownCount || 0) + 1;
      conversation.shown(d.message);
      if (d.message !== painted) renderer.show(d);
    }
  }
  if (msg.record) record.save(msg.record);
  for (const d of decisions) {
    if (d.action !== "claim") continue;
    claims.request(d.message, (won) => send({ type: "claim", message: d.message, won, t: Date.now() }));
  }
  for (const d of decisions) {
    if (d.action === "show") events.emit("shown", withArm({ message: d.message, t: d.t }, d));
    else if (d.action === "email") events.emit("email", { message: d.message, t: d.t });
    else if (d.action === "exposed") events.emit("exposed", withArm({ message: d.message, t: d.t, control: d.control, share: d.share, experiment: d.experiment }, d));
  }
  clock.wakeAt(msg.next_wakeup);
  qa.update();
}
