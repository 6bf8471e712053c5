"""``AsyncClient`` against the emulator over real sockets: every endpoint, retries, cancellation,
a gather of a hundred calls under a concurrency limit, top-level await in IPython."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

import claude_magics
from claude_magics.api.client import AsyncClient, AsyncMessageStream, Client
from claude_magics.api.streaming import (
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    TextEvent,
)
from claude_magics.emulator import Emulator
from claude_magics.errors import (
    APIConnectionError,
    APIStreamError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OverloadedError,
)

MODEL = "claude-sonnet-4-6"
SECRET = "sk-async-secret-0123456789"
SALES = b"region,month,revenue\nnorth,jan,10\nsouth,jan,12\nwest,feb,7\n"
T = TypeVar("T")


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def run(make: Callable[[AsyncClient], Coroutine[Any, Any, T]], client: AsyncClient) -> T:
    """``make(client)`` in a fresh event loop, the client's connections closed after."""

    async def main() -> T:
        async with client:
            return await make(client)

    return asyncio.run(main())


@pytest.fixture
def client(emulator: Emulator) -> AsyncClient:
    # Tiny backoff so retry tests run fast; the rules are the sync client's (test_client_retries).
    return AsyncClient(api_key=SECRET, base_url=emulator.url, initial_retry_delay=0.01)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What the client asked asyncio to wait between attempts (the waits are skipped)."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        asked.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (the emulator's threads act on their own time); fail after 20 s."""
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.02)


# -- messages ---------------------------------------------------------------------------------


def test_create_stream_and_count_match_the_sync_client(
    client: AsyncClient, emulator: Emulator
) -> None:
    prompt = ask("Hi [[reply_tokens=30]]")

    async def calls(client: AsyncClient) -> tuple[Any, list[Any], AsyncMessageStream, int]:
        message = await client.messages.create(model=MODEL, max_tokens=200, messages=prompt)
        async with client.messages.stream(model=MODEL, max_tokens=200, messages=prompt) as s:
            events = [event async for event in s]
        count = await client.messages.count_tokens(model=MODEL, max_tokens=200, messages=prompt)
        return message, events, s, count

    message, events, stream, count = run(calls, client)
    assert message.request_id is not None and message.request_id.startswith("req_")
    assert isinstance(events[0], MessageStartEvent)
    assert isinstance(events[-2], MessageDeltaEvent)
    assert isinstance(events[-1], MessageStopEvent)
    assert len([e for e in events if isinstance(e, TextEvent)]) == 30
    assert stream.request_id is not None and stream.request_id != message.request_id
    assert stream.message["content"] == message["content"]
    assert stream.message["usage"]["output_tokens"] == 30
    assert count == message["usage"]["input_tokens"]
    # The sync client sends exactly the same requests (the emulator is deterministic).
    with Client(api_key=SECRET, base_url=emulator.url) as sync:
        assert (
            sync.messages.create(model=MODEL, max_tokens=200, messages=prompt)["content"]
            == (message["content"])
        )
    first, again = emulator.requests[0], emulator.requests[-1]
    assert first.body == again.body
    assert first.headers["anthropic-version"] == again.headers["anthropic-version"]


def test_text_stream_and_final_message(client: AsyncClient) -> None:
    async def calls(client: AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
        async with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("Hi [[reply_tokens=12]]")
        ) as stream:
            text = "".join([piece async for piece in stream.text_stream])
        async with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("Hi [[reply_tokens=12]]")
        ) as other:
            final = await other.get_final_message()
        return text, stream.message, final

    text, message, final = run(calls, client)
    assert text == message["content"][0]["text"] == final["content"][0]["text"]
    assert final["stop_reason"] == "end_turn"


def test_errors_are_typed_with_request_ids(client: AsyncClient) -> None:
    async def bad(client: AsyncClient) -> None:
        await client.messages.create(model=MODEL, max_tokens=0, messages=ask("x"))

    with pytest.raises(BadRequestError) as info:
        run(bad, client)
    assert info.value.status_code == 400
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")

    async def unknown(client: AsyncClient) -> None:
        await client.models.get("claude-nothing-9")

    with pytest.raises(NotFoundError):
        run(unknown, client)


