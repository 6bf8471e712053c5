"""A streamed job: any table, any size, through Message Batches in bounded memory.

    job = run_table("reviews.parquet", "review", label_task(labels))   # jobs.streaming
    job.write("labels.parquet", key=["id"]), job.table(), attach(job.id)

The rows are read a chunk at a time (``tables``); each chunk's prompts are rendered by the
row template (``rows``), hashed, and kept only when new: across chunks the job keeps a sorted
array of 64-bit prompt hashes (8 bytes a distinct prompt, plus its number), never the prompts.
A new prompt's request goes straight into the body of the batch being filled, a file on disk
beside the job store; when a batch is full (100,000 requests or 256 MB) it is planned in the
job store and created at once, while reading goes on. Results stream from each ended batch
into the job store (deflated slices) and into a compact state per prompt: a status code and
an answer code (each distinct answer once). The result is then assembled a chunk at a time:
a column for an in-memory table, or a Parquet file of the input's key columns (or row number)
and the result columns. Peak memory is one batch body, whatever the number of rows.

**Durable, as pandas jobs are** (``store``, ``sending``): the job is in ``jobs.sqlite`` before
anything is sent, under a hash of the task, the shared request and the table's bytes; every
batch is planned before it is created; the row-to-prompt map is a file of 4 bytes a row. A
process killed at any point is picked up by the same call (or ``attach``): the table is read
again from the start (the same rows give the same prompt numbers), batches already planned are
not planned again, creates whose answer was lost are looked for first, and nothing is paid
twice. The job store keeps no prompt: the table's file, checked by its hash, reproduces them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from ..errors import ClaudeError
from ..prompt import PromptError
from .job import Job
from .progress import Progress
from .sending import Batches
from .store import ChunkRecord, JobRecord, JobStore, OwedSpend, ResultRow
from .tables import TableSource, need
from .wire import BatchLimits, request_items

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from ..api.uploads import Uploads
    from .documents import RowFile
    from .rows import RowTemplate

__all__ = [
    "CHUNK_ROWS",
    "STREAM_BATCH_BYTES",
    "Chunk",
    "StreamBatches",
    "StreamJob",
    "job_folder",
    "scan",
]

#: Rows read, rendered and hashed at a time.
CHUNK_ROWS = 20_000
#: The most a streamed job's batch body holds (the API takes 256 MB): it is sent from disk,
#: but a lost one is laid out again in memory, and results come back a batch at a time
#: (about 30,000 short labeling requests).
STREAM_BATCH_BYTES = 32 * 1024 * 1024
_BODY_OVERHEAD = len(b'{"requests":[]}')


def job_folder(store: JobStore, job_id: str) -> Path:
    """Where a streamed job keeps its files: batch bodies until they are sent, the row map,
    and the snapshot of an in-memory table."""
    return store.path.parent / "jobs-tables" / job_id


# --------------------------------------------------------------------------------------------
# Prompts seen: a sorted array of hashes, not the prompts


def _hashes(texts: Sequence[str]) -> np.ndarray:
    """A 64-bit hash of each prompt text (BLAKE2b): two distinct prompts of a million share
    one with odds of about 3 in 100 million."""
    import numpy as np

    blake = hashlib.blake2b
    joined = b"".join(
        blake(t.encode("utf-8", "surrogatepass"), digest_size=8).digest() for t in texts
    )
    return np.frombuffer(joined, dtype="<u8")


class _Seen:
    """The distinct prompts met so far, numbered in order of first appearance: a sorted array
    of their hashes and, beside it, their numbers (16 bytes a distinct prompt)."""

    def __init__(self) -> None:
        import numpy as np

        self.hashes = np.empty(0, dtype="<u8")
        self.numbers = np.empty(0, dtype=np.int64)
        self.count = 0

    def add(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The prompt number of each row, and the rows (positions) whose prompt is new here,
        in the order of their numbers."""
        import numpy as np

        unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        at = np.searchsorted(self.hashes, unique)
        inside = at < len(self.hashes)
        found = np.zeros(len(unique), dtype=bool)
        found[inside] = self.hashes[at[inside]] == unique[inside]
        numbers = np.empty(len(unique), dtype=np.int64)
        numbers[found] = self.numbers[at[found]]
        new = ~found
        order = np.argsort(first[new], kind="stable")
        fresh = np.empty(int(new.sum()), dtype=np.int64)
        fresh[order] = np.arange(self.count, self.count + len(fresh))
        numbers[new] = fresh
        self.count += len(fresh)
        if len(fresh):
            self.hashes = np.insert(self.hashes, at[new], unique[new])
            self.numbers = np.insert(self.numbers, at[new], fresh)
        return numbers[inverse.reshape(-1)], first[new][order]


