"""``df.claude`` for Polars: the same ``label``, ``extract`` and ``map`` on DataFrames and
LazyFrames, answers as a Polars Series (one value column) or DataFrame.

    import claude_magics.jobs.polars      # registers pl.DataFrame.claude and pl.LazyFrame.claude
    df = df.with_columns(sentiment=df.claude.label("review", ["positive", "negative"]))

Registering needs Polars, which neither ``import claude_magics`` nor ``%load_ext`` may import:
importing this module registers the namespace, and ``import claude_magics.jobs`` (or the
extension, before a cell that uses Polars) imports it only when Polars is already imported.
A large frame is streamed through batches (``jobs.streaming``); a LazyFrame is written through
Polars' streaming engine, never collected whole.
"""

from __future__ import annotations

from typing import Any

from . import front
from .tables import need

__all__ = ["ClaudeNamespace", "register"]


class ClaudeNamespace:
    """``frame.claude`` on a Polars DataFrame or LazyFrame: ``label``, ``extract``, ``map`` and
    ``estimate`` with the options of ``df.claude`` (and ``out=``/``key=`` to write Parquet)."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def label(self, template_or_column: Any, labels: Any, **options: Any) -> Any:
        """A label per row (a categorical Series; a DataFrame with several columns)."""
        return front.label(self._frame, template_or_column, labels, **options)

    def extract(self, template_or_column: Any, schema: Any, **options: Any) -> Any:
        """Typed fields per row, with ``claude_status`` (a DataFrame)."""
        return front.extract(self._frame, template_or_column, schema, **options)

    def map(self, template: str, **options: Any) -> Any:
        """One answer per row (a string Series, or the schema's fields)."""
        return front.map(self._frame, template, **options)

    def estimate(self, template: Any, **options: Any) -> Any:
        """What the job would cost, as ``df.claude.estimate`` says it (a pandas table of the
        scenarios; ``labels=`` for ``label``, ``schema=`` for ``extract`` or ``map``). A
        LazyFrame or a big frame is read a part at a time, never collected."""
        return front.estimate_cost(self._frame, template, **options)


def register() -> None:
    """Register ``.claude`` on Polars DataFrames and LazyFrames (once)."""
    pl = need("polars")
    if getattr(pl.DataFrame, "claude", None) is not ClaudeNamespace:
        pl.api.register_dataframe_namespace("claude")(ClaudeNamespace)
    if getattr(pl.LazyFrame, "claude", None) is not ClaudeNamespace:
        pl.api.register_lazyframe_namespace("claude")(ClaudeNamespace)


register()
