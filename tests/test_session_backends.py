"""backends.resolve_endpoint: URLs, headers and labels for each backend; the key never leaks."""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncAzureOpenAI

from rtvoice_widget.backends import Endpoint, resolve_endpoint

KEY = "sk-test-SECRET-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


def test_openai_with_key_argument():
    endpoint = resolve_endpoint(backend="openai", model="gpt-realtime-mini", api_key=KEY)
    assert endpoint.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini"
    assert endpoint.headers == {"Authorization": f"Bearer {KEY}"}
    assert endpoint.backend == "openai"


def test_openai_key_from_environment_and_default_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    endpoint = resolve_endpoint(backend="openai")
    assert endpoint.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert endpoint.headers["Authorization"] == f"Bearer {KEY}"


def test_auto_picks_openai_when_a_key_is_set(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert resolve_endpoint().backend == "openai"
    assert resolve_endpoint(api_key=KEY).backend == "openai"


def test_openai_without_key_is_a_clear_error():
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        resolve_endpoint(backend="openai")


@pytest.mark.parametrize("api_version", ["2025-04-01-preview", "2025-08-28"])
def test_azure_matches_the_openai_sdk(api_version):
    """Same URL and headers as the SDK's own AsyncAzureOpenAI realtime connection."""
    client = AsyncAzureOpenAI(
        api_key=KEY, azure_endpoint="https://myres.openai.azure.com", api_version=api_version,
        azure_deployment="my-realtime",
    )
    sdk_url, sdk_headers = asyncio.run(client._configure_realtime("my-realtime", {}))
    ours = resolve_endpoint(
        backend="azure", api_key=KEY, azure_endpoint="https://myres.openai.azure.com/",
        azure_deployment="my-realtime", api_version=api_version,
    )
    assert ours.url == str(sdk_url)
    assert dict(ours.headers) == sdk_headers
    assert ours.model == "my-realtime"


def test_azure_ga_v1_form_from_environment(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://myres.openai.azure.com")
    endpoint = resolve_endpoint(backend="azure", model="gpt-realtime")
    assert endpoint.url == "wss://myres.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    assert endpoint.headers == {"api-key": KEY}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(azure_endpoint="https://r.openai.azure.com", azure_deployment="d"), "AZURE_OPENAI_API_KEY"),
        (dict(api_key=KEY, azure_deployment="d"), "AZURE_OPENAI_ENDPOINT"),
        (dict(api_key=KEY, azure_endpoint="https://r.openai.azure.com"), "azure_deployment"),
        (dict(api_key=KEY, azure_endpoint="ftp://r", azure_deployment="d"), "https://"),
    ],
)
def test_azure_missing_parts_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_endpoint(backend="azure", **kwargs)


def test_any_ws_url_with_optional_bearer():
    plain = resolve_endpoint("ws://127.0.0.1:9999/v1/realtime")
    assert plain.backend == "url" and plain.headers == {}
    assert plain.url == "ws://127.0.0.1:9999/v1/realtime"
    keyed = resolve_endpoint("wss://example.org/realtime?x=1", model="m", api_key=KEY)
    assert keyed.url == "wss://example.org/realtime?x=1&model=m"
    assert keyed.headers == {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize("url", ["http://example.org/v1/realtime", "example.org", "ws://", "file:///tmp/x"])
def test_non_websocket_urls_are_rejected(url):
    with pytest.raises(ValueError, match="ws:// or wss://"):
        resolve_endpoint(url)


def test_unknown_backend_and_conflicting_options():
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_endpoint(backend="gemini")
    with pytest.raises(ValueError, match="needs url="):
        resolve_endpoint(backend="url")
    with pytest.raises(ValueError, match="only used with"):
        resolve_endpoint("ws://127.0.0.1:1/x", backend="openai", api_key=KEY)


def test_key_never_in_repr_or_label():
    endpoints = [
        resolve_endpoint(backend="openai", api_key=KEY),
        resolve_endpoint(backend="azure", api_key=KEY, azure_endpoint="https://r.openai.azure.com",
                         azure_deployment="d"),
        resolve_endpoint(f"wss://example.org/realtime?api-key={KEY}", api_key=KEY),
    ]
    for endpoint in endpoints:
        assert isinstance(endpoint, Endpoint)
        assert KEY not in repr(endpoint)
        assert KEY not in endpoint.label
        assert KEY not in str(endpoint)
