"""The transcript the page shows, built in the kernel from event-log rows.

It runs as a log subscriber (on the session thread), so it sees each row *before* the protocol
applies that event: it keeps its own per-item entries rather than reading the protocol's
``Turn``s (docs/ARCHITECTURE.md, "Turns and transcripts"). It takes no widget reference.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TranscriptView"]


class TranscriptView:
    """Builds the transcript the UI shows from event-log rows.

    One entry per conversation item: ``{"id", "role", "text", "final", "interrupted"}``. User
    transcription deltas and assistant transcript deltas grow a partial entry; ``completed`` /
    ``done`` replace it with the final text; a cancelled response, a truncation or a playback
    flush marks the assistant entry interrupted. ``consume(row)`` returns the entries it changed.
    """

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def _entry(self, item_id: str, role: str) -> dict[str, Any]:
        entry = self.entries.get(item_id)
        if entry is None:
            entry = self.entries[item_id] = {"id": item_id, "role": role, "text": "", "final": False,
                                             "interrupted": False}
        return entry

    def consume(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        type_, item_id, text = row.get("type"), row.get("item_id"), row.get("text")
        payload = row.get("payload") if isinstance(row.get("payload"), dict) else {}
        changed: list[dict[str, Any]] = []

        def touch(entry: dict[str, Any]) -> None:
            changed.append(dict(entry))

        if type_ == "conversation.item.added" and row.get("source") == "server":
            item = payload.get("item") if isinstance(payload.get("item"), dict) else {}
            if item.get("type", "message") == "message" and item.get("role") in ("user", "assistant") and item_id:
                entry = self._entry(item_id, item["role"])
                typed = [c.get("text") for c in item.get("content") or [] if isinstance(c, dict)
                         # output_text: an assistant message the client created (a resumed history)
                         and c.get("type") in ("input_text", "text", "output_text") and isinstance(c.get("text"), str)]
                if typed:
                    entry.update(text="".join(typed), final=True)
                touch(entry)
        elif type_ == "conversation.item.input_audio_transcription.delta" and item_id and isinstance(text, str):
            entry = self._entry(item_id, "user")
            if not entry["final"]:
                entry["text"] += text
                touch(entry)
        elif type_ == "conversation.item.input_audio_transcription.completed" and item_id:
            entry = self._entry(item_id, "user")
            entry.update(text=(text or "").strip(), final=True)
            touch(entry)
        elif type_ == "conversation.item.input_audio_transcription.failed" and item_id:
            entry = self._entry(item_id, "user")
            entry.update(text=entry["text"] or "(transcription failed)", final=True)
            touch(entry)
        elif type_ in ("response.output_audio_transcript.delta", "response.output_text.delta",
                       "response.audio_transcript.delta", "response.text.delta") and item_id and isinstance(text, str):
            entry = self._entry(item_id, "assistant")
            if not entry["final"]:
                entry["text"] += text
                touch(entry)
        elif type_ in ("response.output_audio_transcript.done", "response.output_text.done",
                       "response.audio_transcript.done", "response.text.done") and item_id:
            entry = self._entry(item_id, "assistant")
            entry.update(text=text if isinstance(text, str) else entry["text"], final=True)
            touch(entry)
        elif type_ in ("conversation.item.truncated", "playback.flushed") and item_id in self.entries:
            entry = self.entries[item_id]
            entry["interrupted"] = True
            touch(entry)
        elif type_ == "response.done":
            response = payload.get("response") if isinstance(payload.get("response"), dict) else {}
            if response.get("status") in ("cancelled", "incomplete"):
                for item in response.get("output") or []:
                    entry = self.entries.get(item.get("id")) if isinstance(item, dict) else None
                    if entry is not None:
                        entry["interrupted"] = True
                        touch(entry)
        return changed

    def snapshot(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.entries.values()]
