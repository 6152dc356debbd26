"""The studio's file side: read a messages file for the browser, write the
browser's document back into it keeping everything the owner did not touch,
and say what a publish changes for visitors.

Reading goes through `proactive.authoring` (PyYAML, the reader `proactive
validate` and `sign` use), so the studio shows exactly what would be signed.
Writing is a round trip with ruamel.yaml: the file is loaded as a commented
tree, the new document is merged into it value by value (an unchanged value
keeps its node, its comments, its quotes and its flow or block style), and
the result is re-read with the signer's reader and must give back the
document that was sent, else nothing is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from proactive import authoring
from proactive.studio_logic import check   # the validation the page runs too
from widget.runtime.trust import ROLLOUT_FIELD

EMPTY_ETAG = "absent"


class SaveConflict(Exception):
    """The file changed on disk since the browser read it."""


class SaveRefused(Exception):
    """The merged file would not read back as the document sent."""


def etag_of(data: bytes | None) -> str:
    return EMPTY_ETAG if data is None else hashlib.sha256(data).hexdigest()[:32]


def _jsonable(value):
    """PyYAML's dates and datetimes as the text written; the rest as is."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def problem_json(p: authoring.Problem, path: tuple = ()) -> dict:
    return {"line": p.line, "col": p.col, "where": p.where, "path": list(path), "message": p.message,
            "expected": p.expected, "warning": p.message.startswith("warning:")}


def read(path: Path) -> dict:
    """The file for the browser: its text, etag, and either the document
    with its problems, or (malformed) the problems alone with line numbers."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {"exists": False, "etag": EMPTY_ETAG, "text": "", "document": empty_document(path),
                "problems": [], "malformed": False}
    text = data.decode("utf-8", "replace")
    out = {"exists": True, "etag": etag_of(data), "text": text}
    try:
        source = authoring.Source(path, text)
    except authoring.AuthoringError as exc:
        return dict(out, document=None, malformed=True, problems=[problem_json(p) for p in exc.problems])
    if not isinstance(source.document, dict):
        return dict(out, document=None, malformed=True,
                    problems=[{"line": 1, "col": 1, "where": "", "path": [], "message": "the file is not a mapping",
                               "expected": "site, widgets, messages", "warning": False}])
    return dict(out, document=_jsonable(source.document), malformed=False, problems=check(source.document))


def empty_document(path: Path) -> dict:
    site = "".join(c if c.isalnum() else "-" for c in path.stem.lower()).strip("-") or "site"
    return {"site": site, "widgets": [{"id": "main"}], "messages": []}


# -- the round trip -------------------------------------------------------------------

def _yaml() -> YAML:
    y = YAML()                      # round trip
    y.preserve_quotes = True
    y.width = 4096                  # never fold a long text the owner wrote on one line
    y.brace_single_entry_mapping_in_flow_sequence = True   # [{id: main}] stays so, not [id: main]
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _needs_quotes(text: str, flow: bool = False) -> bool:
    """A text the signer's reader (YAML 1.1) would not read back as that
    text, on its own or (`flow`) inside a {…} or […] ("Questions about
    plans?", "Hello, world")."""
    try:
        if flow:
            return pyyaml.safe_load(f"{{k: {text}}}") != {"k": text} or pyyaml.safe_load(f"[{text}]") != [text]
        return pyyaml.safe_load(text) != text
    except pyyaml.YAMLError:
        return True


def to_node(value, flow: bool = False):
    """A new value (from the browser's JSON) as ruamel nodes: flow style for
    small leaves ({rule, op, value}, buttons), quotes where YAML 1.1 would
    read the text as something else (`flow`: inside a flow collection)."""
    if isinstance(value, dict):
        leaf = all(not isinstance(v, (dict, list)) for v in value.values()) and len(value) <= 4
        m = CommentedMap((k, to_node(v, flow or leaf)) for k, v in value.items())
        if leaf:
            m.fa.set_flow_style()
        return m
    if isinstance(value, list):
        leaf = all(not isinstance(v, (dict, list)) for v in value)
        s = CommentedSeq(to_node(v, flow or leaf) for v in value)
        if leaf:
            s.fa.set_flow_style()
        return s
    if isinstance(value, str) and (_needs_quotes(value, flow) or "\n" in value):
        return DoubleQuotedScalarString(value)
    return value


def _same_scalar(old, new) -> bool:
    """Whether the file's scalar (ruamel's node) already holds the value sent."""
    if isinstance(old, (date, datetime)):
        return old.isoformat() == new
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool) and old == new
    if isinstance(old, str) and isinstance(new, str):
        return str(old) == new
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return old == new
    return old is None and new is None


