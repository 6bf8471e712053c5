"""What ``%%claude --batch DF`` and ``%claude_batch`` do; the magic methods only hand over here.

    %%claude --batch reviews --labels positive,negative,neutral --out sentiment
    How does this customer feel? {{review}}

    %claude_batch list            # then: status ID | attach ID [--out NAME] | cancel ID

The cell is the per-row template (``{{column}}`` references); ``--labels`` labels each row,
``--schema NAME`` extracts the fields of a schema (a dict or pydantic model in the notebook),
otherwise each row gets a free-text answer. ``--out NAME`` keeps a DataFrame with the value
column(s) and ``claude_status``. Without ``-m`` the job runs on ``ClaudeMagics.job_model``, not
the cells' model. User mistakes (a bad reference, a ``--max-tokens`` above the model's most)
raise ``UsageError`` (one line, no traceback).
"""

from __future__ import annotations

import html
from typing import Any

from IPython.core.error import UsageError

from ..api.rules import RequestNotAllowedError
from ..errors import JobNotFoundError
from ..prompt import PromptError

__all__ = ["batch_cell", "batch_command"]


def _show(value: Any, **kwargs: Any) -> None:
    from IPython.display import display

    display(value, **kwargs)  # type: ignore[no-untyped-call]


def _display(markdown: str, plain: str) -> None:
    _show({"text/markdown": markdown, "text/plain": plain}, raw=True)


def _frame(namespace: dict[str, Any], name: str) -> Any:
    import difflib

    if name not in namespace:
        close = difflib.get_close_matches(name, [k for k in namespace if not k.startswith("_")])
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"--batch {name}: no variable named {name!r} in the notebook{hint}")
    value = namespace[name]
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        raise UsageError(f"--batch {name}: a {type(value).__name__}, not a pandas DataFrame")
    return value


def _report(job: Any, out: str | None) -> None:
    """The one static output of a finished job: what ran, the counts, the cost."""
    from ..cost.pricing import format_usd

    line = job.summary()
    spent = f" · spent {format_usd(job.spent_usd)} now" if job.spent_usd else ""
    kept = f" · kept in `{out}`" if out else ""
    note = job.failures_note()
    md = f"{html.escape(line)}{spent}{kept}"
    plain = f"{line}{spent}" + (f" · kept in {out}" if out else "")
    if note:
        md += f"\n\n⚠ {html.escape(note)}"
        plain += f"\n{note}"
    _display(md, plain)


def batch_cell(shell: Any, args: Any, template: str) -> None:
    """``%%claude --batch DF``: run the cell as a per-row template over DF's rows."""
    from .. import jobs

    namespace = shell.user_ns
    frame = _frame(namespace, args.batch)
    if args.out and not args.out.isidentifier():
        raise UsageError(f"--out {args.out}: not a valid variable name")
    if args.labels and args.schema:
        raise UsageError("--labels and --schema ask for different things: give one of them")
    try:
        if args.labels:
            task = jobs.label_task([part.strip() for part in args.labels.split(",")])
        elif args.schema:
            if args.schema not in namespace:
                raise UsageError(f"--schema {args.schema}: no variable named {args.schema!r}")
            task = jobs.extract_task(namespace[args.schema])
        else:
            task = jobs.map_task()
        job = jobs.run(
            frame,
            template,
            task,
            model=args.model,
            system=args.system,
            max_tokens=args.max_tokens,
            mode=args.mode or "auto",
            yes=bool(args.yes),
            # --fresh: ask every row anew (no replay, a new job), keeping the new answers.
            fresh=bool(getattr(args, "fresh", False)),
        )
    except (PromptError, RequestNotAllowedError) as exc:
        raise UsageError(str(exc)) from None
    result = job.result(frame, status=True)
    if args.out:
        namespace[args.out] = result
    _report(job, args.out)
    if not args.out:
        _show(result)


def batch_command(shell: Any, args: Any) -> Any:
    """``%claude_batch list | status ID | attach ID [--out NAME] | cancel ID``."""
    from .. import jobs

    command = args.command
    if command == "list":
        table = jobs.list_jobs()
        if table.empty:
            _display("No DataFrame jobs yet.", "No DataFrame jobs yet.")
            return None
        _show(table)
        return None
    if not args.job:
        raise UsageError(f"%claude_batch {command} needs a job id (see %claude_batch list)")
    try:
        if command == "status":
            job = jobs.attach(args.job, wait=False, progress=False)
            batches = job.batches()  # asks the API, changes nothing
            lines = [
                f"{b['batch'] or '(not created yet)'}: {b['requests']:,} requests, "
                f"{b['api'] or b['ledger']}"
                for b in batches
            ]
            md = job._repr_markdown_()
            if lines:
                md += "\n\n" + "\n".join(f"- {html.escape(line)}" for line in lines)
            _display(md, "\n".join([job.summary(), *lines]))
        elif command == "attach":
            job = jobs.attach(args.job)
            if args.out:
                if not args.out.isidentifier():
                    raise UsageError(f"--out {args.out}: not a valid variable name")
                shell.user_ns[args.out] = job.result(status=True)
            _report(job, args.out)
        elif command == "cancel":
            job = jobs.cancel(args.job)
            _display(
                f"Canceled {html.escape(job.id)}: results already in are kept.",
                f"Canceled {job.id}: results already in are kept.",
            )
        else:  # argparse's choices make this unreachable
            raise UsageError(f"unknown command {command!r}")
    except JobNotFoundError as exc:
        # A mistyped id is the user's mistake: one line, no traceback.
        raise UsageError(str(exc)) from None
    return None
