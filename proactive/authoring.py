"""Reading a messages file (YAML or JSON) so that every problem can be told as
`file:line:col: where: what is wrong (expected …)`.

PyYAML composes the file into nodes that carry their start marks; the document
is constructed from those same nodes, and the engine's validator
(widget/runtime/bundle.py) reports problems as paths into the document, which
`Source.locate` maps back to nodes. Syntax errors, duplicate keys and the
classic YAML 1.1 surprises (`NO` read as false, `9:30` read as 570) are
reported the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

# Unquoted scalars YAML 1.1 turns into something else than the text written.
_SURPRISES = {"tag:yaml.org,2002:bool": "true/false", "tag:yaml.org,2002:int": "a number",
              "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:null": "null",
              "tag:yaml.org,2002:timestamp": "a date"}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    col: int
    where: str
    message: str
    expected: str = ""

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        tail = f" (expected {self.expected})" if self.expected else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}{tail}"


class AuthoringError(Exception):
    """The file cannot be read as a document at all; `.problems` says where."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def duplicate_keys(root: yaml.Node) -> list[tuple[yaml.Node, str]]:
    """(key node, key) of every mapping key written twice, in the order the
    mappings end in the file (inner ones first): YAML would silently keep the
    last one."""
    out, seen_nodes = [], set()

    def walk(node):
        if id(node) in seen_nodes:
            return   # an alias to a node already walked
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        elif isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                walk(key)
                walk(value)
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        out.append((key, key.value))
                    keys.add(key.value)

    walk(root)
    return out


class _Timestamps:
    def construct_yaml_timestamp(self, node):
        # An impossible date (`2026-13-01`, `2026-02-30`) stays the text
        # written, so the validator reports it at its line instead of PyYAML
        # raising a bare ValueError.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


class _Loader(_Timestamps, yaml.SafeLoader):
    """PyYAML's SafeLoader, pure Python: its error messages are the ones
    `yaml_hint` knows."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(_Timestamps, yaml.CSafeLoader):
        """The same loader on libyaml's parser (several times faster on a
        large file); a file it cannot read is read again by _Loader, for the
        words of its problem."""

    _FastLoader.add_constructor("tag:yaml.org,2002:timestamp", _FastLoader.construct_yaml_timestamp)
else:   # PyYAML without libyaml (the studio page's Pyodide)
    _FastLoader = None


# PyYAML's wording of common slips → (what it means in plain words, where to point).
_YAML_HINTS = (
    ("found character '\\t' that cannot start any token", "problem",
     "a tab character: YAML indents with spaces only; replace the tab with spaces"),
    ("mapping values are not allowed here", "problem",
     "unexpected ':': this line is indented deeper than the key above it, or a text holding ': ' "
     "needs quotes"),
    ("expected <block end>, but found", "problem",
     "the indentation does not line up: keys of one mapping, and the '-' items of one list, "
     "start at the same column as their siblings"),
    ("did not find expected key", "problem",
     "the indentation does not line up: keys of one mapping start at the same column as their siblings"),
    ("did not find expected '-' indicator", "problem",
     "the indentation does not line up: the '-' items of one list start at the same column"),
    ("could not find expected ':'", "problem", "a key without ':' after it (or a text over two lines without quotes)"),
    ("while scanning a quoted scalar", "context", "a quoted text is not closed: its closing quote is missing"),
    ("while parsing a flow", "context", "a '[' or '{' is not closed: its ']' or '}' is missing"),
    ("found undefined alias", "problem", "'*' starts an alias in YAML: put the text in quotes"),
    ("while scanning an alias", "problem", "'*' starts an alias in YAML: put the text in quotes"),
    ("while scanning an anchor", "problem", "'&' starts an anchor in YAML: put the text in quotes"),
    ("found character '@' that cannot start any token", "problem", "a text starting with '@' needs quotes"),
    ("found character '`' that cannot start any token", "problem", "a text starting with '`' needs quotes"),
)


def yaml_hint(exc: yaml.MarkedYAMLError):
    """(mark, plain words) for a YAML syntax error: PyYAML's own text only
    when the slip is not one of the common ones."""
    raw = " ".join(s for s in (exc.context, exc.problem) if s) or "YAML syntax error"
    for needle, at, words in _YAML_HINTS:
        if needle in raw:
            mark = (exc.context_mark if at == "context" else exc.problem_mark) or exc.problem_mark or exc.context_mark
            return mark, words
    return exc.problem_mark or exc.context_mark, f"YAML cannot read this: {raw}"


def did_you_mean(word: str, candidates) -> str:
    """`; did you mean 'X'?` for a near miss among `candidates`, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _suggestion(message: str, expected: str) -> str:
    """A near miss for the validator's `unknown rule 'x'`, `operator 'x' is
    not allowed`, `unknown field 'x'`: candidates are the expected list."""
    m = re.match(r"(?:unknown (?:rule|field|key|value) |operator )'([^']*)'", message)
    if not m or not expected:
        return ""
    words = [w.strip() for w in re.split(r",| \| ", expected.removeprefix("one of ")) if w.strip()]
    return did_you_mean(m.group(1), words)


