"""The transcript panel's Copy and downloads (js/lib/export.js, rtvoice_widget/export.py) in real
headless Chromium, against a real kernel-side VoiceChat resumed from a history, over the test
harness's comm bridge; the server is the scripted Realtime server. A person's clicks, then the
clipboard's text and the downloaded files' bytes are checked.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile

from rtvoice_widget.widget import VoiceChat
from scripted_server import ScriptedServer, voice_turn
from test_widget_browser import fake_mic, launch, mic_wav, open_harness, screenshots, wait_until  # noqa: F401 (fixtures)
from widget_harness.bridge import BrowserBridge, serve_static

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

HISTORY = [("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada.")]


def echo_item(event: dict, server: ScriptedServer) -> list[dict]:
    """The server's answer to a created item, as the API sends it."""
    item = {**event["item"], "object": "realtime.item", "status": "completed"}
    return [{"type": "conversation.item.added", "item": item, "previous_item_id": None},
            {"type": "conversation.item.done", "item": item, "previous_item_id": None}]


def test_copy_and_downloads_carry_the_conversation(tmp_path, mic_wav, screenshots, playwright_driver):
    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        server.respond("conversation.item.create", echo_item)
        chat = VoiceChat(url=server.url, history=HISTORY)
        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
            page, errors = open_harness(ctx, base, bridge)
            page.locator(".rtv-header button").click()
            wait_until(lambda: chat.status == "connected", message="connected")
            # The resumed history shows in the panel, both sides.
            page.wait_for_function("[...document.querySelectorAll('.rtv-msg-text')].some((e) => e.textContent === 'Nice to meet you, Ada.')")
            server.wait_for("input_audio_buffer.append", count=50, timeout=20)
            server.play(voice_turn(user_text="What is my name?", transcript="Your name is Ada.", audio_ms=1500))
            page.wait_for_function("[...document.querySelectorAll('.rtv-msg-text')].some((e) => e.textContent === 'Your name is Ada.')")

            page.locator(".rtv-export-copy").click()
            page.wait_for_function("document.querySelector('.rtv-export-note').textContent === 'Copied'")
            page.locator(".rtv-voice").screenshot(path=str(screenshots / "widget-transcript-export.png"))
            copied = page.evaluate("navigator.clipboard.readText()")
            assert copied == ("You: My name is Ada.\nAI: Nice to meet you, Ada.\nYou: What is my name?\n"
                              "AI: Your name is Ada.\n")

            files = {}
            for fmt in ("md", "json", "wav"):
                with page.expect_download() as info:
                    page.locator(f".rtv-export-{fmt}").click()
                download = info.value
                files[fmt] = (download.suggested_filename, download.path().read_bytes())
            samples_at_end = max(len(chat.recording.user), len(chat.recording.assistant))

            name, markdown = files["md"]
            assert name.startswith("conversation-") and name.endswith(".md")
            text = markdown.decode("utf-8")
            for line in ("**You**", "My name is Ada.", "Nice to meet you, Ada.", "What is my name?", "Your name is Ada."):
                assert line in text, text
            assert text.index("My name is Ada.") < text.index("Your name is Ada.")

            name, raw = files["json"]
            data = json.loads(raw)
            assert name.endswith(".json")
            said = [(t["role"], t["text"]) for t in data["turns"]]
            assert said == [*HISTORY, ("user", "What is my name?"), ("assistant", "Your name is Ada.")]
            reply = data["turns"][-1]
            assert reply["audio_ms"] == pytest.approx(1500, abs=1) and "voice_to_first_audio_ms" in reply
            assert data["config"]["session"]["type"] == "realtime"

            name, wav = files["wav"]
            assert name.endswith(".wav") and wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
            audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
            assert rate == 24000 and audio.shape[1] == 2
            # The whole recording at the click: user left (the fake mic's speech), the reply right.
            assert 0 < len(audio) <= samples_at_end
            assert np.sqrt(np.mean(audio[:, 0] ** 2)) > 0.005
            right = np.abs(audio[:, 1]) > 0.01
            assert 1400 <= right.sum() / 24 <= 1600  # the 1.5 s reply, nothing else

            sent = chat.events.filter(type="export.sent")
            assert list(sent["payload"].map(lambda p: p["format"])) == ["md", "json", "wav"]
            assert set(sent["category"]) == {"system"}
            assert len(chat.events.filter(type="history.seeded")) == 1
            server.assert_client_events_valid()
            assert not bridge.page_errors
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()


def test_a_download_larger_than_one_message_arrives_whole(tmp_path, mic_wav, playwright_driver):
    """A long recording goes in 1 MiB pieces; the page joins them in order into one file."""
    from rtvoice_widget.export import CHUNK_BYTES

    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        chat = VoiceChat(url=server.url)
        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge)
            page.locator(".rtv-header button").click()
            wait_until(lambda: chat.status == "connected", message="connected")
            # 30 s of a known signal as the assistant's audio: 2.9 MB of stereo WAV, 3 pieces.
            tone = (np.sin(np.arange(24000 * 30) * 2 * np.pi * 440 / 24000) * 8000).astype("<i2")
            chat.recording.add_assistant("item_long", tone.tobytes(), 0.0)
            with page.expect_download() as info:
                page.locator(".rtv-export-wav").click()
            audio, rate = soundfile.read(io.BytesIO(info.value.path().read_bytes()), dtype="int16", always_2d=True)
            pieces = [c for c, _ in bridge.custom("download")]
            assert len(pieces) == -(-pieces[0]["size"] // CHUNK_BYTES) >= 3
            assert np.array_equal(audio[: len(tone), 1], tone)
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()
