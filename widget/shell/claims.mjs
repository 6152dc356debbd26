// Claims across tabs: a once-per-user message is painted by one tab only.
// The engine asks with a `claim` decision; this module takes the site's Web
// Lock, reads the ids claimed so far (localStorage, beside the record), adds
// the message when it is not there, and answers with a `claim` event that the
// engine turns into a show (won) or into "shown elsewhere" (lost).
// Without the Web Locks API the read and write are not atomic across tabs;
// with storage blocked, each tab claims for itself (docs/embedding.md).

const SUFFIX = ":claims";
const MAX_CLAIMS = 1000;
const TAB_KEY = "proactive:tab";

// This tab's key in the record's per-tab counters (widget/runtime/record.py):
// kept in sessionStorage, so a reload counts under the same key and another
// tab under its own. `keep: false` (consent pending): this page's key, in
// memory only; keepTabId() stores it once consent is given.
let pageTabId = null;
const freshId = () => Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");

export function tabId({ keep = true } = {}) {
  if (!keep) {
    pageTabId = pageTabId || freshId();
    return pageTabId;
  }
  try {
    let id = sessionStorage.getItem(TAB_KEY);
    if (!id || !/^[0-9a-f]{12}$/.test(id)) {
      id = pageTabId || freshId();
      sessionStorage.setItem(TAB_KEY, id);
    }
    return id;
  } catch {
    return pageTabId || freshId(); // storage blocked: one key per page
  }
}

export function keepTabId() {
  if (pageTabId) tabId();
}

export function createClaims(store) {
  const name = `${store.key}${SUFFIX}`;

  function takeIfFree(message) {
    const claimed = store.read(SUFFIX);
    const ids = Array.isArray(claimed) ? claimed.filter((x) => typeof x === "string") : [];
    if (ids.includes(message)) return false;
    store.write([...ids, message].slice(-MAX_CLAIMS), SUFFIX);
    return true;
  }

  // Resolves to true (this tab may show it) or false (another tab has).
  function claim(message) {
    const locks = typeof navigator !== "undefined" ? navigator.locks : null;
    if (!locks || typeof locks.request !== "function") return Promise.resolve(takeIfFree(message));
    return locks.request(name, { mode: "exclusive" }, () => takeIfFree(message))
      .catch(() => takeIfFree(message)); // e.g. an opaque origin: no locks there
  }

  // Claim, then `answer(won)`; `settled()` waits for every claim in flight
  // (proactive('sync') waits for them: a show claimed is a show decided).
  let inFlight = Promise.resolve();
  let count = 0;
  let answered = 0; // claims answered so far (their `claim` events sent)
  function request(message, answer) {
    count += 1;
    const done = claim(message).catch(() => true).then((won) => {
      count -= 1;
      answered += 1;
      answer(won);
    });
    inFlight = Promise.all([inFlight, done]);
  }

  // The QA kit's seed starts a visitor over: nothing claimed yet.
  function reset() {
    store.write([], SUFFIX);
  }

  return { claim, request, reset, get pending() { return count > 0; }, get answered() { return answered; }, settled: () => inFlight };
}
