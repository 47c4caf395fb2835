"""Where a session connects: resolve user-facing options into a WebSocket endpoint.

:func:`resolve_endpoint` turns ``(url, backend, model, api_key, azure_*)`` into an
:class:`Endpoint`: the ``ws://``/``wss://`` URL to dial, the handshake headers (which carry the
secret) and a human-readable label that is safe to log.

Backends:

``"openai"``
    ``wss://api.openai.com/v1/realtime?model=MODEL`` with ``Authorization: Bearer KEY``; the key
    comes from ``api_key=`` or ``OPENAI_API_KEY``. A missing key raises :class:`ValueError`.
``"azure"``
    Azure OpenAI. The endpoint comes from ``azure_endpoint=`` or ``AZURE_OPENAI_ENDPOINT``, the
    key from ``api_key=`` or ``AZURE_OPENAI_API_KEY`` and goes in the ``api-key`` header. With an
    ``api_version`` (argument or ``OPENAI_API_VERSION``) the URL is the one the ``openai`` SDK's
    ``AzureOpenAI`` client builds: ``wss://RESOURCE/openai/realtime?api-version=V&deployment=D``;
    without one it is the GA v1 form ``wss://RESOURCE/openai/v1/realtime?model=D``.
``"local"``
    The embedded offline server (:func:`rtvoice_widget.server.ensure_local_server`), started on
    first use in this process; its per-process secret goes in ``Authorization: Bearer``.
``"url"``
    Any ``ws://``/``wss://`` URL given as ``url=``; ``api_key=`` (if any) is sent as a Bearer token;
    without one, the URL of this process's local server gets that server's secret.
``"auto"`` (default)
    ``url=`` if given, else OpenAI when a key is available (argument or ``OPENAI_API_KEY``), else
    the local server.

The key never appears in an :class:`Endpoint`'s ``repr``, its ``label`` or its ``url``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import unquote, urlencode, urlsplit

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Endpoint", "resolve_endpoint"]

DEFAULT_MODEL = "gpt-realtime"
OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
BACKENDS = ("auto", "openai", "azure", "local", "url")


@dataclass(frozen=True)
class Endpoint:
    """A resolved connection target.

    ``headers`` hold credentials and, like ``url`` (a user URL may carry a token in its query),
    are excluded from ``repr``; ``label`` is redacted and meant for logs and UIs (e.g.
    ``"openai gpt-realtime"``, ``"local ws://127.0.0.1:PORT/v1/realtime"``).
    """

    url: str = field(repr=False)
    backend: str
    label: str
    model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: For a server this process runs: ``crash_report(wait_s)`` is why it died by itself (waiting
    #: up to ``wait_s`` seconds for a dying process), or ``None``; a session asks it when its
    #: connection drops, and stops reconnecting to a server that is gone.
    crash_report: Callable[[float], str | None] | None = field(default=None, repr=False, compare=False)

    def secrets(self) -> tuple[str, ...]:
        """The credentials this endpoint carries, for redaction: each header value (the token of
        ``Bearer <token>``), a URL password and URL query values named like a key or token."""
        found = []
        for value in self.headers.values():
            scheme, _, token = value.partition(" ")
            found.append(token if scheme.lower() == "bearer" and token else value)
        parts = urlsplit(self.url)
        if parts.password:
            found.append(parts.password)
        for pair in parts.query.split("&"):
            name, _, value = pair.partition("=")
            if name.lower() in _SECRET_QUERY_NAMES and value:
                found += [value, unquote(value)]
        return tuple(dict.fromkeys(s for s in found if s))


def resolve_endpoint(
    url: str | None = None,
    *,
    backend: str = "auto",
    model: str | None = None,
    api_key: str | None = None,
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    api_version: str | None = None,
) -> Endpoint:
    """Resolve connection options into an :class:`Endpoint` (see the module docstring).

    Raises :class:`ValueError` for an unknown backend, a URL that is not ``ws://``/``wss://``,
    or a hosted backend without a key or endpoint.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if url is not None and backend in ("auto", "url"):
        return _url_endpoint(url, model, api_key)
    if backend == "url":
        raise ValueError("backend='url' needs url='ws://...' or 'wss://...'")
    if url is not None:
        raise ValueError(f"url= is only used with backend='url' or 'auto', not {backend!r}")
    if backend == "auto":
        backend = "openai" if (api_key or os.environ.get("OPENAI_API_KEY")) else "local"
    if backend == "openai":
        return _openai_endpoint(model, api_key)
    if backend == "azure":
        return _azure_endpoint(model, api_key, azure_endpoint, azure_deployment, api_version)
    return _local_endpoint(model)