def test_an_error_event_mid_stream_keeps_what_arrived(
    client: AsyncClient, emulator: Emulator
) -> None:
    emulator.add_fault(kind="error_event", after_events=8, error_type="overloaded_error")
    seen: list[str] = []

    async def read(client: AsyncClient) -> None:
        async with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("Hi [[reply_tokens=40]]")
        ) as stream:
            async for text in stream.text_stream:
                seen.append(text)

    with pytest.raises(APIStreamError) as info:
        run(read, client)
    assert info.value.error_type == "overloaded_error"
    assert info.value.partial is not None
    assert seen and info.value.partial["content"][0]["text"] == "".join(seen)


# -- models, batches, files ---------------------------------------------------------------------


def test_models_list_get_and_every_page(client: AsyncClient) -> None:
    async def calls(client: AsyncClient) -> tuple[Any, Any, list[str]]:
        page = await client.models.list(limit=2)
        one = await client.models.get(page.data[0]["id"])
        every = [model["id"] async for model in client.models.iter_all(page_size=2)]
        return page, one, every

    page, one, every = run(calls, client)
    assert len(page) == 2 and page.has_more
    assert one["id"] == page.data[0]["id"]
    assert every[:2] == [m["id"] for m in page] and len(every) > 2
    assert len(set(every)) == len(every)


def test_batches_create_retrieve_list_results_cancel_delete(
    client: AsyncClient, emulator: Emulator
) -> None:
    requests = [
        {
            "custom_id": f"r{i}",
            "params": {"model": MODEL, "max_tokens": 20, "messages": ask(f"{i}")},
        }
        for i in range(5)
    ]

    async def calls(client: AsyncClient) -> dict[str, Any]:
        batch = await client.batches.create(requests)
        assert batch["request_counts"]["processing"] == 5
        while batch["processing_status"] != "ended":
            await asyncio.sleep(0.05)
            batch = await client.batches.retrieve(batch["id"])
        async with client.batches.results(batch["id"]) as lines:
            results = {line["custom_id"]: line["result"]["type"] async for line in lines}
        listed = [b["id"] async for b in client.batches.iter_all(page_size=1)]
        emulator.configure(batch_processing_seconds=30)
        second = await client.batches.create(requests[:2])
        canceling = await client.batches.cancel(second["id"])
        emulator.advance_clock(1)
        kinds = {line["result"]["type"] async for line in client.batches.results(second["id"])}
        deleted = await client.batches.delete(batch["id"])
        try:
            await client.batches.retrieve(batch["id"])
        except NotFoundError:
            gone = True
        return {
            "results": results,
            "listed": listed,
            "ids": (batch["id"], second["id"]),
            "canceling": canceling["processing_status"],
            "kinds": kinds,
            "deleted": deleted["type"],
            "gone": gone,
        }

    got = run(calls, client)
    assert got["results"] == {f"r{i}": "succeeded" for i in range(5)}
    assert got["ids"][0] in got["listed"]
    assert got["canceling"] == "canceling"
    assert got["kinds"] == {"canceled"}
    assert got["deleted"] == "message_batch_deleted" and got["gone"]


