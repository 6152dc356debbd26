// Verify: the Ed25519 signature check (step 4 of widget/runtime/trust.py's
// order) with WebCrypto. Python opens the envelope and names the candidate
// keys and the signed message; this only says whether a signature matches,
// and Python decides what follows.

function fromBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// `opened`: {message, candidates: [[key, sig], ...]} (base64). Resolves to
// the verdict widget/runtime/trust.py takes: {verdict: "valid" | "invalid" |
// "unsupported" (this browser has no Ed25519), detail}.
export async function verifySignature(opened) {
  const message = fromBase64(opened.message);
  let cryptoError = null;
  let failures = 0;
  for (const [keyB64, sigB64] of opened.candidates) {
    try {
      const key = await crypto.subtle.importKey("raw", fromBase64(keyB64), { name: "Ed25519" }, false, ["verify"]);
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(sigB64), message)) return { verdict: "valid", detail: "" };
    } catch (err) {
      cryptoError = err;
      failures += 1;
    }
  }
  if (cryptoError && failures === opened.candidates.length) {
    const why = typeof crypto === "undefined" || !crypto.subtle ? "WebCrypto needs a secure (https) page" : cryptoError.message;
    return { verdict: "unsupported", detail: why };
  }
  return { verdict: "invalid", detail: "" };
}
