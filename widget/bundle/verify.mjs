// Verify: the Ed25519 signature check (step 4 of widget/runtime/trust.py's
// order) with WebCrypto. Python opens the envelope and names the candidate
// keys and the signed message; this only says whether a signature matches.

function fromBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// `opened`: {message, candidates: [[key, sig], ...]} (base64). Resolves to
// {ok: true} or {ok: false, reason, error}.
export async function verifySignature(opened) {
  const message = fromBase64(opened.message);
  let cryptoError = null;
  let failures = 0;
  for (const [keyB64, sigB64] of opened.candidates) {
    try {
      const key = await crypto.subtle.importKey("raw", fromBase64(keyB64), { name: "Ed25519" }, false, ["verify"]);
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(sigB64), message)) return { ok: true };
    } catch (err) {
      cryptoError = err;
      failures += 1;
    }
  }
  if (cryptoError && failures === opened.candidates.length) {
    const why = typeof crypto === "undefined" || !crypto.subtle ? "WebCrypto needs a secure (https) page" : cryptoError.message;
    return { ok: false, reason: "no_ed25519", error: `no_ed25519: this browser cannot verify Ed25519 signatures (${why})` };
  }
  return { ok: false, reason: "bad_signature", error: "bad_signature: the signature does not match the payload" };
}
