"""Values the Python runtime and the browser modules share: this is their one
source. The build writes them into the browser side as the generated module
`constants.mjs` (build/build.py, `constants_module`); the JS modules import
it, and tests/test_constants.py fails when a copy appears or drifts.

Plain literals only: the build reads this file without importing the runtime.
"""

from __future__ import annotations

# A visit ends 30 minutes after a page of the site was last shown (docs/rules.md, "Visits").
VISIT_GAP_MS = 30 * 60 * 1000

# Exit intent: none in a page's first EXIT_DELAY_S seconds unless the tag's
# data-exit-delay says otherwise (widget/loader.js reads it; simulate applies
# it; tests/test_constants.py checks the loader's default against it).
EXIT_DELAY_S = 1

# The visitor record's format: part of its localStorage key (proactive:vN:site).
RECORD_VERSION = 1

# The size cap on a signed bundle, checked before parsing (trust.py step 1);
# the browser stops reading one byte after it.
BUNDLE_MAX_BYTES = 1024 * 1024

# A chat rating's values (the `rating` rule, the `rating` event, the endpoint).
RATINGS = ("great", "average", "poor")

# The events the engine reads (Engine._apply, plus `tick`, a wake-up);
# docs/architecture.md describes their fields. Other signals reach only the
# site's handlers.
ENGINE_EVENTS = (
    "page_view", "exit_intent", "widget_open", "widget_close", "visitor_message", "agent_message",
    "rating", "dismiss", "click", "team", "identify", "geo", "context", "record_sync", "chat_history",
    "claim", "visibility", "page_hide", "tick",
)

# What the browser gets: name → value (the build writes these, and only these).
SHARED = {
    "VISIT_GAP_MS": VISIT_GAP_MS,
    "RECORD_VERSION": RECORD_VERSION,
    "BUNDLE_MAX_BYTES": BUNDLE_MAX_BYTES,
    "RATINGS": RATINGS,
    "ENGINE_EVENTS": ENGINE_EVENTS,
}
