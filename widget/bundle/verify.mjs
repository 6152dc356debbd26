// Verify: the Ed25519 signature check (step 4 of widget/runtime/trust.py's
// order) with WebCrypto. Python opens the envelope and names the candidate
// keys and the signed message; this only says whether a signature matches,
// and Python decides what follows.

export function fromBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// `opened`: {message, candidates: [[key, sig], ...]} (base64). Resolves to
// the verdict widget/runtime/trust.py takes: {verdict: "valid" | "invalid" |
// "unsupported" (this browser has no Ed25519), detail}.
export function verifySignature(opened) {
  return verifyBytes(fromBase64(opened.message), opened.candidates.map(([k, s]) => [fromBase64(k), fromBase64(s)]));
}

// The same with bytes: `message` and [[raw key, signature], ...] Uint8Arrays.
export async function verifyBytes(message, candidates) {
  let cryptoError = null;
  let failures = 0;
  for (const [key, sig] of candidates) {
    try {
      const pinned = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
      if (await crypto.subtle.verify({ name: "Ed25519" }, pinned, sig, message)) return { verdict: "valid", detail: "" };
    } catch (err) {
      cryptoError = err;
      failures += 1;
    }
  }
  if (cryptoError && failures === candidates.length) {
    const why = typeof crypto === "undefined" || !crypto.subtle ? "WebCrypto needs a secure (https) page" : cryptoError.message;
    return { verdict: "unsupported", detail: why };
  }
  return { verdict: "invalid", detail: "" };
}
