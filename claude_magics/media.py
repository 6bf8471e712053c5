"""What kind of image some bytes are, from their magic number (never the file name).

    sniff_image(open("plot.png", "rb").read())   # "image/png"

Shared by the prompt builder (to label attachments) and the emulator (to validate them the way
the API does).
"""

from __future__ import annotations

__all__ = ["SUPPORTED_IMAGE_TYPES", "sniff_image"]

SUPPORTED_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def sniff_image(data: bytes) -> str | None:
    """The media type the bytes' magic number says, or None if it is not a supported image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None
