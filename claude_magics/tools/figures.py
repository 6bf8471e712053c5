"""matplotlib figures as image blocks Claude can see, without ever importing matplotlib.

    figure_blocks(fig, 2000)      # [{"type": "text", ...}, {"type": "image", ...}]
    open_figures()                # pyplot's open figures; [] when pyplot was never imported

Figures are recognised by their class names; pyplot is used only when the user's code already
imported it. The PNG is sized to the token budget (an image costs about width x height / 750
tokens) and to the 1568-pixel edge beyond which the API would shrink it anyway.
"""

from __future__ import annotations

import io
import math
import sys
from typing import Any

from ..prompt.attachments import image_block

__all__ = ["current_figure", "figure_blocks", "figure_of", "open_figures"]

_MAX_EDGE = 1568
_PIXELS_PER_TOKEN = 750
_MIN_DPI = 20


def _from_matplotlib(value: Any, class_name: str) -> bool:
    return any(
        cls.__name__ == class_name and cls.__module__.split(".")[0] == "matplotlib"
        for cls in type(value).__mro__
    )


def figure_of(value: Any) -> Any | None:
    """The Figure ``value`` is, or the one an Axes belongs to; else None."""
    if _from_matplotlib(value, "Figure"):
        return value
    if _from_matplotlib(value, "Axes"):
        return value.figure
    return None


def _pyplot() -> Any | None:
    # Only if the user imported it: importing pyplot picks a backend, a visible side effect.
    return sys.modules.get("matplotlib.pyplot")


def open_figures() -> list[Any]:
    """The figures pyplot holds open, in number order (pyplot's current figure is kept)."""
    plt = _pyplot()
    if plt is None:
        return []
    numbers = plt.get_fignums()
    if not numbers:
        return []
    current = plt.gcf()
    figures = [plt.figure(number) for number in numbers]
    plt.figure(current)  # plt.figure(n) made n current: put the user's current figure back
    return figures


def current_figure() -> Any | None:
    """pyplot's current figure, or None (pyplot not imported, or no figure open); never
    creates one, as ``plt.gcf()`` would."""
    plt = _pyplot()
    if plt is None or not plt.get_fignums():
        return None
    return plt.gcf()


def _describe(fig: Any, width: int, height: int) -> str:
    label = fig.get_label() or ""
    number = getattr(fig, "number", None)
    title = f"Figure {number}" if number is not None else "Figure"
    if label:
        title += f" {label!r}"
    parts = []
    for ax in fig.get_axes():
        bits = [repr(t) for t in (ax.get_title(),) if t]
        bits += [f"x: {ax.get_xlabel()!r}"] if ax.get_xlabel() else []
        bits += [f"y: {ax.get_ylabel()!r}"] if ax.get_ylabel() else []
        parts.append("axes " + (", ".join(bits) if bits else "(no title or labels)"))
    axes = "; ".join(parts[:12]) if parts else "no axes"
    more = f"; and {len(parts) - 12} more axes" if len(parts) > 12 else ""
    return f"{title}: {width}x{height} px PNG; {axes}{more}"


def figure_png(fig: Any, max_tokens: int) -> tuple[bytes, int, int]:
    """The figure as PNG bytes, with its size in pixels, scaled down to fit ``max_tokens``."""
    width_in, height_in = (float(x) for x in fig.get_size_inches())
    dpi = float(fig.dpi)
    area = max(width_in * height_in * dpi * dpi, 1.0)
    scale = min(
        1.0,
        _MAX_EDGE / max(width_in * dpi, height_in * dpi, 1.0),
        math.sqrt(max(max_tokens, 1) * _PIXELS_PER_TOKEN / area),
    )
    dpi = max(dpi * scale, _MIN_DPI)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    # The size as written (PNG's IHDR chunk), not as computed: the renderer rounds.
    return data, int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def figure_blocks(fig: Any, max_tokens: int) -> list[dict[str, Any]]:
    """A text block saying what the figure is, then the figure as a PNG image block."""
    data, width, height = figure_png(fig, max_tokens)
    return [{"type": "text", "text": _describe(fig, width, height)}, image_block(data)]
