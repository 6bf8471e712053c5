"""Run the emulator as a process: ``python -m claude_magics.emulator --port 8765``.

    $ python -m claude_magics.emulator --tokens-per-second 50 --fault '{"status": 529}'
    http://127.0.0.1:8765

The base URL is printed on the first line of stdout (then flushed), so a script can start the
emulator with ``--port 0`` and read where it listens. It serves until SIGINT or SIGTERM and then
exits 0 quietly. Scripting at runtime goes through the admin API under ``/_emulator/``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .catalog import register
from .core import Emulator
from .generation import AUTO_TOOL_RULE, CITE_RULE, JSON_RULE
from .labeling import LABEL_RULE
from .options import EmulatorOptions, Fault
from .platforms import PLATFORM_RULE
from .server_tools import SERVER_TOOL_RULE

__all__ = ["main"]


class _Formatter(argparse.HelpFormatter):
    """Keeps the epilog's paragraphs (blank lines) while still wrapping each one."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            super(_Formatter, self)._fill_text(part, width, indent) for part in text.split("\n\n")
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m claude_magics.emulator",
        description=(
            "A local emulator of the Anthropic API (messages, streaming, count_tokens, models, "
            "message batches, files). Prints its base URL on the first line of stdout and serves "
            "until interrupted. Runtime scripting: POST /_emulator/faults, /_emulator/replies, "
            "/_emulator/models, /_emulator/reset, /_emulator/clock; GET /_emulator/requests, "
            "/_emulator/models; PATCH /_emulator/config."
        ),
        epilog=(
            "Models: the bundled table (claude_magics/data/models.json) with each model's limits "
            "and rules; retired ids answer 404 naming their replacement. --model registers one "
            "more, taking the rules of the newest model of its family (claude-opus-*, "
            "claude-sonnet-*, claude-haiku-*, claude-fable-*; otherwise Sonnet).\n\n"
            f"Tool calls: {AUTO_TOOL_RULE}\n\n"
            f"Server tools: {SERVER_TOOL_RULE}\n\n"
            f"Citations: {CITE_RULE}\n\n"
            f"JSON in text: {JSON_RULE}\n\n"
            f"Label tasks: {LABEL_RULE}\n\n"
            f"Platforms: {PLATFORM_RULE}"
        ),
        formatter_class=_Formatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    add("--port", type=int, default=0, help="port to bind; 0 picks a free one (default: 0)")
    add("--ttft", type=float, default=0.0, metavar="S",
        help="seconds before the first streamed content delta (default: 0)")  # fmt: skip
    add("--tokens-per-second", type=float, default=None, metavar="N",
        help="stream pacing in output tokens per second (default: no pacing)")  # fmt: skip
    add("--tokens-per-delta", type=int, default=1, metavar="N",
        help="output tokens per streamed delta (default: 1)")  # fmt: skip
    add("--latency", type=float, default=0.0, metavar="S",
        help="delay added before every /v1 response (default: 0)")  # fmt: skip
    add("--reply-tokens", type=int, default=60, metavar="N",
        help="length of a default reply in tokens (default: 60)")  # fmt: skip
    add("--batch-seconds", type=float, default=1.0, metavar="S",
        help="time for a message batch to process all its requests (default: 1)")  # fmt: skip
    add("--rpm", type=int, default=None, metavar="N",
        help="requests per minute, per model (a token bucket, in the anthropic-ratelimit-* "
             "headers)")  # fmt: skip
    add("--itpm", type=int, default=None, metavar="N",
        help="uncached input tokens per minute, per model")  # fmt: skip
    add("--otpm", type=int, default=None, metavar="N",
        help="output tokens per minute, per model (charged when generated)")  # fmt: skip
    add("--max-concurrent", type=int, default=None, metavar="N",
        help="requests allowed in flight at once; more get 429")  # fmt: skip
    add("--api-key", action="append", default=None, metavar="KEY",
        help="accept only this x-api-key (repeatable; default: any non-empty key)")  # fmt: skip
    add("--fault", action="append", default=[], metavar="JSON",
        help="a fault to install as JSON, e.g. '{\"status\": 529}' (repeatable)")  # fmt: skip
    add("--aws-credentials", action="append", default=None, metavar="ACCESS_KEY_ID:SECRET",
        help="Bedrock: verify SigV4 signatures against these test credentials (repeatable; "
             "default: any well-formed, current signature)")  # fmt: skip
    add("--bedrock-api-key", action="append", default=None, metavar="KEY",
        help="Bedrock: accept only this API key as a bearer token "
             "(repeatable; default: any)")  # fmt: skip
    add("--aws-deny", action="append", default=[], metavar="ACTION",
        help="Bedrock: refuse this IAM action with an AccessDeniedException naming it, e.g. "
             "bedrock:InvokeModelWithResponseStream (repeatable)")  # fmt: skip
    add("--vertex-token", action="append", default=None, metavar="TOKEN",
        help="Vertex: accept only this bearer token, besides tokens issued at POST "
             "/oauth2/token (repeatable; default: any)")  # fmt: skip
    add("--vertex-token-seconds", type=float, default=3600.0, metavar="S",
        help="Vertex: lifetime of tokens issued at POST /oauth2/token (default: 3600)")  # fmt: skip
    add("--model", action="append", default=[], metavar="ID,MAX_INPUT,MAX_OUTPUT",
        help="serve a model the table does not know, e.g. claude-sonnet-6,1000000,128000, or "
             "a JSON object of model-table fields with an optional \"like\": MODEL "
             "(repeatable)")  # fmt: skip
    return parser


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    return EmulatorOptions(
        host=args.host,
        port=args.port,
        api_keys=frozenset(args.api_key) if args.api_key else None,
        time_to_first_token=args.ttft,
        tokens_per_second=args.tokens_per_second,
        tokens_per_delta=args.tokens_per_delta,
        latency=args.latency,
        default_reply_tokens=args.reply_tokens,
        batch_processing_seconds=args.batch_seconds,
        requests_per_minute=args.rpm,
        input_tokens_per_minute=args.itpm,
        output_tokens_per_minute=args.otpm,
        max_concurrent_requests=args.max_concurrent,
        faults=tuple(Fault.from_obj(text) for text in args.fault),
        models=tuple(register(text) for text in args.model),
        aws_credentials=_aws_credentials(args.aws_credentials),
        bedrock_api_keys=frozenset(args.bedrock_api_key) if args.bedrock_api_key else None,
        aws_denied_actions=frozenset(args.aws_deny),
        vertex_tokens=frozenset(args.vertex_token) if args.vertex_token else None,
        vertex_token_seconds=args.vertex_token_seconds,
    )


def _aws_credentials(pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    credentials = {}
    for pair in pairs:
        access_key, colon, secret = pair.partition(":")
        if not (access_key and colon and secret):
            raise ValueError("--aws-credentials takes ACCESS_KEY_ID:SECRET")
        credentials[access_key] = secret
    return credentials


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emulator = Emulator(options)
    try:
        emulator.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(emulator.url, flush=True)
    try:
        # Event.wait without a timeout would block signals on some platforms: poll.
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
