"""Token counting, media parsing and attachment validation; count_tokens == usage."""

from __future__ import annotations

import base64
import math
import random
import struct
import zlib
from typing import Any

import pytest
from spec_validation import Api

from claude_magics.emulator import media, tokens
from claude_magics.emulator.errors import ApiError
from claude_magics.emulator.validation import parse_request

from .support import MODEL, body, count_body

# ----------------------------------------------------------------------------- test media


def png(width: int, height: int, padding: int = 0) -> bytes:
    """A real (if dull) PNG; ``padding`` appends a large ancillary chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    extra = chunk(b"teXt", b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x3b"


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\xff\xd9"


def webp_vp8x(width: int, height: int) -> bytes:
    payload = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    payload = b"\x2f" + bits.to_bytes(4, "little")
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8(width: int, height: int) -> bytes:
    payload = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    body = b"WEBP" + b"VP8 " + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pdf(pages: list[str], *, compress: bool = False) -> bytes:
    """A minimal valid PDF with one text line per page."""
    objects: list[bytes] = []

    def add(content: bytes) -> int:
        objects.append(content)
        return len(objects)

    catalog = add(b"")  # placeholders, filled below
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        if compress:
            data = zlib.compress(stream)
            content = add(
                b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
            )
        else:
            content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (tree, content, font)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        catalog,
        xref,
    )
    return bytes(out)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_block(data: bytes, media_type: str) -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": b64(data)},
    }


def pdf_block(data: bytes, **extra: Any) -> dict[str, Any]:
    source = {"type": "base64", "media_type": "application/pdf", "data": b64(data)}
    return {"type": "document", "source": source, **extra}


def request(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The shared body whose user message holds ``blocks`` and a question about them."""
    content: list[dict[str, Any]] = [*blocks, {"type": "text", "text": "Describe this."}]
    return body(content, **{"max_tokens": 100, **extra})


# ----------------------------------------------------------------------------- tokens


def test_pieces_round_trip_and_rule() -> None:
    assert tokens.pieces("Hello, world") == ["Hell", "o,", " worl", "d"]
    assert tokens.pieces("  a  ") == ["  a", "  "]
    assert tokens.pieces("") == []
    rng = random.Random(3)
    alphabet = "ab cdé\n\t\u2028\x1c.,!😀 xyz  "
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        parts = tokens.pieces(text)
        assert "".join(parts) == text
        assert all(len(p.strip()) <= 4 for p in parts)
        assert tokens.count_pieces(text) == len(parts)


def test_count_text_ratio_rounds_up_without_float_error() -> None:
    assert tokens.count_text(" abcd" * 10) == 10
    assert tokens.count_text(" abcd" * 10, (13, 10)) == 13  # 10 * 1.3 is 13.000000000000002
    assert tokens.count_text(" abcd" * 11, (13, 10)) == math.ceil(11 * 1.3)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1000, 1000), math.ceil(1000 * 1000 / 750)),
        ((200, 100), math.ceil(200 * 100 / 750)),
        ((3136, 1568), math.ceil(1568 * 784 / 750)),  # long edge scaled down to 1568
        ((1568, 4000), math.ceil(615 * 1568 / 750)),
        ((1, 1), 1),
    ],
)
def test_image_tokens(size: tuple[int, int], expected: int) -> None:
    assert tokens.image_tokens(*size) == expected


# ----------------------------------------------------------------------------- media


@pytest.mark.parametrize(
    ("data", "kind", "size"),
    [
        (png(20, 10), "image/png", (20, 10)),
        (gif(30, 40), "image/gif", (30, 40)),
        (jpeg(640, 480), "image/jpeg", (640, 480)),
        (webp_vp8x(800, 600), "image/webp", (800, 600)),
        (webp_vp8l(123, 45), "image/webp", (123, 45)),
        (webp_vp8(320, 240), "image/webp", (320, 240)),
    ],
)
def test_image_headers(data: bytes, kind: str, size: tuple[int, int]) -> None:
    assert media.sniff_image(data) == kind
    assert media.image_size(data) == size


def test_unknown_image_bytes() -> None:
    assert media.sniff_image(b"BM....") is None
    assert media.image_size(b"\xff\xd8\xff\xe0\x00") is None  # truncated JPEG


@pytest.mark.parametrize("compress", [False, True])
def test_pdf_pages_and_text(compress: bool) -> None:
    info = media.inspect_pdf(pdf(["First page (intro).", "Second page", ""], compress=compress))
    assert info is not None
    assert info.pages == 3
    assert info.page_texts == ["First page (intro).", "Second page", ""]
    assert media.inspect_pdf(b"not a pdf at all") is None


