"""``load_engines``: build (once per process) the engine set a local server runs with.

Each role takes a name — or a ready engine object, used as is:

========  ===============================================================================
``vad``   ``"silero"`` (default, Silero v6 ONNX from faster-whisper) · ``"energy"``
``asr``   ``"whisper-base"`` (default, bundled) · a faster-whisper name (``"small"``,
          ``"whisper-small"``, …, needs network) · a CTranslate2 model folder
``llm``   ``"auto"`` (default: ``"qwen2.5-1.5b"`` if its wheels are installed, as the
          ``local`` extra does, else ``"qwen2.5-0.5b"`` if its are, else ``"smollm2"``, with a
          logged warning) · ``"smollm2"``
          (SmolLM2-135M, small and fast, but it answers few questions right) ·
          ``"qwen2.5-0.5b"`` / ``"qwen2.5-1.5b"`` (Qwen2.5-Coder-Instruct split over wheels:
          ``rtvoice-widget[qwen-0-5b]`` / ``[local]``, joined once into the cache, see
          :mod:`.split_gguf`) · ``"echo"`` · a ``.gguf`` path ·
          ``"openai"`` (with ``llm_url``); ``llm_url=`` alone also selects the endpoint
``tts``   ``"auto"`` (default: ``"piper"`` if its packages are installed, else ``"espeak"``
          with a logged warning) · ``"piper"`` (Piper, en_US-joe-medium, required) ·
          ``"espeak"`` (library, CLI fallback) · ``"espeak-cli"``
``turn_end`` end-of-turn model for ``semantic_vad``: ``"auto"`` (default: Smart Turn v3.2 if
          ``pipecat-ai`` is installed, else none) · ``"smart-turn"`` (required) · ``None``
========  ===============================================================================

Results are cached by their arguments: a second call with the same choices returns the same
``Engines`` without loading anything, and concurrent first calls load once (a lock). Each engine
is also cached on its own, so changing one role (say the TTS) loads only that engine; a reused
engine reports ``"cached": True`` and its original ``load_s`` in ``Engines.info`` (and is left
out of ``total_load_s``, the time this call spent loading). Progress
goes to the ``rtvoice_widget.server.engines`` logger and to ``progress(message, fraction)`` if
given; load times land in ``Engines.info``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .base import ASR, LLM, TTS, VAD, Engines

log = logging.getLogger("rtvoice_widget.server.engines")

Progress = Callable[[str, float], None]

_cache: dict[tuple, Engines] = {}
_engine_cache: dict[tuple, tuple[object, float]] = {}  # (role, choice key) -> (engine, load seconds)
_cache_lock = threading.Lock()


def _make_vad(choice) -> VAD:
    if not isinstance(choice, str):
        return choice
    if choice == "silero":
        from .vad import SileroVAD

        return SileroVAD()
    if choice == "energy":
        from .vad import EnergyVAD

        return EnergyVAD()
    raise ValueError(f"unknown vad {choice!r}: use 'silero' or 'energy'")


def _make_turn_end(choice):
    if not isinstance(choice, str) and choice is not None:
        return choice
    if choice is None:
        return None
    if choice not in ("auto", "smart-turn"):
        raise ValueError(f"unknown turn_end {choice!r}: use 'auto', 'smart-turn' or None")
    from .turn_end import SmartTurn

    try:
        return SmartTurn()
    except FileNotFoundError:
        if choice == "smart-turn":
            raise
        log.warning("no end-of-turn model (pip install --no-deps pipecat-ai==1.14.0): "
                    "semantic_vad uses silence windows")
        return None


def _make_asr(choice) -> ASR:
    if not isinstance(choice, str):
        return choice
    from .asr import WhisperASR

    return WhisperASR(choice)


def _make_llm(choice, llm_url: str | None, llm_model: str | None, llm_api_key: str | None) -> LLM:
    if not isinstance(choice, str):
        return choice
    if llm_url is not None or choice == "openai":
        if llm_url is None:
            raise ValueError("llm='openai' needs llm_url= (an OpenAI-compatible base URL)")
        from .llm_openai import OpenAICompatLLM

        model = llm_model or (choice if choice not in ("openai", "auto", "smollm2") else None)
        if model is None:
            raise ValueError("an llm_url needs llm_model= (the model name the endpoint serves)")
        return OpenAICompatLLM(llm_url, model, api_key=llm_api_key)
    if choice == "echo":
        from .llm_echo import EchoLLM

        return EchoLLM()
    choice = resolved_llm(choice)
    if choice == "smollm2":
        from .llm_llama import LlamaCppLLM

        return LlamaCppLLM()
    from .split_gguf import MODELS

    if choice in MODELS:
        from .llm_llama import LlamaCppLLM
        from .split_gguf import split_model_path

        return LlamaCppLLM(split_model_path(choice), name=choice)
    if choice.endswith(".gguf"):
        from .llm_llama import LlamaCppLLM

        return LlamaCppLLM(choice)
    raise ValueError(f"unknown llm {choice!r}: use 'auto', 'smollm2', {', '.join(repr(m) for m in MODELS)}, 'echo', "
                     "a .gguf path, or llm_url=")


# What llm="auto" picks, best first (bench/bench_spoken.py, 75 spoken questions in one
# conversation, docs/ENGINES.md): Qwen2.5-Coder-1.5B (the `local` extra installs it), else
# Qwen2.5-Coder-0.5B (`[qwen-0-5b]`), else SmolLM2-135M, which answers few questions right.
AUTO_ORDER = ("qwen2.5-1.5b", "qwen2.5-0.5b")
AUTO_LLM = AUTO_ORDER[0]


def first_installed(names, models=None) -> str | None:
    """The first of ``names`` (keys of ``models``, default :data:`.split_gguf.MODELS`) whose part
    wheels are all installed (looked up by distribution name, nothing imported), else None."""
    import importlib.metadata

    from .split_gguf import MODELS

    models = MODELS if models is None else models
    for name in names:
        try:
            for part in models[name].parts:
                importlib.metadata.distribution(part.distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return None


def resolved_llm(choice: str) -> str:
    """The model ``choice`` stands for on this install: ``"auto"`` is the first model of
    :data:`AUTO_ORDER` whose part wheels are all installed (the ``local`` extra installs
    :data:`AUTO_LLM`'s), with a logged warning if that is not :data:`AUTO_LLM`, else
    ``"smollm2"`` with a logged warning; any other choice is itself. Parts that are installed but
    damaged are not a reason to fall back: loading them fails with ``ModelFileError`` naming
    the part."""
    if choice != "auto":
        return choice
    from .split_gguf import MODELS

    found = first_installed(AUTO_ORDER)
    if found != AUTO_LLM:
        log.warning("%s is not installed (%s): answering with %s, which gets fewer questions right",
                    AUTO_LLM, MODELS[AUTO_LLM].pip_command(), found or "SmolLM2-135M")
    return found or "smollm2"


def auto_tts(piper_model_path=None) -> TTS:
    """``tts="auto"``: Piper (``PiperTTS(piper_model_path)``; ``None``: the bundled voice) when
    ``piper-tts`` and the voice are installed, else espeak-ng with a logged warning. A voice file
    that is there but fails its SHA-256 check is an error, not a reason to fall back."""
    from .tts_piper import PiperTTS

    try:
        return PiperTTS(piper_model_path)
    except (ImportError, FileNotFoundError) as exc:
        from .tts import EspeakTTS

        log.warning("no Piper voice (%s): speaking with espeak-ng", exc)
        return EspeakTTS()


def _make_tts(choice) -> TTS:
    if not isinstance(choice, str):
        return choice
    if choice == "auto":
        return auto_tts()
    if choice == "piper":
        from .tts_piper import PiperTTS

        return PiperTTS()
    from .tts import EspeakTTS

    if choice == "espeak":
        return EspeakTTS()
    if choice == "espeak-cli":
        return EspeakTTS(backend="cli")
    raise ValueError(f"unknown tts {choice!r}: use 'auto', 'piper', 'espeak' or 'espeak-cli'")


def _key(value) -> object:
    return value if isinstance(value, (str, type(None))) else ("object", id(value))


def load_engines(
    vad: str | VAD = "silero",
    asr: str | ASR = "whisper-base",
    llm: str | LLM = "auto",
    tts: str | TTS = "auto",
    *,
    turn_end: str | object | None = "auto",
    llm_url: str | None = None,
    llm_model: str | None = None,
    llm_api_key: str | None = None,
    progress: Progress | None = None,
) -> Engines:
    """The engines for these choices, loaded at most once per process (see module docstring).

    Raises ``ValueError`` for unknown names and ``FileNotFoundError``/``ImportError`` naming the
    package to install when a bundled model is missing; nothing is cached after a failure.
    """
    if isinstance(llm, str) and llm_url is None:
        llm = resolved_llm(llm)  # the stage text and the cache name the model itself
    key = tuple(_key(v) for v in (vad, asr, llm, tts, llm_url, llm_model, llm_api_key, turn_end))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        llm_key = tuple(_key(v) for v in (llm, llm_url, llm_model, llm_api_key))
        steps = [
            ("vad", vad, _key(vad), lambda: _make_vad(vad)),
            ("asr", asr, _key(asr), lambda: _make_asr(asr)),
            ("llm", llm_url or llm, llm_key, lambda: _make_llm(llm, llm_url, llm_model, llm_api_key)),
            ("tts", tts, _key(tts), lambda: _make_tts(tts)),
            ("turn_end", turn_end, _key(turn_end), lambda: _make_turn_end(turn_end)),
        ]
        built: dict[str, object] = {}
        info: dict = {}
        for done, (role, choice, choice_key, make) in enumerate(steps):
            cached_engine = _engine_cache.get((role, choice_key))
            message = f"loading {role}: {choice if isinstance(choice, str) else type(choice).__name__}"
            if cached_engine is not None:
                message += " (cached)"
            log.info(message)
            if progress is not None:
                progress(message, done / len(steps))
            if cached_engine is not None:
                built[role], seconds = cached_engine
                info[role] = {"name": getattr(built[role], "name", type(built[role]).__name__), "load_s": seconds, "cached": True}
                continue
            started = time.perf_counter()
            engine = make()
            seconds = round(time.perf_counter() - started, 3)
            built[role] = engine
            info[role] = {"name": "none" if engine is None else getattr(engine, "name", type(engine).__name__),
                          "load_s": seconds}
            # Objects passed in are the caller's: only engines built from names are worth keeping.
            if isinstance(choice_key, str) or role == "llm" and isinstance(llm, str):
                _engine_cache[(role, choice_key)] = (engine, seconds)
            log.info("loaded %s (%s) in %.2f s", role, info[role]["name"], seconds)
        # What this call spent loading: engines reused from the cache cost nothing now.
        info["total_load_s"] = round(sum(v["load_s"] for v in info.values() if not v.get("cached")), 3)
        if progress is not None:
            progress("engines ready", 1.0)
        engines = Engines(built["vad"], built["asr"], built["llm"], built["tts"], info, built["turn_end"])
        _cache[key] = engines
        return engines
