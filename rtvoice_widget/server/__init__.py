"""The embedded, offline, GA-Realtime-compatible voice server.

- :class:`LocalRealtimeServer` — in-process server on a background thread (``start()`` → URL).
- :func:`ensure_local_server` — the one server per kernel the client uses when no key is set
  (a subprocess; see ``local.py`` for why); :func:`local_server_crash` says why it died, when it did;
  :func:`local_server_token` is the per-process secret it requires.
- ``rtvoice-server`` / ``python -m rtvoice_widget.server`` — the CLI.

Layout: ``codec`` (client frames → validated events, ``error`` events, ids) · ``settings`` (the
session object) · ``dialogue/`` (the sans-I/O turn engine: segmenter, transcription, speculation,
conversation, responses, history) · ``chunking`` (tokens → speakable clauses) · ``pipeline``
(engine work in threads) · ``connection`` (one WebSocket) · ``app`` (the server) · ``local`` (one
server per kernel) · ``crash`` (a dead server process, in words) · ``engines`` (VAD, ASR, LLM,
TTS behind small interfaces).
"""

from .app import DEFAULT_MODEL, LocalRealtimeServer
from .local import LocalServerCrashed, ensure_local_server, local_server_crash, local_server_token, stop_local_server

__all__ = ["LocalRealtimeServer", "ensure_local_server", "stop_local_server", "local_server_crash", "local_server_token",
           "LocalServerCrashed", "DEFAULT_MODEL"]