def _one_page_pdf(content: bytes) -> bytes:
    stream = b"BT (Hello) Tj ET " + content
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
        b"2 0 obj << /Type /Page /Parent 1 0 R /Contents 3 0 R >> endobj\n"
        + b"3 0 obj << /Length %d >> stream\n%s\nendstream endobj\n"
        % (len(stream), stream)
    )


@pytest.mark.parametrize(
    "hostile",
    [
        b"%PDF-1.4\n" + b"7" * 400_000,  # one long run of digits
        b"%PDF-1.4\n" + b"1 0 obj\n" * 60_000,  # headers that are never closed
        b"%PDF-1.4\n/Type /Page " + b"/Count 1 " * 60_000,  # no page tree to find
        _one_page_pdf(b"(" * 400_000 + b"[" * 400_000 + b" Tj"),  # literals never closed
    ],
    ids=["digits", "open-objects", "counts", "open-literals"],
)
def test_hostile_pdfs_are_read_in_linear_time(hostile: bytes) -> None:
    """Each of these took the old regular expressions quadratic time (hours at this size):
    the emulator read a request with such a file and hung. Now each is read at once."""
    info = media.inspect_pdf(hostile)
    if hostile.endswith(b"endobj\n"):
        assert info is not None and info.pages == 1 and info.page_texts == ["Hello"]
    else:
        assert info is None


# ----------------------------------------------------------------------------- count_tokens


def usage_total(message: dict[str, Any]) -> int:
    usage = message["usage"]
    return int(
        usage["input_tokens"]
        + usage["cache_creation_input_tokens"]
        + usage["cache_read_input_tokens"]
    )


def count_and_create(api: Api, payload: dict[str, Any]) -> tuple[int, int]:
    counted = api.count(**count_body(payload))
    return counted, usage_total(api.create(**payload))


def test_exact_count_for_a_simple_prompt(emulator_api: Api) -> None:
    simple = {"model": MODEL, "messages": [{"role": "user", "content": "Hello world"}]}
    expected = tokens.REQUEST_OVERHEAD + tokens.MESSAGE_OVERHEAD + 4
    assert emulator_api.count(**simple) == expected
    opus = emulator_api.count(**{**simple, "model": "claude-opus-4-7"})
    assert opus == tokens.REQUEST_OVERHEAD + tokens.MESSAGE_OVERHEAD + math.ceil(4 * 1.3)
    system = emulator_api.count(**simple, system="Be brief.")
    assert system == expected + tokens.SYSTEM_OVERHEAD + tokens.count_pieces("Be brief.")


TOOL = {
    "name": "lookup",
    "description": "Look something up",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}
TEXT_DOC = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "A plain text document."},
    "title": "Notes",
}


TOOL_TURNS = [
    {"role": "user", "content": "Look it up"},
    {
        "role": "assistant",
        "content": [
            {"type": "redacted_thinking", "data": "opaque-data"},
            {"type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {"q": "x"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_a",
                "content": [
                    {"type": "text", "text": "A chart:"},
                    image_block(png(120, 80), "image/png"),
                ],
            }
        ],
    },
]
SEARCH_RESULT = {
    "type": "search_result",
    "source": "https://example.com",
    "title": "Result",
    "content": [{"type": "text", "text": "Found text"}],
}
CONTENT_DOC = {
    "type": "document",
    "source": {"type": "content", "content": [{"type": "text", "text": "Part one"}]},
}
COUNT_CASES = {
    "text": request(),
    "system": request(system="You are terse."),
    "system-blocks": request(
        system=[{"type": "text", "text": "Sys one"}, {"type": "text", "text": "Sys two"}]
    ),
    "tools": request(tools=[TOOL]),
    "tool-choice": request(tools=[TOOL], tool_choice={"type": "auto"}),
    "png": request(image_block(png(64, 64), "image/png")),
    "jpeg-resized": request(image_block(jpeg(2000, 3000), "image/jpeg")),
    "gif-webp": request(
        image_block(gif(10, 10), "image/gif"), image_block(webp_vp8x(900, 900), "image/webp")
    ),
    "url-image": request(
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    ),
    "pdf": request(pdf_block(pdf(["One", "Two"]))),
    "text-doc": request(TEXT_DOC),
    "opus-4-7": request(model="claude-opus-4-7", system="Tokenizer check"),
    "structured": request(
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}
    ),
    "search-result": request(SEARCH_RESULT),
    "content-doc": request(CONTENT_DOC),
    "server-tool": request(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
    "tool-turns": {"model": MODEL, "max_tokens": 100, "messages": TOOL_TURNS, "tools": [TOOL]},
}


