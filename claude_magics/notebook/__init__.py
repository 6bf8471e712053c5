"""Claude in a notebook: the ``%%claude`` magics and everything they show.

    %load_ext claude_magics
    %%claude --model claude-haiku-4-5
    Summarise {{df}}

* :mod:`.magics`: ``ClaudeMagics``: traits (the configuration), flags and dispatch only;
* :mod:`.cell`: one cell's flow: send the body, stream it into a view, return the result;
* :mod:`.views`: the live widget, Markdown and terminal views;
* :mod:`.result`: ``ClaudeResult`` (what ``--out`` keeps) and the status line;
* :mod:`.chat`: conversations keyed by cell;
* :mod:`.batch_magic`: ``%%claude --batch`` and ``%claude_batch``.

Only this wing and :mod:`claude_magics.config` import IPython.
"""
