"""The I/O side of one Realtime connection: drive a :class:`TurnEngine` over a WebSocket.

Everything here runs on the server's event loop except engine work, which goes to the thread
pools in :class:`Workers` (shared by all connections of a server, sized for a small CPU).

Ordering: client frames are fed to the engine one at a time, and the VAD work an audio frame
causes is awaited before the next frame is fed, so turn detection sees audio strictly in order.
Transcriptions and replies run concurrently and feed their results back whenever they finish;
the engine drops results that became obsolete. Events leave through one writer task, in the
order the engine produced them.

:class:`Connection` is one client: :meth:`Connection.serve` feeds the engine, :meth:`dispatch`
sends its events and starts its jobs, one runner per job type; :class:`ClientWriter` is the
bounded outbox and its writer task.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from websockets.exceptions import ConnectionClosed

from ..pcm import pcm16_ms
from .engines.base import Engines
from .pipeline import SpeechDetector, predict_turn_end, run_reply, transcribe, prefill_llm, vad_frame_samples_24k, warm_llm
from .codec import ProtocolError, error_event
from .dialogue import (EARLY_ASK_MS, SPECULATION_DELAY_MS, CancelReply, DetectSpeech, PredictTurnEnd, ReplyJob, Transcribe,
                       TurnEngine, WarmUp, Prefill, empty_turn_end_stats)

__all__ = ["Connection", "TranscriptionQueue", "Workers", "partial_budget_ms", "serve_connection"]

log = logging.getLogger("rtvoice_widget.server")

#: Characters of events queued for one client at most; past it the client stopped reading and
#: is dropped (32 Mi: about 8 min of base64 audio deltas), never the server's memory.
MAX_OUTBOX_CHARS = 32 * 2 ** 20


_URGENCY = {"final": 0, "speculative": 1, "partial": 2}


class TranscriptionQueue:
    """One transcription at a time, server-wide, the most urgent first.

    Whisper costs about a second per call whatever the audio length, and two calls at once on
    two cores only slow each other down, so transcriptions are queued here (finals before
    speculative ones before partials) and each job's ``wanted()`` is asked again when its turn
    comes: a speculation overtaken by more speech, or a partial of a finished turn, is skipped
    instead of delaying the transcription someone waits for. Used on the event loop only.
    """

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        self._waiting: list = []
        self._order = itertools.count()
        self.busy = False
        self.recent_ms = 0.0  # moving average of how long a transcription takes here

    async def run(self, kind: str, wanted: Callable[[], bool], work: Callable[[], str]) -> str | None:
        """``work()``'s result, or None if the job was no longer wanted when its turn came."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (_URGENCY[kind], next(self._order), wanted, work, future))
        self._next()
        return await future

    def _next(self) -> None:
        while not self.busy and self._waiting:
            _, _, wanted, work, future = heapq.heappop(self._waiting)
            if future.done():  # its connection went away
                continue
            if not wanted():
                future.set_result(None)
                continue
            self.busy = True
            loop = asyncio.get_running_loop()
            running = loop.run_in_executor(self._executor, work)
            running.add_done_callback(functools.partial(self._finished, future=future, started=loop.time()))

    def _finished(self, done: asyncio.Future, *, future: asyncio.Future, started: float) -> None:
        self.busy = False
        elapsed_ms = (asyncio.get_running_loop().time() - started) * 1000
        self.recent_ms = elapsed_ms if self.recent_ms == 0 else 0.7 * self.recent_ms + 0.3 * elapsed_ms
        if not future.done():
            if done.exception() is not None:
                future.set_exception(done.exception())
            else:
                future.set_result(done.result())
        self._next()


class Workers:
    """Thread pools shared by a server's connections.

    VAD gets its own small pool so a frame never waits behind a one-second transcription. ASR
    goes through one :class:`TranscriptionQueue`; replies each hold a thread for their duration
    (the LLM engine serialises its own model).
    """

    def __init__(self, *, max_replies: int = 16) -> None:
        self.vad = ThreadPoolExecutor(2, thread_name_prefix="rtvoice-vad")
        self.asr = ThreadPoolExecutor(1, thread_name_prefix="rtvoice-asr")
        self.reply = ThreadPoolExecutor(max_replies, thread_name_prefix="rtvoice-reply")
        self.transcriptions = TranscriptionQueue(self.asr)
        self.replies_running = 0  # server-wide; counted on the event loop
        # Every ended connection's TurnEngine.turn_end_stats, summed (LocalRealtimeServer.turn_end_stats).
        self.turn_end_stats = empty_turn_end_stats()
        self._stats_lock = threading.Lock()

    def add_turn_end_stats(self, stats: dict) -> None:
        with self._stats_lock:  # read from other threads (a benchmark, a notebook)
            for key in self.turn_end_stats:
                self.turn_end_stats[key] += stats.get(key, 0)

    def shutdown(self) -> None:
        for pool in (self.vad, self.asr, self.reply):
            pool.shutdown(wait=False, cancel_futures=True)


