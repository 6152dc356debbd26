"""The studio's logic that runs in the page, under PyScript (Pyodide), and
in the studio server alike: validate a document as `proactive validate`
does, and simulate a journey with the explanation `proactive simulate
--explain` prints. The same functions, the same modules: the validator and
engine of widget/runtime, the words of proactive/explain_words.py.

Takes and returns JSON text, so the page calls it with strings."""

from __future__ import annotations

import json

from proactive import authoring


def check(document) -> list[dict]:
    """Every problem and warning of a document, each with its path into it."""
    from widget.runtime import bundle

    out = []
    for p in bundle.validate(document):
        out.append({"line": 0, "col": 0, "where": authoring.format_path(p.path), "path": list(p.path),
                    "message": p.message + authoring._suggestion(p.message, p.expected), "expected": p.expected,
                    "warning": False})
    messages = document.get("messages") if isinstance(document, dict) else None
    if not out and isinstance(messages, list):
        for p in authoring.warnings(_PathSource(document)):
            out.append({"line": 0, "col": 0, "where": p.where, "path": list(p.path), "message": p.message,
                        "expected": p.expected, "warning": True})
    return out


class _PathSource:
    """What `authoring.warnings` needs of a Source, for a document that has
    no file: problems keep their path instead of a line."""

    def __init__(self, document):
        self.document = document

    def problem(self, path, message, expected=""):
        return _PathProblem(tuple(path), message, expected)


class _PathProblem:
    def __init__(self, path: tuple, message: str, expected: str):
        self.path, self.message, self.expected = path, message, expected
        self.where = authoring.format_path(path)
        self.line = self.col = 0


def simulate(document, journey) -> dict:
    """{"result", "timeline"} or {"error"}: the journey through the engine,
    explained in `proactive simulate --explain`'s words."""
    from proactive.cmd_simulate import timeline
    from widget.runtime import bundle
    from widget.runtime.simulate import ScenarioInvalid
    from widget.runtime.simulate import simulate as run

    if any(not p["warning"] for p in check(document)):
        return {"error": "fix the problems first: the simulation runs valid messages only"}
    try:
        result = run(document, journey or {}, explain=True)
    except (ScenarioInvalid, bundle.BundleInvalid) as exc:
        return {"error": str(exc)}
    return {"result": result, "timeline": timeline(result)}


def check_json(text: str) -> str:
    return json.dumps(check(json.loads(text)))


def simulate_json(document: str, journey: str) -> str:
    return json.dumps(simulate(json.loads(document), json.loads(journey)))


def preview(document, index, language=None, variant=None) -> dict:
    """What the widget's renderer draws for message `index`: {"content"
    (resolved as the engine resolves it for a visitor whose language is
    `language`: the variant chosen, placeholders at their fallbacks),
    "languages" (the variants authored, in order), "variants" (an
    experiment's A/B variant ids, in order; [] for a plain message),
    "variant" (the one drawn), "appearance" (its widget's colour, position,
    launcher, title)} or {"error"}. An experiment draws its A/B variant
    `variant` (default: the first)."""
    from widget.runtime import content

    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list) or not isinstance(index, int) or not 0 <= index < len(messages) \
            or not isinstance(messages[index], dict):
        return {"error": "no such message"}
    message = messages[index]
    body, arms, arm = message.get("content", {}), [], None
    if isinstance(message.get("variants"), list):
        arms = [v for v in message["variants"] if isinstance(v, dict)]
        if not arms:
            return {"error": "the experiment has no variants yet"}
        chosen = next((v for v in arms if v.get("id") == variant), arms[0])
        body, arm = chosen.get("content", {}), chosen.get("id")
    compiled = content.check(body, (), lambda *problem: None)
    widgets = content.appearance(document)
    wanted = message.get("widget")
    look = next((w for w in widgets if w["id"] == wanted), widgets[0] if widgets else {})
    return {"content": content.resolve(compiled, [language] if language else []),
            "languages": [x for x in compiled["order"] if x], "appearance": look,
            "variants": [str(v.get("id", "")) for v in arms], "variant": arm}


def preview_json(document: str, index: int, language: str, variant: str = "") -> str:
    return json.dumps(preview(json.loads(document), int(index), language or None, variant or None))


def conformance_json(cases: str) -> str:
    """The conformance cases file (tests/cases.json) run by this
    interpreter: {"total", "failures": [[name, expected, actual], ...]}."""
    from widget.runtime import conformance

    results = conformance.run_cases(cases)
    return json.dumps({"total": len(results), "failures": [list(r) for r in results if r[1] != r[2]]}, default=str)
