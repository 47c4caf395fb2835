"""Saved sessions: everything needed to analyse a conversation later, in one folder or archive.

``save_session(session_or_chat, path)`` (what ``chat.save(path)`` calls) writes::

    path/                      (or path.zip: the same files in a zip archive)
      session.json             manifest: format version, sample rate, file names, pruned count
      events.parquet           the event log (``events.jsonl`` when pyarrow is missing),
                               written by EventLog.save(): audio stripped, payload as JSON text
      turns.parquet            the turns table (``turns.jsonl`` without pyarrow)
      transcript.txt           the conversation as text, one line per turn, for humans and grep
      user.wav, assistant.wav  both tracks, mono PCM16 as recorded, aligned on the session clock
      conversation.wav         the same, stereo (user left, assistant right), PCM16: for listening
                               (``audio="flac"``: the three tracks as .flac, smaller)
      config.json              the session config, secrets removed (see :func:`public_config`)

``load_session(path) -> SavedSession`` gives back ``.events`` (the same DataFrame as
``session.events.to_pandas()``: dtypes, categories, time zone), ``.turns``, ``.transcript()``,
``.recording.user/.assistant`` (bit-identical float32 arrays), ``.config``, ``.metrics()``,
``.turn(n)`` (whose ``.audio`` displays as ``IPython.display.Audio``) and the plots of
:mod:`rtvoice_widget.plots` as methods. ``snapshot(session_or_chat)`` gives the same object for
a live session, without files (what ``chat.turn(n)`` and the plots of a live chat can use).

Writing goes to a temporary sibling first and is renamed into place at the end, so a failure
half-way leaves no partial session behind and never touches an existing one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import soundfile

from rtvoice_widget import __version__
from rtvoice_widget.audio import float32_to_pcm16, pcm16_to_float32
from rtvoice_widget.events import EventLog
from rtvoice_widget.pcm import SAMPLE_RATE

__all__ = ["FORMAT", "SavedRecording", "SavedSession", "SavedTurn", "load_session",
           "public_config", "save_session", "snapshot"]

#: Manifest ``format`` value; ``version`` is bumped when the layout changes incompatibly.
FORMAT = "rtvoice-widget-session"
VERSION = 1
MANIFEST = "session.json"

# Key names whose values are secrets wherever they appear in a config (case-insensitive).
_SECRET_KEY = re.compile(r"(api[-_]?key|secret|token|password|authorization|bearer|credential)", re.I)
_REDACTED = "[redacted]"


# -- secrets ---------------------------------------------------------------------------------


def _live_session(source: Any) -> Any:
    # A VoiceChat holds its RealtimeSession as .session (config, endpoint); a session is itself.
    session = getattr(source, "session", None)
    return session if session is not None and hasattr(session, "events") else source


def _endpoint_of(source: Any) -> Any:
    return getattr(_live_session(source), "endpoint", None)


def _secret_values(source: Any) -> set[str]:
    """Secret strings this process knows of, to scrub wherever they appear: the credentials in
    the endpoint's headers (with and without their ``Bearer`` scheme) and the usual
    environment keys."""
    values = {os.environ.get(name) for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
    # Before connect() a session holds its key only among its connection options.
    options = getattr(_live_session(source), "_connect_options", None)
    if isinstance(options, Mapping) and isinstance(options.get("api_key"), str):
        values.add(options["api_key"])
    headers = getattr(_endpoint_of(source), "headers", None) or {}
    for value in headers.values():
        if isinstance(value, str):
            values.update((value, value.split()[-1] if value.split() else value))
    # Very short strings are not keys; scrubbing them would mangle ordinary text.
    return {v for v in values if v and len(v) >= 8}


def _strip_url(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, _REDACTED if _SECRET_KEY.search(k) else v) for k, v in parse_qsl(parts.query)]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="[]"), ""))


def _scrub(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, Mapping):
        return {str(k): (_REDACTED if _SECRET_KEY.search(str(k)) else _scrub(v, secrets))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, str):
        if "://" in value:
            value = _strip_url(value)
        for secret in secrets:
            value = value.replace(secret, _REDACTED)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


def public_config(source: Any) -> dict[str, Any]:
    """The session's configuration as JSON-ready data, with every secret removed.

    ``session``: ``source.config.to_session()`` (the GA session object; a plain mapping is taken
    as is); ``backend``, ``endpoint`` (the endpoint's redacted label, never its URL or headers)
    and ``model`` when the source is connected or was. Then removed: values under key names that
    look secret (``api_key``, ``token``, ``authorization``, ...), URL credentials and secret
    query parameters, and every occurrence of the endpoint's credentials or of
    ``OPENAI_API_KEY`` / ``AZURE_OPENAI_API_KEY`` in any string.
    """
    config = getattr(_live_session(source), "config", None)
    if hasattr(config, "to_session"):
        session = config.to_session()
    elif isinstance(config, Mapping):
        session = dict(config)
    else:
        session = None
    data: dict[str, Any] = {"session": session, "model": getattr(config, "model", None)}
    endpoint = _endpoint_of(source)
    if endpoint is not None:
        data.update(backend=getattr(endpoint, "backend", None), endpoint=getattr(endpoint, "label", None),
                    model=getattr(endpoint, "model", None) or data["model"])
    return _scrub(data, _secret_values(source))


# -- tables ----------------------------------------------------------------------------------


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _write_table(df: pd.DataFrame, folder: Path, stem: str, parquet: bool) -> str:
    if parquet:
        name = f"{stem}.parquet"
        df.to_parquet(folder / name, index=False)
        return name
    # JSON lines of records, written by the json module: its float repr round-trips exactly
    # (pandas' to_json keeps at most 15 digits). Dtypes are restored from the manifest.
    name = f"{stem}.jsonl"
    with (folder / name).open("w", encoding="utf-8") as out:
        for record in df.to_dict(orient="records"):
            out.write(json.dumps({str(k): _json_value(v) for k, v in record.items()},
                                 ensure_ascii=False, allow_nan=False) + "\n")
    return name


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else repr(value)  # "inf" / "-inf", read back by astype
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if value is pd.NaT:
        return None
    return value


def _dtypes_of(df: pd.DataFrame) -> dict[str, Any]:
    return {str(c): ({"category": [str(x) for x in t.categories], "ordered": bool(t.ordered)}
                     if isinstance(t, pd.CategoricalDtype) else str(t)) for c, t in df.dtypes.items()}


def _read_table(path: Path, dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """Read a table and give each column the dtype it was saved with (``dtypes``)."""
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        with path.open(encoding="utf-8") as lines:
            records = [json.loads(line) for line in lines if line.strip()]
        df = pd.DataFrame.from_records(records, columns=list(dtypes) or None)
    for column, dtype in dtypes.items():
        if column not in df.columns:
            continue
        if isinstance(dtype, Mapping):
            df[column] = df[column].astype(pd.CategoricalDtype(dtype["category"], dtype["ordered"]))
        elif dtype == "object":
            # Readers give text columns the string dtype (pandas >= 3) or NaN for missing
            # values; the live table holds Python objects with None.
            values = df[column].astype(object)
            df[column] = values.where(df[column].notna(), None)
        elif dtype.startswith("datetime64"):
            df[column] = pd.to_datetime(df[column], utc="UTC" in dtype).astype(dtype)
        elif str(df[column].dtype) != dtype:
            df[column] = df[column].astype(dtype)
    return df


# -- recording -------------------------------------------------------------------------------


class SavedRecording:
    """Both audio tracks of a saved session, aligned on the session clock (sample ``i`` is at
    ``i / sample_rate`` seconds after session start), like :class:`rtvoice_widget.audio.Recorder`:
    ``user`` / ``assistant`` are float32 in [-1, 1) (PCM16 / 32768), ``tracks_pcm16()`` the int16
    samples as stored."""

    def __init__(self, user_pcm16: np.ndarray, assistant_pcm16: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        self._user = np.ascontiguousarray(user_pcm16, dtype=np.int16)
        self._assistant = np.ascontiguousarray(assistant_pcm16, dtype=np.int16)
        self.sample_rate = int(sample_rate)

    def __repr__(self) -> str:
        return f"<SavedRecording {self.duration_s:.1f} s at {self.sample_rate} Hz>"

    def tracks_pcm16(self) -> tuple[np.ndarray, np.ndarray]:
        return self._user, self._assistant

    @cached_property
    def user(self) -> np.ndarray:
        return pcm16_to_float32(self._user)

    @cached_property
    def assistant(self) -> np.ndarray:
        return pcm16_to_float32(self._assistant)

    @property
    def duration_s(self) -> float:
        return max(len(self._user), len(self._assistant)) / self.sample_rate

    def stereo_pcm16(self) -> np.ndarray:
        """``(n, 2)`` int16: user left, assistant right, the shorter one padded with silence."""
        n = max(len(self._user), len(self._assistant))
        out = np.zeros((n, 2), dtype=np.int16)
        out[: len(self._user), 0] = self._user
        out[: len(self._assistant), 1] = self._assistant
        return out

    def to_wav(self, path: str | Path) -> Path:
        """Write the stereo conversation (user left, assistant right) as PCM16: a WAV, or a
        FLAC when ``path`` ends in ``.flac``."""
        path = Path(path)
        soundfile.write(path, self.stereo_pcm16(), self.sample_rate, subtype="PCM_16")
        return path


def _recording_of(source: Any) -> SavedRecording:
    """The source's tracks as PCM16: a ``Recorder`` (or ``SavedRecording``) gives its int16
    samples as they are; other float tracks are quantised (exact for PCM16-derived floats)."""
    recording = getattr(source, "recording", None)
    if recording is None:
        raise TypeError(f"{type(source).__name__} has no .recording to save")
    if hasattr(recording, "tracks_pcm16"):
        user, assistant = recording.tracks_pcm16()
    else:
        user, assistant = (np.frombuffer(float32_to_pcm16(np.asarray(t, dtype=np.float32)), dtype="<i2")
                           for t in (recording.user, recording.assistant))
    for name, track in (("user", user), ("assistant", assistant)):
        if np.ndim(track) != 1:
            raise ValueError(f"recording.{name} must be mono (1-D), got shape {np.shape(track)}")
    return SavedRecording(user, assistant, int(getattr(recording, "sample_rate", SAMPLE_RATE)))


def _read_track(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(path, dtype="int16", always_2d=False)
    return samples, int(rate)


# -- save ------------------------------------------------------------------------------------


def _event_log_of(source: Any) -> EventLog:
    log = source._log if isinstance(source, SavedSession) else getattr(source, "events", None)
    if not isinstance(log, EventLog):
        raise TypeError(
            f"save_session() needs a RealtimeSession, VoiceChat or SavedSession (anything whose "
            f".events is an EventLog), got {type(source).__name__}")
    return log


def _transcript_text(turns: pd.DataFrame) -> str:
    lines = []
    for row in turns.itertuples(index=False):
        role = getattr(row, "role", "?")
        text = getattr(row, "text", None)
        mark = " [interrupted]" if bool(getattr(row, "interrupted", False)) else ""
        started = getattr(row, "started", None)
        when = f"[{started / 1000:8.2f}s] " if isinstance(started, float) and np.isfinite(started) else ""
        lines.append(f"{when}{role}: {text if isinstance(text, str) else ''}{mark}")
    return "\n".join(lines) + ("\n" if lines else "")


def save_session(source: Any, path: str | Path, *, overwrite: bool = False,
                 tables: str | None = None, audio: str = "wav") -> Path:
    """Write the session (events, turns, both audio tracks, public config) to ``path``.

    ``source`` is a ``RealtimeSession``, a ``VoiceChat`` or a :class:`SavedSession`: anything
    with ``.events`` (an ``EventLog``) and ``.recording`` (``.user``/``.assistant`` float32).
    ``path`` ending in ``.zip`` writes an archive, anything else a folder. An existing ``path``
    raises ``FileExistsError`` unless ``overwrite=True``; it is replaced only once the new
    session is completely written. ``tables`` picks the table format: ``"parquet"`` (the
    default when pyarrow is installed) or ``"json"`` (events and turns as JSON lines). Returns
    the path written. ``audio="flac"`` stores the three tracks as FLAC instead of WAV:
    lossless too, and several times smaller for speech with pauses (for sessions kept in a
    repository).
    """
    path = Path(path)
    if tables is None:
        tables = "parquet" if _has_pyarrow() else "json"
    if tables not in ("parquet", "json"):
        raise ValueError(f"tables must be 'parquet' or 'json', got {tables!r}")
    if audio not in ("wav", "flac"):
        raise ValueError(f"audio must be 'wav' or 'flac', got {audio!r}")
    log = _event_log_of(source)
    recording = _recording_of(source)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if not _is_saved_session(path):
            raise FileExistsError(f"{path} exists and is not a saved session: not replacing it")
    path.parent.mkdir(parents=True, exist_ok=True)

    parquet = tables == "parquet"
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        folder = Path(tmp) / "session"
        folder.mkdir()
        events_name = "events.parquet" if parquet else "events.jsonl"
        log.save(folder / events_name)
        if isinstance(source, SavedSession):
            turns = source.turns
        else:
            from rtvoice_widget.turn_table import turns_table

            turns = turns_table(log.to_pandas(), recording.user, recording.sample_rate)
        turns_name = _write_table(turns, folder, "turns", parquet)
        (folder / "transcript.txt").write_text(_transcript_text(turns), encoding="utf-8")
        tracks = {name: f"{name}.{audio}" for name in ("user", "assistant", "conversation")}
        user, assistant = recording.tracks_pcm16()
        soundfile.write(folder / tracks["user"], user, recording.sample_rate, subtype="PCM_16")
        soundfile.write(folder / tracks["assistant"], assistant, recording.sample_rate, subtype="PCM_16")
        recording.to_wav(folder / tracks["conversation"])
        config = source.config if isinstance(source, SavedSession) else public_config(source)
        (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False),
                                            encoding="utf-8")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "rtvoice_widget": __version__,
            "saved_at": datetime.now(timezone.utc).isoformat(),
            "events": events_name,
            "turns": turns_name,
            "turns_dtypes": _dtypes_of(turns),
            "audio": tracks,
            "sample_rate": recording.sample_rate,
            "pruned": source.manifest.get("pruned", 0) if isinstance(source, SavedSession) else log.pruned,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

        if path.suffix.lower() == ".zip":
            staged = Path(tmp) / "session.zip"
            with zipfile.ZipFile(staged, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.iterdir()):
                    archive.write(file, file.name)
        else:
            staged = folder
        # The old session moves into the temporary folder (deleted with it) only now, and
        # comes back if the new one cannot take its place.
        previous = Path(tmp) / "previous"
        if path.exists():
            os.replace(path, previous)
        try:
            os.replace(staged, path)
        except OSError:
            if previous.exists():
                os.replace(previous, path)
            raise
    return path


def _is_saved_session(path: Path) -> bool:
    try:
        if path.is_dir():
            text = (path / MANIFEST).read_text(encoding="utf-8")
        else:
            with zipfile.ZipFile(path) as archive:
                text = archive.read(MANIFEST).decode("utf-8")
        return json.loads(text).get("format") == FORMAT
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False


# -- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedTurn:
    """One row of the turns table, with its audio cut from the matching track."""

    index: int
    row: pd.Series
    samples: np.ndarray
    sample_rate: int

    def __getattr__(self, name: str) -> Any:
        # Columns read as attributes (turn.text, turn.role, turn.interrupted, ...).
        row = self.__dict__.get("row")
        if row is not None and name in row.index:
            return row[name]
        raise AttributeError(f"turn has no attribute or column {name!r}")

    @property
    def audio(self):
        """The turn's audio as ``IPython.display.Audio`` (renders a player in a notebook)."""
        from IPython.display import Audio

        if not len(self.samples):
            raise ValueError(f"turn {self.index} has no audio in the recording")
        return Audio(self.samples, rate=self.sample_rate)

    def _repr_html_(self) -> str:
        return self.row.to_frame(f"turn {self.index}")._repr_html_()


class SavedSession:
    """A session read back by :func:`load_session`: DataFrames, arrays and plots, no connection."""

    def __init__(self, log: EventLog, events: pd.DataFrame, turns: pd.DataFrame,
                 recording: SavedRecording, config: dict[str, Any], manifest: dict[str, Any],
                 path: Path | None) -> None:
        self._log = log
        self.events = events
        self.turns = turns
        self.recording = recording
        self.config = config
        self.manifest = manifest
        self.path = path

    def __repr__(self) -> str:
        where = "in memory" if self.path is None else repr(str(self.path))
        return (f"<SavedSession {where}: {len(self.events)} events, {len(self.turns)} "
                f"turns, {self.recording.duration_s:.1f} s audio>")

    def transcript(self) -> pd.DataFrame:
        """The turns table (one row per user or assistant turn), as ``chat.transcript()``."""
        return self.turns

    def metrics(self) -> dict[str, Any]:
        """Counts and latency percentiles of the conversation.

        Keys: ``events``, ``user_turns``, ``assistant_turns``, ``tool_calls``,
        ``interruptions``, ``audio_sent_s`` / ``audio_received_s`` (audio carried by client /
        server events), ``duration_s`` (the recording), ``events_by_category``, and
        ``latency``: per latency column of the turns table
        (:data:`rtvoice_widget.turn_table.LATENCY_COLUMNS`) a dict of ``count``, ``mean``, ``p50``,
        ``p90``, ``max`` in ms (NaN when no turn has it).
        """
        from rtvoice_widget.turn_table import latency_summary

        roles = self.turns["role"].value_counts()
        assistant = self.turns["role"] == "assistant"
        carried = self.events.groupby("source", observed=False)["audio_ms"].sum()
        return {
            "events": len(self.events),
            "user_turns": int(roles.get("user", 0)),
            "assistant_turns": int(roles.get("assistant", 0)),
            "tool_calls": int(roles.get("function_call", 0)),
            "interruptions": int(self.turns.loc[assistant, "interrupted"].sum()),
            "audio_sent_s": float(carried.get("client", 0.0)) / 1000,
            "audio_received_s": float(carried.get("server", 0.0)) / 1000,
            "duration_s": self.recording.duration_s,
            "events_by_category": {str(k): int(v) for k, v in
                                   self.events["category"].value_counts(sort=False).items()},
            "latency": latency_summary(self.turns).to_dict(orient="index"),
        }

    def turn(self, n: int) -> SavedTurn:
        """Turn ``n`` (0-based row of :attr:`turns`, negative counts from the end), with its
        audio: the user's speech as the server's VAD delimited it, or the assistant's reply as
        far as it was heard (the same spans the timeline draws)."""
        from rtvoice_widget.spans import assistant_speech_spans, user_speech_spans

        count = len(self.turns)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"turn number must be an int, got {n!r}")
        if not -count <= n < count:
            raise IndexError(f"turn {n} out of range: the session has {count} turns")
        row = self.turns.iloc[int(n)]
        role = row.get("role")
        spans = (user_speech_spans(self.events) if role == "user"
                 else assistant_speech_spans(self.events) if role == "assistant" else None)
        track = self.recording.user if role == "user" else self.recording.assistant
        rate = self.recording.sample_rate
        samples = np.zeros(0, dtype=np.float32)
        if spans is not None:
            match = spans[spans["item_id"] == row.get("item_id")]
            if len(match):
                start, end = float(match["start_ms"].iloc[0]), float(match["end_ms"].iloc[0])
                samples = track[max(0, round(start * rate / 1000)): max(0, round(end * rate / 1000))]
        return SavedTurn(int(n) % count, row, samples, rate)

    def replay(self, **options: Any) -> "SavedSession":
        """Say this conversation's user turns again in a new session (``config=``,
        ``backend=``, ``speed=``, ...) and return that conversation: see
        :func:`rtvoice_widget.replay.replay`."""
        from rtvoice_widget.replay import replay

        return replay(self, **options)

    # Plots, as methods; each returns a matplotlib Figure and shows nothing by itself.

    def plot_timeline(self, **kwargs: Any):
        from rtvoice_widget.plots import timeline

        return timeline(self.events, self.recording.user, self.recording.assistant,
                        sample_rate=self.recording.sample_rate, **kwargs)

    def plot_latency(self, **kwargs: Any):
        from rtvoice_widget.plots import latency_distribution

        return latency_distribution(self.turns, **kwargs)

    def plot_event_counts(self, **kwargs: Any):
        from rtvoice_widget.plots import event_counts

        return event_counts(self.events, **kwargs)


