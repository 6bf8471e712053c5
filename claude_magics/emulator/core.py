"""`Emulator`: the local Anthropic API, started in a background thread.

    with Emulator(tokens_per_second=100) as emu:
        emu.add_fault(status=529, count=2)     # then point a client at emu.url

The object is a thin facade: `App` holds the behaviour and state, `server` the HTTP plumbing
(imported only when the emulator starts). Both load on first use, so importing this module
stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .options import EmulatorOptions, Fault

if TYPE_CHECKING:
    from ..model_table import ModelEntry
    from .app import App, RecordedRequest
    from .server import EmulatorServer

__all__ = ["Emulator"]


class Emulator:
    """A local, deterministic Anthropic API on 127.0.0.1 for tests and offline notebooks.

    ``Emulator(**options)`` takes the fields of `EmulatorOptions` as keyword arguments (or an
    `EmulatorOptions` as the single positional argument, with keyword overrides).
    """

    def __init__(self, options: EmulatorOptions | None = None, /, **changes: Any) -> None:
        from .app import App  # the endpoints load with the first emulator, not on import

        base = options if options is not None else EmulatorOptions()
        self._app: App = App(base.replace(**changes) if changes else base)
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._lifecycle = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        """Bind the socket and serve in a daemon thread (no-op when already running)."""
        from .server import EmulatorServer  # http.server is only needed once we serve

        with self._lifecycle:
            if self._server is not None:
                return self
            options = self._app.options
            server = EmulatorServer((options.host, options.port), self._app)
            host, port = server.server_address[:2]
            shown = "127.0.0.1" if host in ("", "0.0.0.0") else str(host)
            if ":" in shown:
                shown = f"[{shown}]"
            self._url = f"http://{shown}:{port}"
            self._app.base_url = self._url
            self._server = server
            # A short poll interval keeps stop() fast; the loop is idle otherwise.
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"claude-emulator:{port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and open connections, join the thread."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            server.shutdown()
            server.close_connections()
            server.server_close()
            if thread is not None:
                thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        """How many client connections the server holds open now, idle keep-alive ones
        included: a client that closes what it is done with brings this back to 0."""
        server = self._server
        return server.open_connections() if server is not None else 0

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:51234`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the emulator has not been started; call start() first")
        return self._url

    def __repr__(self) -> str:
        where = self._url if self._server is not None else "stopped"
        return f"<Emulator {where}>"

    # ------------------------------------------------------------------ scripting

    @property
    def options(self) -> EmulatorOptions:
        return self._app.options

    def configure(self, **changes: Any) -> EmulatorOptions:
        """Change options at runtime (host and port only while stopped); returns the new set.

        ``faults=[...]`` replaces the queue of pending faults.
        """
        return self._app.configure(changes, allow_address=self._server is None)

    def add_fault(
        self, fault: Fault | Mapping[str, Any] | str | None = None, /, **kwargs: Any
    ) -> Fault:
        """Queue a failure for matching requests; see `Fault` for the fields.

        ``emu.add_fault(status=529, count=2)``, ``emu.add_fault({"kind": "drop"})`` or a JSON
        string. Faults apply in the order they were added: for each request the first pending
        fault that matches its path and method decides (with ``every=N`` it hits every Nth
        matching request and lets the others through).
        """
        if fault is not None and kwargs:
            raise TypeError("give a fault either as one object or as keyword arguments")
        return self._app.add_fault(Fault.from_obj(fault if fault is not None else kwargs))

    def add_reply(
        self,
        text: str | None = None,
        *,
        thinking: str | None = None,
        tool_use: Mapping[str, Any] | None = None,
        stop_reason: str | None = None,
    ) -> None:
        """Script the next /v1/messages reply (FIFO): exact text, thinking, a tool call.

        The text is still cut by ``max_tokens`` and ``stop_sequences``. ``tool_use`` is
        ``{"name": ..., "input": {...}}`` (``id`` optional). With neither text nor tool_use
        the usual generated text is used.
        """
        from .generation import ScriptedReply

        call = dict(tool_use) if tool_use is not None else None
        self._app.add_reply(ScriptedReply(text, thinking, call, stop_reason))

    def add_model(
        self, model: ModelEntry | Mapping[str, Any] | str | None = None, /, **fields: Any
    ) -> dict[str, Any]:
        """Serve a model the bundled table does not know (or change one it does).

        ``emu.add_model("claude-sonnet-6,1000000,128000")``, or keyword arguments:
        ``emu.add_model(id="claude-sonnet-6", max_input_tokens=1_000_000, max_tokens=128_000,
        like="claude-sonnet-5-5")``. The model takes the rules of ``like`` (default: the
        newest model of its family) unless fields of the model table override them. Returns
        its /v1/models object. Also an option (``Emulator(models=[...])``), a CLI flag
        (``--model``) and an admin route (``POST /_emulator/models``).
        """
        from .catalog import model_info

        if model is not None and fields:
            raise TypeError("give a model either as one object or as keyword arguments")
        return model_info(self._app.add_model(model if model is not None else fields))

    @property
    def requests(self) -> list[RecordedRequest]:
        """The /v1 requests received so far, oldest first (a copy)."""
        return self._app.recorded()

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator clock forward (cache TTLs, batches, rate limits); returns now."""
        return self._app.advance_clock(seconds)

    def now(self) -> float:
        """The emulator clock as a Unix timestamp."""
        return self._app.now()

    def reset(self) -> None:
        """Forget faults, scripted replies, the request log, caches, batches, files (their ids
        start over), rate-limit state.

        Options and the clock are kept.
        """
        self._app.reset()