def test_files_upload_list_retrieve_download_delete(client: AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"0123456789abcdef\n" * 150_000)  # 2.6 MB: three 1 MB pieces
    size = path.stat().st_size
    progress: list[tuple[int, int]] = []

    async def calls(client: AsyncClient) -> dict[str, Any]:
        big = await client.files.upload(path, progress=lambda *seen: progress.append(seen))
        sales = await client.files.upload(SALES, filename="sales.csv")
        page = await client.files.list(limit=1)
        every = [f["id"] async for f in client.files.iter_all(page_size=1)]
        retrieved = await client.files.retrieve(big["id"])
        try:
            await client.files.download(sales["id"])
        except BadRequestError as error:
            refused = error.error_code
        message = await client.messages.create(
            model=MODEL,
            max_tokens=400,
            tools=[{"type": "code_execution_20250825", "name": "code_execution"}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "container_upload", "file_id": sales["id"]},
                        {"type": "text", "text": "Calculate the revenue per region and save it."},
                    ],
                }
            ],
        )
        (result,) = [b for b in message["content"] if b["type"].endswith("execution_tool_result")]
        (output,) = result["content"]["content"]
        downloaded = await client.files.download(output["file_id"])
        deleted = await client.files.delete(big["id"])
        return {
            "big": big,
            "sales": sales,
            "page": [f["id"] for f in page],
            "every": every,
            "retrieved": retrieved,
            "refused": refused,
            "stdout": result["content"]["stdout"],
            "downloaded": downloaded,
            "deleted": deleted,
        }

    got = run(calls, client)
    assert (got["big"]["size_bytes"], got["big"]["mime_type"]) == (size, "text/plain")
    assert progress[0] == (0, size) and progress[-1] == (size, size) and len(progress) == 4
    assert got["page"] == [got["sales"]["id"]]
    assert got["every"] == [got["sales"]["id"], got["big"]["id"]]
    assert got["retrieved"] == got["big"]
    assert got["refused"] == "file_not_downloadable"
    assert got["downloaded"] == got["stdout"].encode()
    assert got["deleted"] == {"id": got["big"]["id"], "type": "file_deleted"}


# -- retries --------------------------------------------------------------------------------------


def test_retries_follow_the_sync_rules(emulator: Emulator, waits: list[float]) -> None:
    client = AsyncClient(api_key=SECRET, base_url=emulator.url, initial_retry_delay=0.01)

    async def create(client: AsyncClient) -> Any:
        return await client.messages.create(model=MODEL, max_tokens=10, messages=ask("x"))

    emulator.add_fault(status=429, retry_after=3)
    emulator.add_fault(kind="drop")
    run(create, client)
    # 429 waits what retry-after asks; the dropped connection backs off (the second retry).
    assert [r.status for r in emulator.requests] == [429, 0, 200]
    assert waits[0] == 3.0 and len(waits) == 2
    assert 0.01 < waits[1] <= 0.02

    emulator.reset()
    emulator.add_fault(status=529, should_retry=False)
    with pytest.raises(OverloadedError) as info:
        run(create, client)
    assert info.value.attempts == 1 and len(emulator.requests) == 1

    emulator.reset()
    emulator.add_fault(status=529, count=0)
    with pytest.raises(OverloadedError) as info:
        run(create, client)
    assert info.value.attempts == 3 and len(emulator.requests) == 3


def test_a_batch_create_whose_answer_was_lost_is_not_sent_again(
    client: AsyncClient, emulator: Emulator, waits: list[float]
) -> None:
    emulator.add_fault(kind="drop_response", path="/v1/messages/batches")
    one = [{"custom_id": "a", "params": {"model": MODEL, "max_tokens": 5, "messages": ask("x")}}]

    async def create(client: AsyncClient) -> Any:
        return await client.batches.create(one)

    with pytest.raises(APIConnectionError) as info:
        run(create, client)
    assert info.value.may_have_reached_server
    assert len(emulator.requests) == 1 and not waits


