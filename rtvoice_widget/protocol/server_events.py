"""Server events as the client accepts them: beta names normalised, fields type-checked.

Contract: :func:`normalize_event` and :func:`checked_fields`, defined once for client and server
in :mod:`rtvoice_widget.event_schema` (which says why the client checks with tables rather than
the SDK's models); this module is where the protocol package imports them from.
"""

from __future__ import annotations

from ..event_schema import BETA_ALIASES, checked_fields, normalize_event

__all__ = ["BETA_ALIASES", "checked_fields", "normalize_event"]