class Chunk(NamedTuple):
    """A chunk of a table as a streamed job reads it."""

    #: Each row's prompt text.
    texts: list[str]
    #: Each row's prompt number (the same on every read of the same table).
    numbers: np.ndarray
    #: The rows (positions) whose prompt is new here, in the order of their numbers.
    new_rows: np.ndarray
    #: With ``files=``: each row's file (read and hashed, never held past the chunk).
    files: list[RowFile] | None = None


def scan(source: TableSource, template: RowTemplate, files: str | None = None) -> Iterator[Chunk]:
    """The table a chunk at a time: what a streamed job reads and sends, and what its
    estimate counts. ``files``: the column of each row's PDF or image; a prompt is then its
    text and its file's content (by hash), as a pandas job's is."""
    from .documents import read_files

    columns = {str(f.column) for f in template.fields} | ({files} if files else set())
    seen = _Seen()
    for batch in source.batches(sorted(columns), CHUNK_ROWS):
        frame = batch.to_pandas()
        texts = template.render(frame)
        if files is None:
            numbers, new_rows = seen.add(_hashes(texts))
            yield Chunk(texts, numbers, new_rows)
            continue
        row_files = read_files(frame[files])
        keyed = [f"{t}\x00file\x00{f.identity}" for t, f in zip(texts, row_files, strict=True)]
        numbers, new_rows = seen.add(_hashes(keyed))
        yield Chunk(texts, numbers, new_rows, row_files)


# --------------------------------------------------------------------------------------------
# The batch being filled, on disk


class _BodyFile:
    """The create body of the batch being filled, written as requests come."""

    def __init__(self, folder: Path, limits: BatchLimits) -> None:
        self.folder, self.limits = folder, limits
        self.path = folder / f"filling-{secrets.token_hex(4)}.json"
        self.prompts: list[int] = []
        self.nbytes = _BODY_OVERHEAD
        self._handle: Any = None

    def fits(self, item: bytes) -> bool:
        extra = len(item) + (1 if self.prompts else 0)
        return not self.prompts or (
            len(self.prompts) < self.limits.max_requests
            and self.nbytes + extra <= self.limits.max_bytes
        )

    def add(self, prompt: int, item: bytes) -> None:
        if len(item) + _BODY_OVERHEAD > self.limits.max_bytes:
            raise ClaudeError(
                f"one request is {len(item):,} bytes, more than a batch may hold "
                f"({self.limits.max_bytes:,}); shorten that row"
            )
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "wb")  # noqa: SIM115 - closed by finish()
            self._handle.write(b'{"requests":[')
        else:
            self._handle.write(b",")
            self.nbytes += 1
        self._handle.write(item)
        self.nbytes += len(item)
        self.prompts.append(prompt)

    def finish(self) -> None:
        if self._handle is not None:
            self._handle.write(b"]}")
            self._handle.close()
            self._handle = None


class _FileBody:
    """A JSON request body sent from a file in pieces (``Client.send``'s ``upload``), from its
    first byte on each attempt."""

    content_type = "application/json"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.length = path.stat().st_size

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            while block := handle.read(1 << 20):
                yield block


def _body_path(folder: Path, chunk: ChunkRecord) -> Path:
    return folder / f"batch-{chunk.attempt}-{chunk.chunk}.json"


# --------------------------------------------------------------------------------------------
# The batches of a streamed job


