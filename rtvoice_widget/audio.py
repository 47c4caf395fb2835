"""PCM16 helpers and the two-track session recorder.

The Realtime wire format is PCM16, 24 kHz, mono, little-endian. :func:`to_pcm16` turns whatever
a user hands us (int16 bytes, numpy int16/float32/float64 arrays at any rate, mono or stereo)
into exactly that, resampling with soxr; the other helpers convert, resample and read/write WAV
(soundfile). :class:`Recorder` keeps both sides of a conversation aligned on the session clock.

Conventions: float audio is in [-1, 1]; int16 ↔ float uses the factor 32768, so
``float32_to_pcm16(pcm16_to_float32(b)) == b`` exactly, and floats outside [-1, 1] clip.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .pcm import SAMPLE_RATE  # the Realtime API's PCM16 sample rate, re-exported

__all__ = [
    "SAMPLE_RATE",
    "Recorder",
    "float32_to_pcm16",
    "pcm16_to_float32",
    "read_wav",
    "resample",
    "to_pcm16",
    "write_wav",
]


_FLOAT_DTYPES = (np.float32, np.float64)
_ACCEPTED = "int16 bytes, or a numpy array of dtype int16, float32 or float64"


def _check_rate(sample_rate: Any, name: str = "sample_rate") -> int:
    # Fast path: every 20 ms mic frame passes a plain int here; skip the numpy checks for it.
    if type(sample_rate) is int and sample_rate > 0:
        return sample_rate
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float, np.floating)):
        raise TypeError(f"{name} must be a number of samples per second, got {sample_rate!r}")
    if not np.isfinite(sample_rate) or sample_rate <= 0 or sample_rate != int(sample_rate):
        raise ValueError(f"{name} must be a positive whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def _pcm16_array(data: bytes | bytearray | memoryview) -> np.ndarray:
    n = memoryview(data).nbytes
    if n % 2:
        raise ValueError(f"PCM16 bytes must have an even length (2 bytes per sample), got {n} bytes")
    return np.frombuffer(data, dtype="<i2")


def _mono(x: np.ndarray) -> np.ndarray:
    """1-D, (n, 1) or (n, 2) → 1-D; stereo is averaged (in float or int32, never overflowing)."""
    if x.ndim == 1:
        return x
    if x.ndim == 2 and x.shape[1] in (1, 2):
        if x.shape[1] == 1:
            return x[:, 0]
        if x.dtype == np.int16:
            return ((x[:, 0].astype(np.int32) + x[:, 1]) // 2).astype(np.int16)
        return x.mean(axis=1, dtype=x.dtype)
    raise ValueError(f"audio must be 1-D or shaped (n, 1) / (n, 2) (frames, channels), got shape {x.shape}")


def _validated(x: Any) -> np.ndarray:
    """The audio as a 1-D int16 or float array, after every check ``to_pcm16`` promises."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        arr = _pcm16_array(x)
    elif isinstance(x, np.ndarray):
        if not x.dtype.isnative:  # e.g. big-endian samples read from a file
            x = x.astype(x.dtype.newbyteorder("="))
        if x.dtype != np.int16 and x.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"audio must be {_ACCEPTED}; got a numpy array of dtype {x.dtype}")
        arr = _mono(x)
    else:
        raise TypeError(f"audio must be {_ACCEPTED}; got {type(x).__name__}")
    if arr.size == 0:
        raise ValueError("audio is empty")
    if arr.dtype != np.int16 and not np.isfinite(arr).all():
        raise ValueError("audio contains NaN or infinite samples")
    return arr


