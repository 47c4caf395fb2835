"""Any OpenAI-compatible chat endpoint as the local server's LLM (Ollama, vLLM, llama.cpp server, …).

Talks streamed ``POST {url}/chat/completions`` through the official ``openai`` client, so the
SSE parsing, retries and error types are the SDK's, not ours. Tools are passed through (Realtime's
flat tool objects are converted to the Chat Completions shape) and streamed ``tool_calls`` deltas
are assembled into complete ``ToolCall`` chunks.
"""

from __future__ import annotations

import threading
from typing import Iterator

from .base import LLMChunk, ToolCall
from .tool_routing import function_spec


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    suffix = "/chat/completions"
    return url[: -len(suffix)] if url.endswith(suffix) else url


class OpenAICompatLLM:
    """``OpenAICompatLLM("http://127.0.0.1:11434/v1", "llama3.2")``.

    ``url`` is the API base (ending in ``/v1`` for most servers) or the full
    ``…/chat/completions`` address. ``api_key`` defaults to a placeholder because most local
    servers ignore it but the client insists on one. Instances are thread-safe: each ``stream``
    call makes its own HTTP request.
    """

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        temperature: float | None = None,
        timeout: float = 60.0,
        extra_body: dict | None = None,
    ) -> None:
        from openai import OpenAI

        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"llm_url must be an http(s) URL, got {url!r}")
        if not model:
            raise ValueError("OpenAICompatLLM needs a model name")
        self.url = _base_url(url)
        self.model = model
        self.name = f"openai-compat:{model}"
        self.temperature = temperature
        self.extra_body = extra_body
        self._client = OpenAI(base_url=self.url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1)

    def stream(
        self,
        messages: list[dict],
        *,
        tools: list[dict] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[LLMChunk]:
        request: dict = {"model": self.model, "messages": messages, "stream": True}
        if tools:
            request["tools"] = [{"type": "function", "function": function_spec(t)} for t in tools]
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.extra_body:
            request["extra_body"] = self.extra_body

        calls: dict[int, dict] = {}  # index -> {"name", "arguments"} being assembled
        response = self._client.chat.completions.create(**request)
        try:
            for chunk in response:
                if cancel is not None and cancel.is_set():
                    return
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is None:
                        continue
                    if delta.content:
                        yield LLMChunk(text=delta.content)
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, {"name": "", "arguments": ""})
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += call.function.arguments or ""
            for index in sorted(calls):
                yield LLMChunk(tool_call=ToolCall(calls[index]["name"], calls[index]["arguments"] or "{}"))
        finally:
            # Closing drops the HTTP connection, which is how a server learns to stop generating.
            response.close()
