"""Where the front-end sources live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def js_dir() -> Path:
    """The folder holding the widget's ESM and worklet sources.

    A checkout (and an editable install) reads ``js/`` at the top of the repo, so the tested
    sources are the shipped ones; a wheel carries the same files as ``rtvoice_widget/static``.
    """
    for candidate in (_HERE.parent / "js", _HERE / "static"):
        if (candidate / "widget.js").is_file():
            return candidate
    raise FileNotFoundError("rtvoice_widget front-end sources not found (js/widget.js)")


def js_source(name: str) -> str:
    return (js_dir() / name).read_text(encoding="utf-8")