def _load_folder(folder: Path, origin: Path) -> SavedSession:
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{origin} is not a saved rtvoice-widget session (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{origin}: {MANIFEST} is not an rtvoice-widget session manifest")
    if manifest.get("version", 0) > VERSION:
        raise ValueError(f"{origin} was saved by a newer rtvoice-widget (format version "
                         f"{manifest['version']}); this one reads up to {VERSION}")
    try:
        events_file, turns_file, audio = manifest["events"], manifest["turns"], manifest["audio"]
        user_file, assistant_file = audio["user"], audio["assistant"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{origin}: {MANIFEST} lacks the entry {exc}") from None
    log = EventLog.load(folder / events_file)
    events = log.to_pandas()
    events.attrs["pruned"] = manifest.get("pruned", 0)
    turns = _read_table(folder / turns_file, manifest.get("turns_dtypes", {}))
    user, rate = _read_track(folder / user_file)
    assistant, _ = _read_track(folder / assistant_file)
    from rtvoice_widget.turn_table import TURN_COLUMNS, turns_table

    if not set(TURN_COLUMNS) <= set(turns.columns):
        # Saved by a version whose turns table had fewer columns: the table is derived from the
        # events and the user's audio, both saved, so rebuilding it gives today's columns.
        turns = turns_table(events, user, rate)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return SavedSession(log, events, turns, SavedRecording(user, assistant, rate), config,
                        manifest, origin)


def snapshot(source: Any) -> SavedSession:
    """A live ``RealtimeSession`` / ``VoiceChat`` as a :class:`SavedSession`, in memory: the
    same tables, ``turn(n).audio``, metrics and plots, without writing files (``path`` is
    ``None``). It holds the data as of the call; take a new one to see later events."""
    log = _event_log_of(source)
    recording = _recording_of(source)
    events = log.to_pandas()
    from rtvoice_widget.turn_table import turns_table

    return SavedSession(log, events, turns_table(events, recording.user, recording.sample_rate), recording,
                        public_config(source),
                        {"pruned": log.pruned}, None)


def load_session(path: str | Path) -> SavedSession:
    """Read a session written by :func:`save_session` (a folder or a ``.zip`` archive)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved session at {path}")
    if path.is_dir():
        return _load_folder(path, path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is neither a saved session folder nor a .zip archive")
    with tempfile.TemporaryDirectory(prefix="rtvoice-session-") as tmp, zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            # Only flat member names: an archive must not write outside the temporary folder.
            if Path(name).name != name:
                raise ValueError(f"{path}: unexpected member {name!r} in a session archive")
        archive.extractall(tmp)
        return _load_folder(Path(tmp), path)