def merge(old, new, flow: bool = False):
    """`new` (JSON) written over `old` (ruamel nodes), keeping every old node
    whose value did not change, in place where possible (`flow`: inside a
    flow collection)."""
    if isinstance(old, (CommentedMap, CommentedSeq)):
        flow = flow or bool(old.fa.flow_style())
    if isinstance(old, CommentedMap) and isinstance(new, dict):
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = merge(old[key], value, flow) if key in old else to_node(value, flow)
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list):
        for i, value in enumerate(new[:len(old)]):
            old[i] = merge(old[i], value, flow)
        while len(old) > len(new):
            del old[len(old) - 1]
        for value in new[len(old):]:
            old.append(to_node(value, flow))
        return old
    if not isinstance(old, (dict, list)) and not isinstance(new, (dict, list)) and _same_scalar(old, new):
        return old
    return to_node(new, flow)


def merge_messages(tree: CommentedMap, document: dict, origins: list) -> None:
    """The messages list: `origins[i]` is the index in the file the browser's
    message i came from (None: new). Messages are deleted, reordered and
    added as nodes, so an untouched message keeps its lines."""
    old = tree.get("messages")
    new = document.get("messages") or []
    if not isinstance(old, CommentedSeq) or len(origins) != len(new):
        tree["messages"] = to_node(new)
        return
    kept = [o for o in origins if isinstance(o, int) and 0 <= o < len(old)]
    for i in sorted(set(range(len(old))) - set(kept), reverse=True):
        del old[i]
    remap = {o: n for n, o in enumerate(sorted(set(kept)))}
    nodes = list(old)
    if [remap[o] for o in kept] != list(range(len(kept))) or len(set(kept)) != len(kept):
        # reordered or duplicated from the file: rebuild the list, keeping the nodes
        old.clear()
        for o, message in zip(origins, new):
            old.append(merge(_copy(nodes[remap[o]]), message) if isinstance(o, int) and o in remap else to_node(message))
        return
    position = 0
    for o, message in zip(origins, new):
        if isinstance(o, int) and o in remap:
            old[position] = merge(old[position], message)
        else:
            old.insert(position, to_node(message))
        position += 1


def _copy(node):
    import copy

    return copy.deepcopy(node)


def render(original: str | None, document: dict, origins: list | None, json_file: bool = False) -> str:
    """The new file text: `document` merged into `original` (None: a new file)."""
    if json_file:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    y = _yaml()
    tree = y.load(original) if original and original.strip() else None
    if not isinstance(tree, CommentedMap):
        tree = CommentedMap()
    messages = document.get("messages")
    rest = {k: v for k, v in document.items() if k != "messages"}
    for key in [k for k in tree if k not in document]:
        del tree[key]
    for key, value in rest.items():
        tree[key] = merge(tree[key], value) if key in tree else to_node(value)
    if "messages" in document:
        if "messages" not in tree:
            tree["messages"] = CommentedSeq()
        merge_messages(tree, {"messages": messages}, origins if origins is not None else [None] * len(messages or []))
    out = io.StringIO()
    y.dump(tree, out)
    return out.getvalue()


def save(path: Path, document: dict, etag: str, origins: list | None) -> str:
    """Write atomically unless the file changed on disk since `etag`; the
    new etag. The text written must read back (with the signer's reader) as
    `document`."""
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = None
    if etag_of(current) != etag:
        raise SaveConflict(f"{path.name} changed on disk since the studio read it")
    text = render(current.decode("utf-8") if current is not None else None, document, origins,
                  json_file=path.suffix == ".json")
    try:
        back = authoring.Source(path, text).document
    except authoring.AuthoringError as exc:
        raise SaveRefused(f"the written file would not read back: {exc}") from None
    if _jsonable(back) != document:
        raise SaveRefused("the written file would not read back as the document sent")
    return _write(path, text.encode("utf-8"))


