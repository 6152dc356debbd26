"""The studio's card preview content (proactive/studio_logic.py `preview`):
resolved by the engine's content code, per language and, for an
experiment, per A/B variant."""

from __future__ import annotations

from proactive import studio_logic

DOC = {"site": "acme", "messages": [
    {"id": "plain", "content": {"en": {"text": "Hi"}, "de": {"text": "Hallo"}}},
    {"id": "ab", "holdout": 10, "variants": [
        {"id": "ask", "weight": 1, "content": {"text": "Questions about plans?"}},
        {"id": "hand", "weight": 3, "content": {"en": {"text": "Need a hand?"}, "fr": {"text": "Besoin d'aide ?"}}}]},
    {"id": "empty", "variants": []},
]}


def test_a_plain_message_has_no_variants_and_follows_the_language():
    out = studio_logic.preview(DOC, 0, "de")
    assert out["content"]["text"] == "Hallo" and out["languages"] == ["en", "de"]
    assert out["variants"] == [] and out["variant"] is None


def test_an_experiment_draws_the_first_variant_unless_another_is_picked():
    first = studio_logic.preview(DOC, 1)
    assert first["variants"] == ["ask", "hand"] and first["variant"] == "ask"
    assert first["content"]["text"] == "Questions about plans?"
    picked = studio_logic.preview(DOC, 1, "fr", "hand")
    assert picked["variant"] == "hand" and picked["content"]["text"] == "Besoin d'aide ?"
    assert picked["languages"] == ["en", "fr"]
    unknown = studio_logic.preview(DOC, 1, None, "gone")   # a renamed variant: the first again
    assert unknown["variant"] == "ask"


def test_an_experiment_without_variants_says_so():
    assert "error" in studio_logic.preview(DOC, 2)
