"""Hand-labelling a sample of a model's labels: which rows, where the gold labels go, and the
moves of the reviewer (label, skip, back), shared by the notebook widget and the terminal loop.

    session = review(df, "sentiment", n=50, stratify="sentiment")
    session.labelled, session.total        # progress; the gold labels are in df["gold"]

The sample depends only on the rows' keys (the index, or the ``key`` column), ``seed`` and
``stratify``: each row's place in the queue is a hash of its key, so running the cell again,
appending rows or sorting the frame draws the same rows in the same order. The gold column of
the frame is the only memory: a sampled row with a gold label is done, and a session starts at
the first sampled row without one.

In a kernel (JupyterLab, Notebook, VS Code) :func:`review` shows the :mod:`.annotator`
widget; anywhere else (terminal IPython, a script) it runs :func:`prompt_loop`, one line per
row read with ``input()``.
"""

from __future__ import annotations

import builtins
import hashlib
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .annotator import Annotator

__all__ = [
    "ReviewSession",
    "RowView",
    "ensure_gold_column",
    "labels_for",
    "model_notes",
    "prompt_loop",
    "review",
    "sample_rows",
]

#: Suffixes of the columns that say more about a model's label (``sentiment_rationale``, or a
#: bare ``rationale``): shown under the label when they exist.
NOTE_NAMES = ("rationale", "confidence", "reason", "explanation", "evidence")
#: Characters of one value shown in the widget, and in the terminal's one line per row.
WIDGET_CHARS = 1_000
LINE_CHARS = 160
#: Columns of the row shown by default (text columns first).
MAX_SHOWN = 6
#: Labels that get a number key (1..9).
KEYED = 9


