"""The live view's widget: a small anywidget whose front end appends, so a render sends only
what changed.

    widget = new_live_widget()          # imports anywidget: first use only
    widget.send({"a": [offset, suffix, cut], "s": "status line"})   # keys that changed

ipywidgets can only replace an HTML widget's whole value, so a live answer in HTML widgets
re-sends the block being written whole at every render, each in a message of its own (status
line, thinking, answer). This widget's front end (``live_view.js``, an ES module that
anywidget loads without a build step) keeps the state itself: per section (``t`` thinking,
``a`` answer) the finished HTML in nodes appended once and a live tail; a render is one custom
message with only what changed: :class:`~.live_markdown.LiveSection` steps for the sections,
``s`` the status line (text), ``f`` the HTML under the answer (the sources). The state belongs
to the model (anywidget's ``initialize``), so the same output shown twice shows the same.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

__all__ = ["new_live_widget"]

_widget_class: type[Any] | None = None


def new_live_widget() -> Any:
    """A new live widget (its class is built on first use: anywidget is imported then)."""
    global _widget_class
    if _widget_class is None:
        import anywidget

        class LiveWidget(anywidget.AnyWidget):
            """The live view of one ``%%claude`` call (see the module docstring)."""

            _esm = files(__package__).joinpath("live_view.js").read_text(encoding="utf-8")

            def __repr__(self) -> str:
                # A constant, empty plain-text repr: nbval compares the displayed text/plain,
                # and it must not depend on the widget (anywidget's names its address).
                return ""

        _widget_class = LiveWidget
    return _widget_class()