def test_gather_of_a_hundred_under_a_concurrency_limit_loses_nothing(emulator: Emulator) -> None:
    """A hundred calls at once, eight at a time by a semaphore, against a server that takes
    four at a time: the others get 429 with retry-after and are retried until all succeed."""
    emulator.configure(max_concurrent_requests=4, latency=0.05)
    client = AsyncClient(api_key=SECRET, base_url=emulator.url, max_retries=20)
    limit = asyncio.Semaphore(8)

    async def one(client: AsyncClient, index: int) -> str:
        async with limit:
            message = await client.messages.create(
                model=MODEL, max_tokens=20, messages=ask(f"row {index} [[reply_tokens=3]]")
            )
        return str(message["content"][0]["text"])

    async def every(client: AsyncClient) -> list[str]:
        return await asyncio.gather(*(one(client, i) for i in range(100)))

    answers = run(every, client)
    assert len(answers) == 100 and all(answers)
    statuses = [r.status for r in emulator.requests]
    assert statuses.count(200) == 100
    refused = [r for r in emulator.requests if r.status == 429]
    assert refused, "the limit was never reached: the test proves nothing"
    assert set(statuses) == {200, 429}
    # Every prompt got its own answer, each answered once.
    answered = [r.body["messages"][0]["content"] for r in emulator.requests if r.status == 200]
    assert sorted(answered) == sorted(f"row {i} [[reply_tokens=3]]" for i in range(100))


# -- cancellation and connections -----------------------------------------------------------------


def test_cancelling_a_task_mid_stream_closes_its_connection(emulator: Emulator) -> None:
    emulator.configure(tokens_per_second=50)
    client = AsyncClient(api_key=SECRET, base_url=emulator.url)
    received: list[str] = []
    streams: list[AsyncMessageStream] = []

    async def read() -> None:
        async with client.messages.stream(
            model=MODEL, max_tokens=2000, messages=ask("long [[reply_tokens=1000]]")
        ) as stream:
            streams.append(stream)
            async for text in stream.text_stream:
                received.append(text)

    async def main() -> tuple[int, int]:
        task = asyncio.create_task(read())
        await wait_until(lambda: len(received) >= 5, "the first text deltas")
        during = emulator.open_connections
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The client stays open: only the cancelled stream's connection must go.
        await wait_until(lambda: emulator.open_connections == 0, "the connection to close")
        after = emulator.open_connections
        message = await client.messages.create(model=MODEL, max_tokens=5, messages=ask("next"))
        assert message["content"][0]["text"]
        await client.close()
        return during, after

    during, after = asyncio.run(main())
    assert during == 1 and after == 0
    stream = streams[0]
    assert stream._response is not None and stream._response.is_closed
    # What arrived before the cancel is kept (the emulator would need 20 s to finish).
    assert stream.text.startswith("".join(received)) and len(stream.text) < 1000


def test_breaking_out_of_a_stream_closes_its_connection(emulator: Emulator) -> None:
    emulator.configure(tokens_per_second=100)
    client = AsyncClient(api_key=SECRET, base_url=emulator.url)

    async def main() -> tuple[AsyncMessageStream, list[str]]:
        received: list[str] = []
        async with client.messages.stream(
            model=MODEL, max_tokens=2000, messages=ask("long [[reply_tokens=1000]]")
        ) as stream:
            async for text in stream.text_stream:
                received.append(text)
                if len(received) == 5:
                    break
        await wait_until(lambda: emulator.open_connections == 0, "the connection to close")
        await client.close()
        return stream, received

    stream, received = asyncio.run(main())
    assert stream._response is not None and stream._response.is_closed
    assert stream.text == "".join(received)


