"""The notebook view of a review session: the row, the model's label, a button per label,
skip and back, a progress line, and a key box for the keyboard.

    annotator = Annotator(session)     # shown by the session: df.claude.review("sentiment")
    annotator.buttons[0].click()       # what a click does; the tests drive it this way

Keyboard: ipywidgets has no key events, so the shortcuts go through a text box. Each key typed
there changes its value, and the box's ``observe`` reads what was added (``1``..``9`` a label,
``s`` skip, ``b`` back) or removed (Backspace: back, once per character deleted). The kernel
never writes to the box, so fast typing cannot race a reset; its value just grows. Arrow keys
change no value, so they cannot be seen: ``s`` goes forward and Backspace goes back. Keys
reach the box only while it has the focus: it takes it when it first appears, and again after
every button click (``Text.focus()``); after a click elsewhere, a click on the box.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .review import ReviewSession

__all__ = ["Annotator"]

_HELP = "keys here: 1-9 label · s skip · b or Backspace back"


class Annotator:
    """ipywidgets controls over one :class:`~.review.ReviewSession`; displays as its box."""

    def __init__(self, session: ReviewSession) -> None:
        import ipywidgets as widgets

        self.session = session
        self.progress = widgets.HTML()
        self.row = widgets.HTML()
        self.buttons = [
            widgets.Button(description=_caption(i, label), tooltip=label)
            for i, label in enumerate(session.labels, 1)
        ]
        for button, label in zip(self.buttons, session.labels, strict=True):
            button.on_click(lambda _button, label=label: self._do(session.choose, label))
        self.skip_button = widgets.Button(description="skip (s)", tooltip="leave this row")
        self.skip_button.on_click(lambda _button: self._do(session.skip))
        self.back_button = widgets.Button(
            description="back (⌫)", icon="arrow-left", tooltip="the row before"
        )
        self.back_button.on_click(lambda _button: self._do(session.back))
        self.keys = widgets.Text(
            value="",
            placeholder=_HELP,
            continuous_update=True,
            layout=widgets.Layout(width="30em"),
        )
        self.keys.observe(self._on_keys, names="value")
        # The key box takes the focus when it first appears, so that keys typed at once label
        # rows rather than reach the notebook's own shortcuts. ipywidgets counts a widget's
        # views once told to (``_view_count``, marked experimental): without it, no focus.
        self.keys._view_count = 0
        self.keys.observe(self._on_first_view, names="_view_count")
        self.note = widgets.HTML()
        wrap = widgets.Layout(flex_flow="row wrap")
        self.box = widgets.VBox(
            [
                self.progress,
                self.row,
                widgets.HBox([*self.buttons, self.skip_button, self.back_button], layout=wrap),
                widgets.HBox([self.keys, self.note]),
            ]
        )
        self.box.add_class("claude-review")
        self.render()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    # -- moves -------------------------------------------------------------------------------------

    def _do(self, move: Any, *args: Any) -> None:
        move(*args)
        self.note.value = ""
        self.render()
        self.keys.focus()  # so the next key goes to the key box, not to the page

    def _on_first_view(self, change: dict[str, Any]) -> None:
        if (change["new"] or 0) > 0 and not (change["old"] or 0):
            self.keys.focus()

    def _on_keys(self, change: dict[str, Any]) -> None:
        old, new = change["old"] or "", change["new"] or ""
        notes: list[str] = []
        if new.startswith(old):
            for key in new[len(old) :]:
                notes += self._key(key)
        elif old.startswith(new):
            for _ in range(len(old) - len(new)):
                self.session.back()
        self.note.value = html.escape(" ".join(notes), quote=False)
        self.render()

    def _key(self, key: str) -> list[str]:
        session = self.session
        if key.isdigit() and 1 <= int(key) <= min(len(session.labels), 9):
            session.choose(session.labels[int(key) - 1])
        elif key.lower() == "s":
            session.skip()
        elif key.lower() == "b":
            session.back()
        elif not key.isspace():
            return [f"{key!r} is not a key here ({_HELP})"]
        return []

    # -- the view ----------------------------------------------------------------------------------

    def render(self) -> None:
        session = self.session
        self.progress.value = f"<b>{html.escape(session.progress())}</b>"
        done = session.done
        for button in [*self.buttons, self.skip_button]:
            button.disabled = done
        self.back_button.disabled = session.current == 0
        if done:
            self.row.value = "<i>Every row of the sample has been seen.</i>"
            for button in self.buttons:
                button.button_style = ""
            return
        view = session.view()
        for button, label in zip(self.buttons, session.labels, strict=True):
            button.button_style = "success" if label == view.gold else ""
        cells = "".join(
            f"<tr><th style='text-align:left;vertical-align:top;padding-right:1em'>"
            f"{html.escape(name)}</th><td style='text-align:left;white-space:pre-wrap'>"
            f"{html.escape(value)}</td></tr>"
            for name, value in view.fields
        )
        model = html.escape(view.model) if view.model is not None else "<i>no label</i>"
        notes = "".join(
            f"<br><small>{html.escape(name)}: {html.escape(value)}</small>"
            for name, value in view.notes
        )
        gold = f"<br>gold: <b>{html.escape(view.gold)}</b>" if view.gold is not None else ""
        self.row.value = (
            f"<div><small>row {view.place} of {session.total} · index "
            f"{html.escape(str(view.index))}</small>"
            f"<table style='margin:0.3em 0'>{cells}</table>"
            f"model: <b>{model}</b>{notes}{gold}</div>"
        )


def _caption(number: int, label: str) -> str:
    return f"{number} · {label}" if number <= 9 else label