class StreamBatches(Batches):
    """The Message Batches protocol of ``sending``, with bodies read from disk and prompts read
    again from the table when needed (a retry, a body lost before it was sent)."""

    job: StreamJob

    def _items(self, prompts: Any) -> list[bytes]:
        numbers = list(prompts)
        cached = self._encoded
        if all(n in cached for n in numbers):
            return [cached[n] for n in numbers]
        return self.job.prompt_items(numbers)

    def _payload(self, chunk: ChunkRecord) -> dict[str, Any]:
        path = _body_path(self.job.folder, chunk)
        if path.is_file():
            # Sent from the file a megabyte at a time: the body is never whole in memory.
            return {"upload": _FileBody(path)}
        return super()._payload(chunk)  # lost before it was sent: laid out again

    def _adopt(self, chunk: ChunkRecord, batch: Mapping[str, Any]) -> None:
        super()._adopt(chunk, batch)
        # Sent and recorded: the body is at Anthropic, and the table reproduces it.
        _body_path(self.job.folder, chunk).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The job


class StreamJob(Job):
    """A job over a table streamed in chunks (``run_table``, or ``attach`` of such a job).

    Its state per prompt is two small integers (a status code and an answer code, each
    distinct answer kept once); its prompts are read again from the table when needed."""

    compress_results = True

    def __init__(
        self,
        store: JobStore,
        record: JobRecord,
        *,
        source: TableSource | None = None,
        template: RowTemplate | None = None,
        uploads: Uploads | None = None,
        **options: Any,
    ) -> None:
        super().__init__(store, record, texts=[], row_prompt=[], **options)
        self._source = source
        self._template = template
        self._uploads = uploads
        # With files=: each distinct file's upload id, or why it has none (the id map only;
        # the files themselves are read a chunk at a time and let go).
        self._file_ids: dict[str, str] = {}
        self._file_failed: dict[str, str] = {}
        self.folder = job_folder(store, record.id)
        self._loaded = False
        self._status_names: list[str] = []
        self._status_codes: dict[str, int] = {}
        self._answers: list[tuple[str, str | None]] = []
        self._answer_codes: dict[tuple[str, str | None], int] = {}
        import numpy as np

        self._status = np.empty(0, dtype=np.int16)
        self._answer = np.empty(0, dtype=np.int32)

    # -- what it is -----------------------------------------------------------------------------

    @property
    def table_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.record.spec["table"]
        return spec

    @property
    def read_through(self) -> bool:
        """Whether the table has been read to its end (every prompt planned)."""
        return bool(self.table_spec.get("read"))

    @property
    def texts(self) -> list[str]:
        raise ClaudeError(f"{self.id} streams its rows: its prompts are not held in memory")

    @property
    def row_prompt(self) -> list[int]:
        return [int(n) for n in self._row_numbers_all()]

    def source(self) -> TableSource:
        """The table, as given in this process, or opened again from where the job found it
        (checked to be the same bytes)."""
        if self._source is None:
            spec = self.table_spec
            files = [Path(f[0]) for f in spec["files"]]
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise ClaudeError(
                    f"{self.id}: its table {missing[0]} is gone; run the same call on the same "
                    "table to go on (nothing answered is paid for again)"
                )
            source = TableSource(files, spec["display"], spec["readable"], self.record.n_rows)
            if spec["files"] != source.stamp() and source.fingerprint() != spec["fingerprint"]:
                raise ClaudeError(
                    f"{self.id}: its table {spec['display']} has changed since the job began; "
                    "run the job again on it (a new job), or restore the file"
                )
            self._source = source
        return self._source

    def template(self) -> RowTemplate:
        if self._template is None:
            from .rows import make_template

            spec = self.table_spec
            self._template = make_template(
                spec["columns"], spec["template"], self.task, files=self.files_column is not None
            )
        return self._template

    @property
    def betas(self) -> tuple[str, ...]:
        """The Files API's beta when rows send their files (by upload id)."""
        from ..api.betas import FILES_API_BETA

        return (FILES_API_BETA,) if self.files_column is not None else ()

    @property
    def files_column(self) -> str | None:
        """The column of each row's PDF or image (``files=``), or None."""
        column = self.table_spec.get("files_column")
        return None if column is None else str(column)

    # -- reading the table ---------------------------------------------------------------------

    def _scan(self) -> Iterator[Chunk]:
        return scan(self.source(), self.template(), self.files_column)

    def _prompts_again(self, prompts: Sequence[int]) -> dict[int, tuple[str, RowFile | None]]:
        """The texts (and files) of ``prompts``, read again from the table."""
        wanted = set(prompts)
        found: dict[int, tuple[str, RowFile | None]] = {}
        for chunk in self._scan():
            for row in chunk.new_rows.tolist():
                number = int(chunk.numbers[row])
                if number in wanted:
                    found[number] = (chunk.texts[row], chunk.files[row] if chunk.files else None)
            if len(found) == len(wanted):
                break
        return found

    def prompt_texts(self, prompts: Sequence[int]) -> dict[int, str]:
        """The texts of ``prompts``, read again from the table."""
        return {n: text for n, (text, _file) in self._prompts_again(prompts).items()}

    def prompt_items(self, prompts: Sequence[int]) -> list[bytes]:
        """The batch requests of ``prompts``, laid out again from the table (a retry, a body
        lost before it was sent); with files, each by its upload's id (none uploaded twice)."""
        found = self._prompts_again(prompts)
        texts = {n: text for n, (text, _file) in found.items()}
        before, after = self.record.before, self.record.after
        if self.files_column is None:
            return request_items(self.tag, before, after, texts, prompts)
        documents, failed = self._wire_documents({n: f for n, (_t, f) in found.items() if f})
        if failed:
            raise ClaudeError(
                f"{self.id}: {len(failed):,} of these rows' files can no longer be read or "
                f"uploaded (the first: {failed[0].error}); restore them and retry"
            )
        return request_items(self.tag, before, after, texts, prompts, documents)

    def renew_lost_files(self) -> None:
        """Prompts that came back 404 because the API no longer has their file (deleted from
        another notebook while the batch ran): upload those files again and send those
        prompts once more (once: a file lost again leaves them ``errored:not_found_error``),
        as a pandas job does. The files are found by reading the table again."""
        from .documents import session_uploads
        from .progress import say

        if self.files_column is None or not self.done:
            return
        statuses = self.statuses()
        lost = sorted(n for n, status in statuses.items() if status == "errored:not_found_error")
        if not lost:
            return
        if self._uploads is None:
            self._uploads = session_uploads()
        uploads = self._uploads
        used: dict[int, str] = {}
        for n, (_text, row_file) in self._prompts_again(lost).items():
            known = None
            if row_file is not None and row_file.sha256 is not None:
                known = uploads.known(self.client, row_file.sha256)
            if known is not None:
                used[n] = known.file_id
        try:
            gone = set(uploads.missing(self.client, sorted(set(used.values()))))
        except ClaudeError as error:
            say(f"{self.id}: could not ask the Files API about {len(used):,} files ({error}).")
            return
        if not gone:
            return
        uploads.forget(self.client, sorted(gone))
        self._file_ids = {sha: i for sha, i in self._file_ids.items() if i not in gone}
        again = sorted(n for n, file_id in used.items() if file_id in gone)
        say(
            f"{self.id}: the API no longer had {len(gone):,} of this job's files; uploading "
            f"them again and sending their {len(again):,} requests once more."
        )
        self.start(again)
        self.wait()

    def _wire_documents(
        self, files: Mapping[int, RowFile]
    ) -> tuple[dict[int, bytes], list[ResultRow]]:
        """The document block of each prompt as sent (its file uploaded first, once: what
        ``files.sqlite`` knows is not sent again), and the prompts whose file cannot be sent,
        as ``errored:file_error`` results."""
        from .documents import (
            FILE_ERROR,
            block_error,
            block_sha,
            key_block,
            session_uploads,
            upload_files,
            wire_block,
        )
        from .wire import failed_row

        documents: dict[int, bytes] = {}
        failed: list[ResultRow] = []
        for prompt, row_file in files.items():
            block = key_block(row_file, citations=self.task.citations)
            error = block_error(block)
            sha = block_sha(block)
            if error is None and sha is not None and sha not in self._file_ids:
                if sha not in self._file_failed:
                    if self._uploads is None:
                        self._uploads = session_uploads()
                    ids, bad = upload_files([row_file], self.client, self._uploads)
                    self._file_ids.update(ids)
                    self._file_failed.update(bad)
                if sha in self._file_failed:
                    error = f"upload failed: {self._file_failed[sha]}"
            if error is not None:
                failed.append(failed_row(prompt, FILE_ERROR, error, "files", 0))
            else:
                documents[prompt] = wire_block(block, self._file_ids)
        return documents, failed

    def _read_and_send(self) -> None:
        """Read the table through: plan each batch as it fills and create it at once. Batches
        an earlier run planned are not planned again (their prompts are skipped)."""
        planned = self.store.chunks(self.id, 0)
        upto = max((max(c.prompts) + 1 for c in planned if c.prompts), default=0)
        batches = StreamBatches(self)
        limits = BatchLimits(
            self.limits.max_requests, min(self.limits.max_bytes, STREAM_BATCH_BYTES)
        )
        body = _BodyFile(self.folder, limits)
        self.folder.mkdir(parents=True, exist_ok=True)
        for partial in self.folder.glob("filling-*.json"):
            partial.unlink(missing_ok=True)  # a killed run's batch half filled, never planned
        rows_path = self.folder / "rows.u32"
        total = self.record.n_rows
        bar = Progress(total, f"{self.id} rows read", enabled=self.progress, unit="row")
        sent = sum(c.n for c in planned)
        n_rows = n_prompts = n_failed = 0
        first_failure: str | None = None
        tag, before, after = self.tag, self.record.before, self.record.after
        try:
            with open(rows_path, "wb") as rows_file:
                for texts, numbers, new_rows, row_files in self._scan():
                    self.check_claim()
                    rows_file.write(numbers.astype("<u4").tobytes())
                    n_rows += len(texts)
                    n_prompts += len(new_rows)
                    chosen = [int(r) for r in new_rows if numbers[r] >= upto]
                    documents = None
                    if chosen and row_files is not None:
                        by_prompt = {int(numbers[r]): row_files[r] for r in chosen}
                        documents, failed = self._wire_documents(by_prompt)
                        self.put_results(failed)  # never sent: their files cannot be
                        n_failed += len(failed)
                        first_failure = first_failure or next((f.error for f in failed), None)
                        chosen = [r for r in chosen if int(numbers[r]) in documents]
                    if chosen:
                        prompts = [int(numbers[r]) for r in chosen]
                        chunk_texts = {int(numbers[r]): texts[r] for r in chosen}
                        items = request_items(tag, before, after, chunk_texts, prompts, documents)
                        for prompt, item in zip(prompts, items, strict=True):
                            if not body.fits(item):
                                sent += self._send_body(body, batches, bar)
                                body = _BodyFile(self.folder, limits)
                            body.add(prompt, item)
                    bar.advance(len(texts))
                    bar.note(f"{n_prompts:,} distinct, {sent:,} requests sent")
            if body.prompts:
                sent += self._send_body(body, batches, bar)
            bar.note(f"{n_prompts:,} distinct, {sent:,} requests sent")
            if n_failed:
                from .progress import say

                say(
                    f"{n_failed:,} of {n_prompts:,} distinct prompts have no file to send "
                    "(errored:file_error; "
                    f"the first: {first_failure}); the others are sent."
                )
        finally:
            body.finish()
            if body.path.exists():
                body.path.unlink()
            bar.close()
        spec = {**self.record.spec, "table": {**self.table_spec, "read": True}}
        self.store.update_job(self.id, n_rows=n_rows, n_prompts=n_prompts, spec=spec)
        self.record = replace(self.record, n_rows=n_rows, n_prompts=n_prompts, spec=spec)

    def _send_body(self, body: _BodyFile, batches: StreamBatches, bar: Progress) -> int:
        """Plan the filled batch in the job store, put its body where it is looked for, and
        create it. Returns how many requests it holds."""
        body.finish()
        self.store.plan(self.id, 0, [(body.prompts, body.nbytes)])
        chunk = self.store.chunks(self.id, 0)[-1]
        os.replace(body.path, _body_path(self.folder, chunk))
        bar.note(f"creating a batch of {chunk.n:,} requests")
        batches._create(chunk)
        return chunk.n

    # -- state per prompt, compact --------------------------------------------------------------

    def _grow(self, size: int) -> None:
        import numpy as np

        if size <= len(self._status):
            return
        capacity = max(size, 2 * len(self._status), 1024)
        status = np.full(capacity, -1, dtype=np.int16)
        answer = np.full(capacity, -1, dtype=np.int32)
        status[: len(self._status)] = self._status
        answer[: len(self._answer)] = self._answer
        self._status, self._answer = status, answer

    def _apply(self, rows: Sequence[ResultRow]) -> None:
        if not rows:
            return
        self._grow(max(row.prompt for row in rows) + 1)
        status_codes, answer_codes = self._status_codes, self._answer_codes
        status, answer = self._status, self._answer
        for row in rows:
            code = status_codes.get(row.status)
            if code is None:
                code = status_codes[row.status] = len(self._status_names)
                self._status_names.append(row.status)
            status[row.prompt] = code
            if row.status == "succeeded":
                key = (row.text or "", row.stop_reason)
                found = answer_codes.get(key)
                if found is None:
                    found = answer_codes[key] = len(self._answers)
                    self._answers.append(key)
                answer[row.prompt] = found
            else:
                answer[row.prompt] = -1

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self._rows = {}  # so that taking the claim reads the store again (``reload``)
        for rows in self.store.result_slices(self.id):
            self._apply(rows)
        self._apply(self._unsaved)

    def reload(self) -> StreamJob:
        import numpy as np

        self._loaded = False
        self._rows = None
        self._status = np.empty(0, dtype=np.int16)
        self._answer = np.empty(0, dtype=np.int32)
        return self

    def stored_results(self) -> dict[int, ResultRow]:
        raise ClaudeError(f"{self.id} streams its results: use .table() or .write()")

    def put_results(self, rows: list[ResultRow], owed: list[OwedSpend] | None = None) -> None:
        if not rows and not owed:
            return
        self._load()
        self._apply(rows)
        self._unsaved.extend(rows)
        self._unsaved_spend.extend(owed or ())
        self.save(final=False)

    def _prompt_status(self) -> np.ndarray:
        self._load()
        self._grow(self.record.n_prompts)
        return self._status[: self.record.n_prompts]

    def answered_count(self) -> int:
        return int((self._prompt_status() >= 0).sum())

    @property
    def done(self) -> bool:
        return self.read_through and bool((self._prompt_status() >= 0).all())

    def statuses(self) -> dict[int, str]:
        import numpy as np

        status = self._prompt_status()
        names = self._status_names
        return {int(p): names[status[p]] for p in np.flatnonzero(status >= 0)}

    def unanswered(self) -> list[int]:
        import numpy as np

        return [int(p) for p in np.flatnonzero(self._prompt_status() < 0)]

    def unsendable(self) -> set[int]:
        """The prompts never sent: their file could not be read or uploaded (a retry leaves
        them as they are, as a pandas job does)."""
        from .documents import FILE_ERROR

        if self.files_column is None:
            return set()
        return {n for n, status in self.statuses().items() if status == FILE_ERROR}

    def counts(self) -> dict[str, int]:
        import numpy as np

        status = self._prompt_status()
        counts: dict[str, int] = {}
        for numbers in self._row_numbers():
            codes = status[numbers] if len(status) else np.full(len(numbers), -1)
            values, tallies = np.unique(codes, return_counts=True)
            for code, tally in zip(values.tolist(), tallies.tolist(), strict=True):
                name = "pending" if code < 0 else self._status_names[code]
                counts[name] = counts.get(name, 0) + int(tally)
        return counts

    # -- sending and waiting ---------------------------------------------------------------------

    def start(self, prompts: Sequence[int] | None = None, *, wait: bool = True) -> StreamJob:
        with self.claimed(wait=wait) as mine:
            if not mine:
                return self
            if prompts is not None:
                StreamBatches(self).send(list(prompts))
            elif not self.read_through:
                self._read_and_send()
        return self

    def refresh(self, bar: Progress | None = None) -> int:
        with self.claimed():
            return StreamBatches(self).refresh(bar)

    def wait(self, *, progress: bool | None = None, timeout: float | None = None) -> StreamJob:
        if progress is not None:
            self.progress = progress
        with self.claimed():
            if not self.read_through:
                self._read_and_send()
            StreamBatches(self).wait(timeout=timeout)
        return self

    # -- the result, a chunk at a time ------------------------------------------------------------

    def _row_numbers(self) -> Iterator[np.ndarray]:
        """The prompt number of every row, a chunk at a time, from the row map on disk (or,
        when it is missing, from the table read again)."""
        import numpy as np

        path = self.folder / "rows.u32"
        n_rows = self.record.n_rows
        if self.read_through and path.is_file() and path.stat().st_size == 4 * n_rows:
            with open(path, "rb") as handle:
                while block := handle.read(4 * CHUNK_ROWS):
                    yield np.frombuffer(block, dtype="<u4").astype(np.int64)
            return
        for chunk in self._scan():
            yield chunk.numbers

    def _row_numbers_all(self) -> np.ndarray:
        import numpy as np

        parts = list(self._row_numbers())
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _arrow_columns(
        self, numbers: np.ndarray, status: bool | None, cache: dict[int, tuple[str, Any]]
    ) -> dict[str, Any]:
        """The result columns of rows whose prompts are ``numbers``."""
        pa = need("pyarrow")
        codes = self._prompt_status()
        answers = self._answer[: len(codes)]
        interpret = self.task.interpret
        statuses: list[str] = []
        values: list[Any] = []
        names = self._status_names
        for number in numbers.tolist():
            code = int(codes[number])
            if code < 0:
                statuses.append("pending")
                values.append(None)
                continue
            stored = names[code]
            if stored != "succeeded":
                statuses.append(stored)
                values.append(None)
                continue
            answer = int(answers[number])
            found = cache.get(answer)
            if found is None:
                if len(cache) > 100_000:  # free-text answers are seldom repeated
                    cache.clear()
                found = cache[answer] = interpret(*self._answers[answer])
            statuses.append(found[0])
            values.append(found[1])
        columns: dict[str, Any] = {}
        dtypes = self.task.dtypes()
        for name, (dtype, categories) in dtypes.items():
            if not self.task.by_field:
                data = values
            else:
                data = [None if v is None else v.get(name) for v in values]
            columns[name] = _arrow_array(pa, data, dtype, categories, multi=self.task.multi)
        if status or (status is None and len(dtypes) > 1):
            columns["claude_status"] = pa.array(statuses, pa.string())
        return columns

    def _result_parts(
        self,
        key: Sequence[str] = (),
        status: bool | None = None,
        *,
        row: bool = False,
        keys_from: TableSource | None = None,
    ) -> Iterator[Any]:
        """The result, a pyarrow Table per part of the table as it is read (``key``'s columns,
        or with ``row`` the row number, before the result columns). ``keys_from``: where the
        key columns are, when not in the job's table (the same rows, in the same order)."""
        import numpy as np

        pa = need("pyarrow")
        cache: dict[int, tuple[str, Any]] = {}
        start = 0
        numbers = self._row_numbers()
        held = np.empty(0, dtype=np.int64)
        # The parts follow the table's own batches (key columns, or none: only their sizes),
        # the row map read alongside.
        for batch in (keys_from or self.source()).batches(list(key), CHUNK_ROWS):
            size = batch.num_rows
            while len(held) < size:
                held = np.concatenate([held, next(numbers)])
            part, held = held[:size], held[size:]
            columns: dict[str, Any] = {name: batch.column(name) for name in key}
            if row:
                columns["row"] = pa.array(range(start, start + size), pa.int64())
            columns.update(self._arrow_columns(part, status, cache))
            start += size
            yield pa.table(columns)

    def table(self, *, status: bool | None = None) -> pa.Table:
        """The results, one row per row of the table, as a pyarrow Table (one column per
        value, and ``claude_status`` as ``result`` gives it)."""
        pa = need("pyarrow")
        parts = list(self._result_parts((), status))
        if not parts:
            return pa.table({})
        return pa.concat_tables(parts)

    def keep_keys(self, keys: TableSource) -> None:
        """Keep the key columns of an in-memory table (a snapshot of them, the same rows in
        the same order) with the job, so that ``write(out, key=...)`` finds them, in this
        kernel or after ``attach`` in another. Its table's snapshot holds only the columns
        the prompts read: a key changes nothing of what is asked."""
        if keys.n_rows != self.record.n_rows:
            keys.remove()
            raise ClaudeError(
                f"{self.id}: the key columns have {keys.n_rows:,} rows and the job "
                f"{self.record.n_rows:,}: give the same table the job was run on"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / "keys.parquet"
        os.replace(keys.files[0], kept)
        spec = dict(self.record.spec)
        spec["table"] = {**self.table_spec, "keys": list(keys.columns)}
        self.store.update_spec(self.id, spec)
        self.record = replace(self.record, spec=spec)

    def _kept_keys(self, key: Sequence[str]) -> TableSource | None:
        """The key columns kept with the job (:meth:`keep_keys`), when they hold ``key`` and
        the table does not."""
        readable = self.table_spec["readable"]
        kept = self.table_spec.get("keys") or []
        path = self.folder / "keys.parquet"
        if all(k in readable for k in key) or not all(k in kept for k in key):
            return None
        if not path.is_file():
            return None
        return TableSource([path], "the key columns", list(kept), self.record.n_rows)

    def write(
        self, out: str | os.PathLike[str], *, key: Sequence[str] = (), status: bool = True
    ) -> Path:
        """Write the results to a Parquet file, a chunk at a time: ``key``'s columns of the
        table (default: ``row``, the row number; an in-memory table's, once kept with
        :meth:`keep_keys`) and the result columns with ``claude_status``. Written beside and
        then moved in place: never half a file."""
        pq = need("pyarrow.parquet")
        target = Path(os.fspath(out)).expanduser()
        if target.is_dir():
            raise PromptError(f"out: {out} is a folder; give a file name such as labels.parquet")
        keys_from = self._kept_keys(key)
        readable = keys_from.columns if keys_from is not None else self.table_spec["readable"]
        missing = [k for k in key if k not in readable]
        if missing:
            from .rows import _missing_column

            error = _missing_column(missing[0], readable, bare=True)
            raise PromptError(f"key: {error}")
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        writer = None
        try:
            for part in self._result_parts(key, status, row=not key, keys_from=keys_from):
                if writer is None:
                    writer = pq.ParquetWriter(partial, part.schema)
                writer.write_table(part)
        except BaseException:
            if writer is not None:
                writer.close()
            partial.unlink(missing_ok=True)
            raise
        if writer is None:
            raise ClaudeError(f"{self.id}: the table has no rows to write")
        writer.close()
        os.replace(partial, target)
        return target

    def result(self, frame: Any = None, *, status: bool | None = None, usage: bool = False) -> Any:
        """The results as pandas (by row position), for ``attach(id).result()``."""
        if usage:
            raise ClaudeError("usage=True: not for streamed jobs (the ledger has their spend)")
        table = self.table(status=status)
        result = table.to_pandas()
        if frame is not None:
            result.index = frame.index
        if table.num_columns == 1 and not status:
            return result[table.column_names[0]]
        return result


def _arrow_array(
    pa: Any, data: list[Any], dtype: str, categories: list[Any] | None, *, multi: bool
) -> Any:
    """One result column as Arrow, of the same type in every chunk: labels as a dictionary of
    all the labels, numbers and strings as themselves, anything else as JSON text."""
    if dtype == "category":
        dictionary = pa.array([str(c) for c in categories or []], pa.string())
        lookup = {c: i for i, c in enumerate(categories or [])}
        indices = pa.array([lookup.get(v) for v in data], pa.int32())
        return pa.DictionaryArray.from_arrays(indices, dictionary)
    simple = {"string": pa.string(), "Float64": pa.float64(), "Int64": pa.int64()}
    if dtype in simple:
        return pa.array(data, simple[dtype])
    if dtype == "boolean":
        return pa.array(data, pa.bool_())
    if multi:
        return pa.array(data, pa.list_(pa.string()))
    return pa.array([None if v is None else orjson.dumps(v).decode() for v in data], pa.string())
