// The endpoint's HTTP client and this browser's identity with it: the
// visitor's token (created on first write, POST /visitors) and the beacon
// sender id, kept in localStorage (memory when blocked).

// The endpoint's small store: JSON values under `prefix:name`.
export function openEndpointStore(prefix) {
  let storage = null;
  try {
    storage = window.localStorage;
    storage.setItem(`${prefix}:probe`, "1");
    storage.removeItem(`${prefix}:probe`);
  } catch {
    storage = null;
  }
  const memory = new Map();
  return {
    get(name) {
      try {
        const text = storage ? storage.getItem(`${prefix}:${name}`) : memory.get(name);
        return text ? JSON.parse(text) : null;
      } catch {
        return null;
      }
    },
    set(name, value) {
      const text = JSON.stringify(value);
      try {
        if (storage) return storage.setItem(`${prefix}:${name}`, text);
      } catch { /* full: fall back to memory */ }
      memory.set(name, text);
    },
    remove(name) {
      try { if (storage) storage.removeItem(`${prefix}:${name}`); } catch { /* ignore */ }
      memory.delete(name);
    },
  };
}

export function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// `onRegistered()`: a token was just created (the live stream then reopens
// to carry this visitor's messages).
export function createClient({ base, site, store, onRegistered }) {
  let token = store.get("token");
  let registering = null;
  const url = (path) => `${base}${path}`;

  async function call(method, path, body, { auth = true, keepalive = false } = {}) {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(url(path), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      mode: "cors", credentials: "omit", cache: "no-store", keepalive,
    });
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    if (!response.ok) {
      const err = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      err.status = response.status;
      err.code = data && data.error && data.error.code;
      throw err;
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
    ensureVisitor() {
      if (token) return Promise.resolve(token);
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
