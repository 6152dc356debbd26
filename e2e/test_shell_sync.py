"""proactive('sync') covers claims across tabs whatever the order in which
they settle (widget/shell/api.mjs, widget/shell/claims.mjs): the real modules
in real Chromium, with a scripted runtime whose round trips the test answers,
and the site's Web Lock held by the test to decide when the claim settles.

The order that once broke it (two CI failures, once_per_user messages
"delivered but not rendered"): a claim is waiting for the lock when `sync`
posts its ping; the lock frees, and the claim's `claim` event is posted
after that ping; the pong must not end the sync then."""

import pytest

SCRIPT = """async ([origin, order]) => {
  const { createApi } = await import(origin + '/api.mjs');
  const { createClaims } = await import(origin + '/claims.mjs');
  const log = [];
  const tick = () => new Promise((r) => setTimeout(r, 20));
  const until = async (test) => { for (let i = 0; i < 200 && !test(); i += 1) await tick(); if (!test()) throw new Error('timed out: ' + log); };
  let held = true;               // the test answers the pongs while this holds
  const pongs = [];
  const channel = {
    mode: 'worker',
    ask(kind) {
      log.push('ping');
      return new Promise((resolve) => {
        const pong = () => { log.push('pong'); resolve(true); };
        if (held) pongs.push(pong); else setTimeout(pong, 0);
      });
    },
  };
  const store = { key: 'proactive:synctest-' + order, persistent: false, read: () => [], write: () => {} };
  const claims = createClaims(store);
  let release;
  await new Promise((granted) => navigator.locks.request(store.key + ':claims',
    () => { granted(); return new Promise((r) => { release = r; }); }));
  claims.request('m', (won) => log.push('claim event ' + won));
  const api = createApi({ events: {}, send() {}, setOpen() {}, qa: {}, channel, reactions: {}, store, status: {},
                          claims, isStopped: () => false, isReady: () => true, consent: { granted: true } });
  const synced = api('sync').then((ok) => log.push('synced ' + ok));
  await until(() => pongs.length === 1);          // the first ping is on its way
  if (order === 'claim-before-pong') {
    release();
    await until(() => log.includes('claim event true'));   // posted after the ping
    held = false;
    pongs.shift()();
  } else {
    held = false;
    pongs.shift()();
    await tick();
    release();
  }
  await until(() => log.some((x) => x.startsWith('synced')));
  await synced;
  return log;
}"""


@pytest.mark.parametrize("order", ["claim-before-pong", "claim-after-pong"])
def test_sync_waits_for_a_claim_settled_during_its_round_trip(site, page, order):
    page.goto(site.page(tag=""))
    log = page.evaluate(SCRIPT, [site.widget_origin, order])
    assert log[-1] == "synced true", log
    # The last round trip began after the claim's event was sent: the runtime has handled it.
    claim = log.index("claim event true")
    last_ping = len(log) - 1 - log[::-1].index("ping")
    assert last_ping > claim, log
