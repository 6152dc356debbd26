// The widget's styles: one constructed stylesheet (strict-CSP friendly: no
// <style>, no style attribute). The site owner's colour goes in through CSSOM
// setProperty (widget/render/render.mjs), never through CSS text.

export const CSS = `
/* !important on :host: a shadow root's important rules beat the page's
   (e.g. "* { all: unset !important }"), its normal ones do not. */
:host { all: initial !important; display: block !important; position: fixed !important; z-index: 2147483000 !important;
  bottom: 20px !important; right: 20px !important;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif !important;
  color: #1f2937 !important; --accent: #4f46e5; --on-accent: #ffffff; --accent-ink: #4f46e5; --radius: 16px;
  -webkit-font-smoothing: antialiased !important; }
:host([data-position="left"]) { right: auto !important; left: 20px !important; }
*, *::before, *::after { box-sizing: border-box; }
button, input, textarea { font: inherit; color: inherit; }
a { color: var(--accent-ink); }
.launcher { position: relative; width: 60px; height: 60px; border: 0; border-radius: 50%; padding: 0; cursor: pointer;
  background: var(--accent); color: var(--on-accent); box-shadow: 0 8px 24px rgba(15,23,42,.28);
  display: grid; place-items: center; transition: transform .15s ease, box-shadow .15s ease; }
.launcher:hover { transform: scale(1.06); box-shadow: 0 10px 28px rgba(15,23,42,.34); }
.launcher:focus-visible { outline: 3px solid var(--accent); outline-offset: 3px; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.launcher .badge { position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 6px;
  border-radius: 10px; background: #ef4444; color: #fff; font-size: 12px; font-weight: 700; line-height: 20px;
  text-align: center; border: 2px solid #fff; }
:host([data-launcher="none"]) .launcher { display: none; }
.stack { position: absolute; bottom: 76px; right: 0; display: flex; flex-direction: column; align-items: flex-end;
  gap: 10px; width: 340px; max-width: calc(100vw - 40px); }
:host([data-position="left"]) .stack { right: auto; left: 0; align-items: flex-start; }
:host([data-launcher="none"]) .stack, :host([data-launcher="none"]) .panel { bottom: 0; }
.card { position: relative; width: 100%; background: #fff; border-radius: var(--radius);
  border: 1px solid rgba(15,23,42,.06); box-shadow: 0 12px 32px rgba(15,23,42,.16), 0 2px 6px rgba(15,23,42,.06);
  padding: 14px 16px 14px; animation: pop .22s cubic-bezier(.2,.8,.2,1); overflow: hidden auto;
  max-height: calc(100vh - 120px); overscroll-behavior: contain; }
.card .sender { display: flex; align-items: center; gap: 10px; margin: 0 28px 8px 0; }
.avatar { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; flex: none; background: var(--accent);
  color: var(--on-accent); display: grid; place-items: center; font-weight: 700; font-size: 14px; }
.sender .name { font-weight: 600; font-size: 13px; color: #111827; }
.sender .role { font-size: 12px; color: #6b7280; }
.text { white-space: normal; overflow-wrap: anywhere; font-size: 15px; color: #111827; }
.card .text { margin-right: 22px; }
.card .sender + .text { margin-right: 0; }
.text a { text-decoration: underline; text-underline-offset: 2px; }
.media { display: block; margin-top: 10px; max-width: 100%; max-height: 220px; border-radius: 12px; object-fit: cover; }
.links { margin: 10px 0 0; padding: 0; list-style: none; display: grid; gap: 4px; }
.links a { font-weight: 500; text-decoration: none; }
.links a:hover, .links a:focus-visible { text-decoration: underline; }
.files { margin: 10px 0 0; padding: 0; list-style: none; display: grid; gap: 6px; }
.file { display: flex; align-items: center; gap: 10px; padding: 8px 10px; border-radius: 10px;
  background: #f3f4f6; color: #111827; text-decoration: none; }
.file:hover, .file:focus-visible { background: #e5e7eb; outline: none; }
.file svg { width: 20px; height: 20px; flex: none; fill: var(--accent); }
.file .fname { font-weight: 500; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.file .fsize { margin-left: auto; color: #6b7280; font-size: 12px; flex: none; }
.buttons { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 12px; }
.btn { display: inline-flex; align-items: center; justify-content: center; min-height: 36px; padding: 7px 14px;
  border-radius: 999px; border: 1.5px solid var(--accent); background: #fff; color: var(--accent-ink);
  font-weight: 600; font-size: 14px; cursor: pointer; text-decoration: none; transition: background .12s ease; }
.btn:hover { background: color-mix(in srgb, var(--accent) 10%, #fff); }
.btn.primary { background: var(--accent); color: var(--on-accent); }
.btn.primary:hover { background: color-mix(in srgb, var(--accent) 88%, #000); }
.btn:focus-visible, .close:focus-visible, .send:focus-visible, .links a:focus-visible, .text a:focus-visible {
  outline: 3px solid color-mix(in srgb, var(--accent) 45%, transparent); outline-offset: 2px; }
.reply { display: flex; gap: 8px; margin-top: 12px; padding-top: 12px; border-top: 1px solid #f1f5f9; }
.reply input { flex: 1; min-width: 0; border: 1px solid #e5e7eb; border-radius: 999px; padding: 8px 14px;
  background: #f9fafb; outline: none; }
.reply input:focus { border-color: var(--accent); background: #fff; }
.close { position: absolute; top: 8px; right: 8px; width: 28px; height: 28px; border: 0; border-radius: 50%;
  background: transparent; color: #6b7280; cursor: pointer; padding: 0; display: grid; place-items: center; }
.close:hover { background: #f3f4f6; color: #111827; }
.close svg { width: 14px; height: 14px; stroke: currentColor; stroke-width: 2.2; fill: none; stroke-linecap: round; }
.panel { position: absolute; bottom: 76px; right: 0; width: 370px; height: min(600px, calc(100vh - 120px));
  display: flex; flex-direction: column; background: #fff; border-radius: 20px; overflow: hidden;
  box-shadow: 0 20px 50px rgba(15,23,42,.25), 0 2px 8px rgba(15,23,42,.08); animation: rise .22s cubic-bezier(.2,.8,.2,1); }
:host([data-position="left"]) .panel { right: auto; left: 0; }
.panel[hidden], .stack[hidden], .rate[hidden] { display: none; }
.head { background: var(--accent); color: var(--on-accent); padding: 16px 52px 16px 18px; position: relative; }
.head .title { font-weight: 700; font-size: 17px; }
.head .status { font-size: 13px; opacity: .9; display: flex; align-items: center; gap: 6px; margin-top: 2px; }
.head .dot { width: 8px; height: 8px; border-radius: 50%; background: #9ca3af; }
.head .dot.online { background: #22c55e; }
.head .close { top: 14px; right: 12px; color: inherit; }
.head .close:hover { background: rgba(255,255,255,.18); color: inherit; }
.log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; background: #f8fafc; }
.bubble { max-width: 85%; padding: 10px 14px; border-radius: 18px; overflow-wrap: anywhere; white-space: pre-wrap; }
.bubble.agent { align-self: flex-start; background: #fff; border: 1px solid #eef2f7; border-bottom-left-radius: 6px; }
.bubble.visitor { align-self: flex-end; background: var(--accent); color: var(--on-accent); border-bottom-right-radius: 6px; }
.bubble.auto { white-space: normal; }
.bubble .who { font-size: 12px; font-weight: 600; color: #6b7280; margin-bottom: 2px; }
.bubble.pending { opacity: .65; }
.bubble.failed { background: #fee2e2; color: #991b1b; }
.note { align-self: center; font-size: 12px; color: #6b7280; text-align: center; }
.bubble[data-time]::after { content: attr(data-time); display: block; margin-top: 4px; font-size: 11px; opacity: .65;
  text-align: right; white-space: nowrap; }
.new-marker { position: sticky; bottom: 0; align-self: center; flex: none; border: 0; border-radius: 999px;
  padding: 6px 14px; background: var(--accent); color: var(--on-accent); font-size: 12px; cursor: pointer;
  box-shadow: 0 4px 12px rgba(15,23,42,.2); }
.new-marker[hidden] { display: none; }
.compose { display: flex; align-items: flex-end; gap: 8px; padding: 10px 12px; border-top: 1px solid #eef2f7; background: #fff; }
.compose textarea { flex: 1; resize: none; border: 1px solid #e5e7eb; border-radius: 20px; padding: 9px 14px;
  max-height: 120px; min-height: 40px; outline: none; background: #f9fafb; line-height: 1.4; }
.compose textarea:focus { border-color: var(--accent); background: #fff; }
.send { width: 40px; height: 40px; border: 0; border-radius: 50%; background: var(--accent); color: var(--on-accent);
  cursor: pointer; display: grid; place-items: center; flex: none; }
.send svg { width: 18px; height: 18px; fill: currentColor; }
.rate { display: flex; gap: 6px; justify-content: center; align-items: center; padding: 6px 0 4px; background: #f8fafc; }
.rate .ask { font-size: 12px; color: #6b7280; margin-right: 2px; }
.rate button { border: 1px solid #e5e7eb; background: #fff; border-radius: 999px; padding: 4px 10px; cursor: pointer; font-size: 12px; }
.rate button[aria-pressed="true"] { border-color: var(--accent); color: var(--accent-ink); font-weight: 600; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@keyframes pop { from { transform: translateY(10px) scale(.98); opacity: 0; } to { transform: none; opacity: 1; } }
@keyframes rise { from { transform: translateY(16px); opacity: 0; } to { transform: none; opacity: 1; } }
@media (max-width: 480px) {
  :host { bottom: 12px !important; right: 12px !important; }
  :host([data-position="left"]) { left: 12px !important; right: auto !important; }
  .launcher { width: 54px; height: 54px; }
  .stack { position: fixed; left: 12px; right: 12px; bottom: 78px; width: auto; max-width: none; }
  :host([data-position="left"]) .stack { left: 12px; right: 12px; }
  :host([data-launcher="none"]) .stack { bottom: 12px; } /* no launcher: the card keeps off the screen's edge */
  .panel, :host([data-position="left"]) .panel { position: fixed; inset: 0; width: auto; height: auto; border-radius: 0; }
  :host([data-open]) .launcher { display: none; }
  .text { font-size: 16px; }
  .compose textarea, .reply input { font-size: 16px; }
}
@media (prefers-reduced-motion: reduce) {
  .card, .panel { animation: none; }
  .launcher, .btn { transition: none; }
  .launcher:hover { transform: none; }
}
`;
