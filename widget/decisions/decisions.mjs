// A step's result on the page: paint first, then persist the record (sent
// only when it changed), then tell the site's handlers, then set the clock
// for the engine's next wake-up.

export function applyResult(msg, { renderer, reactions, record, events, status, clock, qa, conversation }) {
  const decisions = msg.decisions || [];
  const painted = reactions.confirm(msg, decisions); // already on screen, shown ahead
  if (painted) status.ahead += 1;
  for (const d of decisions) {
    if (qa.debug) qa.logDecision(d);
    if (d.action === "show") {
      status.shown.push({ message: d.message, t: d.t });
      conversation.shown(d.message);
      if (d.message !== painted) renderer.show(d);
    }
  }
  if (msg.record) record.save(msg.record);
  for (const d of decisions) {
    if (d.action === "show") events.emit("shown", { message: d.message, t: d.t });
    else if (d.action === "email") events.emit("email", { message: d.message, t: d.t });
  }
  clock.wakeAt(msg.next_wakeup);
  qa.update();
}
