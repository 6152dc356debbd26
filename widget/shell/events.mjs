// The site's handlers for the widget's public events
// (proactive('on' | 'off', name, cb); docs/embedding.md lists the names).

export function createEvents() {
  const handlers = new Map(); // event name → Set of callbacks
  return {
    on(name, fn) {
      if (typeof fn !== "function") return;
      if (!handlers.has(name)) handlers.set(name, new Set());
      handlers.get(name).add(fn);
    },
    off(name, fn) {
      if (handlers.has(name)) handlers.get(name).delete(fn);
    },
    emit(name, detail) {
      for (const fn of handlers.get(name) || []) {
        try { fn(detail); } catch (err) { console.error(err); } // the site's own handler failed
      }
    },
    clear() {
      handlers.clear();
    },
  };
}