def format_path(path: tuple) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


class Source:
    """A loaded messages file: the document, its nodes, and problems found
    while reading it (duplicate keys)."""

    def __init__(self, path: Path | str, text: str | None = None):
        self.path = Path(path)
        self.name = str(path)
        if text is None:
            try:
                text = self.path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise AuthoringError([Problem(self.name, 1, 1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
        self.text = text
        self.root: yaml.Node | None = None
        self.problems: list[Problem] = []
        self.document = self._load(text)

    def _load(self, text: str):
        if _FastLoader is not None:
            loader = _FastLoader(text)
            try:
                root = loader.get_single_node()
                if root is not None:
                    document = loader.construct_document(root)
                    self.root = root
                    return self._checked(document)
            except yaml.YAMLError:
                pass   # read again below, for PyYAML's own words and marks
            finally:
                loader.dispose()
        loader = _Loader(text)
        try:
            self.root = loader.get_single_node()
            if self.root is None:
                raise AuthoringError([Problem(self.name, 1, 1, "", "the file is empty", "site, widgets, messages")])
            document = loader.construct_document(self.root)
        except yaml.MarkedYAMLError as exc:
            if self.path.suffix == ".json":
                return self._load_json(text)
            mark, what = yaml_hint(exc)
            raise AuthoringError([Problem(self.name, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1, "",
                                          what, "valid YAML")]) from None
        except yaml.YAMLError as exc:
            raise AuthoringError([Problem(self.name, 1, 1, "", f"YAML error: {exc}")]) from None
        finally:
            loader.dispose()
        return self._checked(document)

    def _checked(self, document):
        for key, name in duplicate_keys(self.root):
            self.problems.append(Problem(self.name, key.start_mark.line + 1, key.start_mark.column + 1, "",
                                         f"duplicate key {name!r} (YAML keeps only the last one)", "each key once"))
        return document

    def _load_json(self, text: str):
        """JSON that YAML 1.1 cannot read (rare: tabs, some escapes)."""
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise AuthoringError([Problem(self.name, exc.lineno, exc.colno, "", exc.msg, "valid JSON")]) from None

    # -- paths to places -------------------------------------------------------
    def node_at(self, path: tuple) -> tuple[yaml.Node | None, yaml.Node | None, int]:
        """(node, key node of the last mapping step, how many steps matched)."""
        node, key_node = self.root, None
        for depth, step in enumerate(path):
            child, key_node = None, None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(step):
                        key_node, child = k, v
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                child = node.value[step]
            if child is None:
                return node, None, depth
            node = child
        return node, key_node, len(path)

    def locate(self, path: tuple, *, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at `path`; of its key when `at_key`;
        of the nearest enclosing node when the path does not exist (a missing field)."""
        if self.root is None:
            return 1, 1
        node, key_node, _ = self.node_at(path)
        mark = (key_node if at_key and key_node is not None else node).start_mark
        return mark.line + 1, mark.column + 1

    def surprise(self, path: tuple) -> str:
        """A hint when the value at `path` is an unquoted scalar YAML read as
        something else than text (`NO` → false)."""
        node, _, depth = self.node_at(path)
        # a plain scalar's style: None from PyYAML's parser, "" from libyaml's
        if depth != len(path) or not isinstance(node, yaml.ScalarNode) or node.style not in (None, ""):
            return ""
        if node.tag not in _SURPRISES or self.path.suffix == ".json":
            return ""
        try:
            became = json.dumps(yaml.safe_load(node.value), default=str)
        except ValueError:
            return ""  # an impossible date: it stayed the text written
        except (yaml.YAMLError, TypeError):
            became = _SURPRISES[node.tag]
        if became == node.value:
            return ""  # `-2` read as -2: nothing surprising to point out
        return f"; YAML reads unquoted {node.value} as {became}: write \"{node.value}\" for the text"

    def problem(self, path: tuple, message: str, expected: str = "") -> Problem:
        at_key = message.startswith(("unknown field", "unknown key", "unknown cap", "duplicate"))
        line, col = self.locate(tuple(path), at_key=at_key)
        where = format_path(tuple(path))
        mid = self._message_id(tuple(path))
        if mid:
            where += f" (message {mid})"
        return Problem(self.name, line, col, where, message + _suggestion(message, expected) + self.surprise(tuple(path)),
                       expected)

    def _message_id(self, path: tuple) -> str | None:
        if len(path) >= 3 and path[0] == "messages" and isinstance(path[1], int):
            messages = self.document.get("messages") if isinstance(self.document, dict) else None
            if isinstance(messages, list) and 0 <= path[1] < len(messages) and isinstance(messages[path[1]], dict):
                mid = messages[path[1]].get("id")
                return mid if isinstance(mid, str) else None
        return None


def load(path: Path | str) -> Source:
    """Read a messages file; AuthoringError if it is not a document at all."""
    return Source(path)


def validate(source: Source) -> list[Problem]:
    """Every problem of the file, in file order: reading problems (duplicate
    keys) and the engine's own validation (widget/runtime/bundle.py)."""
    from widget.runtime import bundle

    problems = list(source.problems)
    for p in bundle.validate(source.document):
        problems.append(source.problem(p.path, p.message, p.expected))
    return sorted(problems, key=lambda p: (p.line, p.col))


# Placeholders the widget fills itself (docs/authoring.md); any other name is
# an identify attribute, so a near miss of these is most likely a typo.
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|[^{}]*)?\}\}")


def _builtin_placeholders() -> tuple[str, ...]:
    from widget.runtime.urls import UTM_KEYS

    return ("city", "country", *UTM_KEYS)


def warnings(source: Source) -> list[Problem]:
    """What is valid but most likely not meant: a placeholder whose name is a
    near miss of one the widget fills (`{{utm_sourse|friend}}` always shows
    `friend`, unless the page identifies the visitor with that attribute),
    and conditions a first-time visitor cannot meet (`rule_warnings`)."""
    builtin = _builtin_placeholders()
    found: list[Problem] = []

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, path + (i,))
        elif isinstance(value, str):
            for m in _PLACEHOLDER.finditer(value):
                name = m.group(1).lower()
                if name in builtin or name.startswith("user."):
                    continue
                hint = did_you_mean(name, builtin)
                if hint or name.startswith("utm_"):
                    p = source.problem(path, f"warning: unknown placeholder {{{{{m.group(1)}}}}}: no UTM parameter or "
                                             f"geo value has this name, only proactive('identify', …) can fill it{hint}",
                                       ", ".join(builtin) + " or an identify attribute")
                    found.append(p)

    messages = source.document.get("messages") if isinstance(source.document, dict) else None
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and "content" in message:
            walk(message["content"], ("messages", i, "content"))
        if isinstance(message, dict) and "rules" in message:
            for path, text, expected in rule_warnings(message["rules"], ("messages", i, "rules")):
                found.append(source.problem(path, "warning: " + text, expected))
    return sorted(found, key=lambda p: (p.line, p.col))