def _url_endpoint(url: str, model: str | None, api_key: str | None) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"url must be a ws:// or wss:// URL with a host, got {_redact_url(url)!r}")
    if model is not None and "model=" not in parts.query:
        url = _with_query(url, {"model": model})
    if not api_key:
        api_key = _local_server_token(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return Endpoint(url=url, backend="url", label=f"url {_redact_url(url)}", model=model, headers=headers)


def _openai_endpoint(model: str | None, api_key: str | None) -> Endpoint:
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ValueError(
            "backend='openai' needs an API key: pass api_key=... or set OPENAI_API_KEY "
            "(or use backend='local' for the offline server)"
        )
    model = model or DEFAULT_MODEL
    return Endpoint(
        url=_with_query(OPENAI_REALTIME_URL, {"model": model}),
        backend="openai",
        label=f"openai {model}",
        model=model,
        headers={"Authorization": f"Bearer {key}"},
    )


def _azure_endpoint(
    model: str | None,
    api_key: str | None,
    azure_endpoint: str | None,
    azure_deployment: str | None,
    api_version: str | None,
) -> Endpoint:
    key = api_key or os.environ.get("AZURE_OPENAI_API_KEY")
    if not key:
        raise ValueError("backend='azure' needs an API key: pass api_key=... or set AZURE_OPENAI_API_KEY")
    endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        raise ValueError(
            "backend='azure' needs azure_endpoint='https://RESOURCE.openai.azure.com' "
            "or AZURE_OPENAI_ENDPOINT"
        )
    deployment = azure_deployment or model
    if not deployment:
        raise ValueError("backend='azure' needs azure_deployment=... (or model=..., the deployment name)")
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("https", "wss", "http", "ws") or not parts.hostname:
        raise ValueError(f"azure_endpoint must be an https:// URL, got {endpoint!r}")
    scheme = "ws" if parts.scheme in ("http", "ws") else "wss"
    base = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if not base.endswith("/openai"):
        base += "/openai"
    api_version = api_version or os.environ.get("OPENAI_API_VERSION")
    if api_version:
        # The form the openai SDK's AzureOpenAI client dials (``_configure_realtime``).
        url = _with_query(f"{base}/realtime", {"api-version": api_version, "deployment": deployment})
    else:
        url = _with_query(f"{base}/v1/realtime", {"model": deployment})
    return Endpoint(
        url=url,
        backend="azure",
        label=f"azure {parts.hostname} {deployment}",
        model=deployment,
        headers={"api-key": key},
    )


def _local_endpoint(model: str | None) -> Endpoint:
    # Imported lazily: the server pulls in the offline engines, which plain OpenAI users never need.
    from rtvoice_widget.server import ensure_local_server, local_server_crash, local_server_token

    url = ensure_local_server()
    served = url
    token = local_server_token(served)
    if model is not None:
        url = _with_query(url, {"model": model})
    return Endpoint(url=url, backend="local", label=f"local {url}", model=model,
                    headers={"Authorization": f"Bearer {token}"} if token else {},
                    crash_report=lambda wait_s: local_server_crash(served, wait_s))


def _local_server_token(url: str) -> str | None:
    """The secret of this process's local server when ``url`` is its URL (``url=ensure_local_server()``)."""
    # Only when the server module is loaded already: otherwise this process started no server,
    # and plain OpenAI users never import the offline engines.
    local = sys.modules.get("rtvoice_widget.server.local")
    return local.local_server_token(url) if local is not None else None


def _with_query(url: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{urlencode(params)}"


_SECRET_QUERY_NAMES = frozenset({"api-key", "api_key", "key", "token", "access_token"})


def _redact_url(url: str) -> str:
    """Drop userinfo and query values that look like secrets, for labels and error messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = "&".join(
        f"{name}=***" if name.lower() in _SECRET_QUERY_NAMES else pair
        for pair in parts.query.split("&")
        if pair
        for name in [pair.split("=", 1)[0]]
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
