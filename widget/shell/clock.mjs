// The clock: one timer, for the engine's next wake-up, or earlier, when the
// engine's answer for the page's own signals runs out (a step then renews
// it). status.nextWakeup is the engine's: a decision can change then. The
// engine never reads a clock: every `now` it sees comes from here or from an
// event's own timestamp.

const MAX_TIMEOUT = 2147483647;
const RENEWALS = 20; // per second, at most

export function createClock({ channel, reactions, status }) {
  let timer = null;
  let engineWakeup = null;
  let stopped = false;
  const renewals = []; // when the answers were last renewed (Date.now())

  function wake(at) {
    if (at !== engineWakeup) renewals.push(Date.now());
    reactions.drop();
    channel.post({ type: "wake", now: Math.max(Date.now(), at), seq: channel.nextSeq() });
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    status.nextWakeup = engineWakeup;
    // At most RENEWALS a second: an answer that kept expiring at once would
    // then simply not be used in between (the round trip still works).
    while (renewals.length && renewals[0] <= Date.now() - 1000) renewals.shift();
    const floor = renewals.length >= RENEWALS ? renewals[0] + 1000 : -Infinity;
    const expiries = reactions.expiries();
    const renew = expiries.length ? Math.max(Math.min(...expiries), floor) : null;
    const due = [engineWakeup, renew].filter((x) => typeof x === "number");
    if (!due.length || stopped) return;
    const at = Math.min(...due);
    if (at <= Date.now()) {
      // Already due (events replayed after a slow start): wake now, not on a
      // timer, which a paused test clock would never fire.
      const mark = channel.lastSeq;
      queueMicrotask(() => {
        if (!stopped && channel.lastSeq === mark && status.nextWakeup === engineWakeup) wake(at);
      });
      return;
    }
    const delay = Math.min(at - Date.now(), MAX_TIMEOUT);
    timer = setTimeout(() => {
      timer = null;
      if (!stopped) wake(at);
    }, delay);
  }

  return {
    // The engine's next wake-up (a step's `next_wakeup`), then schedule.
    wakeAt(wakeup) {
      engineWakeup = wakeup;
      schedule();
    },
    schedule,
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = null;
    },
  };
}
