"""What the kernel sends the page in batches: log rows and transcript entries.

Rows arrive on the session thread one by one; :class:`PageFeed` collects them (and the
transcript entries they change) and a pump thread sends them at most every
``BATCH_INTERVAL_S``, so a busy session never waits on the comm. It takes no widget reference:
the widget hands it a ``send`` function and a stats function.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["rows_json"]


_ROW_FIELDS = ("seq", "t_ms", "source", "type", "category", "event_id", "item_id", "response_id", "text",
               "audio_ms", "payload")


def rows_json(rows: list[dict[str, Any]]) -> str:
    """Log rows as the browser gets them: one JSON array, without the wall-clock datetime.

    Serialised once per batch on the pump thread (not per event on the session thread); odd
    payload values (numpy scalars, bytes) become text instead of breaking the comm.
    """
    return json.dumps([{k: row.get(k) for k in _ROW_FIELDS} for row in rows], default=str,
                      separators=(",", ":"))
