"""How DataFrame jobs talk to the person running them: a progress bar, and one-line messages.

    bar = Progress(total=500, desc="label · batch", enabled=True)
    bar.advance(10); bar.note("in_progress · 2 batches"); bar.close()
    say("Attaching to job_3f9a2c1b7d, started earlier on these same rows.")
    Uploads(store, progress=upload_bar)   # a bar for each upload over 8 MB

The bar is tqdm.auto (a widget in notebooks, text in a terminal), wrapped so that jobs never
import tqdm or ipywidgets unless a bar is shown, and so that a missing ipywidgets falls back to
the text bar instead of failing the job. Every message of the jobs goes through :func:`say`:
nothing else in ``jobs`` prints.
"""

from __future__ import annotations

import sys
import time
import warnings
from types import TracebackType
from typing import Any

from ..local_files import MB

#: Uploads bigger than this show a bar (:func:`upload_bar`); smaller ones are over too soon.
UPLOAD_BAR_ABOVE = 8 * MB

__all__ = ["UPLOAD_BAR_ABOVE", "Progress", "UploadBar", "say", "upload_bar"]


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

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        enabled: bool = True,
        initial: int = 0,
        unit: str = "req",
    ) -> None:
        self._bar: Any = None
        if not enabled:
            return
        # Bytes are counted in KB, MB... (1024 each); requests one by one.
        scale: dict[str, Any] = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
        with warnings.catch_warnings():
            # tqdm.auto warns (TqdmExperimentalWarning) and falls back when widgets are absent.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm  # type: ignore[import-untyped]

        try:
            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                leave=True,
                mininterval=0.2,
                **scale,
            )
        except ImportError:  # ipywidgets missing in a notebook: a text bar is still useful
            from tqdm.std import tqdm as text_tqdm  # type: ignore[import-untyped]

            self._bar = text_tqdm(total=total, initial=initial, desc=desc, unit=unit, **scale)

    def advance(self, count: int = 1) -> None:
        if self._bar is not None and count:
            self._bar.update(count)

    def note(self, text: str) -> None:
        if self._bar is not None:
            # Redraw now: between polls nothing else refreshes the bar, and without this its
            # status and elapsed time stay frozen at 00:00 for the whole wait.
            self._bar.set_postfix_str(text, refresh=True)

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` between polls, redrawing the bar every second: polls grow to a
        minute apart, and a bar whose elapsed time stands still for that long looks hung. An
        interrupt ends the pause as it would end ``time.sleep``."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            if self._bar is not None:
                self._bar.refresh()

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


class UploadBar:
    """One upload's bar: ``bar(sent, total)`` as the pieces go (a retry starts again from 0,
    and the bar goes back with it), then ``close()``."""

    def __init__(self, filename: str, size: int) -> None:
        self._progress = Progress(size, f"uploading {filename}", unit="B")

    def __repr__(self) -> str:
        return "UploadBar()"

    def __call__(self, sent: int, total: int) -> None:
        bar = self._progress._bar
        if bar is not None:
            bar.update(sent - bar.n)  # negative after a retry: tqdm takes it

    def close(self) -> None:
        self._progress.close()


def upload_bar(filename: str, size: int) -> UploadBar | None:
    """A bar for uploading a file of ``size`` bytes (None under :data:`UPLOAD_BAR_ABOVE`): the
    ``progress`` of :class:`~claude_magics.api.uploads.Uploads` in notebooks and jobs."""
    return UploadBar(filename, size) if size > UPLOAD_BAR_ABOVE else None
