"""The template helpers of prompt.py that row templates (df.claude) share with %%claude cells."""

from __future__ import annotations

import pytest

from claude_magics.prompt import (
    PromptError,
    interpolate_text,
    resolve_reference,
    substitute_references,
    template_references,
)


def test_references_in_order_distinct_and_unpadded() -> None:
    text = "Rate {{ review }} by {{author.name}}; again {{review}} and {{meta['k']}} {{ and }}"
    assert template_references(text) == ["review", "author.name", "meta['k']"]


def test_braces_that_are_not_references_are_ignored() -> None:
    assert template_references("f'{{x}}' {{{raw}}} {x} {{ 1 }} {{None}}") == ["x"]


def test_substitute_replaces_only_references() -> None:
    text = "Classify {{review}} {{{keep}}} {{ None }} {not}"
    out = substitute_references(text, lambda ref: f"<{ref}>")
    assert out == "Classify <review> {{{keep}}} {{ None }} {not}"


def test_substitute_agrees_with_interpolate_text() -> None:
    namespace = {"a": "one", "b": {"k": 2}}
    text = "x {{a}} y {{ b['k'] }} z {{{a}}}"
    via_helper = substitute_references(text, lambda ref: str(resolve_reference(ref, namespace)))
    assert via_helper == interpolate_text(text, namespace)


def test_resolve_reference_uses_getattr_and_getitem_only() -> None:
    assert resolve_reference("row['my col']", {"row": {"my col": 3}}) == 3
    with pytest.raises(PromptError, match="did you mean 'review'"):
        resolve_reference("reveiw", {"review": "text"})
    with pytest.raises(PromptError, match="private"):
        resolve_reference("_secret", {"_secret": 1})
