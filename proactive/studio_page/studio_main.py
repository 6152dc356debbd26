# The studio's Python, in a Web Worker of the page (PyScript on the pinned
# Pyodide): the project's validator, engine and explanations, from the wheel
# the studio serves beside the page (fetched by PyScript's `files` into this
# worker's file system; no package index is contacted). studio.js calls
# `sync.check(document_json)` on every keystroke and
# `sync.simulate(document_json, journey_json)` for Simulate.
import importlib
import sysconfig
import zipfile

from polyscript import xworker  # the worker bridge under PyScript (`pyscript` itself is not importable in a PyWorker started with our own Pyodide)

sync = xworker.sync

with zipfile.ZipFile("studio.whl") as wheel:
    wheel.extractall(sysconfig.get_paths()["purelib"])
importlib.invalidate_caches()

from proactive import studio_logic  # noqa: E402
# Imported now, in the background of a usable page, rather than on the first Simulate
# (a few seconds of compiling in Pyodide).
from proactive import cmd_simulate  # noqa: E402,F401
from widget.runtime import content, simulate  # noqa: E402,F401

sync.check = studio_logic.check_json
sync.simulate = studio_logic.simulate_json
sync.preview = studio_logic.preview_json
sync.conformance = studio_logic.conformance_json