def save_text(path: Path, text: str, etag: str) -> str:
    """The raw text as typed (the raw-text tab of a file that does not read):
    written as is, unless the file changed on disk since `etag`."""
    if _current_etag(path) != etag:
        raise SaveConflict(f"{path.name} changed on disk since the studio read it")
    return _write(path, text.encode("utf-8"))


def _current_etag(path: Path) -> str:
    try:
        return etag_of(path.read_bytes())
    except FileNotFoundError:
        return EMPTY_ETAG


def _write(path: Path, data: bytes) -> str:
    """Replace the file atomically (same folder, fsync, rename), keeping its mode."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return etag_of(data)


# -- what a publish changes -------------------------------------------------------------

def changes(published: dict | None, document: dict) -> dict:
    """Messages added, removed, changed, paused and activated, by id, from
    the last published payload to the document about to be signed."""
    def by_id(doc):
        return {m.get("id"): m for m in (doc or {}).get("messages") or [] if isinstance(m, dict)}

    def active(m):
        return m.get("enabled", True) is not False

    before, after = by_id(published), by_id(_jsonable(document))
    out = {"added": [], "removed": [], "changed": [], "paused": [], "activated": []}
    for mid, m in after.items():
        if mid not in before:
            out["added"].append(mid)
            if not active(m):
                out["paused"].append(mid)
            continue
        old = before[mid]
        if active(old) and not active(m):
            out["paused"].append(mid)
        elif not active(old) and active(m):
            out["activated"].append(mid)
        strip = lambda d: {k: v for k, v in d.items() if k not in ("enabled", "experiment")}  # noqa: E731
        if strip(old) != strip(m):
            out["changed"].append(mid)
    out["removed"] = [mid for mid in before if mid not in after]
    return out


def rollout_state(published: dict | None) -> dict | None:
    """The published bundle as the publish dialog tells it: {"version"}, and
    for a staged rollout in progress {"rollout": {"percent", "previous"}}
    (version to percent % of visitors, previous to the others). None: none."""
    if not isinstance(published, dict) or not isinstance(published.get("version"), int):
        return None
    out = {"version": published["version"]}
    staged = published.get(ROLLOUT_FIELD)
    if isinstance(staged, dict) and isinstance(staged.get("previous"), dict):
        out["rollout"] = {"percent": staged.get("percent"), "previous": staged["previous"].get("version")}
    return out


# -- the page's Python ------------------------------------------------------------------

PAGE_MODULES = ("proactive/__init__.py", "proactive/authoring.py", "proactive/explain_words.py",
                "proactive/studio_logic.py", "proactive/cmd_simulate.py", "widget/__init__.py")
WHEEL_NAME = "proactive_studio-{version}-py3-none-any.whl"


def page_wheel() -> tuple[str, bytes]:
    """(file name, bytes) of the wheel the page installs into its Pyodide:
    the studio's logic (proactive/studio_logic.py), the runtime it validates
    and simulates with (widget/runtime), the words of explanations, and the
    pinned PyYAML's pure-Python modules (the reader `proactive validate`
    uses; its C speed-up is left out). Built from the sources in memory: the
    page always runs the code this CLI runs."""
    import base64 as b64
    import zipfile

    import proactive

    root = Path(__file__).resolve().parents[1]
    files: list[tuple[str, bytes]] = [(name, (root / name).read_bytes()) for name in PAGE_MODULES]
    files += [(f"widget/runtime/{p.name}", p.read_bytes()) for p in sorted((root / "widget" / "runtime").glob("*.py"))]
    yaml_dir = Path(pyyaml.__file__).parent
    files += [(f"yaml/{p.name}", p.read_bytes()) for p in sorted(yaml_dir.glob("*.py"))]
    version = proactive.__version__
    info = f"proactive_studio-{version}.dist-info"
    files.append((f"{info}/METADATA", f"Metadata-Version: 2.1\nName: proactive-studio\nVersion: {version}\n".encode()))
    files.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: proactive studio\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join(f"{name},sha256={b64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
                     for name, data in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return WHEEL_NAME.format(version=version), out.getvalue()
