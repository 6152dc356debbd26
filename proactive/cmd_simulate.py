"""`proactive simulate MESSAGES.yaml SCENARIO.json [--explain] [--json]`:
dry-run messages against a visitor journey with the same engine the browser
runs, and print JSON {"shown": [{"message", "t"}], ...}; with `--explain`, a
timeline for people (one line per decision and per message not shown, with
what decided it), or the full traces as JSON with `--explain --json`.

YAML is read here, on the CLI side; the runtime itself is stdlib-only.
Invalid messages are reported one problem per line as file:line: path: text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("messages", type=Path, help="messages file (YAML or JSON)")
    parser.add_argument("scenario", type=Path, help="scenario file (JSON or YAML), times in seconds")
    parser.add_argument("--explain", action="store_true",
                        help="say why each message showed or not, at the instant that decided it")
    parser.add_argument("--arm", action="append", default=[], metavar="MESSAGE=ARM",
                        help="force an experiment's arm (a variant id, or holdout); repeatable")
    parser.add_argument("--json", action="store_true",
                        help="print JSON (with --explain: every condition and gate of every message)")


def _at(seconds: float) -> str:
    return f"{seconds:9.3f} s"


def timeline(result: dict) -> str:
    """The simulation as people read it: each decision in time order with
    the conditions it held on, then each message never delivered with the
    instant it came closest and what kept it back."""
    from proactive.explain_words import describe_condition, why_not

    explain = result.get("explain") or {}
    decisions = sorted([(d["t"], "show", d["message"], d.get("arm")) for d in result["shown"]]
                       + [(d["t"], "email", d["message"], d.get("arm")) for d in result["emails"]]
                       + [(d["t"], "expose", d["message"], d.get("arm")) for d in result.get("exposed") or []],
                       key=lambda d: d[:3])
    lines = []
    for t, action, mid, arm in decisions:
        held = [describe_condition(c) for c in (explain.get(mid) or {}).get("conditions") or []]
        name = f"{mid} [arm {arm}]" if arm is not None else mid
        lines.append(f"{_at(t)}  {action:<5}  {name}: " + ("; ".join(held) or "no conditions"))
    for skipped in result.get("not_sent") or []:
        lines.append(f"{_at(skipped['t'])}  (not sent by a browser: {skipped['type']}, {skipped['why']})")
    lines.sort(key=lambda line: float(line.split(" s ", 1)[0]))
    delivered = {mid for _, action, mid, _ in decisions if action != "expose"}
    for mid, entry in explain.items():
        if mid not in delivered:
            lines.append(f"{'not shown':>11}  {mid}: closest at {entry['at']:g} s: {why_not(mid, entry)}")
    return "\n".join(lines) if lines else "nothing shown, no messages"


def load_document(path: Path):
    """(document, root YAML node for line numbers)."""
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text), yaml.compose(text)


def line_of(root, path: tuple) -> int | None:
    """1-based line of the YAML node at `path` (or of its nearest parent)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for step in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == step:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            child = node.value[step]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def run(args) -> int:
    from widget.runtime.bundle import BundleInvalid
    from widget.runtime.simulate import ScenarioInvalid, simulate

    from proactive import authoring

    # The messages are read as `proactive validate` reads them: every problem
    # as file:line:col, and never a traceback (an impossible date, bad YAML).
    source, problems = authoring.check_file(args.messages)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s); nothing simulated.", file=sys.stderr)
        return 1
    payload, root = source.document, source.root
    try:
        scenario, _ = load_document(args.scenario)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"proactive simulate: {exc}", file=sys.stderr)
        return 2
    arms = {}
    for forced in args.arm:
        mid, sep, arm = forced.partition("=")
        if not sep or not mid or not arm:
            print(f"proactive simulate: --arm {forced}: expected MESSAGE=ARM", file=sys.stderr)
            return 2
        arms[mid.strip()] = arm.strip()
    try:
        result = simulate(payload, scenario, explain=args.explain, arms=arms)
    except BundleInvalid as exc:
        for p in exc.problems:
            line = line_of(root, p.path)
            where = f"{args.messages}:{line}" if line else str(args.messages)
            print(f"{where}: {p}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing simulated.", file=sys.stderr)
        return 1
    except ScenarioInvalid as exc:
        print(f"{args.scenario}: {exc}", file=sys.stderr)
        return 1
    if args.explain and not args.json:
        sys.stdout.write(timeline(result) + "\n")
        return 0
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
