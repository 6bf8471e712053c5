"""Just enough image and PDF parsing to validate attachments and count their tokens.

    sniff_image(data)        # "image/png" | "image/jpeg" | "image/gif" | "image/webp" | None
    image_size(data)         # (width, height) from the header, or None
    inspect_pdf(data)        # PdfInfo(pages=3, page_texts=[...]) or None if it is not a PDF

No imaging library: the emulator only needs dimensions (read from file headers) and, for PDFs,
the page count and the text shown on each page (from uncompressed or Flate content streams).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..media import sniff_image

__all__ = ["PdfInfo", "image_size", "inspect_pdf", "sniff_image"]


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG, GIF or WebP header; None if unreadable."""
    kind = sniff_image(data)
    try:
        if kind == "image/png":
            return _png_size(data)
        if kind == "image/gif":
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if kind == "image/jpeg":
            return _jpeg_size(data)
        if kind == "image/webp":
            return _webp_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The IHDR chunk must come first: length(4) "IHDR"(4) width(4) height(4).
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan: no frame header before the image data
            return None
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        # Lossless: signature 0x2f, then 14 bits of width-1 and 14 bits of height-1.
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        # Extended: 24-bit canvas width-1 and height-1 after 4 bytes of flags.
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


@dataclass
class PdfInfo:
    pages: int
    page_texts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(t for t in self.page_texts if t)


# An object's header ("12 0 obj"), matched only at the start of a digit run and without
# backtracking into it (possessive), and its end, looked for once per header: a hostile file
# (a long run of digits, many headers and no "endobj") is read in linear time.
_OBJECT_HEAD = re.compile(rb"(?<!\d)(\d++)\s++(\d++)\s++obj\b")
_OBJECT_END = re.compile(rb"\bendobj")
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\n?endstream", re.S)
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_REF = re.compile(rb"(\d+)\s+\d+\s+R")
_PAGES = re.compile(rb"/Type\s*+/Pages\b")
_COUNT = re.compile(rb"/Count\s++(\d{1,9})(?!\d)")


def _stream_data(body: bytes) -> bytes | None:
    match = _STREAM.search(body)
    if match is None:
        return None
    raw = match.group(1)
    header = body[: match.start()]
    if b"/FlateDecode" in header:
        try:
            return zlib.decompressobj().decompress(raw)
        except zlib.error:
            return None
    if b"/Filter" in header:  # another filter (DCT, LZW...): not text we can read
        return None
    return raw


def _object_bodies(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each ``N G obj ... endobj`` in the file, in order: its number and its body."""
    at = 0
    while (head := _OBJECT_HEAD.search(data, at)) is not None:
        end = _OBJECT_END.search(data, head.end())
        if end is None:  # nothing after this header is closed: no more objects
            return
        yield int(head.group(1)), data[head.end() : end.start()]
        at = end.end()  # each byte is looked at once: the searches never overlap


def _objects(data: bytes) -> dict[int, bytes]:
    """Object number -> body, including objects packed into object streams (PDF 1.5+)."""
    objects: dict[int, bytes] = {}
    for number, body in _object_bodies(data):
        objects[number] = body
        if b"/ObjStm" not in body:
            continue
        content = _stream_data(body)
        first = re.search(rb"/First\s+(\d+)", body)
        if content is None or first is None:
            continue
        offset0 = int(first.group(1))
        header = content[:offset0].split()
        pairs = [(int(header[i]), int(header[i + 1])) for i in range(0, len(header) - 1, 2)]
        for index, (inner, offset) in enumerate(pairs):
            end = pairs[index + 1][1] if index + 1 < len(pairs) else len(content) - offset0
            objects.setdefault(inner, content[offset0 + offset : offset0 + end])
    return objects


def _is_page(body: bytes) -> bool:
    return _PAGE.search(body) is not None


def _page_order(objects: dict[int, bytes]) -> list[int]:
    """Page object numbers in reading order: walk /Kids from the root /Pages node."""
    roots = [
        n
        for n, body in objects.items()
        if re.search(rb"/Type\s*/Pages\b", body) and b"/Parent" not in body
    ]
    order: list[int] = []
    seen: set[int] = set()

    def walk(number: int, depth: int) -> None:
        if number in seen or depth > 64 or number not in objects:
            return
        seen.add(number)
        body = objects[number]
        if _is_page(body):
            order.append(number)
            return
        kids = re.search(rb"/Kids\s*\[(.*?)\]", body, re.S)
        if kids:
            for ref in _REF.finditer(kids.group(1)):
                walk(int(ref.group(1)), depth + 1)

    for root in roots:
        walk(root, 0)
    if not order:  # no usable page tree: fall back to file order
        order = [n for n, body in objects.items() if _is_page(body)]
    return order


# A literal stops at the next unescaped parenthesis and an array at the next bracket (nested
# ones are not read), and nothing backtracks (possessive): a failed match scans only up to
# where the next one may start, so a hostile stream ("((((...") is read in linear time.
_TEXT_OP = re.compile(
    rb"(\((?:\\.|[^\\()])*+\))\s*+(?:Tj|'|\")|\[((?:\\.|[^\[\]\\])*+)\]\s*+TJ|(T\*|Td|TD|ET)\b",
    re.S,
)
_LITERAL = re.compile(rb"\((?:\\.|[^\\()])*+\)", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(literal: bytes) -> str:
    inner = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(inner):
        char = inner[i : i + 1]
        if char == b"\\" and i + 1 < len(inner):
            nxt = inner[i + 1 : i + 2]
            octal = re.match(rb"[0-7]{1,3}", inner[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += char
        i += 1
    return out.decode("latin-1")


def _content_text(stream: bytes) -> str:
    parts: list[str] = []
    for match in _TEXT_OP.finditer(stream):
        if match.group(1) is not None:
            parts.append(_unescape(match.group(1)))
        elif match.group(2) is not None:
            parts.append(
                "".join(_unescape(lit.group(0)) for lit in _LITERAL.finditer(match.group(2)))
            )
        elif parts and not parts[-1].endswith(" "):
            parts.append(" ")  # a line move or the end of a text object separates words
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def inspect_pdf(data: bytes) -> PdfInfo | None:
    """Page count and per-page text of a PDF; None when the bytes are not a PDF."""
    if b"%PDF-" not in data[:1024]:
        return None
    objects = _objects(data)
    pages = _page_order(objects)
    texts: list[str] = []
    for number in pages:
        body = objects[number]
        contents = re.search(rb"/Contents\s*(\[[^\]]*\]|\d+\s+\d+\s+R)", body)
        page_text: list[str] = []
        if contents:
            for ref in _REF.finditer(contents.group(1)):
                stream = _stream_data(objects.get(int(ref.group(1)), b""))
                if stream:
                    page_text.append(_content_text(stream))
        texts.append(" ".join(t for t in page_text if t))
    count = len(pages)
    if count == 0:
        # Pages we could not locate (e.g. damaged cross references): trust the page tree's /Count.
        counts = [int(n) for n in _COUNT.findall(data)] if _PAGES.search(data) else []
        count = max(counts, default=0)
        texts = [""] * count
    if count == 0:
        return None
    return PdfInfo(pages=count, page_texts=texts)
