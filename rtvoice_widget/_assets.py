"""The front end the widget ships: two files esbuild builds from ``js/`` (``npm run build``).

- ``static/loader.js``: the widget's ``_esm``, the only front-end code in the widget state (and
  so in a saved notebook): it asks the kernel for the bundle by a custom message.
- ``static/widget.js``: the whole front end in one ES module (worklets, link worker and CSS
  inside), sent to the page on request (see ``VoiceChat._send_front_end``).

Both are committed, so a checkout, an editable install and a wheel read the same files; the
sources and their node tests stay in ``js/`` (tests/test_packaging.py checks the committed
bundle is what ``js/`` builds).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


@functools.lru_cache(maxsize=None)
def static_text(name: str) -> str:
    path = STATIC / name
    if not path.is_file():
        raise FileNotFoundError(f"rtvoice_widget front end not found: {path} (run `npm run build` in js/)")
    return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def bundle() -> tuple[str, bytes]:
    """The front-end bundle as ``(hash, utf-8 bytes)``; the hash names it in the page's cache."""
    data = static_text("widget.js").encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:16], data
