"""Where the gap goes: wall-clock marks of each stage of one spoken turn, for bench_turns --stages.

A :class:`StageRecorder` wraps, for as long as it is active, the server functions that start and
end each stage (the real functions still run; the wrappers only note ``time.perf_counter()``):

- ``silence``: the first silent VAD frame of the pause that ended the turn (wall time it was
  processed, and ``silence_audio_ms``, its position in the input audio);
- ``spec_start``: the speculative transcription requested (``Transcription.speculate``);
- ``asr_start`` / ``asr_end``: that transcription running on the ASR (its ``TranscriptionQueue`` work);
- ``turn_end_start`` / ``turn_end_end``: each end-of-turn model decision (last one counted), and
  ``turn_end_cpu_ms``;
- ``reply_start``: the ReplyJob (speculative or not) starting in its thread (``run_reply``);
- ``llm_eval_end`` / ``llm_eval_tokens``: the end and size of the first ``Llama.eval`` of that reply (the prompt's
  part not already in the KV cache);
- ``llm_first``, ``first_piece``, ``first_audio``: the reply's first LLM text chunk, the first
  voiced piece handed to the TTS, and its audio synthesised (the reply's engines wrapped in
  :class:`_TimedLLM` / :class:`_TimedTTS`).

The server runs in this process (``LocalRealtimeServer``), so its ``perf_counter`` is the
bench's. One stream at a time: :meth:`reset` before each.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import rtvoice_widget.server.connection as server_connection
import rtvoice_widget.server.dialogue.segmenter as server_segmenter
import rtvoice_widget.server.dialogue.transcription as server_transcription

__all__ = ["StageRecorder", "STAGES"]

#: The stages in pipeline order, as printed (ms after the end of the voice).
STAGES = ["silence", "spec_start", "asr_start", "asr_end", "turn_end_start", "turn_end_end", "speech_stopped",
          "reply_start", "llm_eval_end", "llm_first", "first_piece", "first_audio", "first_delta"]


class _TimedLLM:
    """The reply's LLM, noting when its first text chunk came (``llm_first``)."""

    def __init__(self, llm, marks: dict) -> None:
        self._llm, self._marks = llm, marks

    def __getattr__(self, name):
        return getattr(self._llm, name)

    def stream(self, *args, **kwargs):
        for chunk in self._llm.stream(*args, **kwargs):
            self._marks.setdefault("llm_first", time.perf_counter())
            yield chunk


class _TimedTTS:
    """The reply's TTS, noting its first call's start (``first_piece``) and end (``first_audio``)."""

    def __init__(self, tts, marks: dict) -> None:
        self._tts, self._marks = tts, marks

    def __getattr__(self, name):
        return getattr(self._tts, name)

    def synthesize(self, *args, **kwargs):
        self._marks.setdefault("first_piece", time.perf_counter())
        audio = self._tts.synthesize(*args, **kwargs)
        if "first_audio" in self._marks:
            self._marks.setdefault("second_audio", time.perf_counter())
        else:
            self._marks["first_audio"] = time.perf_counter()
            self._marks["first_audio_len_ms"] = len(audio) / self._tts.sample_rate * 1000
        return audio


class StageRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.marks: dict = {}
        self._reply_starts: dict[str, float] = {}
        self._saved: list = []

    def reset(self) -> None:
        with self._lock:
            self.marks = {}
            self._reply_starts = {}

    def _note(self, key: str, value, *, first: bool = False) -> None:
        with self._lock:
            if first and key in self.marks:
                return
            self.marks[key] = value

    # -- wrappers ----------------------------------------------------------------------------------

    def __enter__(self) -> StageRecorder:
        recorder = self
        seg, trans, conn = server_segmenter.Segmenter, server_transcription.Transcription, server_connection

        silent_frame = seg._silent_frame

        def _silent_frame(self, frame_ms, vad):
            silent_frame(self, frame_ms, vad)
            if self.silence_ms == frame_ms:  # the first silent frame of this pause
                recorder._note("silence", time.perf_counter())
                recorder._note("silence_audio_ms", self.position_ms - frame_ms)

        speculate = trans.speculate

        def _speculate(self, item_id, pcm16, now_ms):
            recorder._note("spec_start", time.perf_counter())
            recorder._note("spec_audio_ms", now_ms)
            return speculate(self, item_id, pcm16, now_ms)

        queue_run = conn.TranscriptionQueue.run

        async def _queue_run(self, kind, wanted, work):
            def timed():
                started = time.perf_counter()
                try:
                    return work()
                finally:
                    if kind == "speculative":
                        recorder._note("asr_start", started)
                        recorder._note("asr_end", time.perf_counter())
            return await queue_run(self, kind, wanted, timed)

        timed_turn_end = conn.Connection._timed_turn_end

        def _timed_turn_end(self, pcm16):
            started = time.perf_counter()
            prob, cpu_ms = timed_turn_end(self, pcm16)
            recorder._note("turn_end_start", started)
            recorder._note("turn_end_end", time.perf_counter())
            recorder._note("turn_end_cpu_ms", cpu_ms)
            recorder._note("turn_end_prob", prob)
            return prob, cpu_ms

        run_reply = conn.run_reply

        def _run_reply(job, engines, cancel, deliver):
            marks = {"start": time.perf_counter()}
            with recorder._lock:
                recorder._reply_starts[job.response_id] = marks["start"]
                recorder.marks.setdefault("_replies", {})[job.response_id] = marks
            engines = dataclasses.replace(engines, llm=_TimedLLM(engines.llm, marks), tts=_TimedTTS(engines.tts, marks))
            try:
                return run_reply(job, engines, cancel, deliver)
            finally:
                marks["ended"] = time.perf_counter()

        self._saved = [(seg, "_silent_frame", silent_frame), (trans, "speculate", speculate),
                       (conn.TranscriptionQueue, "run", queue_run), (conn.Connection, "_timed_turn_end", timed_turn_end),
                       (conn, "run_reply", run_reply)]
        seg._silent_frame = _silent_frame
        trans.speculate = _speculate
        conn.TranscriptionQueue.run = _queue_run
        conn.Connection._timed_turn_end = _timed_turn_end
        conn.run_reply = _run_reply
        try:
            import llama_cpp

            llama_eval = llama_cpp.Llama.eval

            def _eval(llama, tokens):
                started = time.perf_counter()
                llama_eval(llama, tokens)
                # The first eval in an LLM thread of a reply: the uncached prompt part.
                recorder._llm_eval(started, time.perf_counter(), len(tokens))

            self._saved.append((llama_cpp.Llama, "eval", llama_eval))
            llama_cpp.Llama.eval = _eval
        except ImportError:
            pass
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, value in self._saved:
            setattr(owner, name, value)

    def _llm_eval(self, started: float, ended: float, n_tokens: int) -> None:
        with self._lock:
            self.marks.setdefault("_evals", []).append((started, ended, n_tokens))

    # -- per turn ----------------------------------------------------------------------------------

    def turn(self, t0: float, voice_end_ms: float, stopped_ms: float | None, first_delta_ms: float | None,
             adopted_id: str | None) -> dict:
        """The stages of the stream that started at ``t0`` (perf_counter), in ms after the voice
        end; ``stopped_ms`` / ``first_delta_ms``: client-side marks (ms after ``t0``);
        ``adopted_id``: the response id of the first audio delta (its reply's marks are used)."""
        end = t0 + voice_end_ms / 1000
        rel = lambda t: None if t is None else (t - end) * 1000  # noqa: E731
        with self._lock:
            marks = dict(self.marks)
        out = {name: rel(marks.get(name)) for name in ("silence", "spec_start", "asr_start", "asr_end",
                                                      "turn_end_start", "turn_end_end")}
        out["silence_audio"] = marks["silence_audio_ms"] - voice_end_ms if "silence_audio_ms" in marks else None
        out["turn_end_cpu_ms"] = marks.get("turn_end_cpu_ms")
        out["speech_stopped"] = None if stopped_ms is None else stopped_ms - voice_end_ms
        out["first_delta"] = None if first_delta_ms is None else first_delta_ms - voice_end_ms
        replies = marks.get("_replies", {})
        reply = replies.get(adopted_id) if adopted_id else None
        if reply is None and replies:
            reply = max(replies.values(), key=lambda r: r["start"])
        if reply is not None:
            start = reply["start"]
            for name in ("reply_start", "llm_first", "first_piece", "first_audio", "second_audio"):
                out[name] = rel(reply.get(name if name != "reply_start" else "start"))
            # The first Llama.eval after the reply started: the prompt's part not in the KV cache.
            evaluation = next((e for e in sorted(marks.get("_evals", [])) if e[0] >= start), None)
            if evaluation is not None:
                out["llm_eval_end"] = rel(evaluation[1])
                out["llm_eval_tokens"] = evaluation[2]
        out["speculative"] = reply is not None and out.get("speech_stopped") is not None and (
            out["reply_start"] < out["speech_stopped"])
        return out
