"""Audio helpers (conversions, resampling, WAV) and the two-track recorder."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rtvoice_widget.audio import (
    SAMPLE_RATE,
    Recorder,
    float32_to_pcm16,
    pcm16_to_float32,
    read_wav,
    resample,
    to_pcm16,
    write_wav,
)

int16_arrays = hnp.arrays(np.int16, st.integers(1, 2000))
finite_floats = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False, width=32)


def tone(ms: float, rate: int = SAMPLE_RATE, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * ms / 1000)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def pcm(ms: float, value: int) -> bytes:
    return np.full(int(SAMPLE_RATE * ms / 1000), value, dtype="<i2").tobytes()


# -- conversions -----------------------------------------------------------------------

@given(int16_arrays)
def test_int16_float_round_trip_is_exact(x):
    f = pcm16_to_float32(x.tobytes())
    assert f.dtype == np.float32 and np.all(np.abs(f) <= 1.0)
    assert float32_to_pcm16(f) == x.astype("<i2").tobytes()
    assert np.array_equal(pcm16_to_float32(x), f)


@given(hnp.arrays(np.float32, st.integers(1, 500), elements=finite_floats))
def test_float_to_pcm16_clips_and_rounds(x):
    out = np.frombuffer(float32_to_pcm16(x), dtype="<i2")
    expected = np.clip(np.rint(x.astype(np.float64) * 32768), -32768, 32767)
    assert np.array_equal(out, expected)
    assert np.all(out[x >= 1.0] == 32767) and np.all(out[x <= -1.0] == -32768)


@given(int16_arrays)
def test_to_pcm16_at_24k_is_identity_for_int16(x):
    assert to_pcm16(x) == x.tobytes()
    assert to_pcm16(x.tobytes()) == x.tobytes()
    assert to_pcm16(bytearray(x.tobytes())) == x.tobytes()


@settings(deadline=None, max_examples=40)
@given(st.integers(100, 20000), st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000]),
       st.sampled_from([np.int16, np.float32, np.float64]))
def test_resampling_length(n, rate, dtype):
    x = (np.sin(np.arange(n) / 7.0) * (0.5 if dtype != np.int16 else 16000)).astype(dtype)
    out = to_pcm16(x, sample_rate=rate)
    assert abs(len(out) // 2 - n * SAMPLE_RATE / rate) <= 1
    assert len(resample(x, rate, SAMPLE_RATE)) == len(out) // 2
    assert resample(x, rate, SAMPLE_RATE).dtype == dtype


def test_resampling_keeps_the_pitch():
    x = tone(1000, rate=16000, freq=1000.0)
    y = pcm16_to_float32(to_pcm16(x, sample_rate=16000))
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(y)
    assert abs(peak_hz - 1000.0) <= 2.0
    assert abs(np.abs(y[2400:-2400]).max() - 0.5) < 0.01  # no gain change


def test_stereo_and_column_inputs_become_mono():
    left = np.full(100, 0.5, dtype=np.float32)
    right = np.full(100, -0.25, dtype=np.float32)
    out = np.frombuffer(to_pcm16(np.stack([left, right], axis=1)), dtype="<i2")
    assert np.all(out == round(0.125 * 32768))
    ints = np.stack([np.full(10, 32767, np.int16), np.full(10, 32767, np.int16)], axis=1)
    assert np.all(np.frombuffer(to_pcm16(ints), dtype="<i2") == 32767)  # no overflow
    column = left[:, None]
    assert to_pcm16(column) == to_pcm16(left)


def test_big_endian_arrays_are_read_by_value():
    x = np.array([1, -2, 300], dtype=">i2")
    assert to_pcm16(x) == np.array([1, -2, 300], dtype="<i2").tobytes()
    assert to_pcm16(np.array([0.5], dtype=">f4")) == to_pcm16(np.array([0.5], dtype=np.float32))


def test_float_input_is_clipped():
    out = np.frombuffer(to_pcm16(np.array([2.0, -3.0, 0.0], dtype=np.float64)), dtype="<i2")
    assert out.tolist() == [32767, -32768, 0]


@pytest.mark.parametrize(
    "value, error, message",
    [
        (np.zeros(10, dtype=np.int32), TypeError, "int32"),
        (np.zeros(10, dtype=np.complex64), TypeError, "complex64"),
        ([0.1, 0.2], TypeError, "list"),
        ("abc", TypeError, "str"),
        (np.array([0.1, np.nan], dtype=np.float32), ValueError, "NaN"),
        (np.array([np.inf], dtype=np.float64), ValueError, "NaN or infinite"),
        (np.zeros(0, dtype=np.float32), ValueError, "empty"),
        (b"", ValueError, "empty"),
        (b"\x00\x01\x02", ValueError, "even length"),
        (np.zeros((10, 3), dtype=np.float32), ValueError, "shape"),
        (np.zeros((2, 2, 2), dtype=np.float32), ValueError, "shape"),
    ],
)
def test_to_pcm16_rejects_bad_input_clearly(value, error, message):
    with pytest.raises(error, match=message):
        to_pcm16(value)


@pytest.mark.parametrize("rate, error", [(0, ValueError), (-16000, ValueError), (16000.5, ValueError),
                                         ("16k", TypeError), (None, TypeError), (float("nan"), ValueError),
                                         (True, TypeError), (np.int64(-5), ValueError)])
def test_to_pcm16_rejects_bad_rates(rate, error):
    with pytest.raises(error, match="sample_rate"):
        to_pcm16(np.zeros(10, dtype=np.float32), sample_rate=rate)


@pytest.mark.parametrize("rate", [24000, np.int32(24000), 24000.0, np.float64(24000.0)])
def test_every_kind_of_whole_rate_is_accepted_alike(rate):
    # Plain ints take the fast path (every mic frame); numpy and float rates the full check.
    x = (np.sin(np.arange(480) / 7.0) * 0.5).astype(np.float32)
    assert to_pcm16(x, sample_rate=rate) == to_pcm16(x, sample_rate=24000)


def test_other_helpers_reject_wrong_dtypes():
    with pytest.raises(TypeError):
        float32_to_pcm16(np.zeros(3, dtype=np.int16))
    with pytest.raises(ValueError):
        float32_to_pcm16(np.array([np.nan], dtype=np.float32))
    with pytest.raises(TypeError):
        pcm16_to_float32(np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError):
        resample(np.zeros(3, dtype=np.int64), 16000, 24000)


# -- WAV -------------------------------------------------------------------------------

@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 500), st.sampled_from([1, 2]))),
       st.sampled_from([8000, 24000, 44100]))
@settings(deadline=None, max_examples=20)
def test_wav_round_trip(tmp_path_factory, x, rate):
    path = tmp_path_factory.mktemp("wav") / "a.wav"
    data = x[:, 0] if x.shape[1] == 1 else x
    write_wav(path, data, rate)
    back, back_rate = read_wav(path, dtype="int16")
    assert back_rate == rate and np.array_equal(back, data)
    as_float, _ = read_wav(path)
    assert as_float.dtype == np.float32 and np.array_equal(float32_to_pcm16(as_float.ravel()), data.tobytes())


def test_write_wav_from_bytes_and_floats(tmp_path):
    write_wav(tmp_path / "b.wav", pcm(10, 1000))
    back, rate = read_wav(tmp_path / "b.wav", dtype="int16")
    assert rate == SAMPLE_RATE and np.all(back == 1000) and len(back) == 240
    write_wav(tmp_path / "f.wav", np.array([2.0, -2.0], dtype=np.float32))
    assert read_wav(tmp_path / "f.wav", dtype="int16")[0].tolist() == [32767, -32768]
    with pytest.raises(TypeError):
        write_wav(tmp_path / "x.wav", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError):
        write_wav(tmp_path / "x.wav", np.array([np.nan], dtype=np.float32))


# -- recorder --------------------------------------------------------------------------

def test_user_chunks_follow_each_other_and_gaps_become_silence():
    rec = Recorder()
    rec.add_user(pcm(20, 100), 1000.0)
    rec.add_user(pcm(20, 200), 1021.0)   # 1 ms stamp jitter: still contiguous
    rec.add_user(pcm(20, 300), 1500.0)   # a real gap
    user = np.frombuffer(float32_to_pcm16(rec.user), dtype="<i2")
    assert len(user) == int(1.52 * SAMPLE_RATE) == len(rec)
    assert np.all(user[:24000] == 0)
    assert np.all(user[24000:24480] == 100) and np.all(user[24480:24960] == 200)
    assert np.all(user[24960:36000] == 0) and np.all(user[36000:] == 300)
    assert rec.duration_ms == pytest.approx(1520.0)


def test_a_late_burst_of_mic_frames_is_kept_whole_and_does_not_leave_a_lag():
    rec = Recorder()
    frames = [np.full(480, k % 30000 + 1, dtype=np.int16).tobytes() for k in range(450)]
    for k in range(50):  # 1 s live, stamped as captured
        rec.add_user(frames[k], k * 20.0)
    for k in range(50, 250):  # a busy cell: 4 s of frames arrive at once, all stamped 5000 ms
        rec.add_user(frames[k], 5000.0)
    for k in range(250, 450):  # live again, honest stamps
        rec.add_user(frames[k], k * 20.0 + 3.0)
    user, _ = rec.tracks_pcm16()
    assert np.array_equal(user[user != 0], np.frombuffer(b"".join(frames), dtype="<i2"))  # nothing lost
    # the audio after the burst sits where its stamps say (within gap_ms), not 4 s late
    first_live = int(np.flatnonzero(user == 251)[0])
    assert abs(first_live / 24 - (250 * 20 + 3)) <= rec.gap_ms
    assert len(rec) / 24 <= 450 * 20 + 3 + rec.gap_ms


def test_a_burst_never_moves_over_earlier_audio():
    rec = Recorder()
    rec.add_user(np.full(24000, 5, np.int16).tobytes(), 0.0)  # 0-1000 ms
    for k in range(100):  # 2 s arriving at 1200 ms: cannot all fit before its stamps
        rec.add_user(np.full(480, 9, np.int16).tobytes(), 1200.0)
    user, _ = rec.tracks_pcm16()
    assert np.all(user[:24000] == 5) and np.count_nonzero(user == 9) == 48000
    assert np.all(user[24000:72000] == 9)  # moved back right up to the earlier audio, no further


def test_assistant_items_play_contiguously_from_their_first_delta():
    rec = Recorder()
    for k in range(5):  # 500 ms of audio arriving within 50 ms
        rec.add_assistant("item_a", pcm(100, 1000), 2000.0 + 10 * k)
    rec.add_assistant("item_b", pcm(100, 2000), 2100.0)  # queued behind item_a
    _, assistant = rec.tracks_pcm16()
    start = 2 * SAMPLE_RATE
    assert np.all(assistant[:start] == 0)
    assert np.all(assistant[start:start + 12000] == 1000)
    assert np.all(assistant[start + 12000:start + 14400] == 2000)
    assert len(assistant) == start + 14400


def test_truncation_cuts_the_item_at_what_was_played():
    rec = Recorder()
    rec.add_assistant("item_a", pcm(1000, 1000), 0.0)
    rec.add_user(pcm(20, 5), 300.0)
    rec.truncate("item_a", 250.0)
    rec.add_assistant("item_b", pcm(100, 2000), 400.0)
    rec.truncate("unknown", 10.0)  # no-op
    user, assistant = rec.tracks_pcm16()
    assert np.all(assistant[:6000] == 1000)
    assert np.all(assistant[6000:9600] == 0)
    assert np.all(assistant[9600:12000] == 2000)
    assert len(user) == len(assistant) == 12000
    assert rec.nbytes == (480 + 6000 + 2400) * 2


def test_to_wav_is_stereo_user_left_assistant_right(tmp_path):
    rec = Recorder()
    rec.add_user(pcm(100, 111), 0.0)
    rec.add_assistant("a", pcm(50, -222), 200.0)
    data, rate = read_wav(rec.to_wav(tmp_path / "rec.wav"), dtype="int16")
    assert rate == SAMPLE_RATE and data.shape == (int(0.25 * SAMPLE_RATE), 2)
    assert np.all(data[:2400, 0] == 111) and np.all(data[2400:, 0] == 0)
    assert np.all(data[:4800, 1] == 0) and np.all(data[4800:, 1] == -222)
    assert np.array_equal(pcm16_to_float32(data[:, 0].copy()), rec.user)
    assert np.array_equal(pcm16_to_float32(data[:, 1].copy()), rec.assistant)


def test_empty_recorder_and_bad_chunks():
    rec = Recorder()
    assert len(rec) == 0 and rec.user.shape == (0,) and rec.assistant.dtype == np.float32
    with pytest.raises(ValueError, match="even"):
        rec.add_user(b"\x00", 0.0)
    with pytest.raises(TypeError):
        rec.add_user(np.zeros(4, dtype=np.float32), 0.0)
    with pytest.raises(ValueError, match="t_ms"):
        rec.add_assistant("a", pcm(10, 1), float("nan"))
    assert rec.nbytes == 0


def test_recorder_accepts_int16_arrays_and_concurrent_writers():
    rec = Recorder()
    frame = np.full(480, 7, dtype=np.int16)

    def mic():
        for k in range(500):
            rec.add_user(frame, k * 20.0)

    def speaker():
        for k in range(500):
            rec.add_assistant("item", frame, 0.0)

    seen = []

    def reader():  # reads while both sides write: every snapshot is a consistent prefix
        for _ in range(20):
            user, assistant = rec.tracks_pcm16()
            prefixes = all(np.all(track[: np.count_nonzero(track)] == 7) for track in (user, assistant))
            seen.append(len(user) == len(assistant) and prefixes)

    threads = [threading.Thread(target=mic), threading.Thread(target=speaker), threading.Thread(target=reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(seen) and len(seen) == 20
    user, assistant = rec.tracks_pcm16()
    assert len(user) == 500 * 480 and np.all(user == 7) and np.all(assistant == 7)
    assert rec.nbytes == 2 * 500 * 480 * 2


def test_recorder_memory_stays_close_to_raw_audio():
    frame = np.random.default_rng(0).integers(-3000, 3000, 480, dtype=np.int16).tobytes()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        rec = Recorder()
        for k in range(3000):  # 60 s of 20 ms mic frames, fresh bytes objects like a socket gives
            rec.add_user(bytes(bytearray(frame)), k * 20.0)
            if k % 5 == 0:
                rec.add_assistant(f"item{k // 500}", bytes(bytearray(frame * 5)), k * 20.0)
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    raw = rec.nbytes
    assert raw == 3000 * 960 * 2
    assert used <= 1.15 * raw + 1_000_000


def test_to_wav_of_a_long_session_matches_the_tracks_across_block_boundaries(tmp_path):
    rec = Recorder()
    ramp = (np.arange(25 * SAMPLE_RATE) % 2000 - 1000).astype(np.int16)
    for k in range(0, ramp.size, 480):  # 25 s of mic frames
        rec.add_user(ramp[k:k + 480].tobytes(), k / 24.0)
    rec.add_assistant("a", np.full(SAMPLE_RATE, 77, np.int16).tobytes(), 9500.0)  # crosses 10 s
    rec.add_assistant("b", np.full(SAMPLE_RATE, 88, np.int16).tobytes(), 26_000.0)  # after the user
    data, _ = read_wav(rec.to_wav(tmp_path / "long.wav"), dtype="int16")
    user, assistant = rec.tracks_pcm16()
    assert data.shape == (27 * SAMPLE_RATE, 2)
    assert np.array_equal(data[:, 0], user) and np.array_equal(data[:, 1], assistant)
    assert np.array_equal(user[: ramp.size], ramp)
    assert np.all(assistant[228_000:252_000] == 77) and np.all(assistant[624_000:] == 88)
