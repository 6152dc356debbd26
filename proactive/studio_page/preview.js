// The card preview of the editor (docs/studio.md, *Preview*): the message
// as a visitor sees it, drawn by the widget's own renderer
// (widget/render/render.mjs, in its shadow root, with its stylesheet and
// words), at desktop and phone width, for each language variant, in its
// widget's colours. The content is resolved by the engine's own code
// (widget/runtime/content.py, through proactive/studio_logic.py `preview`):
// the variant a visitor of that language gets, placeholders at their
// fallbacks; for an experiment, the A/B variant picked (default: the first).
// Redrawn after every change, with the live validation.

import { createRenderer } from "./widget/render/render.mjs";
import { field, h, select } from "./studio.js";

const FRAMES = [["desktop", "Desktop"], ["phone", "Phone (390 px)"]];
const STILL = ".card, .panel { animation: none !important; }"; // no "pop" on every keystroke

// `resolve(language, variant)` → {content, languages, variants, variant, appearance} or {error}.
export function createPreview(resolve) {
  let language = "";
  let languages = [];
  let variant = "";
  let variants = [];
  let drawn = null;        // {language, renderers: [{frame, renderer}]}
  let ticket = 0;
  const picker = h("div", {class: "inline preview-language"});
  const armPicker = h("div", {class: "inline preview-variant"});
  const note = h("p", {class: "muted preview-note"});
  const frames = FRAMES.map(([kind, label]) => {
    const frame = h("div", {class: `preview-frame ${kind}`, "data-frame": kind, role: "img",
      "aria-label": `The card at ${kind} width`});
    return [frame, h("figure", {class: "preview-figure"}, h("figcaption", {text: label}), frame)];
  });
  const element = h("section", {id: "preview", class: "card", "aria-labelledby": "preview-title"},
    h("h3", {id: "preview-title", text: "Preview"}), armPicker, picker, note,
    h("div", {class: "preview-frames"}, frames.map(([, figure]) => figure)));

  function renderers() {
    if (drawn && drawn.language === language) return drawn.renderers;
    if (drawn) for (const {renderer} of drawn.renderers) renderer.destroy();
    const wanted = language ? [language] : null;
    drawn = {language, renderers: frames.map(([frame]) => {
      frame.replaceChildren();
      const renderer = createRenderer({container: frame, languages: wanted, onClick: () => {}, onDismiss: () => {}});
      const still = new CSSStyleSheet();
      still.replaceSync(STILL);
      const root = renderer.root();
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, still];
      return {frame, renderer};
    })};
    return drawn.renderers;
  }

  function showPicker() {
    if (languages.length < 2) { picker.replaceChildren(); return; }
    if (!languages.includes(language)) language = languages[0];
    picker.replaceChildren(field("Preview language", select(languages.map((l) => [l, l]), language,
      (v) => { language = v; update(last); })));
  }

  function showArmPicker() {
    if (!variants.length) { armPicker.replaceChildren(); return; }
    armPicker.replaceChildren(field("Preview A/B variant", select(variants.map((v) => [v, v]), variant,
      (v) => { variant = v; update(last); })));
  }

  let last = null;
  // Draw the message at `index` of the document (the answer to an older
  // change is dropped).
  async function update(message) {
    const mine = ++ticket;
    last = message;
    const out = await resolve(language, variant);
    if (mine !== ticket || !element.isConnected) return;
    if (out.error) { note.textContent = `No preview: ${out.error}`; return; }
    variants = out.variants || [];
    variant = out.variant || "";
    showArmPicker();
    languages = out.languages;
    if (!languages.includes(language)) language = out.content.lang || "";
    showPicker();
    if (mine !== ticket) return;
    const content = out.content;
    note.textContent = message && message.type === "email"
      ? "An email is handed to your mail system, never shown on the page: this is its text as a card."
      : content.lang ? `As a visitor whose browser speaks ${content.lang} sees it.` : "As a visitor sees it.";
    for (const {renderer} of renderers()) {
      renderer.configure(out.appearance || {});
      renderer.show({message: (message && message.id) || "preview", content});
    }
  }

  return {element, update};
}
