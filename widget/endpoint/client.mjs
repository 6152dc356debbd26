// The endpoint's HTTP client and this browser's identity with it: the
// visitor's token (created on first write, POST /visitors) and the beacon
// sender id, kept in localStorage (memory when blocked).

import { openKeyStore } from "../shell/record.mjs";

// The endpoint's small store: JSON values under `prefix:name`, in
// localStorage (memory when blocked, and while consent is pending:
// `device: false`, see ../shell/consent.mjs).
export function openEndpointStore(prefix, { device = true } = {}) {
  const store = openKeyStore(prefix, { device });
  return {
    get: (name) => store.read(`:${name}`),
    set: (name, value) => store.write(value, `:${name}`),
    remove: (name) => store.remove(`:${name}`),
    get persistent() { return store.persistent; },
    persist: (merge) => store.persist((suffix, mine, theirs) => merge(suffix.slice(1), mine, theirs)),
    detach: () => store.detach(),
  };
}

export function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// `onRegistered()`: a token was just created (the live stream then reopens
// to carry this visitor's messages). `allowed()`: whether a visitor may be
// registered (false while consent is pending).
export function createClient({ base, site, store, onRegistered, allowed = () => true }) {
  let token = store.get("token");
  let registering = null;
  const url = (path) => `${base}${path}`;

  async function call(method, path, body, { auth = true, keepalive = false, cache = "no-store" } = {}) {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(url(path), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      mode: "cors", credentials: "omit", cache, keepalive,
    });
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    if (!response.ok) {
      const err = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      err.status = response.status;
      err.code = data && data.error && data.error.code;
      throw err;
    }
    // A 200 that is not JSON (a captive portal, a misrouted proxy) is a failure, said once by the caller.
    if ((data === null || typeof data !== "object") && response.status !== 204) {
      throw new Error(`the answer to ${method} ${path} is not JSON (HTTP ${response.status}, ${response.headers.get("content-type") || "no content type"})`);
    }
    return data;
  }

  return {
    url,
    call,
    get token() { return token; },
    // The endpoint does not know this token (e.g. its data was reset).
    forgetToken() {
      token = null;
      store.remove("token");
    },
    // Consent given: the token an earlier visit kept, if any.
    reload() {
      token = store.get("token");
      return token;
    },
    ensureVisitor() {
      if (token) return Promise.resolve(token);
      if (!allowed()) return Promise.reject(new Error("no consent to store data yet (data-consent)"));
      if (!registering) {
        registering = call("POST", "/visitors", { site }, { auth: false }).then((data) => {
          token = data.token;
          store.set("token", token);
          onRegistered();
          return token;
        }).finally(() => { registering = null; });
      }
      return registering;
    },
  };
}
