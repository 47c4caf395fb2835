"""Full duplex on speakers, on a real acoustic path (issue 15).

The widget's real front end runs in Chromium on PulseAudio devices whose microphone hears the
speaker (``ECHO_DB`` -6: a laptop's speaker next to its mic) plus the user's voice, played
into the mic bus; the kernel side is a real VoiceChat on the real local server (Silero VAD,
Whisper-base, the echo LLM, espeak-ng). No fake-device flags. See tests/duplex_rig.py.
Measurements (timings, ERLE, WER over 20 turns) are in bench/bench_duplex.py; these tests
assert behaviour only.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest

from duplex_rig import DuplexChat, PulseRig, speech_wav, wait
from widget_harness.bridge import BrowserBridge, serve_static

pytestmark = pytest.mark.browser

# About 6 s of espeak-ng speech once the echo LLM says "You said: ...".
LONG = ("the quick brown fox jumps over the lazy dog while seven tired sailors row their small "
        "boat slowly across the quiet harbour at dawn")
USER = "stop please, tell me about the trains to Boston instead"


@pytest.fixture(scope="module")
def local_server():
    from rtvoice_widget.server import LocalRealtimeServer
    from rtvoice_widget.server.engines import load_engines

    engines = load_engines(vad="silero", asr="whisper-base", llm="echo", tts="espeak")
    with LocalRealtimeServer(engines=engines, progress=None) as server:
        yield server


@pytest.fixture(scope="module")
def user_wav(tmp_path_factory):
    return speech_wav(USER, tmp_path_factory.mktemp("user") / "user.wav", voice="en-gb+f3")


@contextmanager
def duplex_on_speakers(tmp_path, local_server, playwright_driver, **launch):
    """The widget opened in Chromium on the rig (speaker into mic at -6 dB): ``(rig, duplex)``."""
    http, base = serve_static()
    with PulseRig(echo_db=-6) as rig, BrowserBridge() as bridge:
        ctx = rig.launch(playwright_driver, tmp_path / "profile", **launch)
        ctx.add_init_script("window.rtvDoubleTalkLog = [];")  # the detector's reports, for failures' messages
        try:
            duplex = DuplexChat(local_server.url, ctx.new_page(), bridge)
            duplex.open(base)
            yield rig, duplex
        finally:
            ctx.close()
            duplex.chat.close()
    http.shutdown()


def speech_started_between(duplex: DuplexChat, start: float, end: float) -> list[dict]:
    return [r for t, r in duplex.rows("input_audio_buffer.speech_started", start) if t <= end]


def test_on_speakers_it_never_interrupts_itself_and_the_user_barges_in_by_voice(
        tmp_path, local_server, user_wav, playwright_driver):
    with duplex_on_speakers(tmp_path, local_server, playwright_driver) as (rig, duplex):
        # Two long replies on the speaker: the first measures the echo and opens the mic.
        for _ in range(2):
            item, asked = duplex.assistant_says(LONG)
            assert duplex.wait_over(item, asked) == "played"
            assert not speech_started_between(duplex, asked, time.time()), "the assistant interrupted itself"
        assert not duplex.rows("mic.double_talk"), "the double-talk detector took the echo for a voice"
        checks = duplex.chat.events.filter(type="echo.full_duplex")
        assert len(checks) == 1 and not len(duplex.chat.events.filter(type="echo.half_duplex"))
        loss = checks.payload.iloc[0]["return_loss_db"]
        assert loss >= 25, loss
        assert duplex.chat.notice == ""

        # The user talks over the third: the server hears them, playback stops, and the
        # assistant's item is truncated exactly at what the player reported as played.
        item, asked = duplex.assistant_says(LONG)
        wait(lambda: duplex.played_ms(item) >= 1000, 30, "1 s of the reply")
        assert duplex.page.locator(".rtv-mic-label").text_content() == "Listening"  # not paused
        voice = rig.voice()
        said, _ = voice.say(user_wav)
        _, started = wait(lambda: next(iter(duplex.rows("input_audio_buffer.speech_started", said)), None),
                          15, "the user's barge-in to be heard")
        assert duplex.wait_over(item, asked) == "stopped"
        # The page's double-talk detector heard them first and sent the raw mic (the hold alone
        # needs 200 ms of the canceller's output to look like speech, js/lib/speech-hold.js).
        try:
            barge = wait(lambda: next(iter(duplex.rows("mic.double_talk", said)), None), 5, "mic.double_talk")
        except AssertionError:
            barge = None
        log = duplex.page.evaluate("window.rtvDoubleTalkLog.splice(0)")
        hits = [h for _, found, _ in log for h in found if h.get("t") is not None and h["t"] >= said * 1000]
        assert barge is not None, (f"the double-talk detector did not act; its detections after the voice: {hits}, "
                                   f"what it had learnt: {log[-1][2] if log else None}")
        assert barge[1]["payload"]["onset_ms"] == 200
        _, truncate = wait(lambda: next(iter(duplex.rows("conversation.item.truncate", said)), None), 10,
                           "the truncation")
        played = duplex.item(item).played_ms
        assert truncate["payload"]["audio_end_ms"] == int(played) or abs(truncate["payload"]["audio_end_ms"] - played) < 1
        assert played < duplex.item(item).audio_received_ms
        # What they said is transcribed (not its exact words: the start overlapped the echo).
        _, heard = wait(lambda: next(iter(duplex.rows(
            "conversation.item.input_audio_transcription.completed", said)), None), 60, "the transcript")
        time.sleep(3)
        voice.close()
        heard_all = " ".join(r.get("text") or "" for _, r in duplex.rows(
            "conversation.item.input_audio_transcription.completed", said))
        # The canceller's double-talk suppression garbles some words (bench: WER ~0.5), so
        # this asks only that the turn is theirs: a few of their words, not the echo's.
        said_words = set(USER.replace(",", "").lower().split())
        heard_words = set(heard_all.replace(",", " ").replace(".", " ").lower().split())
        assert len(said_words & heard_words) >= 3, heard_all
        assert not heard_words & {"sailors", "harbour", "fox", "dog", "boat"}, heard_all


def test_an_echo_not_cancelled_falls_back_to_half_duplex_and_says_so(tmp_path, local_server, playwright_driver):
    with duplex_on_speakers(tmp_path, local_server, playwright_driver, echo_cancellation=False) as (_, duplex):
        for _ in range(2):
            item, asked = duplex.assistant_says(LONG)
            assert duplex.wait_over(item, asked) == "played"
            # Held while it checked, then half-duplex: its own voice never reached the server.
            assert not speech_started_between(duplex, asked, time.time()), "the assistant interrupted itself"
        fallback = duplex.chat.events.filter(type="echo.half_duplex")
        assert len(fallback) == 1 and fallback.category.iloc[0] == "system"
        assert fallback.payload.iloc[0]["return_loss_db"] < 25
        assert "headphones" in duplex.chat.notice.lower()
        duplex.page.wait_for_function(
            "document.querySelector('.rtv-notice-text').textContent.includes('mic pauses while the AI speaks')")
