// Claims across tabs: a once-per-user message is painted by one tab only.
// The engine asks with a `claim` decision; this module takes the site's Web
// Lock, reads the ids claimed so far (localStorage, beside the record), adds
// the message when it is not there, and answers with a `claim` event that the
// engine turns into a show (won) or into "shown elsewhere" (lost).
// Without the Web Locks API the read and write are not atomic across tabs;
// with storage blocked, each tab claims for itself (docs/embedding.md).

const SUFFIX = ":claims";
const MAX_CLAIMS = 1000;

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

  return { claim };
}
