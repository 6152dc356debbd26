// Fetch: the signed bundle from data-bundle, through the HTTP cache
// ("no-cache" revalidates with If-None-Match, so an unchanged bundle costs a
// 304), at most BUNDLE_MAX_BYTES + 1 bytes, within BUNDLE_TIMEOUT_MS.

import { BUNDLE_MAX_BYTES } from "../constants.mjs";

const BUNDLE_TIMEOUT_MS = 8000; // a slower bundle endpoint is reported; the cached bundle runs meanwhile

// {bytes} or {problem}; never throws.
export async function fetchBundle(url) {
  if (!url) return { problem: "data-bundle is missing" };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), BUNDLE_TIMEOUT_MS);
  try {
    const response = await fetch(url, { cache: "no-cache", credentials: "omit", signal: controller.signal });
    if (!response.ok) return { problem: `bundle ${url}: HTTP ${response.status}` };
    return { bytes: await readCapped(response, BUNDLE_MAX_BYTES + 1) };
  } catch (err) {
    const why = err && err.name === "AbortError" ? `no answer within ${BUNDLE_TIMEOUT_MS / 1000} s` : `${err && err.message}`;
    return { problem: `bundle ${url} could not be fetched (${why})` };
  } finally {
    clearTimeout(timer);
  }
}

// At most `limit` bytes: an oversized answer is neither downloaded in full
// nor parsed (trust.py then names it too_large from the first limit bytes).
async function readCapped(response, limit) {
  const declared = Number(response.headers.get("content-length"));
  if (!response.body || (declared > 0 && declared <= limit)) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const out = new Uint8Array(limit);
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    const take = Math.min(value.length, limit - size);
    out.set(value.subarray(0, take), size);
    size += take;
  }
  reader.cancel().catch(() => {});
  return out.slice(0, size);
}