def test_cancelling_a_waiting_request_closes_its_connection(emulator: Emulator) -> None:
    emulator.add_fault(kind="slow", delay=1.0)
    client = AsyncClient(api_key=SECRET, base_url=emulator.url)

    async def main() -> None:
        task = asyncio.create_task(
            client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
        )
        await wait_until(lambda: emulator.open_connections == 1, "the request to arrive")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Once the emulator wakes up, it finds the socket closed (a connection kept for reuse
        # would stay open here while the client is).
        await wait_until(lambda: emulator.open_connections == 0, "the connection to close")
        await client.close()

    asyncio.run(main())


def test_leaving_async_with_closes_every_connection(emulator: Emulator) -> None:
    emulator.configure(latency=0.05)
    client = AsyncClient(api_key=SECRET, base_url=emulator.url)

    async def main() -> int:
        async with client:
            await asyncio.gather(
                *(
                    client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
                    for _ in "abc"
                )
            )
            pooled = emulator.open_connections
        await wait_until(lambda: emulator.open_connections == 0, "the pool to close")
        return pooled

    assert asyncio.run(main()) == 3


def test_one_client_serves_several_event_loops(emulator: Emulator) -> None:
    """Made at the top of a script or notebook, then used by one asyncio.run after another:
    each loop gets its own pool (a pool cannot outlive its loop)."""
    client = AsyncClient(api_key=SECRET, base_url=emulator.url)

    async def create() -> str:
        message = await client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
        return str(message["content"][0]["text"])

    assert asyncio.run(create()) == asyncio.run(create())
    asyncio.run(client.close())


def test_an_injected_http_client_is_used_and_not_closed(emulator: Emulator) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async def main() -> bool:
        http = httpx.AsyncClient(event_hooks={"request": [hook]})
        async with AsyncClient(api_key=SECRET, base_url=emulator.url, http_client=http) as client:
            await client.models.list()
        still_open = not http.is_closed
        await http.aclose()
        return still_open

    assert asyncio.run(main())
    assert seen == ["/v1/models"]


# -- the key --------------------------------------------------------------------------------------


def test_the_key_never_shows(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    emulator.configure(api_keys=frozenset({"the-right-key"}))
    caplog.set_level(logging.DEBUG)
    client = AsyncClient(api_key=SECRET, base_url=emulator.url)

    async def create(client: AsyncClient) -> Any:
        return await client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))

    with pytest.raises(AuthenticationError) as info:
        run(create, client)
    error = info.value
    dumps = [
        str(error),
        repr(error),
        "\n".join(error._render_traceback_()),
        str(vars(error)),
        repr(client),
        str(vars(client)),
        repr(client.prepare("POST", "/v1/messages", body={})),
        caplog.text,
    ]
    assert repr(client).startswith("AsyncClient(") and "api_key=set (argument)" in repr(client)
    for text in dumps:
        assert SECRET not in text


# -- the package face and IPython -----------------------------------------------------------------


def test_async_client_is_on_the_package_face() -> None:
    # Resolved lazily, as Client is: test_import_cost checks what importing it costs.
    assert claude_magics.AsyncClient is AsyncClient
    assert "AsyncClient" in dir(claude_magics)


def test_top_level_await_in_ipython(shell: InteractiveShell, emulator: Emulator) -> None:
    assert shell.autoawait
    cells = [
        "from claude_magics import AsyncClient\nt_client = AsyncClient()",
        "t_message = await t_client.messages.create(model='claude-sonnet-4-6', max_tokens=50, "
        "messages=[{'role': 'user', 'content': 'Hi [[reply_tokens=7]]'}])",
        # A later cell, the same client: IPython keeps one event loop for the session.
        "async with t_client.messages.stream(model='claude-sonnet-4-6', max_tokens=50, "
        "messages=[{'role': 'user', 'content': 'Hi [[reply_tokens=7]]'}]) as t_stream:\n"
        "    t_pieces = [piece async for piece in t_stream.text_stream]",
        "import asyncio\n"
        "t_sem = asyncio.Semaphore(3)\n"
        "async def t_one(i):\n"
        "    async with t_sem:\n"
        "        return await t_client.messages.count_tokens(model='claude-sonnet-4-6', "
        "messages=[{'role': 'user', 'content': 'x ' * i}])\n"
        "t_counts = await asyncio.gather(*(t_one(i) for i in range(1, 11)))",
        "await t_client.close()",
    ]
    try:
        for cell in cells:
            result = shell.run_cell(cell)  # type: ignore[no-untyped-call]
            assert result.success, f"{cell!r}: {result.error_in_exec or result.error_before_exec}"
        ns = shell.user_ns
        assert ns["t_message"]["usage"]["output_tokens"] == 7
        assert "".join(ns["t_pieces"]) == ns["t_message"]["content"][0]["text"]
        assert ns["t_counts"] == sorted(ns["t_counts"]) and len(set(ns["t_counts"])) == 10
    finally:
        for name in [k for k in shell.user_ns if k.startswith("t_")]:
            del shell.user_ns[name]
    assert [r.status for r in emulator.requests] == [200] * 12


