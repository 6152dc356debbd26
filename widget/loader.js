/*! Proactive loader: the one script tag a site owner pastes.
 *
 *   <script async src="https://W/loader.js"
 *           data-bundle="https://W/bundles/site.json"
 *           data-key="ed25519:BASE64">   (and the closing script tag)
 *
 * It reads top to bottom as its steps:
 *   1. install the queue stub API  window.proactive(...)
 *   2. capture browser signals with timestamps from the first millisecond:
 *      page views (incl. single-page-app route changes), exit intent (desktop
 *      pointer through the top edge; touch heuristics), visibility
 *   3. at the page's load event, load the shell (shell/shell.mjs, same origin as this file), which starts
 *      the worker, owns the clock, keeps the visitor record and renders
 * It defines one global (`proactive`) and never throws into the page.
 * docs/embedding.md documents every data- attribute read here.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var existing = window.proactive;
  // Pasting the snippet twice must not start two widgets.
  if (existing && existing.__proactiveLoader) {
    try { console.warn("[proactive] the widget's script tag is on this page more than once; only the first one runs"); } catch (e) { /* nothing */ }
    return;
  }

  try {
    // 1. Queue stub: calls made before the shell is ready are queued, with the
    //    ones the site's snippet queued before this script arrived first.
    var queue = existing && existing.q ? Array.prototype.slice.call(existing.q) : [];
    var api = function () {
      if (api.__target) return api.__target.apply(null, arguments);
      queue.push(Array.prototype.slice.call(arguments));
      return undefined;
    };
    api.__proactiveLoader = true;
    api.q = queue;
    window.proactive = api;

    // 2. Signals, buffered with their timestamps until the shell takes over.
    var attr = function (name) { return script ? script.getAttribute("data-" + name) : null; };
    var off = function (name) { return /^(off|false|0|no)$/i.test(attr(name) || ""); };
    var number = function (name, fallback) {
      var n = parseFloat(attr(name));
      return isFinite(n) && n >= 0 ? n : fallback;
    };
    var options = {
      sensitivity: number("exit-sensitivity", 10),       // px from the top edge
      armDelay: number("exit-delay", 1) * 1000,           // ms after a page view
      scrollQuiet: 500,                                   // ms after a scroll
      scrollUp: !off("exit-scroll-up"),                   // touch: fast scroll back up
      tabReturn: !off("exit-tab-return"),                 // touch: back after the tab was hidden
      scrollUpWindow: 250,                                // ms
      scrollUpShare: 0.25,                                // of the viewport height
      tabHiddenMin: 1000,                                 // ms
    };
    var touch = false;
    try { touch = !!(window.matchMedia && matchMedia("(pointer: coarse)").matches); } catch (e) { /* desktop */ }

    // Time on page counts from navigation start: now minus the time since it.
    // document.timeline trails performance.now() by at most a frame in a
    // browser, and test clocks leave it alone (Playwright's page.clock makes
    // performance.now() count from the clock's installation, not this page's).
    var sinceNavigation = function () {
      var perf = window.performance && performance.now ? performance.now() : 0;
      var frame = document.timeline ? document.timeline.currentTime : null;
      return typeof frame === "number" && frame >= 0 && frame < perf ? frame : perf;
    };
    var navStart = Math.round(Date.now() - sinceNavigation());
    var signals = [];
    var record = function (event) {
      if (api.__signal) api.__signal(event);
      else signals.push(event);
    };
    var capture = {
      navStart: navStart,
      signals: signals,
      options: options,
      touch: touch,
      listeners: [],
      on: function (target, type, fn, opts) {
        target.addEventListener(type, fn, opts);
        capture.listeners.push([target, type, fn, opts]);
      },
    };
    var guarded = function (fn) {
      return function (e) {
        try { fn(e); } catch (err) { /* a signal is never worth an error on the host page */ }
      };
    };

    // Page views: this document, then every single-page-app route change.
    var pageStart = navStart;
    var exitSent = false; // exit intent: once per page view, whatever detected it
    var lastUrl = location.href;
    var first = { type: "page_view", t: navStart, url: location.href, referrer: document.referrer || "" };
    if (document.visibilityState === "hidden") first.hidden = true; // opened in a background tab
    record(first);
    // Hash routers (#/path, #!/path) make pages; an in-page anchor (#faq) does not.
    var pageKey = function (href) {
      var i = href.indexOf("#");
      var route = i >= 0 && /^#[\/!]/.test(href.slice(i));
      return i < 0 || route ? href : href.slice(0, i);
    };
    var routeChanged = function () {
      if (location.href === lastUrl) return;
      if (pageKey(location.href) === pageKey(lastUrl)) {
        lastUrl = location.href;
        return;
      }
      var referrer = lastUrl;
      lastUrl = location.href;
      pageStart = Date.now();
      exitSent = false;
      scrolls = [];
      record({ type: "page_view", t: pageStart, url: lastUrl, referrer: referrer, spa: true });
    };
    ["pushState", "replaceState"].forEach(function (name) {
      var original = history[name];
      if (typeof original !== "function") return;
      var patched = function () {
        var result = original.apply(this, arguments);
        if (!patched.disabled) {
          try { routeChanged(); } catch (e) { /* never break the host's navigation */ }
        }
        return result;
      };
      history[name] = patched;
      capture.listeners.push([history, name, original, patched]);
    });
    capture.on(window, "popstate", guarded(routeChanged));
    capture.on(window, "hashchange", guarded(routeChanged));

    // Exit intent.
    var exit = function (how, now) {
      if (exitSent || now < pageStart + options.armDelay) return;
      exitSent = true;
      record({ type: "exit_intent", t: now, how: how });
    };
    // Desktop: the pointer leaves the window through the top edge.
    var lastScroll = -Infinity;
    var scrolls = []; // recent [t, scrollY] samples (touch: fast scroll back up)
    capture.on(window, "scroll", guarded(function () {
      var now = Date.now();
      lastScroll = now;
      if (!touch || !options.scrollUp) return;
      var y = window.scrollY || window.pageYOffset || 0;
      while (scrolls.length && now - scrolls[0][0] > options.scrollUpWindow) scrolls.shift();
      scrolls.push([now, y]);
      var highest = 0;
      for (var i = 0; i < scrolls.length; i++) if (scrolls[i][1] > highest) highest = scrolls[i][1];
      if (highest - y >= options.scrollUpShare * (window.innerHeight || 600)) exit("scroll_up", now);
    }), { passive: true });
    capture.on(document, "mouseout", guarded(function (e) {
      if (e.relatedTarget || e.toElement) return;
      var now = Date.now();
      if (e.clientY > options.sensitivity || now - lastScroll < options.scrollQuiet) return;
      exit("pointer", now);
    }), { passive: true });
    capture.on(window, "pagehide", guarded(function () {
      record({ type: "page_hide", t: Date.now() });
    }));
    // Touch: coming back to the tab after it was hidden (another app or tab).
    var hiddenAt = null;
    // Visits: a page shown keeps the visitor present; hidden or left, away.
    capture.on(document, "visibilitychange", guarded(function () {
      var now = Date.now();
      record({ type: "visibility", t: now, state: document.visibilityState === "hidden" ? "hidden" : "visible" });
      if (document.visibilityState === "hidden") {
        hiddenAt = now;
        return;
      }
      var away = hiddenAt === null ? 0 : now - hiddenAt;
      hiddenAt = null;
      if (touch && options.tabReturn && away >= options.tabHiddenMin) exit("tab_return", now);
    }));

    // 3. The shell, from the same origin as this script.
    var src = script && script.src;
    var config = {
      src: src,
      bundle: attr("bundle"),
      key: attr("key"),
      site: attr("site"),
      endpoint: attr("endpoint"),
      mode: attr("mode"),
      snapshot: attr("snapshot"), // "off": no memory snapshot kept in this browser
      revalidate: attr("revalidate"), // seconds between bundle revalidations on an open page
      consent: attr("consent"), // "required" | "tcf": nothing stored before consent
      consentMessages: attr("consent-messages"), // "none": nothing shown before consent
      boot: attr("boot"), // "now": the engine starts at the load event (default: just in time)
      bootLead: attr("boot-lead"), // seconds the engine starts before the first possible message
      // appearance (widget/render/render.mjs): override the bundle's `widgets` entry
      widget: attr("widget"),
      color: attr("color"),
      position: attr("position"),
      launcher: attr("launcher"),
      title: attr("title"),
    };
    if (!src) {
      console.warn("[proactive] the loader must be included with <script src=…>; widget not started");
      return;
    }
    var shellUrl = new URL("shell/shell.mjs", src).href;
    // The shell's modules, filled in by the build (a JSON list of their
    // served names): imported side by side, so that they arrive in one round
    // trip instead of one per level of imports. Unbuilt, the shell's own
    // imports fetch them.
    var SHELL_GRAPH = "__SHELL_GRAPH__";
    var importShell = function () {
      var graph = [];
      try { graph = JSON.parse(SHELL_GRAPH); } catch (e) { /* unbuilt: the shell's imports fetch them */ }
      for (var i = 0; i < graph.length; i++) {
        import(new URL(graph[i], src).href).catch(function () { /* the shell's import reports it */ });
      }
      import(shellUrl)
        .then(function (shell) { shell.start({ api: api, config: config, capture: capture, record: record }); })
        .catch(function (err) {
          var warn = function (why) {
            console.warn("[proactive] could not load the widget from " + new URL(".", src).href + ": " + why);
          };
          var failed = (err && err.message) || String(err);
          var opaque = false;
          try { opaque = self.origin === "null"; } catch (e) { /* not opaque */ }
          if (opaque) failed += " (this page runs in an opaque origin, e.g. a sandboxed iframe without allow-same-origin: requests carry" +
            " \"Origin: null\", which the widget's origin must allow, and the page has no storage)";
          if (opaque) return warn(failed);
          if (new URL(src).origin === location.origin || typeof fetch !== "function") return warn(failed);
          // A module from another origin needs CORS: name the missing header
          // when the server answers at all but a CORS request to it fails.
          fetch(shellUrl, { mode: "cors", credentials: "omit" })
            .then(function (r) { warn(r.ok ? failed : "HTTP " + r.status + " for " + shellUrl); })
            .catch(function () {
              return fetch(shellUrl, { mode: "no-cors", credentials: "omit" }).then(function () {
                warn("its server sends no Access-Control-Allow-Origin header for " + location.origin +
                     " (the widget is on another origin than this page: serve it with CORS, e.g. " +
                     "Access-Control-Allow-Origin: *, see docs/publishing.md)");
              });
            })
            .catch(function () { warn(failed); });
        });
    };
    // When: at the page's load event (at once when the page has loaded
    // already), so that the shell's modules and the bundle never compete
    // with the page's own resources (its LCP image, its scripts); the
    // signals are captured from the first millisecond regardless. A page
    // whose load event is late (a request that never ends) gets the shell
    // SHELL_LATEST_MS after this script ran, at the latest, and the shell
    // does not wait for that load again (capture.loadDeadline).
    var SHELL_LATEST_MS = 10000;
    var latest = 0;
    var shellLoading = false;
    var loadShell = function () {
      if (shellLoading) return;
      shellLoading = true;
      try {
        window.removeEventListener("load", loadShell);
        clearTimeout(latest);
        importShell();
      } catch (err) {
        try { console.warn("[proactive] widget not started: " + ((err && err.message) || err)); } catch (e) { /* nothing */ }
      }
    };
    capture.loadDeadline = Date.now() + SHELL_LATEST_MS;
    if (document.readyState === "complete") {
      loadShell();
    } else {
      window.addEventListener("load", loadShell);
      latest = setTimeout(loadShell, SHELL_LATEST_MS);
    }
  } catch (err) {
    try { console.warn("[proactive] widget not started: " + (err && err.message)); } catch (e) { /* nothing */ }
  }
})();
