"""DataFrame jobs: ``df.claude.label / extract / map`` through Message Batches or realtime calls.

    from claude_magics import jobs
    job = jobs.run(df, "Sentiment of {{review}}", task=jobs.label_task(["pos", "neg"]))
    jobs.attach("job_3f9a2c1b7d"), jobs.list_jobs()

Jobs run on ``Settings.job_model`` (``%config ClaudeMagics.job_model``, a small model sold for
labeling and extraction) unless given a model; ``%%claude`` cells have their own.

* :mod:`.accessor`: the ``df.claude`` namespace (thin: validates, then calls plain functions);
* :mod:`.entry`: ``run``, ``attach``, ``cancel``, ``list_jobs``, and the cost confirmation;
* :mod:`.tasks`: what is asked (label, extract, map) and how an answer becomes a value;
* :mod:`.rows`: the row template, and rows turned into distinct prompts and request bodies;
* :mod:`.estimate`: what a job will cost before it is sent (beside bigger models), and token
  counts (exact, or estimates that say so);
* :mod:`.wire`: ``custom_id``s, batch create bodies, result lines into stored results;
* :mod:`.state`: one job as the job store knows it (record, prompts, latest results);
* :mod:`.job`: ``Job``: its verbs, and its results as a DataFrame;
* :mod:`.sending`: the Message Batches protocol and the realtime runner;
* :mod:`.store`: the durable SQLite job store;
* :mod:`.claim`: one process at a time per job, the others waiting for its results;
* :mod:`.spend`: what jobs cost, written to the spend ledger exactly once, kills included;
* :mod:`.indexes`: the frame's index, stored and given back exactly;
* :mod:`.progress`: the progress bar, and ``say``, the one way jobs print.
* :mod:`.evaluation`: model labels against gold labels (``evaluate``, ``Evaluation``), imported
  on its own (it needs pandas); ``df.claude.review`` hands over to :mod:`claude_magics.widgets`.
* :mod:`.compare`: one label task on a sample with several models and efforts, side by side;
  :mod:`.cascade`: a small model first, bigger ones for the rows it is unsure of; both run
  ordinary jobs, planned and confirmed as one by :mod:`.runner` (each imported on its own).
* :mod:`.front`: ``label``, ``extract``, ``map`` over any table (pandas, Polars, Arrow,
  Parquet, Dask); :mod:`.tables` reads them, :mod:`.streaming` runs big ones in bounded
  memory; :mod:`.polars` is ``frame.claude`` for Polars (registered here when Polars is
  already imported: this package never imports it).
"""

from __future__ import annotations

import sys as _sys

from .entry import BatchesUnavailableError, attach, cancel, list_jobs, run
from .front import estimate_cost, extract, label, map
from .job import Job
from .sending import JobWaitError
from .tasks import extract_task, label_task, map_task

__all__ = [
    "BatchesUnavailableError",
    "Job",
    "JobWaitError",
    "attach",
    "cancel",
    "estimate_cost",
    "extract",
    "extract_task",
    "label",
    "label_task",
    "list_jobs",
    "map",
    "map_task",
    "run",
]

if "polars" in _sys.modules:  # registering needs Polars: never imported here, only used
    from . import polars as _polars  # noqa: F401
