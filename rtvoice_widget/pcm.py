"""PCM16 audio as the Realtime wire carries it: the facts and the codecs, defined once.

The wire format is PCM16 little-endian mono at 24 kHz, base64 in JSON. Client (protocol,
session, event log, widget) and embedded server share these definitions so that a change of
format, or a faster codec, happens in one place. No numpy here: this sits below everything.

Contract: :func:`encode_pcm16` takes any bytes-like object and never fails on content;
:func:`decode_pcm16` accepts only strict base64 of whole 16-bit samples and raises
:class:`~rtvoice_widget.errors.ProtocolError` otherwise (the receiver decides what that costs).
"""

from __future__ import annotations

import base64
import binascii
import sys

from .errors import ProtocolError

__all__ = [
    "BYTES_PER_MS",
    "BYTES_PER_SAMPLE",
    "SAMPLE_RATE",
    "audio_ms_of_base64",
    "decode_pcm16",
    "encode_pcm16",
    "pcm16_ms",
]

SAMPLE_RATE = 24000
BYTES_PER_SAMPLE = 2
#: Bytes per millisecond (48). An int, so that ``ms * BYTES_PER_MS`` stays a whole byte offset.
BYTES_PER_MS = SAMPLE_RATE * BYTES_PER_SAMPLE // 1000


def pcm16_ms(nbytes: int) -> float:
    """Duration in ms of ``nbytes`` of PCM16 mono 24 kHz audio."""
    return nbytes / BYTES_PER_MS


def audio_ms_of_base64(b64: str, bytes_per_ms: float = BYTES_PER_MS) -> float:
    """Duration of base64-encoded audio, from its length alone (no decoding)."""
    n = len(b64)
    if n == 0:
        return 0.0
    padding = (b64[-1] == "=") + (n > 1 and b64[-2] == "=")
    return (n // 4 * 3 - padding) / bytes_per_ms


def encode_pcm16(pcm16: bytes | bytearray | memoryview) -> str:
    """Base64 text of ``pcm16`` (no newline): what an ``audio`` or ``delta`` field carries."""
    # b2a_base64 is base64.b64encode without its Python-level wrapper: this runs 50 times a second.
    return binascii.b2a_base64(pcm16, newline=False).decode("ascii")


if sys.version_info >= (3, 11):
    def _strict_b64decode(text: str) -> bytes:
        # strict_mode: the C equivalent of b64decode(validate=True), without its regex pass.
        return binascii.a2b_base64(text, strict_mode=True)
else:  # strict_mode is new in 3.11
    def _strict_b64decode(text: str) -> bytes:
        return base64.b64decode(text, validate=True)


def decode_pcm16(text: str) -> bytes:
    """PCM16 bytes of base64 ``text``.

    Raises :class:`ProtocolError` for text that is not strict base64 (no characters outside the
    alphabet: lenient decoding would turn garbage into noise) or decodes to an odd byte count
    (a corrupted frame, not whole 16-bit samples).
    """
    try:
        pcm16 = _strict_b64decode(text)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ProtocolError(f"Invalid base64 audio ({exc})") from exc
    if len(pcm16) % 2:
        raise ProtocolError("PCM16 audio must have an even number of bytes, "
                            f"got an odd byte count ({len(pcm16)})")
    return pcm16