def test_top_level_await_in_a_jupyter_kernel(emulator: Emulator) -> None:
    """In a notebook the kernel's own event loop runs the cells: the client uses it."""
    from jupyter_client.manager import start_new_kernel

    manager, kernel = start_new_kernel(kernel_name="python3", startup_timeout=60)
    outputs: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        content = message["content"]
        if message["msg_type"] == "stream":
            outputs.append(content["text"])
        elif message["msg_type"] == "error":
            outputs.append(f"{content['ename']}: {content['evalue']}")

    cells = [
        "from claude_magics import AsyncClient\nclient = AsyncClient()",
        "message = await client.messages.create(model='claude-sonnet-4-6', max_tokens=50, "
        "messages=[{'role': 'user', 'content': 'Hi [[reply_tokens=4]]'}])\n"
        "print(message['usage']['output_tokens'])",
        "async with client.messages.stream(model='claude-sonnet-4-6', max_tokens=50, "
        "messages=[{'role': 'user', 'content': 'Hi [[reply_tokens=4]]'}]) as stream:\n"
        "    pieces = [piece async for piece in stream.text_stream]\n"
        "print(''.join(pieces) == message['content'][0]['text'])\n"
        "await client.close()",
    ]
    try:
        for cell in cells:
            reply = kernel.execute_interactive(cell, timeout=60, output_hook=keep)
            assert reply["content"]["status"] == "ok", outputs
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
    assert "".join(outputs).split() == ["4", "True"]


# -- the same core under both clients ----------------------------------------------------------


class _BreaksOff(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops halfway with a read error (a connection lost mid-answer)."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"type": "mess'
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"type": "mess'
        raise httpx.ReadError("connection reset")


def _breaking_then(answer: dict[str, Any], sent: list[str]) -> Callable[[httpx.Request], Any]:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if len(sent) == 1:
            return httpx.Response(200, stream=_BreaksOff())
        return httpx.Response(200, json=answer)

    return handler


def test_an_answer_that_breaks_off_is_a_connection_error_in_both_clients(
    waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", waits.append)
    answer = {"type": "message", "content": [], "id": "msg_1"}
    one = [{"custom_id": "a", "params": {"model": MODEL, "max_tokens": 5, "messages": ask("x")}}]
    sent: list[str] = []
    options: dict[str, Any] = {"api_key": SECRET, "base_url": "http://api.test"}
    sync = Client(**options, transport=httpx.MockTransport(_breaking_then(answer, sent)))
    # A message is retried (it is safe to ask again)...
    assert sync.messages.create(model=MODEL, max_tokens=5, messages=ask("x")) == answer
    client = AsyncClient(**options, transport=httpx.MockTransport(_breaking_then(answer, sent)))

    async def create(client: AsyncClient) -> Any:
        return await client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))

    sent.clear()
    assert run(create, client) == answer
    assert sent == ["/v1/messages", "/v1/messages"] and len(waits) == 2
    # ...a batch create is not: the server may have made the batch.
    sent.clear()
    sync = Client(**options, transport=httpx.MockTransport(_breaking_then(answer, sent)))
    with pytest.raises(APIConnectionError) as info:
        sync.batches.create(one)
    assert info.value.may_have_reached_server and sent == ["/v1/messages/batches"]

    async def batch(client: AsyncClient) -> Any:
        return await client.batches.create(one)

    sent.clear()
    client = AsyncClient(**options, transport=httpx.MockTransport(_breaking_then(answer, sent)))
    with pytest.raises(APIConnectionError) as info:
        run(batch, client)
    assert info.value.may_have_reached_server and sent == ["/v1/messages/batches"]
