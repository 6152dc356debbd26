// The bundle cache: the last good bundle, kept in this browser so the next
// page runs it at once while the fetched one is checked (docs/publishing.md).
// Main thread only: the worker sends a verified, newer bundle ("bundle").

export function openBundleCache(store) {
  return {
    envelope: () => store.read(":bundle"),
    version: () => (store.read(":bundle-version") || {}).version ?? null,
    // Never lower the stored version (another tab may have accepted a newer
    // one), unless it came from a key the tag no longer pins (after a rotation).
    keep(msg) {
      const stored = (store.read(":bundle-version") || {}).version;
      if (msg.untrustedFloor || !(Number.isInteger(stored) && stored > msg.version)) {
        store.write(msg.envelope, ":bundle");
        store.write({ version: msg.version }, ":bundle-version");
      }
    },
  };
}
