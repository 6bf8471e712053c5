"""How DataFrame jobs talk to the person running them: a progress bar, and one-line messages.

    bar = Progress(total=500, desc="label · batch", enabled=True)
    bar.advance(10); bar.note("in_progress · 2 batches"); bar.close()
    say("Attaching to job_3f9a2c1b7d, started earlier on these same rows.")

The bar is tqdm.auto (a widget in notebooks, text in a terminal), wrapped so that jobs never
import tqdm or ipywidgets unless a bar is shown, and so that a missing ipywidgets falls back to
the text bar instead of failing the job. Every message of the jobs goes through :func:`say`:
nothing else in ``jobs`` prints.
"""

from __future__ import annotations

import sys
import warnings
from types import TracebackType
from typing import Any

__all__ = ["Progress", "say"]


def say(message: str) -> None:
    """Tell the person running a job something worth knowing (that it attached to an earlier
    job, that rows failed): one line on standard output, looked up at each call, so that a
    notebook shows it under the cell, a terminal prints it, and ``capsys`` or IPython's
    ``capture_output`` capture it."""
    stream = sys.stdout
    stream.write(message + "\n")
    # A kernel sends stdout in batches: flush, so that the line comes before any display
    # output that follows it (a job's result table).
    stream.flush()


class Progress:
    """Counts, a status note and the elapsed time (tqdm shows it) of one job."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True, initial: int = 0) -> None:
        self._bar: Any = None
        if not enabled:
            return
        with warnings.catch_warnings():
            # tqdm.auto warns (TqdmExperimentalWarning) and falls back when widgets are absent.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm  # type: ignore[import-untyped]

        try:
            self._bar = tqdm(
                total=total, initial=initial, desc=desc, unit="req", leave=True, mininterval=0.2
            )
        except ImportError:  # ipywidgets missing in a notebook: a text bar is still useful
            from tqdm.std import tqdm as text_tqdm  # type: ignore[import-untyped]

            self._bar = text_tqdm(total=total, initial=initial, desc=desc, unit="req")

    def advance(self, count: int = 1) -> None:
        if self._bar is not None and count:
            self._bar.update(count)

    def note(self, text: str) -> None:
        if self._bar is not None:
            # Redraw now: between polls nothing else refreshes the bar, and without this its
            # status and elapsed time stay frozen at 00:00 for the whole wait.
            self._bar.set_postfix_str(text, refresh=True)

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
