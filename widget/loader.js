/*! Proactive loader: the one script tag a site owner pastes.
 *
 *   <script async src="https://W/loader.js"
 *           data-bundle="https://W/bundles/site.json"
 *           data-key="ed25519:BASE64"></script>
 *
 * It reads top to bottom as its steps:
 *   1. install the queue stub API  window.proactive(...)
 *   2. capture browser signals with timestamps from the first millisecond
 *   3. load the shell (shell.mjs, same origin as this file), which starts the
 *      worker, owns the clock, keeps the visitor record and renders
 * It defines one global (`proactive`) and never throws into the page.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var existing = window.proactive;
  // Pasting the snippet twice must not start two widgets.
  if (existing && existing.__proactiveLoader) return;

  try {
    // 1. Queue stub: calls made before the shell is ready are queued.
    var queue = existing && existing.q ? Array.prototype.slice.call(existing.q) : [];
    var api = function () {
      if (api.__target) return api.__target.apply(null, arguments);
      queue.push(Array.prototype.slice.call(arguments));
    };
    api.__proactiveLoader = true;
    api.q = queue;
    window.proactive = api;

    // 2. Signals, buffered with their timestamps until the shell takes over.
    var navStart = Math.round(Date.now() - (window.performance ? performance.now() : 0));
    var signals = [];
    var record = function (event) {
      if (api.__signal) api.__signal(event);
      else signals.push(event);
    };
    var capture = {
      navStart: navStart,
      signals: signals,
      listeners: [],
      on: function (target, type, fn, opts) {
        target.addEventListener(type, fn, opts);
        capture.listeners.push([target, type, fn, opts]);
      },
    };
    record({ type: "page_view", t: navStart, url: location.href, referrer: document.referrer || "" });

    // Exit intent (desktop): the pointer leaves the window through the top edge.
    var armedAt = navStart + 1000;
    var lastScroll = 0;
    var exitSent = false; // once per page view
    capture.on(window, "scroll", function () { lastScroll = Date.now(); }, { passive: true });
    capture.on(document, "mouseout", function (e) {
      if (e.relatedTarget || e.toElement) return;
      var now = Date.now();
      if (exitSent || e.clientY > 10 || now < armedAt || now - lastScroll < 300) return;
      exitSent = true;
      record({ type: "exit_intent", t: now });
    }, { passive: true });
    capture.on(document, "visibilitychange", function () {
      record({ type: "visibility", t: Date.now(), hidden: document.visibilityState === "hidden" });
    });

    // Single-page apps: history changes are new pages.
    var lastUrl = location.href;
    var routeChanged = function () {
      if (location.href === lastUrl) return;
      var referrer = lastUrl;
      lastUrl = location.href;
      exitSent = false;
      record({ type: "page_view", t: Date.now(), url: location.href, referrer: referrer, spa: true });
    };
    ["pushState", "replaceState"].forEach(function (name) {
      var original = history[name];
      history[name] = function () {
        var result = original.apply(this, arguments);
        try { routeChanged(); } catch (e) { /* never break the host's navigation */ }
        return result;
      };
      capture.listeners.push([history, name, original, "patch"]);
    });
    capture.on(window, "popstate", routeChanged);
    capture.on(window, "hashchange", routeChanged);

    // 3. The shell, from the same origin as this script.
    var src = script && script.src;
    var config = {
      src: src,
      bundle: script && script.getAttribute("data-bundle"),
      key: script && script.getAttribute("data-key"),
      site: script && script.getAttribute("data-site"),
      endpoint: script && script.getAttribute("data-endpoint"),
      mode: script && script.getAttribute("data-mode"),
    };
    if (!src) {
      console.warn("[proactive] the loader must be included with <script src=…>; widget not started");
      return;
    }
    import(new URL("shell.mjs", src).href)
      .then(function (shell) { shell.start({ api: api, config: config, capture: capture, record: record }); })
      .catch(function (err) {
        console.warn("[proactive] could not load the widget from " + new URL(".", src).href + ": " + (err && err.message));
      });
  } catch (err) {
    try { console.warn("[proactive] widget not started: " + (err && err.message)); } catch (e) { /* nothing */ }
  }
})();
