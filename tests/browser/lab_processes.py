"""The processes behind the browser tests: the emulator, JupyterLab, and where Chromium is.

    emulator = EmulatorProcess(log_path); emulator.add_reply("## Hi"); ...; emulator.stop()
    server = JupyterLabServer(base_dir, env); server.notebook_url("a.ipynb"); server.stop()

Kept out of conftest.py so test modules can import them: ``from conftest import`` would pick up
whichever conftest.py pytest imported last (notebooks/ has one too).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "SCREENSHOTS",
    "EmulatorProcess",
    "JupyterLabServer",
    "missing_requirement",
]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "browser"
# Debian's binary itself: /usr/bin/chromium is a wrapper script that adds flags and prints noise.
CHROMIUM = Path("/usr/lib/chromium/chromium")
# Exactly the flags of BROWSER_NOTES.md: no network beyond 127.0.0.1 (the resolver rule stops
# Chromium's own calls to Google hosts), no GPU, no sandbox (we run as root).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
# Slow enough that a 150-token reply streams for about two seconds, fast enough for the suite.
TOKENS_PER_SECOND = 80


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (`make browser-deps` installs Debian's build)"
    for package in ("playwright", "jupyterlab", "pexpect", "pyte"):
        if importlib.util.find_spec(package) is None:
            return f"the {package} Python package is missing (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 10) -> None:
    """Stop a process politely, then for certain."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class EmulatorProcess:
    """``python -m claude_magics.emulator`` in a subprocess, scripted through its admin API."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "claude_magics.emulator",
                "--port",
                "0",
                "--tokens-per-second",
                str(TOKENS_PER_SECOND),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the emulator did not print its URL (got {line!r}); see {log}")
        self.url = line
        self._http = httpx.Client(base_url=self.url, timeout=10)

    def reset(self, **options: Any) -> None:
        """Forget scripted replies, faults and requests; then apply ``options`` (pacing...)."""
        self._http.post("/_emulator/reset").raise_for_status()
        options.setdefault("tokens_per_second", TOKENS_PER_SECOND)
        self._http.patch("/_emulator/config", json=options).raise_for_status()

    def add_reply(self, text: str) -> None:
        """Script the text of the next /v1/messages reply (FIFO)."""
        self._http.post("/_emulator/replies", json={"text": text}).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = self._http.get("/_emulator/requests")
        response.raise_for_status()
        return list(response.json())

    def stop(self) -> None:
        if hasattr(self, "_http"):
            self._http.close()
        _stop(self.process)
        self._log.close()


class JupyterLabServer:
    """A JupyterLab server on 127.0.0.1 with its own token and fresh Jupyter directories."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.root = base / "notebooks"
        config, data, runtime = base / "config", base / "data", base / "runtime"
        for path in (self.root, config, data, runtime):
            path.mkdir(parents=True)
        # The news and update toasts would cover outputs in the screenshots.
        settings = config / "lab/user-settings/@jupyterlab/apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyterlab.log"
        self._log = self.log_path.open("w")
        env = {
            **env,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_DATA_DIR": str(data),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "IPYTHONDIR": str(base / "ipython"),
            # The spend ledger and other caches go here, not into the user's cache directory.
            "XDG_CACHE_HOME": str(base / "cache"),
            # ipykernel's debugger otherwise warns about frozen modules on every kernel start.
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--port-retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
            ],
            env=env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=10
        )
        self._wait_ready(timeout=60)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self._http.get("/api/status").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        tail = self.log_path.read_text()[-2000:]
        self.stop()
        raise RuntimeError(f"JupyterLab did not start within {timeout:.0f} s:\n{tail}")

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every session and its kernel, as closing a notebook and shutting it down does."""
        for session in self._http.get("/api/sessions").json():
            self._http.delete(f"/api/sessions/{session['id']}").raise_for_status()
        for kernel in self._http.get("/api/kernels").json():
            self._http.delete(f"/api/kernels/{kernel['id']}").raise_for_status()

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.shutdown_kernels()
        except httpx.HTTPError:
            pass  # the server is going away anyway; SIGTERM below also ends its kernels
        finally:
            self._http.close()
            _stop(self.process)
            self._log.close()
