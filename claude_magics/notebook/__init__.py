"""Claude in a notebook: the ``%%claude`` magics and everything they show.

    %load_ext claude_magics
    %%claude --max-tokens 300
    Summarise {{df}}

* :mod:`.magics`: ``ClaudeMagics``: traits (the configuration), flags and dispatch only;
* :mod:`.request`: a cell's flags and text turned into call options and the user turn;
* :mod:`.checks`: before sending: the model's rules, the context window, the budget,
  ``--count`` (a labelled local estimate where the server cannot count), deprecation warnings
  and what a 404 about the model adds;
* :mod:`.cell`: one cell's flow: send the body, stream it into a view, show and return the
  result, then record its spend;
* :mod:`.views`: the live widget, Markdown and terminal views;
* :mod:`.result`: ``ClaudeResult`` (what ``--out`` keeps), the status line and the clock that
  times thinking whose text is omitted;
* :mod:`.chat`: conversations keyed by cell;
* :mod:`.line_magics`: what ``%claude_history``, ``%claude_config``, ``%claude_tokens``,
  ``%claude_usage`` and ``%claude_models`` show;
* :mod:`.batch_magic`: ``%%claude --batch`` and ``%claude_batch``.

Only this wing and :mod:`claude_magics.config` import IPython.
"""