def _rank(seed: int, key: Any) -> int:
    digest = hashlib.blake2b(
        f"{seed}\x1f{key}".encode("utf-8", "backslashreplace"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def sample_rows(
    frame: pd.DataFrame,
    n: int,
    *,
    seed: int = 0,
    stratify: Hashable | None = None,
    key: Hashable | None = None,
) -> list[int]:
    """The positions of ``n`` rows of ``frame``, in review order. Each row's place is a hash of
    ``seed`` and its key (the ``key`` column's value, else its index label), so the sample does
    not depend on the order of the rows. With ``stratify`` (a column), the rows are dealt in
    turn from each of its values (missing last), so every value gets an even share while it
    has rows."""
    import pandas as pd

    keys = frame[key] if key is not None else frame.index
    ranks = [_rank(seed, value) for value in keys]
    order = sorted(range(len(frame)), key=lambda i: (ranks[i], i))
    if stratify is None:
        return order[:n]
    values = frame[stratify]
    groups: dict[Any, list[int]] = {}
    missing: list[int] = []
    for position in order:
        value = values.iat[position]
        if pd.isna(value):
            missing.append(position)
        else:
            groups.setdefault(str(value), []).append(position)
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = [str(c) for c in values.cat.categories if str(c) in groups]
    else:
        names = sorted(groups)
    queues = [groups[name] for name in names] + ([missing] if missing else [])
    picked: list[int] = []
    depth = 0
    while len(picked) < n and any(depth < len(queue) for queue in queues):
        picked += [queue[depth] for queue in queues if depth < len(queue)][: n - len(picked)]
        depth += 1
    return picked


def labels_for(
    frame: pd.DataFrame, column: Hashable, gold: Hashable, labels: Sequence[Any] | None
) -> list[str]:
    """The labels to choose from: ``labels`` as given, else the model column's categories
    (the task's labels), else every value of the model and gold columns, sorted."""
    import pandas as pd

    if labels is not None:
        if isinstance(labels, str):
            labels = [part.strip() for part in labels.split(",")]
        return list(dict.fromkeys(str(label) for label in labels))
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    seen = {str(v) for v in values.dropna()}
    if gold in frame.columns:
        seen |= {str(v) for v in frame[gold].dropna()}
    return sorted(seen)


def ensure_gold_column(frame: pd.DataFrame, gold: Hashable) -> None:
    """Give ``frame`` (in place) an empty ``gold`` column of pandas' ``string`` dtype, unless
    it has one."""
    import pandas as pd

    if gold not in frame.columns:
        frame[gold] = pd.Series(pd.NA, index=frame.index, dtype="string")


def model_notes(frame: pd.DataFrame, column: Hashable) -> list[Hashable]:
    """The columns that say more about the model's label in ``column``, those that exist:
    ``<column>_rationale``, ``<column>_confidence`` (and reason, explanation, evidence), else
    the bare ``rationale``, ``confidence`` (...) a label task names them."""
    prefixed = [f"{column}_{name}" for name in NOTE_NAMES]
    found: list[Hashable] = [c for c in prefixed if c in frame.columns]
    return found or [name for name in NOTE_NAMES if name in frame.columns]


def _shown_columns(
    frame: pd.DataFrame, leave_out: set[Hashable], show: Sequence[Hashable] | None
) -> list[Hashable]:
    import pandas as pd

    if show is not None:
        return list(show)
    rest = [c for c in frame.columns if c not in leave_out]
    types = pd.api.types
    text = [c for c in rest if types.is_string_dtype(frame[c]) or types.is_object_dtype(frame[c])]
    return (text or rest)[:MAX_SHOWN]


def _cut(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split()) if limit <= LINE_CHARS else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array in a cell: something to show
        return False


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@dataclass(frozen=True)
class RowView:
    """What the reviewer sees of one sampled row."""

    place: int  # 1-based, in the sample
    index: Any
    fields: list[tuple[str, str]]  # the row's shown columns, each value bounded
    model: str | None  # the model's label; None: no label
    notes: list[tuple[str, str]]  # rationale, confidence, a status other than succeeded
    gold: str | None  # the gold label given so far


class ReviewSession:
    """One pass over a sample: where the reviewer is, and the gold labels written as they go
    into ``frame[gold]`` (the caller's frame, in place). Moves: :meth:`choose` a label (then
    the next unlabelled row), :meth:`skip` (leave it, go to the next unlabelled row),
    :meth:`back` (the row before, labelled or not, to see or change its label)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        column: Hashable,
        rows: Sequence[int],
        labels: Sequence[str],
        *,
        gold: Hashable = "gold",
        show: Sequence[Hashable] | None = None,
    ) -> None:
        ensure_gold_column(frame, gold)
        self.frame = frame
        self.column = column
        self.gold = gold
        self.labels = list(labels)
        self.notes = model_notes(frame, column)
        status = ["claude_status"] if "claude_status" in frame.columns else []
        leave_out = {column, gold, *self.notes, *status}
        self.shown = _shown_columns(frame, leave_out, show)
        self.positions = list(rows)
        # Index labels find the rows again if the frame is re-sorted while the widget is open.
        self._keys = list(frame.index[self.positions]) if frame.index.is_unique else None
        self.widget: Annotator | None = None
        self.current = self._next_unlabelled(0)

    # -- the rows ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.positions)

    def _position(self, i: int) -> int:
        if self._keys is not None:
            found = self.frame.index.get_loc(self._keys[i])
            if isinstance(found, int):
                return found
        return self.positions[i]

    def gold_at(self, i: int) -> str | None:
        ensure_gold_column(self.frame, self.gold)
        value = self.frame.iat[self._position(i), self.frame.columns.get_loc(self.gold)]
        return None if _missing(value) else str(value)

    @property
    def labelled(self) -> int:
        return sum(self.gold_at(i) is not None for i in range(self.total))

    @property
    def done(self) -> bool:
        return self.current >= self.total

    def _next_unlabelled(self, start: int) -> int:
        for i in range(start, self.total):
            if self.gold_at(i) is None:
                return i
        return self.total

    def view(self, i: int | None = None, *, chars: int = WIDGET_CHARS) -> RowView:
        """The row at place ``i`` of the sample (default: the current one)."""
        i = self.current if i is None else i
        row = self.frame.iloc[self._position(i)]
        model = row[self.column]
        notes = [
            (str(name), _cut(_number(row[name]), chars))
            for name in self.notes
            if not _missing(row[name])
        ]
        status = row.get("claude_status")
        if status is not None and not _missing(status) and status != "succeeded":
            notes.append(("claude_status", str(status)))
        return RowView(
            place=i + 1,
            index=row.name,
            fields=[(str(c), _cut(row[c], chars)) for c in self.shown if not _missing(row[c])],
            model=None if _missing(model) else str(model),
            notes=notes,
            gold=self.gold_at(i),
        )

    # -- moves ------------------------------------------------------------------------------

    def choose(self, label: str) -> None:
        """Write ``label`` as the current row's gold label, then go to the next unlabelled."""
        if self.done:
            return
        import pandas as pd

        ensure_gold_column(self.frame, self.gold)
        column = self.frame[self.gold]
        if isinstance(column.dtype, pd.CategoricalDtype) and label not in column.cat.categories:
            self.frame[self.gold] = column.cat.add_categories([label])
        where = self.frame.columns.get_loc(self.gold)
        self.frame.iloc[self._position(self.current), where] = label
        self.current = self._next_unlabelled(self.current + 1)

    def skip(self) -> None:
        """Leave the current row as it is and go to the next unlabelled one."""
        if not self.done:
            self.current = self._next_unlabelled(self.current + 1)

    def back(self) -> None:
        """Go to the row before (labelled or not)."""
        self.current = max(0, min(self.current, self.total) - 1)

    def label_for(self, answer: str) -> str | None:
        """The label an answer names: its number (1-based) or the label itself."""
        if answer.isdigit() and 1 <= int(answer) <= len(self.labels):
            return self.labels[int(answer) - 1]
        return answer if answer in self.labels else None

    # -- words --------------------------------------------------------------------------------

    def progress(self) -> str:
        line = f"{self.labelled} of {self.total} labelled"
        if self.done:
            left = self.total - self.labelled
            return line + (f" · {left} skipped: back to see them, or run again" if left else "")
        return line + f" · row {self.current + 1} of {self.total}"

    def line(self) -> str:
        """The current row on one line (the terminal's view)."""
        view = self.view(chars=LINE_CHARS)
        parts = [f"{name}: {value}" for name, value in view.fields]
        parts.append(f"model: {view.model or '(none)'}")
        parts += [f"{name}: {value}" for name, value in view.notes]
        if view.gold is not None:
            parts.append(f"gold: {view.gold}")
        return f"[{view.place}/{self.total}] {view.index!s} · " + " · ".join(parts)

    def __repr__(self) -> str:
        return (
            f"<review of {self.column!r} into {self.gold!r}: "
            f"{self.labelled} of {self.total} labelled>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.widget is not None:
            return self.widget._repr_mimebundle_(**kwargs)
        return {"text/plain": repr(self)}


def prompt_loop(
    session: ReviewSession,
    ask: Callable[[str], str] | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Review in a terminal: one line per row, then a prompt (a label's number or name, ``s``
    skip, ``b`` back, ``q`` quit) read with ``ask`` (default: ``input``, looked up now). End of
    input (Ctrl-D) or Ctrl-C stops, keeping the labels given."""
    ask = ask or builtins.input
    keys = [f"{i} {label}" for i, label in enumerate(session.labels, 1)]
    help_line = " · ".join([*keys, "s skip", "b back", "q quit"])
    say(f"Review of {session.column!r} into {session.gold!r}: {session.progress()}")
    say(help_line)
    while not session.done:
        say(session.line())
        try:
            answer = ask("> ").strip()
        except (EOFError, KeyboardInterrupt):
            say("")
            break
        if answer.lower() in ("q", "quit"):
            break
        if answer.lower() == "s":
            session.skip()
        elif answer.lower() == "b":
            session.back()
        elif answer:
            label = session.label_for(answer)
            if label is None:
                say(f"not an answer: {answer!r} ({help_line})")
            else:
                session.choose(label)
    say(session.progress())


def _in_kernel() -> bool:
    """Whether a front end can show widgets: an IPython kernel, not terminal IPython."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def review(
    frame: pd.DataFrame,
    column: Hashable,
    *,
    n: int = 50,
    stratify: Hashable | None = None,
    gold: Hashable = "gold",
    labels: Sequence[Any] | None = None,
    key: Hashable | None = None,
    seed: int = 0,
    show: Sequence[Hashable] | None = None,
    ask: Callable[[str], str] | None = None,
) -> ReviewSession:
    """Hand-label ``n`` sampled rows of ``frame`` (arguments checked by the caller): in a
    kernel a widget (the returned session shows as it), elsewhere :func:`prompt_loop` with
    ``ask`` before returning. Gold labels go into ``frame[gold]`` as they are given."""
    rows = sample_rows(frame, n, seed=seed, stratify=stratify, key=key)
    session = ReviewSession(
        frame, column, rows, labels_for(frame, column, gold, labels), gold=gold, show=show
    )
    if _in_kernel():
        from .annotator import Annotator

        session.widget = Annotator(session)
    else:
        prompt_loop(session, ask)
    return session