def pcm16_to_float32(pcm16: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """PCM16 (bytes, or an int16 array) → float32 in [-1, 1)."""
    arr = pcm16 if isinstance(pcm16, np.ndarray) else _pcm16_array(pcm16)
    if arr.dtype != np.int16:
        raise TypeError(f"pcm16_to_float32 expects int16 samples, got dtype {arr.dtype}")
    return arr.astype(np.float32) / np.float32(32768.0)


def float32_to_pcm16(x: np.ndarray) -> bytes:
    """Float samples in [-1, 1] → PCM16 little-endian bytes; values outside clip, NaN/inf raise."""
    arr = np.asarray(x)
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"float32_to_pcm16 expects float32 or float64 samples, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("audio contains NaN or infinite samples")
    scaled = np.rint(arr.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def resample(x: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample 1-D or (frames, channels) audio with soxr (high quality); dtype is kept
    (int16, float32 or float64). Equal rates return the input unchanged."""
    from_rate = _check_rate(from_rate, "from_rate")
    to_rate = _check_rate(to_rate, "to_rate")
    arr = np.asarray(x)
    if arr.dtype != np.int16 and arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"resample expects int16, float32 or float64 samples, got dtype {arr.dtype}")
    if from_rate == to_rate or arr.shape[0] == 0:
        return arr
    import soxr

    return soxr.resample(arr, from_rate, to_rate, quality="HQ")


def to_pcm16(x: Any, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Any supported audio → 24 kHz mono PCM16 bytes, the Realtime wire format.

    ``x``: int16 little-endian bytes (mono, at ``sample_rate``), or a numpy array of dtype
    int16 / float32 / float64, shaped ``(n,)``, ``(n, 1)`` or ``(n, 2)`` (stereo is averaged).
    Floats are clipped to [-1, 1]. Raises ``TypeError`` for other types and dtypes,
    ``ValueError`` for empty audio, NaN/inf, other shapes, odd byte lengths and bad rates.
    """
    rate = _check_rate(sample_rate)
    if x.__class__ is bytes and rate == SAMPLE_RATE and x and not len(x) % 2:
        return x  # already the wire format (the widget's and talk()'s 20 ms frames): no numpy
    arr = _validated(x)
    if rate != SAMPLE_RATE:
        # Resample in float: soxr's int16 path would clip the filter's overshoot silently.
        source = pcm16_to_float32(arr) if arr.dtype == np.int16 else arr.astype(np.float32)
        arr = resample(source, rate, SAMPLE_RATE)
    if arr.dtype == np.int16:
        return arr.astype("<i2", copy=False).tobytes()
    return float32_to_pcm16(arr)


def read_wav(path: str | Path, dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, OGG... via soundfile) → ``(samples, sample_rate)``.
    Mono files give ``(n,)`` arrays, others ``(n, channels)``; ``dtype`` ``"float32"``,
    ``"float64"`` or ``"int16"``."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype=dtype, always_2d=False)
    return data, int(rate)


def write_wav(path: str | Path, x: Any, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write PCM16 WAV: ``x`` is PCM16 bytes (mono), or an int16/float array ``(n,)`` or
    ``(n, channels)``; floats are clipped to [-1, 1]."""
    import soundfile as sf

    rate = _check_rate(sample_rate)
    if isinstance(x, (bytes, bytearray, memoryview)):
        data = _pcm16_array(x)
    elif isinstance(x, np.ndarray) and (x.dtype == np.int16 or x.dtype in _FLOAT_DTYPES):
        if x.ndim not in (1, 2):
            raise ValueError(f"audio must be (n,) or (n, channels), got shape {x.shape}")
        data = x if x.dtype == np.int16 else np.clip(x, -1.0, 1.0)
        if data.dtype != np.int16 and not np.isfinite(data).all():
            raise ValueError("audio contains NaN or infinite samples")
    else:
        raise TypeError(f"audio must be {_ACCEPTED}; got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
    path = Path(path)
    sf.write(str(path), data, rate, subtype="PCM_16")
    return path


# -- recorder ----------------------------------------------------------------------------

_BLOCK_BYTES = 1 << 20  # small chunks are joined into blocks of about this size


@dataclass
class _Run:
    """Contiguous audio starting at ``start`` (samples on the session clock).

    Chunks accumulate in ``pending`` and are joined into ``blocks`` of ~1 MB, so memory stays
    close to the raw audio: per-chunk objects only for the newest < 1 MB, no over-allocation.
    """

    start: int
    item_id: str | None = None
    blocks: list[bytes] = field(default_factory=list)
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    nbytes: int = 0

    @property
    def end(self) -> int:
        return self.start + self.nbytes // 2

    def add(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)
        self.nbytes += len(chunk)
        if self.pending_bytes >= _BLOCK_BYTES:
            self.blocks.append(b"".join(self.pending))
            self.pending = []
            self.pending_bytes = 0

    def cut(self, n_samples: int) -> None:
        """Keep only the first ``n_samples``."""
        keep = max(0, n_samples) * 2
        if keep >= self.nbytes:
            return
        self.blocks = [b"".join([*self.blocks, *self.pending])[:keep]]
        self.pending = []
        self.pending_bytes = 0
        self.nbytes = keep


class Recorder:
    """Both sides of a conversation, aligned on the session clock (``t_ms``, ms since start).

    - ``add_user(pcm16, t_ms)``: microphone audio whose first sample was captured at ``t_ms``
      (a later stamp, e.g. the send time, shifts the track by that latency). A live mic is one
      continuous stream, so a chunk that starts within ``gap_ms`` of the end of the previous
      one (or before it) continues it seamlessly; a later chunk starts a new run after
      silence. A burst of frames delayed by a busy kernel (same late stamps) is kept whole and
      moved back so that it ends at its stamps (over the silence before it, never over earlier
      audio), so the track does not lag for the rest of the session. User audio is never dropped.
    - ``add_assistant(item_id, pcm16, t_ms)``: assistant audio. Deltas arrive faster than real
      time, so an item plays contiguously from its first delta's ``t_ms`` (or from the end of
      the previous item, if that is still playing); ``t_ms`` of later deltas does not move it.
    - ``truncate(item_id, played_ms)``: the item was cut after ``played_ms`` of playback
      (barge-in); the rest is dropped, as the listener never heard it.

    ``user`` and ``assistant`` are float32 arrays of the same length (the session duration so
    far), silence where nobody spoke; ``to_wav(path)`` writes them as stereo (user left,
    assistant right). Audio is kept as int16 in ~1 MB blocks: memory ≈ raw audio size.
    Thread-safe: the session thread adds, any thread reads.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, gap_ms: float = 100.0) -> None:
        self.sample_rate = _check_rate(sample_rate)
        if not gap_ms >= 0:
            raise ValueError(f"gap_ms must be >= 0, got {gap_ms!r}")
        self.gap_ms = float(gap_ms)
        self._per_ms = self.sample_rate / 1000.0
        self._gap = round(self.gap_ms * self._per_ms)
        self._lock = threading.Lock()
        self._user: list[_Run] = []
        self._assistant: list[_Run] = []
        self._items: dict[str, _Run] = {}

    def _sample_at(self, t_ms: float) -> int:
        t = float(t_ms)
        if not math.isfinite(t):
            raise ValueError(f"t_ms must be finite, got {t_ms!r}")
        return max(0, round(t * self._per_ms))

    @staticmethod
    def _chunk(pcm16: Any) -> bytes:
        if pcm16.__class__ is bytes:  # the session's case: no copy
            chunk = pcm16
        elif isinstance(pcm16, (bytearray, memoryview)):
            chunk = bytes(pcm16)
        elif isinstance(pcm16, np.ndarray) and pcm16.dtype == np.int16 and pcm16.ndim == 1:
            return pcm16.astype("<i2", copy=False).tobytes()
        else:
            described = f"array of {pcm16.dtype} {pcm16.shape}" if isinstance(pcm16, np.ndarray) \
                else type(pcm16).__name__
            raise TypeError(f"recorder chunks are PCM16 bytes or 1-D int16 arrays, got {described}")
        if len(chunk) % 2:
            raise ValueError(f"PCM16 bytes must have an even length (2 bytes per sample), got {len(chunk)} bytes")
        return chunk

    def add_user(self, pcm16: Any, t_ms: float) -> None:
        """Record microphone audio whose first sample was captured at ``t_ms``."""
        chunk = self._chunk(pcm16)
        start = self._sample_at(t_ms)
        if not chunk:
            return
        with self._lock:
            last = self._user[-1] if self._user else None
            if last is None or start > last.end + self._gap:
                last = _Run(start)
                self._user.append(last)
            last.add(chunk)
            # Audio cannot end after it was stamped. Frames that queued behind a busy kernel
            # arrive in a burst with late stamps; continuing them seamlessly pushes the run
            # past its stamps, so move the run back over the silence before it (never over
            # earlier audio) instead of leaving the rest of the session lagging.
            late = last.end - (start + len(chunk) // 2)
            if late > self._gap:
                floor = self._user[-2].end if len(self._user) > 1 else 0
                last.start = max(floor, last.start - late)

    def add_assistant(self, item_id: str, pcm16: Any, t_ms: float) -> None:
        """Record assistant audio of ``item_id`` received at ``t_ms``."""
        chunk = self._chunk(pcm16)
        start = self._sample_at(t_ms)
        if not chunk:
            return
        with self._lock:
            run = self._items.get(item_id)
            if run is None:
                previous_end = self._assistant[-1].end if self._assistant else 0
                run = _Run(max(start, previous_end), item_id=item_id)
                self._assistant.append(run)
                self._items[item_id] = run
            run.add(chunk)

    def truncate(self, item_id: str, played_ms: float) -> None:
        """Drop the audio of ``item_id`` after its first ``played_ms`` ms (unknown ids: no-op)."""
        with self._lock:
            run = self._items.get(item_id)
            if run is not None:
                run.cut(round(max(0.0, float(played_ms)) * self.sample_rate / 1000.0))

    # -- reading ------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        """Bytes of audio held (both tracks)."""
        with self._lock:
            return sum(r.nbytes for r in self._user) + sum(r.nbytes for r in self._assistant)

    def __len__(self) -> int:
        """Samples from session start to the end of the last recorded audio."""
        with self._lock:
            return self._length_locked()

    @property
    def duration_ms(self) -> float:
        return len(self) * 1000.0 / self.sample_rate

    def _length_locked(self) -> int:
        return max([0] + [r.end for r in self._user] + [r.end for r in self._assistant])

    # Reading freezes the runs' chunk lists under the lock (cheap: lists of references to
    # immutable bytes) and assembles arrays outside it, so exporting a long session never
    # blocks the session thread that keeps adding audio.

    @staticmethod
    def _freeze(runs: list[_Run]) -> list[tuple[int, list[bytes]]]:
        return [(run.start, [*run.blocks, *run.pending]) for run in runs]

    @staticmethod
    def _assemble(frozen: list[tuple[int, list[bytes]]], length: int) -> np.ndarray:
        """The track as int16 samples ``[0, length)``; a later run overwrites an earlier one
        where they overlap (only possible on the assistant track if an item began before the
        previous one was cut)."""
        out = np.zeros(length, dtype=np.int16)
        for start, chunks in frozen:
            position = start
            for chunk in chunks:
                n = min(len(chunk) // 2, length - position)
                if n <= 0:
                    break
                out[position:position + n] = np.frombuffer(chunk, dtype="<i2", count=n)
                position += len(chunk) // 2
        return out

    def tracks_pcm16(self) -> tuple[np.ndarray, np.ndarray]:
        """``(user, assistant)`` as int16 arrays of equal length (session duration)."""
        with self._lock:
            length = self._length_locked()
            user, assistant = self._freeze(self._user), self._freeze(self._assistant)
        return self._assemble(user, length), self._assemble(assistant, length)

    def user_pcm16(self, start_ms: float, end_ms: float) -> np.ndarray:
        """The user track's int16 samples from ``start_ms`` to ``end_ms`` (session clock; zeros
        where nothing was recorded). Costs only the runs that overlap the window."""
        first, last = self._sample_at(start_ms), self._sample_at(end_ms)
        length = max(0, last - first)
        with self._lock:
            frozen = [(run.start - first, [*run.blocks, *run.pending]) for run in self._user
                      if run.end > first and run.start < last]
        out = np.zeros(length, dtype=np.int16)
        for start, chunks in frozen:
            position = start
            for chunk in chunks:
                n = len(chunk) // 2
                lo, hi = max(position, 0), min(position + n, length)
                if hi > lo:
                    out[lo:hi] = np.frombuffer(chunk, dtype="<i2", count=n)[lo - position:hi - position]
                position += n
                if position >= length:
                    break
        return out

    def _track_float32(self, runs: list[_Run]) -> np.ndarray:
        with self._lock:
            length, frozen = self._length_locked(), self._freeze(runs)
        return pcm16_to_float32(self._assemble(frozen, length))

    @property
    def user(self) -> np.ndarray:
        """Microphone track, float32 in [-1, 1), sample 0 at session start."""
        return self._track_float32(self._user)

    @property
    def assistant(self) -> np.ndarray:
        """Assistant track (as played, truncations applied), float32, same length as ``user``."""
        return self._track_float32(self._assistant)

    def to_wav(self, path: str | Path) -> Path:
        """Write a stereo PCM16 WAV: user left, assistant right (interleaved 10 s at a time,
        so no stereo copy of a long session is held in memory)."""
        import soundfile as sf

        user, assistant = self.tracks_pcm16()
        path = Path(path)
        block = 10 * self.sample_rate
        with sf.SoundFile(str(path), "w", samplerate=self.sample_rate, channels=2, subtype="PCM_16") as f:
            for start in range(0, len(user), block):
                f.write(np.stack([user[start:start + block], assistant[start:start + block]], axis=1))
        return path
