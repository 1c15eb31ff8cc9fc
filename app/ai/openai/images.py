"""An image answer's bytes: decoded from base64, or downloaded from the provider's URL; and their
type, told by the file's first bytes rather than by what the answer claims."""

from __future__ import annotations

import base64
import binascii

import httpx

from app.ai.base import AIError

# A generated image is a few MB at most; a larger download is not an image we asked for.
MAX_IMAGE_BYTES = 25 * 1024 * 1024


def media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise AIError("the AI provider's image is not a PNG, JPEG or WEBP file")


def decode(b64: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise AIError("the AI provider's image is not valid base64") from None


async def download(client: httpx.AsyncClient, url: str) -> bytes:
    """The image at the URL the provider answered (its own storage, for a limited time)."""
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise AIError(f"the AI provider's image URL answered {response.status_code}")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise AIError("the AI provider's image is larger than 25 MB")
            return bytes(data)
    except httpx.HTTPError as exc:
        raise AIError(f"the AI provider's image could not be downloaded: {exc}") from None
