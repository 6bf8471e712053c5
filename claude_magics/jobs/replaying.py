"""Answers a job already paid for: looked up before anything is sent, kept as they arrive.

    replay = JobReplay(replayer, client, before, after, texts)    # one job's distinct prompts
    hits = replay.lookup(range(len(texts)))   # {prompt: StoredAnswer}: the cassette, the store
    replay.keep(fresh)         # Fresh answers (prompt, message, cost_usd), by column: into both

Each distinct prompt's replay key is ``cost.replay.request_key`` of the exact body that prompt
sends (cache breakpoints are left out of the key, so a realtime answer replays into a batch and
back). Keys are computed for all prompts at once: the shared body is normalised and serialised
once, and each prompt's key hashes its own text between the two shared halves; the result is
checked against ``request_key`` itself, and a mismatch falls back to ``request_key`` per prompt.
An empty store (and no cassette answer) is known in one query, and then no key is computed.
Lookups go through ``ReplayStore.get_many``, never a query per row; fresh answers go to the
store's background writer (``ReplayStore.put_many_later``), which writes them while the job
reads on, and :meth:`JobReplay.flush` waits for it at the end.

A cassette (``Replayer.cassette``) is asked first, as ``Replayer.lookup`` does: in ``replay``
mode a prompt it lacks is :class:`~claude_magics.errors.ReplayMissError` (:meth:`require`),
before anything is sent; in ``record`` mode nothing is looked up and everything is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from ..cost.replay import StoredAnswer, request_key
from ..errors import StorageError
from .progress import say

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.replay import Replayer, ReplayStore

__all__ = ["REPLAY_SOURCE", "Fresh", "JobReplay"]

#: The ``source`` of a stored result that came from the replay store or a cassette.
REPLAY_SOURCE = "replay"
# Stands for a prompt's text in the shared body; never in a real prompt (NUL characters).
_MARK = "\x00claude-magics-replay\x00"


class Fresh:
    """Fresh answers to keep, by column: prompt, message (or its JSON as ``orjson.dumps``
    wrote it), cost in dollars. A job's thousands make three lists, not a tuple each for the
    garbage collector to walk again and again while results stream in."""

    __slots__ = ("costs", "messages", "prompts")

    def __init__(self) -> None:
        self.prompts: list[int] = []
        self.messages: list[Mapping[str, Any] | bytes] = []
        self.costs: list[float | None] = []

    def __repr__(self) -> str:
        return f"Fresh({len(self.prompts):,} answers)"

    def __len__(self) -> int:
        return len(self.prompts)

    def add(self, prompt: int, message: Mapping[str, Any] | bytes, cost: float | None) -> None:
        self.prompts.append(prompt)
        self.messages.append(message)
        self.costs.append(cost)

    def appenders(
        self,
    ) -> tuple[
        Callable[[int], None],
        Callable[[Mapping[str, Any] | bytes], None],
        Callable[[float | None], None],
    ]:
        """The three ``append``s, for a loop over 100,000 results (:meth:`add`, unrolled)."""
        return self.prompts.append, self.messages.append, self.costs.append

    def extend(self, other: Fresh) -> None:
        self.prompts += other.prompts
        self.messages += other.messages
        self.costs += other.costs


def _strip_cache_marks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_marks(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_marks(v) for v in value]
    return value


class JobReplay:
    """The replay side of one job: its prompts' keys, what is stored for them, and keeping
    fresh answers. Made by ``run`` before the estimate, and by a job that sends."""

    def __init__(
        self,
        replayer: Replayer,
        client: Client,
        before: bytes,
        after: bytes,
        texts: Sequence[str],
        documents: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """``documents``: each prompt's document as its key sees it (``documents.key_block``:
        the content's hash, never an upload's id), with ``files=``."""
        self.replayer = replayer
        self.base_url = str(client.base_url)
        self.api_version = str(client.api_version)
        self.texts = texts
        self.documents = documents
        self._template: dict[str, Any] = orjson.loads(before + orjson.dumps(_MARK) + after)
        self._keys: list[str] | None = None
        self._failed: list[Exception] = []

    def __repr__(self) -> str:
        return f"JobReplay({len(self.texts):,} prompts, {self.replayer!r})"

    # -- keys -------------------------------------------------------------------------------

    def body(self, prompt: int) -> dict[str, Any]:
        """The request body prompt ``prompt`` sends (for its key and for people)."""
        body: dict[str, Any] = _replace(self._template, _MARK, self.texts[prompt])
        if self.documents is not None:
            from .documents import DOCUMENT_MARK

            document = dict(self.documents[prompt])
            for message in body.get("messages") or ():
                content = message.get("content")
                if isinstance(content, list):
                    message["content"] = [document if b == DOCUMENT_MARK else b for b in content]
        return body

    def key(self, prompt: int) -> str:
        return self.keys()[prompt]

    def keys(self) -> list[str]:
        """Every prompt's replay key, computed once."""
        if self._keys is None:
            self._keys = self._fast_keys() or [
                request_key(self.body(n), base_url=self.base_url, api_version=self.api_version)
                for n in range(len(self.texts))
            ]
        return self._keys

    def _fast_keys(self) -> list[str] | None:
        """The keys hashed around each text, or None when that does not give ``request_key``'s
        answer (its normalisation changed): the caller then asks it per prompt."""
        if not self.texts:
            return []
        if self.documents is not None:
            return None  # a document per prompt besides its text: keyed one by one
        # What request_key hashes (its module docstring), laid out once for all prompts.
        parts = urlsplit(self.base_url)
        normal = {k: v for k, v in self._template.items() if k not in ("stream", "metadata")}
        identity = {
            "server": f"{parts.scheme}://{parts.netloc}".lower(),
            "anthropic-version": self.api_version,
            "anthropic-beta": [],
            "body": _strip_cache_marks(normal),
        }
        pieces = orjson.dumps(identity, option=orjson.OPT_SORT_KEYS).split(orjson.dumps(_MARK))
        if len(pieces) != 2:
            return None
        start = hashlib.sha256(pieces[0])
        tail = pieces[1]
        dumps = orjson.dumps
        keys = []
        for text in self.texts:
            digest = start.copy()
            digest.update(dumps(text))
            digest.update(tail)
            keys.append(digest.hexdigest())
        # Checked against the one definition, at both ends.
        for n in {0, len(self.texts) - 1}:
            real = request_key(self.body(n), base_url=self.base_url, api_version=self.api_version)
            if keys[n] != real:
                return None
        return keys

    # -- lookups and keeping --------------------------------------------------------------

    @property
    def strict(self) -> bool:
        """Whether every prompt must be answered from the cassette (its ``replay`` mode)."""
        cassette = self.replayer.cassette
        return cassette is not None and cassette.mode == "replay"

    def lookup(self, prompts: Iterable[int]) -> dict[int, StoredAnswer]:
        """The stored answers among ``prompts``: the cassette's first, then the store's (one
        bulk read). Never raises for a miss (:meth:`require` does that), nor for a store that
        cannot be read (one line; everything is then sent)."""
        numbers = list(prompts)
        if not numbers:
            return {}
        found: dict[int, StoredAnswer] = {}
        cassette = self.replayer.cassette
        if cassette is not None and cassette.mode == "record":
            return {}  # recording: every answer is asked for again
        store = self.replayer.store
        if (cassette is None or not len(cassette)) and (store is None or self._empty(store)):
            return {}  # nothing stored: no key to compute, nothing to read
        keys = self.keys()
        if cassette is not None:
            for n in numbers:
                message = _cassette_message(cassette, keys[n])
                if message is not None:
                    found[n] = StoredAnswer(message, 0.0, None, message.get("id"))
            if cassette.mode == "replay":
                return found  # only the file answers in CI
        if store is not None:
            rest = [n for n in numbers if n not in found]
            try:
                stored = store.get_many([keys[n] for n in rest])
            except StorageError as error:
                # Replay only saves money: a store that cannot be read must not stop the job.
                say(f"⚠ Answers already paid for could not be looked up: sending them. {error}")
                return found
            while store.notices:  # a damaged file moved aside
                say(store.notices.pop(0))
            for n in rest:
                answer = stored.get(keys[n])
                if answer is not None:
                    found[n] = answer
        return found

    def _empty(self, store: ReplayStore) -> bool:
        """Whether ``store`` holds nothing (a store that cannot be read: not empty, so that
        :meth:`lookup` says why in its one line)."""
        try:
            return store.empty()
        except StorageError:
            return False

    def require(self, misses: Sequence[int]) -> None:
        """In a cassette's ``replay`` mode, fail in one line naming the first prompt it has no
        answer for (``ReplayMissError``), before anything is sent."""
        cassette = self.replayer.cassette
        if misses and cassette is not None and cassette.mode == "replay":
            n = misses[0]
            cassette.get(self.key(n), self.body(n))  # raises: it is a miss

    def keep(self, fresh: Fresh) -> None:
        """Keep fresh answers: the cassette, when it records, in one write now (raising its
        one-line ``StorageError``); the store in the background
        (``ReplayStore.put_many_later``): its failures wait in :meth:`failures`, and
        :meth:`flush` waits for it."""
        if not fresh:
            return
        keys = self.keys()
        cassette = self.replayer.cassette
        if cassette is not None and cassette.mode != "replay":
            cassette.put_many(
                [
                    (keys[n], self.body(n), orjson.loads(m) if isinstance(m, bytes) else m)
                    for n, m in zip(fresh.prompts, fresh.messages, strict=True)
                ]
            )
        if self.replayer.store is not None:
            self.replayer.store.put_many_later(
                [keys[n] for n in fresh.prompts], fresh.messages, fresh.costs, self._failed.append
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the answers handed to the store are written (at most ``timeout``
        seconds; default the store's); whether they are."""
        store = self.replayer.store
        return store.flush(timeout) if store is not None else True

    def failures(self) -> list[Exception]:
        """Why writes to the store failed since last asked (one-line ``StorageError``s)."""
        failed, self._failed = self._failed, []
        return failed


def _cassette_message(cassette: Any, key: str) -> dict[str, Any] | None:
    """The cassette's answer for ``key``, or None (a miss, whatever the mode: ``require``
    turns misses into the one-line error)."""
    from ..errors import ReplayMissError

    try:
        message: dict[str, Any] | None = cassette.get(key, {})
    except ReplayMissError:
        return None
    return message


def _replace(value: Any, mark: str, text: str) -> Any:
    """``value`` with the string ``mark`` replaced by ``text`` (copying only what holds it)."""
    if isinstance(value, str):
        return text if value == mark else value
    if isinstance(value, dict):
        return {k: _replace(v, mark, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, mark, text) for v in value]
    return value
