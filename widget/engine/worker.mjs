// The module worker's entry: wires the runtime host to postMessage.
import { createHost } from "./host.mjs";

const host = createHost((msg) => self.postMessage(msg));
self.onmessage = (event) => host.receive(event.data || {});
self.postMessage({ type: "booted" });
