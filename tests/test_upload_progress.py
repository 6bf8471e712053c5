"""A bar for large uploads: ``Uploads(progress=...)`` drives it to the total and closes it
however the upload ends; cells, ``%claude_files upload`` and jobs with ``files=`` show one for
files over 8 MB, against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_support import Jobs
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from shell_support import magics_of
from test_job_documents import write_pdf

from claude_magics.api.client import Client
from claude_magics.api.uploads import FileStore, Uploads
from claude_magics.emulator import Emulator
from claude_magics.errors import BadRequestError
from claude_magics.jobs.progress import UploadBar, upload_bar
from claude_magics.jobs.tasks import map_task
from claude_magics.pytest_plugin import TEST_API_KEY

BIG = 9 * 1024 * 1024


def big_pdf(path: Path) -> Path:
    """A real one-page PDF followed by 9 MB of comment bytes (readers stop at ``%%EOF``)."""
    small = write_pdf(path, ["Invoice 42 from Acme.", "Total due: 12 EUR."]).read_bytes()
    path.write_bytes(small + b"%" + b"x" * BIG + b"\n")
    return path


class Recorder:
    """A progress factory that keeps every bar it made."""

    def __init__(self) -> None:
        self.bars: list[Recorder.Bar] = []

    class Bar:
        def __init__(self, name: str, size: int) -> None:
            self.name, self.size = name, size
            self.seen: list[tuple[int, int]] = []
            self.closed = False

        def __call__(self, sent: int, total: int) -> None:
            self.seen.append((sent, total))

        def close(self) -> None:
            self.closed = True

    def __call__(self, name: str, size: int) -> Recorder.Bar:
        bar = Recorder.Bar(name, size)
        self.bars.append(bar)
        return bar


@pytest.fixture
def client(emulator: Emulator) -> Any:
    with Client(api_key=TEST_API_KEY, base_url=emulator.url, initial_retry_delay=0.01) as client:
        yield client


def test_uploads_drive_the_bar_to_the_total_and_close_it(client: Client, tmp_path: Path) -> None:
    bars = Recorder()
    uploads = Uploads(FileStore(tmp_path / "files.sqlite"), progress=bars)
    data = big_pdf(tmp_path / "big.pdf").read_bytes()
    uploads.upload(client, data, filename="big.pdf", media_type="application/pdf")
    (bar,) = bars.bars
    assert bar.name == "big.pdf" and bar.size == len(data) and bar.closed
    assert bar.seen[0] == (0, len(data)) and bar.seen[-1] == (len(data), len(data))
    assert len(bar.seen) == 11  # the start, then ten 1 MB pieces
    # From disk (%claude_files upload, a job's path column): the same, streamed.
    other = tmp_path / "other.pdf"
    other.write_bytes(data + b"\n")
    uploads.upload_path(client, other)
    assert bars.bars[1].seen[-1] == (len(data) + 1, len(data) + 1) and bars.bars[1].closed
    # Known content uploads nothing, so it shows no bar.
    uploads.upload(client, data, filename="again.pdf", media_type="application/pdf")
    assert len(bars.bars) == 2


def test_a_failed_upload_closes_its_bar(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    bars = Recorder()
    uploads = Uploads(None, progress=bars)
    emulator.add_fault(status=400, path="/v1/files")
    with pytest.raises(BadRequestError):
        uploads.upload_path(client, big_pdf(tmp_path / "big.pdf"))
    (bar,) = bars.bars
    assert bar.closed
    assert uploads.stored(client) == []


def test_the_bar_is_for_large_files_only_and_goes_back_on_a_retry() -> None:
    assert upload_bar("small.pdf", 8 * 1024 * 1024) is None
    bar = upload_bar("big.pdf", BIG)
    assert isinstance(bar, UploadBar) and repr(bar) == "UploadBar()"
    inner = bar._progress._bar
    bar(0, BIG)
    bar(BIG // 2, BIG)
    bar(0, BIG)  # the upload is sent again from its first byte
    assert inner.n == 0
    bar(BIG, BIG)
    assert inner.n == BIG
    bar.close()
    assert bar._progress._bar is None


def test_claude_files_upload_and_a_cell_show_a_bar_for_a_large_pdf(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    pdf = big_pdf(tmp_path / "scan.pdf")
    with capture_output() as shown:
        ip.run_line_magic("claude_files", f"upload {pdf}")
    assert "uploading scan.pdf" in shown.stderr and "100%" in shown.stderr
    assert shown.stdout.startswith("Uploaded scan.pdf (9.1 MB) as file_")
    other = big_pdf(tmp_path / "lease.pdf")
    other.write_bytes(other.read_bytes() + b"\n")
    with capture_output() as shown:
        ip.run_cell_magic("claude", f"--once --pdf {other}", "Who sent it?")
    assert "uploading lease.pdf" in shown.stderr and "100%" in shown.stderr
    assert len(magics_of(ip).uploads.stored(magics_of(ip).client)) == 2


def test_a_job_with_files_drives_the_bar(jobs: Jobs, emulator: Emulator, tmp_path: Path) -> None:
    bars = Recorder()
    uploads = Uploads(FileStore(jobs.home / "files.sqlite"), progress=bars)
    frame = pd.DataFrame({"name": ["scan"], "pdf": [str(big_pdf(tmp_path / "scan.pdf"))]})
    job = jobs.run(
        frame,
        "Read {{name}}",
        map_task({"vendor": str}),
        mode="realtime",
        files="pdf",
        uploads=uploads,
    )
    assert job.result(frame).notna().all()
    (bar,) = bars.bars
    assert bar.seen[-1] == (bar.size, bar.size) and bar.size > BIG and bar.closed
