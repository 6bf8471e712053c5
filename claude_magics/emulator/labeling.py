"""The simulated labeler: how the emulator answers a label task, with each model's error rate.

    simulated_label("Broke after a day, negative.", ["positive", "negative"])   # "negative"
    label_answer(prompt)        # the answer to a label-task request; None for any other request

So that evaluation, model comparison and cascades can be tried offline, a request that asks for
a label (recognised by its structured-output schema, as `LABEL_RULE` says) is answered the way
a labeler with a known error rate would answer: the row text has a "true" label
(:func:`simulated_label`, which tests call to score the answers), and a smaller model gets more
of the hard texts wrong (:data:`LABEL_ERROR_RATES`, by model family), with a lower confidence on
its mistakes. Everything is seeded by the model, the row text and the labels: the same request
always gets the same answer, in batches and in realtime alike.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .validation import Prompt

__all__ = [
    "ABSTAIN",
    "LABEL_ERROR_RATES",
    "LABEL_RULE",
    "label_answer",
    "label_error_rate",
    "row_text",
    "simulated_label",
    "simulated_labels",
]

#: The enum value that stands for "cannot tell" (the jobs' ``abstain=True`` answer).
ABSTAIN = "unsure"
#: The share of hard texts (those that name no label) each model family labels wrongly.
LABEL_ERROR_RATES = {"haiku": 0.20, "sonnet": 0.10, "opus": 0.05, "fable": 0.03}
# A model of no known family errs as this one does (as it takes Sonnet's rules: `catalog`).
_OTHER_FAMILY = "sonnet"
# How often an answer becomes ABSTAIN where the schema allows it: wrong ones, right ones on a
# hard text (a text that names a label is never abstained on).
_ABSTAIN_IF_WRONG = 0.5
_ABSTAIN_IF_RIGHT = 0.05
# Confidence ranges (inclusive, two decimals): right answers, wrong ones, abstentions.
_RIGHT = (0.80, 0.99)
_WRONG = (0.40, 0.75)
_UNSURE = (0.30, 0.50)
_TAG = re.compile(r"</?[A-Za-z_][A-Za-z0-9_.-]*>")
_QUOTED_CHARS = 60


def _rates_text() -> str:
    return ", ".join(f"{family} {rate:.0%}" for family, rate in LABEL_ERROR_RATES.items())


#: How the emulator recognises and answers a label task. Shown by ``python -m
#: claude_magics.emulator --help`` and in the README.
LABEL_RULE = (
    "A request is a label task when its output_config.format schema is an object whose "
    "properties are 'label' (a string enum) or 'labels' (an array of string-enum items), "
    "beside at most 'rationale' (a string) and 'confidence' (a number). The row text is the "
    "last user message's text with its tags (<review>, </review>) removed and its ends "
    "stripped. Its true label, simulated_label(text, labels), is the label that occurs "
    "earliest in the text as a whole word, ignoring case (with 'labels': every label that "
    "occurs, in the order listed); when none occurs the text is hard, and the first 8 bytes of "
    "the text's SHA-256, as a big-endian number, modulo the number of labels, pick one. The "
    f"enum value '{ABSTAIN}' is the abstention, never a true label. A text that names a label "
    "is always answered with its true label. On a hard text a model errs at its family's "
    f"rate ({_rates_text()}; a model of another family as {_OTHER_FAMILY}): it errs when the "
    "text's difficulty (SHA-256 of 'difficulty:' + text, read the same way, as a fraction of "
    "2**64) is at least 1 - rate, so a bigger model errs only on texts a smaller one gets "
    "wrong too; its wrong answer is another label, picked at random. Confidence is "
    f"{_RIGHT[0]:.2f}-{_RIGHT[1]:.2f} on right answers, {_WRONG[0]:.2f}-{_WRONG[1]:.2f} on "
    f"wrong ones. Where the enum allows '{ABSTAIN}', {_ABSTAIN_IF_WRONG:.0%} of wrong answers "
    f"and {_ABSTAIN_IF_RIGHT:.0%} of right ones on hard texts become '{ABSTAIN}' (['{ABSTAIN}'] "
    f"with 'labels'), with confidence {_UNSURE[0]:.2f}-{_UNSURE[1]:.2f}. A rationale quotes "
    "the text's first words and names the answer. The random choices are seeded by the "
    "model, the row text and the labels, so the same request always gets the same answer, "
    "and a batch and a realtime request for the same row agree."
)


def label_error_rate(model: str) -> float:
    """The share of hard texts ``model`` labels wrongly (by family: :data:`LABEL_ERROR_RATES`)."""
    for family, rate in LABEL_ERROR_RATES.items():
        if model.startswith(f"claude-{family}"):
            return rate
    return LABEL_ERROR_RATES[_OTHER_FAMILY]


def row_text(user_text: str) -> str:
    """The row text of a label request's last user message: tags removed, ends stripped."""
    return _TAG.sub("", user_text).strip()


