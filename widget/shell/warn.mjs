// The widget's one way to speak on the page's console: each text once,
// prefixed "[proactive]". Nothing of the widget throws into the host page.

const warned = new Set();

export function warnOnce(text) {
  if (warned.has(text)) return;
  warned.add(text);
  console.warn(`[proactive] ${text}`);
}