# Facts a first-time visitor may not have yet (docs/rules.md, "Facts that do
# not exist yet"): unknown is false for every comparing operator, so a
# negative condition on one of them leaves out the visitors who lack it.
_MAY_BE_UNKNOWN = {
    "country": "while the country is unknown (no geo answer yet, offline, or no endpoint)",
    "city": "while the city is unknown (no geo answer yet, offline, or no endpoint)",
    "rating": "for a visitor who never rated a chat",
    "time_since_widget_closed": "for a visitor who never closed the widget",
    "time_without_agent_reply": "while no visitor message waits for an answer",
    "referrer_url": "for a visitor with no referrer (typed the address, a bookmark)",
    "browser_language": "when the browser gives no language",
    **{f"utm_{k}": "for a visit that did not come with this UTM parameter"
       for k in ("source", "medium", "campaign", "term", "content")},
}
# Counts that are at least 1 on any page (this visit and this page view count).
_AT_LEAST_ONE = ("visits", "page_views")


def rule_warnings(tree, path: tuple) -> list[tuple[tuple, str, str]]:
    """Conditions that are valid but most likely not meant, because of facts
    a first-time visitor does not have yet: (path, text, expected). A
    negative condition in an `any` that also accepts the fact's absence
    (`not_exists`) is what the owner meant, and is not reported."""
    out: list = []

    def visit(node, where, absent_ok: frozenset):
        if isinstance(node, list):
            for i, child in enumerate(node):
                visit(child, where + (i,), absent_ok)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("any"), list):
            ok = frozenset(c.get("rule") for c in node["any"] if isinstance(c, dict) and c.get("op") == "not_exists")
            for i, child in enumerate(node["any"]):
                visit(child, where + ("any", i), absent_ok | ok)
            return
        if isinstance(node.get("all"), list):
            visit(node["all"], where + ("all",), absent_ok)
            return
        rule, op, value = node.get("rule"), node.get("op"), node.get("value")
        if rule in _MAY_BE_UNKNOWN and op in ("is_not", "not_contains") and rule not in absent_ok:
            out.append((where + ("op",),
                        f"`{rule} {op} …` does not hold {_MAY_BE_UNKNOWN[rule]}: a first-time visitor may never "
                        f"see this message; to include them, put it in an `any` with "
                        f"{{rule: {rule}, op: not_exists}}", ""))
        if rule in _AT_LEAST_ONE and isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (op == "less" and value <= 1) or (op == "equals" and value < 1)):
            out.append((where + ("value",), f"`{rule} {op} {value:g}` never holds: on any page `{rule}` is at "
                                           "least 1 (this visit and this page view count)", "a number ≥ 1"))

    visit(tree, path, frozenset())
    return out


def check_file(path: Path | str) -> tuple[Source | None, list[Problem]]:
    """(source, problems) for `proactive validate` and `proactive sign`."""
    try:
        source = load(path)
    except AuthoringError as exc:
        return None, exc.problems
    except OSError as exc:
        return None, [Problem(str(path), 1, 1, "", f"cannot read the file ({exc.strerror})")]
    return source, validate(source)
