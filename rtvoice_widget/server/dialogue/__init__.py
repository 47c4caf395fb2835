"""The sans-I/O dialogue of one Realtime connection: client events in, server events and jobs out.

:class:`TurnEngine` (``engine.py``) is the facade the driver (``server/connection.py``) feeds;
the parts it composes, one concept each:

- ``jobs`` — the work it asks for (:class:`DetectSpeech`, :class:`Transcribe`, :class:`ReplyJob`,
  :class:`CancelReply`, :class:`WarmUp`, :class:`Prefill`, :class:`PredictTurnEnd`);
- ``segmenter`` — the input buffer, VAD segmentation, end-of-turn asks, idle timeout;
- ``transcription`` — final, partial and speculative transcripts;
- ``speculation`` — the speculative reply, started before the turn ends;
- ``conversation`` — the item store, placed by ``previous_item_id``;
- ``responses`` — the response lifecycle and the GA response objects;
- ``history`` — the conversation as LLM messages within a budget;
- ``outbox`` — events and jobs on their way to the driver.
"""

from .engine import EARLY_ASK_MS, EARLY_SPECULATION_BAR, SAMPLE_RATE, SPECULATION_DELAY_MS, TurnEngine
from .jobs import CancelReply, DetectSpeech, PredictTurnEnd, Prefill, ReplyJob, Transcribe, WarmUp, warm_up_job
from .segmenter import MAX_INPUT_BUFFER_MS, empty_turn_end_stats

__all__ = [
    "TurnEngine",
    "DetectSpeech",
    "Transcribe",
    "ReplyJob",
    "CancelReply",
    "WarmUp",
    "Prefill",
    "PredictTurnEnd",
    "warm_up_job",
    "empty_turn_end_stats",
    "MAX_INPUT_BUFFER_MS",
    "SAMPLE_RATE",
    "SPECULATION_DELAY_MS",
    "EARLY_ASK_MS",
    "EARLY_SPECULATION_BAR",
]
