"""Reading messages files with line:col for every node (proactive/authoring.py)."""

from __future__ import annotations

import pytest

from proactive import authoring

DOC = """\
site: acme
widgets: [{id: main}]
team: {timezone: Europe/Berlin, hours: {mon-fri: 9:00-17:00}}
messages:
  - id: a
    content: {text: hi}
    rules:
      any:
        - {rule: visits, op: greater, value: 1}
        - rule: page_url
          op: contains
          value: /pricing
  - id: b
    type: email
"""


@pytest.fixture
def source(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(DOC)
    return authoring.load(f)


@pytest.mark.parametrize("path, at_key, where", [
    (("site",), False, (1, 7)),
    (("messages", 0), False, (5, 5)),
    (("messages", 0, "rules", "any", 0, "value"), False, (9, 46)),
    (("messages", 0, "rules", "any", 1, "value"), False, (12, 18)),
    (("messages", 0, "rules", "any", 1, "value"), True, (12, 11)),
    (("messages", 1, "type"), False, (14, 11)),
    (("messages", 1, "rules"), False, (13, 5)),  # missing: the enclosing message
    (("messages", 7, "id"), False, (5, 3)),       # no such message: the list
])
def test_paths_map_to_line_and_column(source, path, at_key, where):
    assert source.locate(path, at_key=at_key) == where


def test_problem_text_names_file_place_path_message_and_expectation(source):
    p = source.problem(("messages", 0, "rules", "any", 1, "op"), "operator 'near' is not allowed", "equals | contains")
    assert str(p) == (f"{source.name}:11:15: messages[0].rules.any[1].op (message a): "
                      "operator 'near' is not allowed (expected equals | contains)")


def test_yaml_reading_a_time_as_a_number_is_explained(source):
    hint = source.surprise(("team", "hours", "mon-fri"))
    assert hint == ""  # "9:00-17:00" is text; a bare 9:30 is not:
    f = source.path.with_name("t.yaml")
    f.write_text("site: acme\nmessages: []\nstart: 9:30\n")
    assert "YAML reads unquoted 9:30 as 570" in authoring.load(f).surprise(("start",))


def test_not_utf8_and_missing_file(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_bytes(b"site: \xff\n")
    _, problems = authoring.check_file(f)
    assert len(problems) == 1 and str(problems[0]).startswith(f"{f}:1:1: not UTF-8")
    _, problems = authoring.check_file(tmp_path / "nope.yaml")
    assert "cannot read the file" in str(problems[0])


def test_problems_come_in_file_order(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("site: acme\nmessages:\n  - id: Bad_Id\n    rules: {rule: nope, op: equals, value: 1}\n  - {id: ok, tpye: email}\nsite: again\n")
    _, problems = authoring.check_file(f)
    places = [(p.line, p.col) for p in problems]
    assert places == sorted(places) and len(problems) == 5, [str(p) for p in problems]


def test_an_impossible_date_is_a_problem_at_its_line_not_a_crash(tmp_path):
    # Acceptance: `start: 2026-13-01` made `proactive validate` die with a
    # PyYAML ValueError traceback.
    f = tmp_path / "m.yaml"
    f.write_text("site: s\nmessages:\n  - id: a\n    start: 2026-13-01\n    end: 2026-02-30\n"
                 "    rules: []\n    content: {text: hi}\n")
    _, problems = authoring.check_file(f)
    texts = [str(p) for p in problems]
    assert texts[0].startswith(f"{f}:4:12: messages[0].start (message a): '2026-13-01' is not a date (expected")
    assert texts[1].startswith(f"{f}:5:10: messages[0].end (message a): '2026-02-30' is not a date (expected")
    assert "YAML reads" not in " ".join(texts)


def test_no_yaml_surprise_hint_when_yaml_read_what_was_written(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("site: s\nmessages:\n  - id: a\n    delay: -2\n    rules: []\n    content: {text: hi}\n")
    _, problems = authoring.check_file(f)
    assert [str(p) for p in problems] == [
        f"{f}:4:12: messages[0].delay (message a): -2 is not a number of seconds (expected a number ≥ 0)"]


def test_a_url_button_without_url_says_missing(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("site: s\nmessages:\n  - id: a\n    rules: []\n    content: {text: x, buttons: [{label: Go, action: url}]}\n")
    _, problems = authoring.check_file(f)
    assert [p.message for p in problems] == ["missing"]
    assert problems[0].where == "messages[0].content.buttons[0].url (message a)"


def test_a_language_that_is_no_code_nor_known_name_is_refused(tmp_path):
    # Acceptance: `browser_language equals Deutsch` validated and never matched anyone.
    f = tmp_path / "m.yaml"
    f.write_text("site: s\nmessages:\n  - id: a\n    rules: [{rule: browser_language, op: equals, "
                 "value: [German, de, pt-BR, pt_BR, zh-Hant-TW, tlh, Deutsch]}]\n    content: {text: hi}\n")
    _, problems = authoring.check_file(f)
    assert [(p.where, p.message) for p in problems] == [
        ("messages[0].rules[0].value[6] (message a)", "unknown language 'Deutsch'")]


def test_a_condition_without_op_says_so_and_content_problems_are_reported_once(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("site: s\nmessages:\n  - id: a\n    rules: [{rule: time_on_page, value: 30}]\n    content: Hello\n")
    _, problems = authoring.check_file(f)
    assert [p.message for p in problems] == ["`time_on_page` needs an `op`", "content must be a mapping"]


def test_libyaml_reads_a_file_as_pyyaml_does(tmp_path, monkeypatch):
    """A file is read with libyaml's parser when PyYAML has it (a large file
    reads several times faster) and by PyYAML's own otherwise, or when
    libyaml cannot read it (for its words): the same document, the same
    duplicate keys at the same lines, the same hints and syntax problems."""
    assert authoring._FastLoader is not None   # the CI's PyYAML wheel has libyaml
    texts = {
        "m.yaml": "site: acme\nmessages:\n  - id: a\n    start: 9:30\n    content: {text: Hi, text: Ho}\n"
                  "    rules: &r [{rule: visits, op: greater, value: 1}]\n    id: b\n  - id: c\n    rules: *r\n"
                  "    content: {text: 'x'}\n    end: 2026-02-30\n",
        "tab.yaml": "site: acme\nmessages:\n  - id: a\n\trules: []\n",
        "m.json": '{"site": "acme",\t"messages": []}',
    }

    def read(name, text):
        try:
            source = authoring.Source(tmp_path / name, text)
        except authoring.AuthoringError as exc:
            return [str(p) for p in exc.problems]
        return source.document, [str(p) for p in source.problems], source.surprise(("messages", 0, "start"))

    fast = {name: read(name, text) for name, text in texts.items()}
    monkeypatch.setattr(authoring, "_FastLoader", None)
    slow = {name: read(name, text) for name, text in texts.items()}
    assert fast == slow
    document, problems, hint = fast["m.yaml"]
    assert [p.split(": ", 1)[1] for p in problems] == ["duplicate key 'text' (YAML keeps only the last one) (expected each key once)",
                                                     "duplicate key 'id' (YAML keeps only the last one) (expected each key once)"]
    assert ":5:" in problems[0] and ":7:" in problems[1] and "YAML reads unquoted 9:30 as 570" in hint
    assert "a tab character" in fast["tab.yaml"][0]
