"""The transcript panel's downloads: the conversation as Markdown or JSON, the recording as WAV.

Made in the kernel, not in the browser: the kernel holds the recording (both tracks, on the
session clock; the page keeps no audio once played) and the turns table (times, latencies,
interruptions, tool calls; the page has only the text it shows), so the files are the same as
``chat.save()`` writes. The page asks with ``{"type": "control", "action": "download",
"format": "md" | "json" | "wav"}``; :func:`send_download` answers with the file in
``{"type": "download", "id", "name", "mime", "size", "index", "count"}`` messages of one buffer
each, at most :data:`CHUNK_BYTES` per message (a long recording is tens of MB: no single comm
message that large), which the page joins into a ``Blob`` and saves. Each answer is logged as
``export.sent`` (category ``system``) with ``name``, ``format`` and ``bytes``.

"Copy" is the page's own: it copies the transcript it shows, in the click's own task, as the
clipboard API wants (a round trip to the kernel would lose the user gesture in some browsers).
"""

from __future__ import annotations

import io
import json
import math
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["CHUNK_BYTES", "FORMATS", "recording_wav", "send_download", "transcript_json", "transcript_markdown"]

#: Largest buffer in one download message.
CHUNK_BYTES = 1 << 20
#: format -> (file suffix, MIME type)
FORMATS = {"md": (".md", "text/markdown"), "json": (".json", "application/json"), "wav": (".wav", "audio/wav")}
_ROLE_NAMES = {"user": "You", "assistant": "Assistant", "function_call": "Tool call"}


def _clock(ms: Any) -> str:
    if not isinstance(ms, (int, float)) or not math.isfinite(ms):
        return ""
    seconds = ms / 1000
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def transcript_markdown(turns: pd.DataFrame, *, title: str = "Conversation") -> str:
    """The turns table (:func:`rtvoice_widget.turn_table.turns_table`) as Markdown: one paragraph per
    turn, ``**You** (m:ss.s): text``, interrupted replies marked, tool calls as code."""
    lines = [f"# {title}", ""]
    for row in turns.itertuples(index=False):
        role = getattr(row, "role", None)
        text = getattr(row, "text", None)
        text = text.strip() if isinstance(text, str) else ""
        when = _clock(getattr(row, "started", None))
        head = f"**{_ROLE_NAMES.get(role, str(role))}**" + (f" ({when})" if when else "")
        if role == "function_call":
            body = f"`{text}`"
        else:
            body = text or "_(no text)_"
            if role == "assistant" and bool(getattr(row, "interrupted", False)):
                body += " _[interrupted]_"
        lines += [f"{head}: {body}", ""]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def transcript_json(turns: pd.DataFrame, *, config: dict | None = None) -> str:
    """``{"exported_at", "config", "turns": [...]}``: every column of the turns table per turn
    (NaN as null), and the public session config (secrets removed, see ``saved.public_config``)."""
    records = [{str(k): _jsonable(v) for k, v in record.items()} for record in turns.to_dict(orient="records")]
    return json.dumps({"exported_at": datetime.now(timezone.utc).isoformat(), "config": config,
                       "turns": records}, indent=2, ensure_ascii=False)


def recording_wav(recording: Any) -> bytes:
    """Both tracks as one stereo PCM16 WAV (user left, assistant right), as ``chat.save`` writes
    ``conversation.wav``."""
    import soundfile

    from rtvoice_widget.saved import SavedRecording

    tracks = SavedRecording(*recording.tracks_pcm16(), recording.sample_rate)
    out = io.BytesIO()
    soundfile.write(out, tracks.stereo_pcm16(), tracks.sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def build(source: Any, format: str) -> tuple[str, str, bytes]:
    """``(file name, MIME type, bytes)`` of ``format`` for a live session or chat."""
    from rtvoice_widget.saved import public_config

    if format not in FORMATS:
        raise ValueError(f"download format must be one of {sorted(FORMATS)}, got {format!r:.20}")
    suffix, mime = FORMATS[format]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"conversation-{stamp}{suffix}"
    if format == "wav":
        return name, mime, recording_wav(source.recording)
    turns = source.transcript()
    if format == "md":
        return name, mime, transcript_markdown(turns).encode("utf-8")
    return name, mime, transcript_json(turns, config=public_config(source)).encode("utf-8")


def send_download(send: Callable[..., Any], source: Any, format: str,
                  log: Callable[..., Any] | None = None) -> str:
    """Build ``format`` from ``source`` and hand it to the page with ``send(content,
    buffers=[chunk])`` in :data:`CHUNK_BYTES` pieces; ``log(type, text=, **fields)`` records
    ``export.sent``. Returns the download id."""
    name, mime, data = build(source, format)
    download_id = uuid.uuid4().hex[:12]
    count = max(1, -(-len(data) // CHUNK_BYTES))
    for index in range(count):
        send({"type": "download", "id": download_id, "name": name, "mime": mime, "size": len(data),
              "index": index, "count": count},
             buffers=[data[index * CHUNK_BYTES:(index + 1) * CHUNK_BYTES]])
    if log is not None:
        log("export.sent", text=f"{name} ({len(data)} bytes) sent to the page", name=name, format=format,
            bytes=len(data))
    return download_id
