"""DataFrame jobs: ``df.claude.label / extract / map`` through Message Batches or realtime calls.

    from claude_magics import jobs
    job = jobs.run(df, "Sentiment of {{review}}", task=jobs.label_task(["pos", "neg"]))
    jobs.attach("job_3f9a2c1b7d"), jobs.list_jobs()

* :mod:`.accessor`: the ``df.claude`` namespace (thin: validates, then calls plain functions);
* :mod:`.rows`: tasks (label, extract, map) and rows turned into distinct prompts;
* :mod:`.estimate`: what a job will cost before it is sent, and exact token counts;
* :mod:`.job`: ``Job``, its state and its results as a DataFrame; ``run``, ``attach``, ``cancel``;
* :mod:`.store`: the durable SQLite job store;
* :mod:`.progress`: the progress bar.
"""

from __future__ import annotations

from .job import Job, attach, cancel, list_jobs, run
from .rows import extract_task, label_task, map_task

__all__ = ["Job", "attach", "cancel", "extract_task", "label_task", "list_jobs", "map_task", "run"]
