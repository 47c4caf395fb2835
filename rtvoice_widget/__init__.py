"""rtvoice-widget: real-time voice conversations with an AI inside Jupyter.

The public surface is re-exported lazily so that ``import rtvoice_widget`` stays cheap and does
not pull in the widget stack (or the local models) until they are used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "VoiceChat": "rtvoice_widget.widget",
    "RealtimeSession": "rtvoice_widget.session",
    "SessionConfig": "rtvoice_widget.config",
    "TurnDetection": "rtvoice_widget.config",
    "EventLog": "rtvoice_widget.events",
    "Recorder": "rtvoice_widget.audio",
    "LocalRealtimeServer": "rtvoice_widget.server",
    "load_session": "rtvoice_widget.saved",
    "Agent": "rtvoice_widget.agents",
    "handoff": "rtvoice_widget.agents",
    "OutputGuardrail": "rtvoice_widget.guardrails",
    "output_guardrail": "rtvoice_widget.guardrails",
    "function_tool": "rtvoice_widget.tools",
    "compare": "rtvoice_widget.comparison",
    "plot_comparison": "rtvoice_widget.comparison",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rtvoice_widget' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
