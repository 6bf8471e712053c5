"""Which process works on a job: one at a time; the others wait for its results.

    hold = Hold(store, job.id)
    if take(job, hold, wait=True):      # waits while another live process works on the job
        try: ...                        # send, poll, fetch
        finally: hold.release()

The same job started in two kernels at once (the same cell run in two notebooks, a notebook
and a script) must not be sent twice, nor show the second "40 pending" while the first is still
answering. So a process works on a job only while it holds the job's claim, a row in the job
store taken in one ``BEGIN IMMEDIATE`` transaction: its process id, host and a heartbeat that
a thread renews every few seconds. Another process that wants the job says so in one line and
waits, showing the results as the holder stores them, then takes the claim and sends what is
left (nothing, if the holder finished).

A claim dies with its process: a holder whose process is gone (same host: no such process id,
or a zombie) or whose heartbeat is older than :data:`STALE_SECONDS` (a process on another host,
a frozen one) is passed over, so a ``kill -9`` never leaves a job stuck.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ClaudeError, StorageError
from .progress import Progress, say
from .store import ClaimRecord

if TYPE_CHECKING:
    from .state import JobState
    from .store import JobStore

__all__ = [
    "BEAT_SECONDS",
    "STALE_SECONDS",
    "Hold",
    "JobTakenOver",
    "StoppedWaiting",
    "say_if_busy",
    "take",
]

#: Seconds between a holder's heartbeats.
BEAT_SECONDS = 5.0
#: A claim whose heartbeat is older than this is dead, whatever its process id says.
STALE_SECONDS = 30.0
# The longest wait between two looks at the job while another process works on it.
_FOLLOW_MAX_SECONDS = 5.0
_HOST = socket.gethostname()
# Claims this process let go of but could not delete (the store was locked): dead, though their
# row stays until the store can be written (other processes see their heartbeat age instead).
_released: set[str] = set()


class StoppedWaiting(KeyboardInterrupt):
    """Interrupted while another process works on the job: nothing was sent from here."""

    def __init__(self, job: JobState, where: str) -> None:
        super().__init__(job.id)
        self.job, self.where = job, where

    def _render_traceback_(self) -> list[str]:
        return [
            f"Stopped waiting for {self.job.id}, which {self.where} is working on: nothing was "
            f"sent from here. %claude_batch attach {self.job.id} (or running the same call "
            "again) picks its results up later.",
        ]


class JobTakenOver(ClaudeError):
    """This process's claim on a job lapsed (its heartbeat could not be written for too long)
    and another process took the job over; this one stopped sending."""


def _alive(holder: ClaimRecord) -> bool:
    """Whether the process holding a claim is still working on the job."""
    if time.time() - holder.heartbeat > STALE_SECONDS or holder.owner in _released:
        return False
    if holder.host != _HOST or holder.pid == os.getpid() or os.name != "posix":
        return True  # only the heartbeat can tell
    try:
        os.kill(holder.pid, 0)  # signal 0: is there such a process?
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    try:  # a killed process its parent has not reaped yet is a zombie: dead all the same
        stat = Path(f"/proc/{holder.pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _where(holder: ClaimRecord) -> str:
    since = datetime.fromtimestamp(holder.since).strftime("%H:%M:%S")
    if holder.pid == os.getpid() and holder.host == _HOST:
        return f"another job object of this process (since {since})"
    host = "" if holder.host == _HOST else f" on {holder.host}"
    return f"another process (pid {holder.pid}{host}, since {since})"


class Hold:
    """One job object's claim on its job: taken, renewed by a heartbeat thread, released."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self.owner = secrets.token_hex(8)
        #: How many ``claimed`` blocks of this object are open (the claim is re-entrant).
        self.depth = 0
        #: Set when the heartbeat found the claim taken by another process.
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def try_take(self) -> ClaimRecord | None:
        """Take the claim: None when it is ours now, else the live holder."""
        now = time.time()
        mine = ClaimRecord(self.owner, os.getpid(), _HOST, now, now)
        return self.store.claim(self.job_id, mine, _alive)

    def start(self) -> None:
        self.lost.clear()
        self._stop.clear()
        self._beater = threading.Thread(
            target=self._beat, name=f"claude-claim:{self.job_id}", daemon=True
        )
        self._beater.start()

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            try:
                if not self.store.beat(self.job_id, self.owner):
                    self.lost.set()
                    return
            except StorageError:
                continue  # a missed beat is harmless; the next one may get through

    def check(self) -> None:
        """Raise :class:`JobTakenOver` if another process took the job over."""
        if self.lost.is_set():
            raise JobTakenOver(
                f"{self.job_id}: this process could not renew its claim on the job for "
                f"{STALE_SECONDS:g} s and another process took it over; this one stopped "
                "sending. Nothing is lost: that process sends the rest."
            )

    def release(self) -> None:
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=1.0)
            self._beater = None
        try:
            self.store.release(self.job_id, self.owner)
        except StorageError:
            # Costs nothing: this process knows the claim is dead, and for the others it
            # lapses once its heartbeat is old.
            _released.add(self.owner)


def _busy_line(job: JobState, where: str) -> str:
    return (
        f"{job.id} is being worked on by {where}: nothing was sent from here; "
        f"job.wait() or %claude_batch attach {job.id} waits for its results."
    )


def say_if_busy(job: JobState) -> bool:
    """Say in one line if another live process works on the job; returns whether one does."""
    holder = job.store.holder(job.id)
    mine = job.claim_owner
    if holder is None or holder.owner == mine or not _alive(holder):
        return False
    say(_busy_line(job, _where(holder)))
    return True


def take(job: JobState, hold: Hold, *, wait: bool) -> bool:
    """Take the job's claim for ``hold``. While another live process holds it: with ``wait``,
    say so in one line and wait for it (showing its results as they come), then take it;
    without, say so and return False. Interrupting the wait raises :class:`StoppedWaiting`."""
    holder = hold.try_take()
    if holder is None:
        hold.start()
        return True
    where = _where(holder)
    if not wait:
        say(_busy_line(job, where))
        return False
    say(
        f"{job.id} is being worked on by {where}: waiting for its results here (nothing is "
        f"sent twice; interrupting stops waiting, and %claude_batch attach {job.id} picks "
        "them up later)."
    )
    total = job.record.n_prompts
    have = min(len(job.stored_results()), total)
    bar = Progress(total, f"{job.id} (another process)", enabled=job.progress, initial=have)
    interval = job.settings.batch_poll_seconds
    # Grow as batch polls do, but look at least every few seconds: a realtime job ends soon.
    longest = max(min(_FOLLOW_MAX_SECONDS, job.settings.batch_poll_max_seconds), interval)
    try:
        while holder is not None:
            time.sleep(interval)
            interval = min(interval * 1.5, longest)
            now = min(len(job.reload().stored_results()), total)
            bar.advance(now - have)
            have = now
            holder = hold.try_take()
    except KeyboardInterrupt:
        raise StoppedWaiting(job, where) from None
    finally:
        bar.close()
    hold.start()
    return True
