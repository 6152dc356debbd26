// The configuration: the script tag's data- attributes (read by loader.js),
// checked once, in one object for the whole widget. docs/embedding.md lists
// every attribute.

import { bootConfig } from "./boot.mjs";
import { consentMode } from "./consent.mjs";

const APPEARANCE = ["color", "position", "launcher", "title"];

/** data-endpoint="off" (or none/false): a purely static host, no endpoint. */
export function endpointOff(value) {
  return typeof value === "string" && /^(off|none|false)$/i.test(value.trim());
}

// data-revalidate: seconds (default REVALIDATE_S, at least 1), or off/0.
export const REVALIDATE_S = 300;
function revalidateSeconds(value) {
  if (value === null || value === undefined || value === "") return REVALIDATE_S;
  if (endpointOff(value) || String(value).trim() === "0") return 0;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.max(1, n) : REVALIDATE_S;
}

// `tag`: what the loader read. `problems` lists what stops the widget.
export function readConfig(tag) {
  const problems = [];
  let bundle = null;
  if (!tag.bundle) problems.push("data-bundle is missing");
  else {
    try {
      bundle = new URL(tag.bundle, document.baseURI).href;
      if (!/^https?:$/.test(new URL(bundle).protocol)) problems.push(`data-bundle ${tag.bundle} is not an http(s) URL`);
    } catch {
      problems.push(`data-bundle ${JSON.stringify(tag.bundle)} is not a URL`);
    }
  }
  const keys = (tag.key || "").split(",").map((k) => k.trim()).filter(Boolean);
  if (!keys.length) problems.push("data-key is missing (expected ed25519:BASE64)");
  for (const k of keys) {
    if (!/^ed25519:[A-Za-z0-9+/]{43}=$/.test(k)) problems.push(`data-key ${JSON.stringify(k.slice(0, 60))} is malformed (expected ed25519: and 44 base64 characters)`);
  }
  const consent = consentMode(tag.consent);
  if (tag.consent && !consent) problems.push(`data-consent ${JSON.stringify(String(tag.consent).slice(0, 40))} is not "required" or "tcf"`);
  const appearance = {};
  for (const key of APPEARANCE) if (tag[key]) appearance[key] = tag[key];
  return {
    problems,
    bundle,
    keys: keys.join(","),
    site: tag.site || null,
    src: tag.src, // the loader's URL: the widget's origin
    mode: tag.mode, // "main": the runtime on the page instead of a worker
    snapshot: tag.snapshot, // "off": no memory snapshot kept in this browser
    endpoint: tag.endpoint, // another backend, or "off"
    chat: !endpointOff(tag.endpoint), // no endpoint: no conversation (no reply field, no chat panel)
    widget: tag.widget || null, // which of the bundle's `widgets`
    revalidate: revalidateSeconds(tag.revalidate), // seconds between bundle revalidations on an open page; 0: never
    consent, // "required" | "tcf" | null: nothing stored before consent (./consent.mjs)
    consentMessages: /^none$/i.test((tag.consentMessages || "").trim()) ? "none" : "show", // before consent
    appearance, // overrides the bundle's widget entry
    boot: bootConfig(tag), // {mode: "auto" | "now", leadMs}: when the engine starts (./boot.mjs)
  };
}

// The appearance for the renderer: the bundle's widget entry (data-widget, or
// the first), overridden by the tag's own attributes.
export function appearanceFor(config, bundle) {
  const widgets = (bundle && bundle.widgets) || [];
  const entry = widgets.find((w) => w.id === config.widget) || widgets[0] || {};
  return { ...entry, ...config.appearance };
}