def partial_budget_ms(vad, partial_interval_ms: float | None) -> float:
    """How long a transcription may take for partials to run (see ``run_transcription``): half
    the silence after which a turn usually ends, the end-of-turn model's pause under
    ``semantic_vad`` with a model (``vad.turn_end``), else the VAD's silence duration; 0 (no
    partials) without a VAD or a partial interval. The LLM prefill (``Prefill``) uses the
    partials that run and does not ask for more: forcing them under ``semantic_vad`` (a budget of
    half the interval) made the gap worse on 2 cores, 1390 against 1244 ms p50 (bench_turns,
    Qwen 1.5B, same run): a 1 s partial covers only the first words of a 2-3 s question, and
    one still running when the voice ends delays the speculative transcription (p50 543
    against 399 ms after the voice)."""
    if vad is None or not partial_interval_ms:
        return 0.0
    turn_silence_ms = vad.turn_end.pause_ms if vad.turn_end is not None else vad.silence_duration_ms
    return min(float(partial_interval_ms), turn_silence_ms / 2)


async def _frames(websocket):
    """The client's frames until it goes away, however it goes away."""
    try:
        async for frame in websocket:
            yield frame
    except ConnectionClosed:
        return


def _dumps(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


class ClientWriter:
    """The events queued for one client and the task that writes them, in order.

    Bounded by :data:`MAX_OUTBOX_CHARS`: a client that stops reading is dropped (its transport
    aborted), so waiting for it never holds every reply's audio in memory."""

    def __init__(self, websocket) -> None:
        self._websocket = websocket
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._queued = 0  # characters in the outbox; -1 once the client was dropped

    def send(self, message: str) -> None:
        if self._queued < 0:
            return  # dropped already
        self._queued += len(message)
        if self._queued > MAX_OUTBOX_CHARS:
            log.warning("dropping a client that stopped reading (%d characters queued for it)", self._queued)
            self._queued = -1
            self._websocket.transport.abort()
            return
        self._outbox.put_nowait(message)

    async def run(self) -> None:
        """Write until :meth:`close`; the task ends with the connection."""
        while (message := await self._outbox.get()) is not None:
            await self._websocket.send(message)
            if self._queued > 0:
                self._queued -= len(message)

    def close(self) -> None:
        self._outbox.put_nowait(None)


class Connection:
    """One client, served until it disconnects. Engine failures end a response, never the connection.

    ``options`` are :class:`TurnEngine`'s keyword arguments (``model``, ``speculative``, ...);
    ``partial_interval_ms`` also paces the partials' budget (:func:`partial_budget_ms`)."""

    def __init__(self, websocket, engines: Engines, workers: Workers, *, model: str,
                 partial_interval_ms: float | None = 1000.0, prefill: bool = True, **options) -> None:
        self._websocket = websocket
        self._engines = engines
        self._workers = workers
        self._partial_interval_ms = partial_interval_ms
        # Partials feed the prefill only with an LLM that has a cache to fill (not echo, not a URL).
        self._prefill_on = prefill and getattr(engines.llm, "prefill", None) is not None
        self.engine = TurnEngine(model=model, vad_frame_samples_24k=vad_frame_samples_24k(engines.vad),
                                 partial_interval_ms=partial_interval_ms, prefill=self._prefill_on,
                                 turn_end_model=engines.turn_end is not None, **options)
        self._detector = SpeechDetector(engines.vad)
        self._writer = ClientWriter(websocket)
        self._vad_jobs: deque[DetectSpeech] = deque()
        self._cancels: dict[str, threading.Event] = {}  # running replies by response id
        self._tasks: set[asyncio.Task] = set()
        self._runners = {Transcribe: self._transcribe, WarmUp: self._warm_up, Prefill: self._prefill, PredictTurnEnd: self._predict_turn_end,
                         ReplyJob: self._reply}

    async def serve(self) -> None:
        """Feed the client's frames to the engine until it goes away, then clean up."""
        loop = asyncio.get_running_loop()
        writer_task = loop.create_task(self._writer.run())
        self.dispatch()  # session.created
        try:
            async for frame in _frames(self._websocket):
                try:
                    self.engine.receive(frame)
                    self.dispatch()
                    await self._detect_speech()
                except Exception:
                    # A bug of ours must not cost the user the conversation: report it and go on.
                    log.exception("error while handling a client event")
                    self._writer.send(_dumps(error_event(ProtocolError(
                        "The server failed to handle this event", code="server_error", type="server_error"))))
        finally:
            await self._close(writer_task)

    def dispatch(self) -> None:
        """Send what the engine produced and start the work it asked for."""
        for event in self.engine.events_to_send():
            self._writer.send(_dumps(event))
        for job in self.engine.jobs_to_run():
            if isinstance(job, DetectSpeech):
                self._vad_jobs.append(job)  # awaited by serve(), before the next frame
            elif isinstance(job, CancelReply):
                if job.response_id in self._cancels:
                    self._cancels[job.response_id].set()
            else:
                if isinstance(job, ReplyJob):
                    # Registered now, not when the task first runs: a cancel may come before that.
                    self._cancels[job.response_id] = threading.Event()
                task = asyncio.get_running_loop().create_task(self._runners[type(job)](job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _detect_speech(self) -> None:
        # Awaited before the next client frame is fed, so turn detection sees audio in order.
        loop = asyncio.get_running_loop()
        while self._vad_jobs:
            job = self._vad_jobs.popleft()
            probs = await loop.run_in_executor(self._workers.vad, self._detector.probs, job.frames)
            self.engine.speech_probs(probs)
            self.dispatch()

    def _partial_skipped(self, job: Transcribe) -> bool:
        # Partials are a courtesy. One running when speech ends delays the transcript that
        # matters (the speculation waits for the ASR), so they run only on an idle ASR, never
        # while a reply (perhaps a speculative one) needs the CPU, and only while a transcription
        # takes at most half the silence that ends a turn: then even a partial started just as
        # the speaker stops leaves time for the speculation to finish by speech_stopped. With an
        # end-of-turn model (semantic_vad) that silence is the pause before the model is asked,
        # not the longest wait (silence_duration_ms, 2 s for auto): a turn usually ends there. On
        # this 2-core CPU under load they step aside; a speculation overtaken by more speech still
        # serves as a partial.
        queue, workers = self._workers.transcriptions, self._workers
        budget_ms = partial_budget_ms(self.engine.settings.vad, self._partial_interval_ms)
        return job.kind == "partial" and (queue.busy or queue.recent_ms > budget_ms or workers.replies_running)

    async def _transcribe(self, job: Transcribe) -> None:
        if self._partial_skipped(job):
            self.engine.transcribed(job, None, error="skipped: ASR busy")
            self.dispatch()
            return

        def work() -> str:
            started = time.perf_counter()
            text = transcribe(self._engines.asr, job.pcm16, language=job.language, prompt=job.prompt)
            log.debug("%s transcription of %.0f ms of audio took %.0f ms: %r",
                      job.kind, pcm16_ms(len(job.pcm16)), (time.perf_counter() - started) * 1000, text)
            return text

        try:
            text = await self._workers.transcriptions.run(job.kind, lambda: self.engine.wants(job), work)
        except Exception as exc:
            log.exception("transcription failed")
            self.engine.transcribed(job, None, error=f"{type(exc).__name__}: {exc}")
        else:
            if text is None:
                self.engine.transcribed(job, None, error="skipped: no longer wanted")
            else:
                self.engine.transcribed(job, text)
        self.dispatch()

    def _reply_result(self, response_id: str, result: tuple) -> None:
        kind = result[0]
        if kind == "segment":
            self.engine.reply_segment(response_id, result[1], result[2])
        elif kind == "tool":
            self.engine.reply_tool_call(response_id, result[1], result[2])
        else:
            self.engine.reply_finished(response_id, result[1])
        self.dispatch()

    async def _reply(self, job: ReplyJob) -> None:
        loop = asyncio.get_running_loop()
        cancel = self._cancels[job.response_id]

        def deliver(result: tuple) -> None:  # on the reply's thread
            try:
                loop.call_soon_threadsafe(self._reply_result, job.response_id, result)
            except RuntimeError:  # the loop is gone: the server stopped mid-reply
                cancel.set()

        self._workers.replies_running += 1
        try:
            if not cancel.is_set():  # cancelled before it started: the engine has closed it already
                await loop.run_in_executor(self._workers.reply, run_reply, job, self._engines, cancel, deliver)
        finally:
            self._workers.replies_running -= 1
            self._cancels.pop(job.response_id, None)

    def _timed_turn_end(self, pcm16: bytes) -> tuple[float, float]:
        # CPU time of this thread: what the decision costs, not how long it waited for a core.
        started = time.thread_time()
        prob = predict_turn_end(self._engines.turn_end, pcm16)
        return prob, (time.thread_time() - started) * 1000

    async def _predict_turn_end(self, job: PredictTurnEnd) -> None:
        # On the VAD pool: a decision is tens of ms and must not queue behind a transcription.
        # (Waiting for the running transcription instead, so as not to slow it, was measured and
        # dropped: the decision then took its CPU from the LLM's prompt evaluation, and the gap
        # p50 rose from 746 to 818 ms in bench_turns, same run.)
        loop = asyncio.get_running_loop()
        try:
            prob, cpu_ms = await loop.run_in_executor(self._workers.vad, self._timed_turn_end, job.pcm16)
        except Exception as exc:
            log.exception("end-of-turn model failed")
            self.engine.turn_end_predicted(job, None, error=f"{type(exc).__name__}: {exc}")
        else:
            log.debug("end of turn (%s ask): p(complete)=%.3f over %.0f ms of audio (%.0f ms CPU), answered "
                      "at input %.0f ms", job.kind, prob, pcm16_ms(len(job.pcm16)), cpu_ms,
                      self.engine.input_position_ms)
            self.engine.turn_end_predicted(job, prob, cpu_ms=cpu_ms)
        self.dispatch()

    async def _warm_up(self, job: WarmUp) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._workers.reply, warm_llm, self._engines.llm, job)
        except Exception:  # only an optimisation: the first reply will evaluate the prompt itself
            log.exception("LLM warm-up failed")

    async def _prefill(self, job: Prefill) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._workers.reply, prefill_llm, self._engines.llm, job)
        except Exception:  # only an optimisation: the reply evaluates its whole prompt itself
            log.exception("LLM prefill failed")

    async def _close(self, writer_task: asyncio.Task) -> None:
        for cancel in self._cancels.values():
            cancel.set()
        self._writer.close()
        try:
            await writer_task
        except Exception:
            pass  # the client is gone; nothing left to tell it
        for task in list(self._tasks):
            task.cancel()
        log.debug("session ended; speculative replies: %s", self.engine.speculation_stats)
        stats = self.engine.turn_end_stats
        self._workers.add_turn_end_stats(stats)
        decisions = stats["asked"] + stats["early"]
        if decisions:
            log.info("session ended; end-of-turn decisions: %d asked (%d complete, %d of them on a heard question, "
                     "%d incomplete, %d dropped as speech resumed), %d early (%d started the speculation), "
                     "%.1f ms CPU each", stats["asked"], stats["complete"], stats["heard_question"],
                     stats["incomplete"], stats["dropped"], stats["early"], stats["early_speculated"],
                     stats["cpu_ms"] / decisions)


async def serve_connection(
    websocket,
    engines: Engines,
    workers: Workers,
    *,
    model: str,
    speculative: bool = True,
    speculative_reply: bool = True,
    speculation_delay_ms: float = SPECULATION_DELAY_MS,
    partial_interval_ms: float | None = 1000.0,
    early_ask_ms: float | None = EARLY_ASK_MS,
    prefill: bool = True,
) -> None:
    """Serve one client until it disconnects. Engine failures end a response, never the connection."""
    await Connection(websocket, engines, workers, model=model, partial_interval_ms=partial_interval_ms, prefill=prefill,
                     speculative=speculative, speculative_reply=speculative_reply,
                     speculation_delay_ms=speculation_delay_ms, early_ask_ms=early_ask_ms).serve()
