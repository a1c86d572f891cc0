"""The image formats an endpoint accepts: their MIME types, and the format of a file from its
magic bytes. Stdlib only: calibration sets and the endpoint wire both need it."""

from __future__ import annotations

IMAGE_MIME_TYPES: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


def sniff_format(data: bytes) -> str | None:
    """The image format from its magic bytes (only the formats endpoints accept), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None