def _number(*parts: str) -> int:
    digest = hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def _named(text: str, labels: Sequence[str]) -> list[str]:
    """The labels that occur in ``text`` as whole words, earliest first (then in list order)."""
    found: list[tuple[int, int, str]] = []
    for order, label in enumerate(labels):
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE)
        if match is not None:
            found.append((match.start(), order, label))
    return [label for _, _, label in sorted(found)]


def _hashed(text: str, labels: Sequence[str]) -> str:
    return labels[_number(text) % len(labels)]


def simulated_label(text: str, labels: Sequence[str]) -> str:
    """The true label of ``text`` by `LABEL_RULE`: the label named earliest in it, else the one
    its hash picks. ``text`` is the row's value as the job sends it (its column's text)."""
    labels = [label for label in labels if label != ABSTAIN]
    if not labels:
        raise ValueError("simulated_label needs at least one label")
    named = _named(text, labels)
    return named[0] if named else _hashed(text, labels)


def simulated_labels(text: str, labels: Sequence[str]) -> list[str]:
    """The true labels of ``text`` for a multi-label task: every label it names, in the order
    of ``labels``, else the one its hash picks."""
    labels = [label for label in labels if label != ABSTAIN]
    if not labels:
        raise ValueError("simulated_labels needs at least one label")
    named = set(_named(text, labels))
    return [label for label in labels if label in named] or [_hashed(text, labels)]


@dataclass(frozen=True)
class _Shape:
    """What a label-task schema asks for."""

    key: str  # "label" or "labels"
    labels: tuple[str, ...]
    abstain: bool
    order: tuple[str, ...]  # the schema's properties, in its order


def _enum_of(prop: Any) -> list[str] | None:
    if not isinstance(prop, dict):
        return None
    values = prop.get("enum")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return None
    return values


def _shape(schema: Any) -> _Shape | None:
    """The label task ``schema`` describes, or None when it is not one (`LABEL_RULE`)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return None
    key = "label" if "label" in properties else "labels"
    if key not in properties or set(properties) - {key, "rationale", "confidence"}:
        return None
    for name, kind in (("rationale", "string"), ("confidence", "number")):
        extra = properties.get(name, {"type": kind})
        if not isinstance(extra, dict) or extra.get("type") != kind:
            return None
    prop = properties[key]
    if key == "labels":
        if not isinstance(prop, dict) or prop.get("type") != "array":
            return None
        prop = prop.get("items")
    values = _enum_of(prop)
    if values is None:
        return None
    labels = tuple(v for v in values if v != ABSTAIN)
    if not labels:
        return None
    return _Shape(key, labels, ABSTAIN in values, tuple(properties))


def _opening(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= _QUOTED_CHARS:
        return words
    return words[:_QUOTED_CHARS].rsplit(" ", 1)[0] + "..."


def label_answer(prompt: Prompt) -> dict[str, Any] | None:
    """The answer to a label-task request by `LABEL_RULE` (a JSON object valid against its
    schema), or None when the request is not a label task."""
    shape = _shape(prompt.output_schema)
    if shape is None:
        return None
    text = row_text(prompt.last_user_text)
    labels = shape.labels
    named = _named(text, labels)
    if shape.key == "labels":
        truth = simulated_labels(text, labels)
    else:
        truth = [named[0] if named else _hashed(text, labels)]
    rate = label_error_rate(prompt.spec.id)
    difficulty = _number("difficulty:", text) / 2**64
    wrong = not named and len(labels) > 1 and difficulty >= 1 - rate
    # The same draws in the same order whatever the schema asks, so that asking for a
    # rationale or allowing abstentions changes nothing else.
    rng = random.Random(_number(prompt.spec.id, "\x00", text, "\x00", "\x1f".join(labels)))
    other = rng.choice([label for label in labels if label != truth[0]] or [truth[0]])
    roll = rng.random()
    level = rng.random()
    answer = [other] if wrong else truth
    unsure = (
        shape.abstain and not named and roll < (_ABSTAIN_IF_WRONG if wrong else _ABSTAIN_IF_RIGHT)
    )
    low, high = _UNSURE if unsure else _WRONG if wrong else _RIGHT
    quoted = _opening(text)
    if unsure:
        said: Any = [ABSTAIN] if shape.key == "labels" else ABSTAIN
        reason = f'The text ("{quoted}") does not say enough to choose a label.'
    else:
        said = answer if shape.key == "labels" else answer[0]
        reason = f'The text says "{quoted}", which reads as {", ".join(answer)}.'
    values = {
        shape.key: said,
        "rationale": reason,
        "confidence": round(low + (high - low) * level, 2),
    }
    return {name: values[name] for name in shape.order}
