"""Conversations across ``%%claude`` cells.

    chats = ChatStore()
    history = chats.get("default").messages_before(cell_key)   # what the cell's request sends
    chats.get("default").record(Turn(cell_key, user_blocks, answer_blocks, ...))

Turns are keyed by the cell they came from (the front end's cell id when the kernel gets one,
else the cell's text), so re-running a cell replaces its turn in place instead of appending a
duplicate: the conversation reflects the cells as they are now. A re-run cell sees only the turns
before it, as it did the first time.

What a request carries is valid on every model: the history, then the cell's own user turn, so
it never ends with an assistant turn (a prefill, refused by 4.6-and-later models); and answers
keep only their text, so no thinking block outlives the conversation it was made in (new models
bind thinking blocks to the exact turns before them, which a re-run changes).

A cell that ran a tool loop keeps the loop too (:attr:`Turn.exchange`: each assistant turn with
its tool calls, each user turn with their results), so the next cell's request is valid: every
``tool_use`` answered by its ``tool_result``, the tools they name still defined
(:meth:`Conversation.tools`; a cell without tools sends them with ``tool_choice: none``), and a
loop stopped early (the step limit, a declined snippet) continued by the next cell's words in
the same user turn as the results. Thinking blocks stay only in the last assistant turn of a loop
left open, the one place the API needs them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cost.usage import Usage

if TYPE_CHECKING:
    from .result import ClaudeResult

__all__ = ["DEFAULT_CHAT", "ChatStore", "Conversation", "Turn"]

DEFAULT_CHAT = "default"
_THINKING = ("thinking", "redacted_thinking")


@dataclass
class Turn:
    """One exchange: the user's content blocks and Claude's answer blocks."""

    key: str
    user: list[dict[str, Any]]
    assistant: list[dict[str, Any]]
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    interrupted: bool = False
    #: The tool loop between the user's turn and the answer, as sent (empty without tools).
    exchange: list[dict[str, Any]] = field(default_factory=list)
    #: The tool definitions the exchange was made with (the next request must define them).
    tools: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_result(
        cls,
        key: str,
        user: list[dict[str, Any]],
        result: ClaudeResult,
        *,
        exchange: list[dict[str, Any]] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Turn:
        """The turn of a cell whose answer is ``result`` (a partial one when interrupted).

        Only the answer's text is kept: its thinking blocks are signed for the conversation as
        it was, and a re-run of an earlier cell would make them stale (the API may refuse them
        then). Without tool use, the API does not need them back."""
        return cls(
            key=key,
            user=user,
            assistant=[{"type": "text", "text": result.text}] if result.text else [],
            model=result.model,
            usage=result.tokens,
            interrupted=result.interrupted,
            exchange=list(exchange or ()),
            tools=list(tools or ()) if exchange else [],
        )

    @property
    def user_text(self) -> str:
        return "\n".join(b.get("text", "") for b in self.user if b.get("type") == "text")

    @property
    def assistant_text(self) -> str:
        return "".join(b.get("text", "") for b in self.assistant if b.get("type") == "text")

    @property
    def open_loop(self) -> bool:
        """Whether the turn ends with tool results and no answer (a loop stopped early)."""
        return not self.assistant and bool(self.exchange) and self.exchange[-1]["role"] == "user"

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"role": "user", "content": self.user}]
        last = len(self.exchange) - 2 if self.open_loop else -1
        for index, message in enumerate(self.exchange):
            if message["role"] == "assistant" and index != last:
                # Thinking is signed for the loop as it ran; only an open loop needs it back.
                content = [b for b in message["content"] if b.get("type") not in _THINKING]
                message = {"role": "assistant", "content": content}
            out.append(message)
        if self.assistant:
            out.append({"role": "assistant", "content": self.assistant})
        return out


@dataclass
class Conversation:
    """An ordered list of turns, at most one per cell."""

    name: str
    turns: list[Turn] = field(default_factory=list)

    def index_of(self, key: str) -> int | None:
        for index, turn in enumerate(self.turns):
            if turn.key == key:
                return index
        return None

    def messages_before(self, key: str) -> list[dict[str, Any]]:
        """The messages a cell's request carries: every turn before that cell's own turn
        (all turns, for a cell that has not run yet)."""
        index = self.index_of(key)
        turns = self.turns if index is None else self.turns[:index]
        messages: list[dict[str, Any]] = []
        for turn in turns:
            for message in turn.messages():
                if messages and messages[-1]["role"] == message["role"] == "user":
                    # A loop left open, then the next cell's words: one user turn, the tool
                    # results first (the API wants them at the start of the turn).
                    merged = [*messages[-1]["content"], *message["content"]]
                    messages[-1] = {"role": "user", "content": merged}
                else:
                    messages.append(message)
        return messages

    def tools(self, key: str) -> list[dict[str, Any]]:
        """The tool definitions the turns before ``key`` were made with (by name, the latest
        wins): a request whose history holds tool calls must define the tools they name."""
        index = self.index_of(key)
        turns = self.turns if index is None else self.turns[:index]
        named: dict[str, dict[str, Any]] = {}
        for turn in turns:
            for tool in turn.tools:
                named[str(tool.get("name"))] = tool
        return list(named.values())

    def ends_open(self, key: str) -> bool:
        """Whether the turn before ``key`` is a tool loop left open (the next user words join
        its results)."""
        index = self.index_of(key)
        turns = self.turns if index is None else self.turns[:index]
        return bool(turns) and turns[-1].open_loop

    def record(self, turn: Turn) -> None:
        """Add a turn, replacing the earlier turn of the same cell in place."""
        # An answer must not be empty for the API; an empty (e.g. interrupted at once) turn
        # would make the next request invalid, so it is not kept.
        if not any(b.get("text") for b in turn.assistant if b.get("type") == "text"):
            turn.assistant = []
        index = self.index_of(turn.key)
        if index is None:
            self.turns.append(turn)
        else:
            self.turns[index] = turn

    def __len__(self) -> int:
        return len(self.turns)


class ChatStore:
    """Named conversations of one IPython session."""

    def __init__(self) -> None:
        self._chats: dict[str, Conversation] = {}

    def get(self, name: str = DEFAULT_CHAT) -> Conversation:
        if name not in self._chats:
            self._chats[name] = Conversation(name)
        return self._chats[name]

    def reset(self, name: str = DEFAULT_CHAT) -> None:
        self._chats.pop(name, None)

    def reset_all(self) -> None:
        self._chats.clear()

    def names(self) -> list[str]:
        return list(self._chats)