@pytest.mark.parametrize("case", sorted(COUNT_CASES))
def test_count_tokens_equals_usage_total(emulator_api: Api, case: str) -> None:
    counted, total = count_and_create(emulator_api, COUNT_CASES[case])
    assert counted == total


def test_attachment_token_costs(emulator_api: Api) -> None:
    base = emulator_api.count(**count_body(request()))

    def extra(*blocks: dict[str, Any]) -> int:
        payload = count_body(request(*blocks))
        return emulator_api.count(**payload) - base

    assert extra(image_block(png(300, 200), "image/png")) == math.ceil(300 * 200 / 750)
    assert extra(image_block(jpeg(3136, 1568), "image/jpeg")) == math.ceil(1568 * 784 / 750)
    one = extra(pdf_block(pdf(["abcd"])))
    three = extra(pdf_block(pdf(["abcd", "abcd", "abcd"])))
    # Two more pages: their page tokens plus the text "\nabcd" twice.
    assert three - one == 2 * tokens.PDF_PAGE_TOKENS + 2 * tokens.count_pieces("\nabcd")
    assert one == tokens.BLOCK_OVERHEAD + tokens.PDF_PAGE_TOKENS + 1


def test_cached_request_usage_still_sums_to_count(emulator_api: Api) -> None:
    payload = request(
        system=[{"type": "text", "text": "word " * 1500, "cache_control": {"type": "ephemeral"}}]
    )
    counted = emulator_api.count(**count_body(payload))
    first = emulator_api.create(**payload)
    second = emulator_api.create(**payload)
    assert first["usage"]["cache_creation_input_tokens"] > 0
    assert second["usage"]["cache_read_input_tokens"] > 0
    assert usage_total(first) == usage_total(second) == counted


# ----------------------------------------------------------------------------- validation


def test_image_validation(emulator_api: Api) -> None:
    big = png(10, 10, padding=5 * 1024 * 1024)
    message = emulator_api.invalid(**request(image_block(big, "image/png")))
    assert "image exceeds 5 MB maximum" in message
    assert message.startswith("messages.0.content.0.source.base64")
    message = emulator_api.invalid(**request(image_block(png(10, 10), "image/jpeg")))
    assert "specified using the image/jpeg media type" in message and "image/png" in message
    message = emulator_api.invalid(**request(image_block(b"BM not an image", "image/png")))
    assert "Could not process image" in message
    assert "media_type" in emulator_api.invalid(**request(image_block(png(2, 2), "image/bmp")))
    bad64 = image_block(png(2, 2), "image/png")
    bad64["source"]["data"] = "!!!not base64!!!"
    assert "base64" in emulator_api.invalid(**request(bad64))
    assert "8000" in emulator_api.invalid(**request(image_block(gif(9000, 10), "image/gif")))


def test_pdf_validation(emulator_api: Api) -> None:
    message = emulator_api.invalid(**request(pdf_block(pdf(["p"] * 101))))
    assert "A maximum of 100 PDF pages" in message
    emulator_api.create(**request(pdf_block(pdf(["p"] * 100))))
    assert "not valid" in emulator_api.invalid(**request(pdf_block(b"%PNG nope")))
    wrong_type = pdf_block(pdf(["x"]))
    wrong_type["source"]["media_type"] = "application/msword"
    assert "application/pdf" in emulator_api.invalid(**request(wrong_type))


def test_pdf_over_32_mb() -> None:
    # Over HTTP such a body is over the 32 MB request limit (413, below); the per-document
    # check still matters inside batches, whose bodies may reach 256 MB.
    big = pdf(["x"]) + b"\n%" + b"0" * (32 * 1024 * 1024)
    with pytest.raises(ApiError, match="PDF exceeds 32 MB maximum"):
        parse_request(request(pdf_block(big)))


def test_body_over_32_mb_is_413(emulator_api: Api) -> None:
    huge = request(system="x" * (33 * 1024 * 1024))
    emulator_api.error(413, "request_too_large", "POST", "/v1/messages", json=huge)
    emulator_api.create(**request())  # the connection state is fine afterwards


def test_pdf_citations_use_page_location(emulator_api: Api) -> None:
    document = pdf_block(
        pdf(["", "Mars is red. It is cold."]), citations={"enabled": True}, title="Mars"
    )
    message = emulator_api.create(**request(document))
    (citation,) = message["content"][0]["citations"]
    assert citation["type"] == "page_location"
    assert citation["start_page_number"] == 2 and citation["end_page_number"] == 3
    assert citation["cited_text"] == "Mars is red. "
    assert citation["document_title"] == "Mars"
