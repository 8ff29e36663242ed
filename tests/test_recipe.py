"""Selectors and recipes as data."""

from __future__ import annotations

import pytest

from watcher.capture.adapters import adapter_for
from watcher.capture.recipe import RECIPE_FIELDS, Recipe, Selector


@pytest.mark.parametrize(
    ("text", "css", "attr"),
    [
        ("a.date time@datetime", "a.date time", "datetime"),
        ("@data-post", None, "data-post"),
        (".text", ".text", None),
        ("  .photos img@src  ", ".photos img", "src"),
        ("a.permalink @href", "a.permalink", "href"),
        ('a[href*="@x"]', 'a[href*="@x"]', None),
        ("a[href^='mailto:x@y.org']", "a[href^='mailto:x@y.org']", None),
        ('a[href*="@x"]@href', 'a[href*="@x"]', "href"),
        ("img@data-src", "img", "data-src"),
        ("svg image@xlink:href", "svg image", "xlink:href"),
        (".a, .b", ".a, .b", None),
    ],
)
def test_selector_parse(text: str, css: str | None, attr: str | None):
    selector = Selector.parse(text)
    assert (selector.css, selector.attr) == (css, attr)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_selector_raises(text: str):
    with pytest.raises(ValueError, match="empty selector"):
        Selector.parse(text)


@pytest.mark.parametrize(
    "text", ["a.date time@datetime", "@data-post", ".text", 'a[href*="@x"]', 'a[href*="@x"]@href']
)
def test_selector_str_round_trips(text: str):
    assert Selector.parse(str(Selector.parse(text))) == Selector.parse(text)


def test_from_strings_builds_every_field():
    values = {name: f".{name}" for name in RECIPE_FIELDS}
    recipe = Recipe.from_strings(values)
    for name in RECIPE_FIELDS:
        assert getattr(recipe, name) == Selector(f".{name}")


def test_from_strings_skips_empty_values():
    recipe = Recipe.from_strings({"post": ".item", "text": ""})
    assert recipe.post == Selector(".item")
    assert recipe.text is None


def test_unknown_selector_name_raises():
    with pytest.raises(ValueError, match="unknown selector name") as info:
        Recipe.from_strings({"post": ".x", "body": ".y", "date": "time"})
    assert "body" in str(info.value) and "date" in str(info.value)
    with pytest.raises(ValueError, match="body"):
        Recipe().overridden({"body": ".y"})


def test_overridden_replaces_only_given_fields():
    base = Recipe.from_strings({"post": ".msg", "id": "@data-post", "text": ".old_text"})
    patched = base.overridden({"text": ".new_text_class", "author": ".who"})
    assert patched.text == Selector(".new_text_class")
    assert patched.author == Selector(".who")
    assert patched.post == base.post and patched.id == base.id
    assert base.text == Selector(".old_text")  # the original is untouched (frozen)


def test_overridden_with_nothing_is_the_same_recipe():
    base = Recipe.from_strings({"post": ".msg"})
    assert base.overridden(None) is base
    assert base.overridden({}) is base


def test_overridden_empty_value_keeps_default():
    base = Recipe.from_strings({"post": ".msg", "text": ".t"})
    assert base.overridden({"text": ""}).text == Selector(".t")


def test_adapter_for_applies_overrides_to_the_platform_recipe():
    default = adapter_for("telegram")
    patched = adapter_for("telegram", {"text": ".new_text_class"})
    assert patched.recipe.text == Selector(".new_text_class")
    assert patched.recipe.post == default.recipe.post
    assert default.recipe.text == Selector(".tgme_widget_message_text")
    with pytest.raises(ValueError, match="unknown selector name"):
        adapter_for("telegram", {"txt": ".x"})
    with pytest.raises(KeyError):
        adapter_for("myspace")
