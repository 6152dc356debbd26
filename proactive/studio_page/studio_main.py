# The studio's Python, in the page (PyScript on the pinned Pyodide): the
# project's validator, engine and explanations, installed from the wheel the
# studio serves beside the page (no package index is contacted). studio.js
# calls `studioPython.check(json)` on every keystroke and
# `studioPython.simulate(document, journey)` for Simulate.
import json
import sysconfig

from pyodide.ffi import create_proxy, to_js
from pyodide.http import pyfetch
from pyscript import window

WHEEL = json.loads(window.document.body.dataset.studioWheel)

response = await pyfetch(WHEEL)   # noqa: F704 - PyScript runs this module with top-level await
await response.unpack_archive(extract_dir=sysconfig.get_paths()["purelib"], format="zip")  # noqa: F704

from proactive import studio_logic  # noqa: E402

api = window.Object.new()
api.check = create_proxy(studio_logic.check_json)
api.simulate = create_proxy(studio_logic.simulate_json)
window.studioPython = api
window.dispatchEvent(window.CustomEvent.new("studio-python", to_js({"detail": {"ready": True}})))
