"""Interactive UI that the jobs wing shows: the annotator behind ``df.claude.review``.

    from claude_magics.widgets.review import review
    session = review(df, "sentiment", n=50)   # buttons in a notebook, a prompt loop in a terminal

* :mod:`.review`: the sample (deterministic), the gold column, the session's moves, the
  terminal prompt loop, and :func:`~.review.review`, which picks the widget or the loop;
* :mod:`.annotator`: the ipywidgets view of a session (buttons, progress, a key box).

Importing this package imports neither pandas, IPython nor ipywidgets: the annotator imports
ipywidgets when it is shown.
"""
