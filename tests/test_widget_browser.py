"""The widget's real front end in real headless Chromium, against a real kernel-side VoiceChat.

The page (tests/widget_harness) runs the widget ESM with a fake anywidget ``model`` whose
messages travel over a WebSocket bridge into the widget's real ipywidgets comm; the mic is a
WAV file played by Chromium's fake capture device; the server is the scripted Realtime server.
Screenshots (light and dark) go to ``$RTVOICE_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rtvoice_widget.widget import VoiceChat
from scripted_server import (
    ScriptedServer,
    assistant_audio_reply,
    assistant_response_end,
    assistant_response_start,
    pcm16_tone,
    session_created,
    session_updated,
    speech_started,
    voice_turn,
)
from widget_harness.bridge import BrowserBridge, serve_static
from widget_harness.bridge import wait_until as harness_wait_until

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
BASE_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


# A real browser takes longer to answer than the in-process comm recorder.
wait_until = functools.partial(harness_wait_until, timeout=15.0, interval=0.02)


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory) -> Path:
    """Spoken English from espeak-ng, 48 kHz mono, followed by 2 s of silence."""
    folder = tmp_path_factory.mktemp("mic")
    raw, wav = folder / "raw.wav", folder / "mic.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "Hello. What is the weather like today?"], check=True)
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(wav), "pad", "0", "2"], check=True)
    return wav


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("RTVOICE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def launch(p, tmp_path: Path, *extra: str):
    return p.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
        args=[*BASE_FLAGS, *extra], viewport={"width": 1180, "height": 1000},
    )


def watch_console(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def fake_mic(wav: Path) -> tuple[str, ...]:
    """Chromium flags: a fake microphone playing ``wav``, permission granted, autoplay allowed."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required")


def open_harness(ctx, base: str, bridge, *, views: int = 1, wait_ready: bool = True):
    """A new harness page on ``bridge`` with its console errors collected: ``(page, errors)``."""
    page = ctx.new_page()
    errors = watch_console(page)
    page.goto(f"{base}/index.html?ws={bridge.port}" + (f"&views={views}" if views > 1 else ""))
    if wait_ready:
        page.wait_for_function("window.harness.ready", timeout=15000)
    return page, errors


def played_reports(page, item_id: str) -> list[dict]:
    return page.evaluate(
        "(id) => window.harness.sent.filter((m) => m.type === 'played' && m.item_id === id)", item_id)


@pytest.mark.parametrize("transport", ["mic_link", "jupyter"])
def test_widget_in_chromium_streams_plays_flushes(tmp_path, mic_wav, screenshots, playwright_driver, transport):
    """The whole widget, with audio over the audio link (default) and over Jupyter messages only."""
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        p = playwright_driver
        chat = VoiceChat(url=server.url, mic_link=transport == "mic_link")
        frames: list[dict] = []  # what reached the kernel's message handlers, by either path
        chat.on_msg(lambda _w, content, _b: frames.append(content) if content.get("type") == "audio" else None)
        ctx = launch(p, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge, views=2)
            views = page.locator(".harness-view")
            assert views.count() == 2

            # Connect from the first view, like a person would.
            views.nth(0).locator(".rtv-header button").click()
            wait_until(lambda: chat.status == "connected", message="connected")
            page.wait_for_function("document.querySelectorAll('.rtv-root[data-status=connected]').length === 2")

            # Fake-mic frames flow to the server as 20 ms appends carrying the spoken WAV.
            appends = server.wait_for("input_audio_buffer.append", count=50, timeout=20)
            audio = np.frombuffer(b"".join(base64.b64decode(e["audio"]) for e in appends[:50]), "<i2")
            assert len(audio) == 50 * 480
            assert np.sqrt(np.mean((audio / 32768.0) ** 2)) > 0.005, "the fake mic's speech arrived as silence"
            # The level meter moves with the voice.
            page.wait_for_function("parseFloat(document.querySelector('.rtv-meter-fill').style.width) > 20", timeout=10000)
            sent = page.evaluate("window.harness.sent.filter((m) => m.type === 'audio').map((m) => m.seq)")
            if transport == "jupyter":
                assert sent[:50] == list(range(50))
                assert not any(f.get("via") == "link" for f in frames)
            else:
                # The link opens with the player, before the mic: the worker sends every frame
                # from the first on, in order; the page also sends the first few through
                # Jupyter until it hears from the worker (copies: the kernel keeps one).
                assert len(chat.events.filter(type="mic.link_open")) == 1
                via_link = [f["seq"] for f in frames if f.get("via") == "link"]
                assert len(via_link) >= 40 and len(sent) < 25, (len(via_link), len(sent))
                assert via_link == list(range(len(via_link)))
                assert set(sent) <= set(via_link), sent  # only copies of frames the link carried
            # Chromium: the mic is read from its track by a worker, not through the audio graph.
            assert chat.events.filter(type="mic.live").payload.iloc[-1].get("reads") == "track"
            # Only one view captures: one engine, so sequence numbers are not duplicated.
            assert len(set(sent)) == len(sent)

            # A reply plays: the player's played ms reaches the kernel and advances to the end.
            item = "item_asst_browser_1"
            server.play(voice_turn(user_text="What's the weather like?", transcript="It is sunny and warm today.",
                                   audio_ms=1500, item_id=item))
            wait_until(lambda: chat.session.protocol.items.get(item) is not None
                       and chat.session.protocol.items[item].played_ms > 0, message="playback started")
            first = chat.session.protocol.items[item].played_ms
            wait_until(lambda: chat.session.protocol.items[item].played_ms >= 1490, message="played to the end")
            assert first < 1490
            reports = [r["ms"] for r in played_reports(page, item)]
            assert reports == sorted(reports) and len(reports) >= 5

            # Both sides of the transcript show in both views, as text.
            for v in range(2):
                page.wait_for_function(
                    "(v) => [...document.querySelectorAll('.harness-view')[v].querySelectorAll('.rtv-msg.rtv-assistant .rtv-msg-text')]"
                    ".some((e) => e.textContent === 'It is sunny and warm today.')", arg=v)
                assert views.nth(v).locator(".rtv-msg.rtv-user .rtv-msg-text").first.text_content() == "What's the weather like?"

            # Barge-in: a long reply, interrupted while playing, is flushed at once and truncated
            # at what was played.
            long_item, resp = "item_asst_browser_2", "resp_browser_2"
            server.play(assistant_response_start(resp, long_item)
                        + assistant_audio_reply(resp, long_item, "Once upon a time there was a very long story",
                                                pcm16_tone(6000)))
            # The server's events reach the session thread a moment after play(): the item may not exist yet.
            wait_until(lambda: getattr(chat.session.protocol.items.get(long_item), "played_ms", 0) >= 500,
                       message="long reply playing")
            server.play([speech_started("item_user_browser_3", 0)]
                        + assistant_response_end(resp, long_item, "Once upon a time", status="cancelled"))
            truncate = server.wait_for("conversation.item.truncate")[0]
            assert truncate["item_id"] == long_item and 500 <= truncate["audio_end_ms"] <= 6000
            flushed = wait_until(lambda: [r for r in played_reports(page, long_item) if r.get("flushed")],
                                 message="flushed report from the player")[0]["ms"]
            assert flushed < 6000
            time.sleep(0.5)
            after = max(r["ms"] for r in played_reports(page, long_item))
            assert after <= flushed + 0.001, "playback continued after the flush"
            assert abs(flushed - truncate["audio_end_ms"]) < 1000
            page.wait_for_selector(".rtv-msg.rtv-interrupted")

            # Events panel: rows rendered (virtualised), chips count, JSON expands as text.
            page.wait_for_function("document.querySelectorAll('.harness-view')[0].querySelectorAll('.rtv-event').length > 5")
            rendered = page.evaluate("document.querySelectorAll('.harness-view')[0].querySelectorAll('.rtv-event').length")
            total = len(chat.events)
            assert total > rendered, "the events list renders every row instead of the visible window"
            server.assert_client_events_valid()
            assert not bridge.page_errors
            assert not errors, errors

            page.locator(".harness-view").nth(1).evaluate("(el) => el.remove()")
            # Scrolling up pauses auto-follow, so the rows hold still under the pointer.
            page.locator(".rtv-events-scroll").evaluate("(el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
            page.wait_for_selector(".rtv-follow:not([hidden])")
            page.locator(".harness-view .rtv-event", has_text="session.updated").first.click()
            page.wait_for_selector(".rtv-event-detail")
            page.screenshot(path=str(screenshots / "widget-light.png"), full_page=True)
            page.evaluate("document.documentElement.dataset.theme = 'dark'")
            page.locator(".rtv-tab", has_text="Settings").first.click()
            page.screenshot(path=str(screenshots / "widget-dark.png"), full_page=True)

            # Push-to-talk from the keyboard: Space held = talk, released = commit + respond.
            page.locator(".rtv-seg", has_text="Push to talk").click()
            wait_until(lambda: chat.mode == "push_to_talk", message="push-to-talk mode")
            page.locator(".rtv-transcript").click()  # focus inside the widget, not in a field
            page.keyboard.down("Space")
            server.wait_for("input_audio_buffer.clear")
            frames_before = len(server.client_events("input_audio_buffer.append"))
            wait_until(lambda: len(server.client_events("input_audio_buffer.append")) > frames_before + 5,
                       message="frames while talking")
            page.keyboard.up("Space")
            server.wait_for("input_audio_buffer.commit")
            server.wait_for("response.create")
            # The release names the last frame captured while held: the commit waited for it.
            end = page.evaluate("window.harness.sent.filter((m) => m.action === 'ptt_end').pop()")
            assert end["stream"] == frames[-1]["stream"] and end["through"] >= frames_before, end
            assert end["through"] in {f["seq"] for f in frames}

            # Text from the server is text, never HTML.
            hostile = '<img src=x onerror="window.pwned=1"><b>bold</b>'
            server.play(voice_turn(user_text="<script>window.pwned=2</script>", transcript=hostile, audio_ms=100))
            page.wait_for_function("(t) => [...document.querySelectorAll('.rtv-msg-text')].some((e) => e.textContent === t)",
                                   arg=hostile)
            assert page.evaluate("document.querySelectorAll('.rtv-transcript img, .rtv-transcript b, .rtv-transcript script').length") == 0
            assert page.evaluate("window.pwned === undefined")

            # 10k events: the page keeps counting them all while the DOM holds only a window.
            for i in range(10_000):
                chat.events.local("test.tick", chat.session.now_ms(), text=f"tick {i}")
            page.wait_for_function(
                "() => Number(document.querySelector('.rtv-chip.rtv-cat-system .rtv-chip-count').textContent) >= 10000",
                timeout=30000)
            assert page.evaluate("document.querySelectorAll('.rtv-event').length") < 100
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()


@pytest.mark.parametrize("situation", ["suspended", "denied", "no_device"])
def test_blocked_audio_is_explained_and_logged(tmp_path, mic_wav, situation, playwright_driver):
    """No user gesture: the AudioContext starts suspended -> "click to resume", and a click fixes
    it. Mic permission refused -> a notice saying how to allow it. No microphone at all (no fake
    device on a machine without a sound card) -> a notice saying so. All are logged as events."""
    http, base = serve_static()
    # None gets the autoplay flag; "suspended" and "no_device" get the auto-accepted mic prompt.
    flags = [] if situation == "no_device" else [
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={mic_wav}"]
    if situation in ("suspended", "no_device"):
        flags.append("--use-fake-ui-for-media-stream")
    with ScriptedServer() as server, BrowserBridge() as bridge:
        p = playwright_driver
        chat = VoiceChat(url=server.url)
        ctx = launch(p, tmp_path, *flags)
        try:
            page, errors = open_harness(ctx, base, bridge, wait_ready=False)
            # Wait from the kernel side: Playwright's page evaluations count as user gestures.
            wait_until(lambda: any(c.get("reset") for c, _ in bridge.custom("events")), message="page said hello")
            chat.connect(timeout=10)  # from Python: no gesture in the page
            wait_until(lambda: len(chat.events.filter(type=f"mic.{situation}")) == 1, message=f"mic.{situation} logged")
            page.wait_for_function("document.querySelector('.rtv-notice-text').textContent.length > 0")
            text = page.locator(".rtv-notice-text").text_content()
            if situation == "suspended":
                assert "Click to resume" in text, text
                assert not server.client_events("input_audio_buffer.append")
                page.locator(".rtv-notice button", has_text="Resume audio").click()
                page.wait_for_selector(".rtv-notice", state="hidden")
                server.wait_for("input_audio_buffer.append", count=10, timeout=20)
            elif situation == "denied":
                assert "denied" in text and "Allow it" in text, text
                assert page.locator(".rtv-notice button").text_content() == "Try again"
                assert not server.client_events("input_audio_buffer.append")
            else:
                assert "No microphone was found" in text, text
                assert not server.client_events("input_audio_buffer.append")
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()


def test_mic_does_not_claim_to_listen_before_the_session_is_ready(tmp_path, mic_wav, playwright_driver):
    """Connect starts the mic at once (inside the click), but until the server greeted us and
    confirmed the session settings (``session.updated``) the widget says what it waits for,
    the mic says it is not listening yet, and no audio is sent; then it listens."""
    http, base = serve_static()
    with ScriptedServer(greet=False, auto_session_updated=False) as server, BrowserBridge() as bridge:
        chat = VoiceChat(url=server.url)
        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge)
            mic_label = page.locator(".rtv-mic-label")
            notice = page.locator(".rtv-notice-text")

            page.locator(".rtv-header button").click()
            server.wait_for_connections(1)
            # 1. Connecting (models loading, for the offline backend): the mic is open, not listening.
            page.wait_for_function("document.querySelector('.rtv-mic-label').textContent === 'Not listening yet'")
            assert chat.status == "connecting" and not chat.ready
            assert notice.text_content().startswith("Connecting to the server\u2026"), notice.text_content()
            assert page.locator(".rtv-mic").get_attribute("data-state") == "waiting"
            # The elapsed time ticks, so the wait visibly is alive.
            page.wait_for_function("/ [1-9][0-9]* s$/.test(document.querySelector('.rtv-notice-text').textContent)")

            # 2. Greeted, settings sent, not yet confirmed: still not listening, nothing sent.
            server.play([session_created()])
            wait_until(lambda: chat.status == "connected", message="connected")
            update = server.wait_for("session.update")[0]
            page.wait_for_function("document.querySelector('.rtv-notice-text').textContent.startsWith('Starting the session')")
            assert mic_label.text_content() == "Not listening yet"
            time.sleep(1.0)  # a second of speech from the fake mic, which must not be sent
            assert not server.client_events("input_audio_buffer.append")
            assert not page.evaluate("window.harness.sent.filter((m) => m.type === 'audio').length")

            # 3. Confirmed: listening, and the mic's audio flows.
            server.play([session_updated(update.get("session", {}))])
            wait_until(lambda: chat.ready, message="ready after session.updated")
            page.wait_for_function("document.querySelector('.rtv-mic-label').textContent === 'Listening'")
            page.wait_for_selector(".rtv-notice", state="hidden")
            server.wait_for("input_audio_buffer.append", count=10, timeout=20)
            assert page.locator(".rtv-mic").get_attribute("data-state") == "continuous"
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()


def test_page_sends_no_audio_to_a_link_that_cannot_prove_it_is_the_kernel(tmp_path, mic_wav, playwright_driver):
    """Where the kernel is remote, the link's 127.0.0.1 address is the person's own machine, and
    something else may listen on that port. The page must send it nothing until it proved it
    is our kernel (the key the page got through Jupyter); audio keeps going through Jupyter."""
    import asyncio
    import threading

    from websockets.asyncio.server import serve

    received: list[object] = []
    paths: list[str] = []
    ready = threading.Event()
    stop: list[asyncio.Future] = []
    loop = asyncio.new_event_loop()

    async def impostor(ws):
        paths.append(ws.request.path)
        hello = json.dumps({"type": "hello", "key": "not-the-key"}).encode()
        await ws.send(struct.pack("<H", len(hello)) + hello)
        async for message in ws:
            received.append(message)

    async def main():
        async with serve(impostor, "127.0.0.1", 0) as server:
            stop.append(loop.create_future())
            ports.append(server.sockets[0].getsockname()[1])
            ready.set()
            await stop[0]

    ports: list[int] = []
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        chat = VoiceChat(url=server.url, mic_link=False)
        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge)
            page.locator(".rtv-header button").click()
            server.wait_for("input_audio_buffer.append", count=5, timeout=20)
            # A link address that leads to the impostor instead of the kernel.
            chat.send({"type": "mic_link", "url": f"ws://127.0.0.1:{ports[0]}/mic", "token": "t", "key": "the-key"})
            wait_until(lambda: paths, message="the page tried the link")
            before = len(server.client_events("input_audio_buffer.append"))
            wait_until(lambda: len(server.client_events("input_audio_buffer.append")) > before + 50,
                       message="a second of audio after the link attempt")
            assert received == [], "audio went to a server that did not prove it is the kernel"
            assert not chat.events.filter(type="mic.link_open").shape[0]
            # The page now has a link worker that never got a link: the assistant's audio,
            # all through Jupyter, goes through it to the player and plays to the end.
            item = "item_asst_unproven_link"
            server.play(voice_turn(transcript="Still here.", audio_ms=600, item_id=item))
            wait_until(lambda: getattr(chat.session.protocol.items.get(item), "played_ms", 0) >= 590,
                       message="played to the end")
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()
            loop.call_soon_threadsafe(stop[0].set_result, None)
            thread.join(5)


def test_no_mic_frame_is_lost_or_reordered_when_the_link_opens_or_closes_mid_speech(tmp_path, mic_wav, playwright_driver):
    """The mic starts on Jupyter (the link's address is held back), then the link opens while
    the fake mic speaks, the page's main thread stalls for 1.2 s, then the kernel drops the link
    and the page reconnects: every frame
    the capture numbered from mic start reaches the session once, in capture order, whichever
    way (or ways) it travelled."""
    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        # A loaded CI machine may hold Jupyter frames back for a while: this test checks the
        # hand-over, not the machine, so it lets frames wait for a missing one for up to 1 s.
        chat = VoiceChat(url=server.url, headphones=True, stale_frame_ms=2000)
        seen: list[tuple[str, int, int, bytes]] = []  # (via, stream, seq, pcm) of each frame at the kernel
        chat.on_msg(lambda _w, c, b: seen.append((c.get("via", "jupyter"), c.get("stream", 0), c["seq"], bytes(b[0])))
                    if c.get("type") == "audio" and b else None)
        bridge.hold("mic_link")
        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge)
            page.locator(".rtv-header button").click()
            server.wait_for("input_audio_buffer.append", count=25, timeout=20)  # 0.5 s through Jupyter only
            assert chat.events.filter(type="mic.link_open").empty
            bridge.release()  # the page learns where the link is: it opens mid-speech
            wait_until(lambda: len(chat.events.filter(type="mic.link_open")) == 1, message="link open")
            wait_until(lambda: sum(v == "link" for v, *_ in seen) >= 25, message="frames over the link")
            # The page's main thread stalls for 1.2 s mid-speech (a busy JupyterLab, a loaded
            # machine): the mic is read off it, so no audio may be lost (read on the main thread,
            # the track's 500 ms buffer overflowed and frames went missing).
            page.evaluate("() => { const end = performance.now() + 1200; while (performance.now() < end); }")
            chat._audio_link._peer.close()  # the kernel side drops it; the page reconnects in 2 s
            wait_until(lambda: len(chat.events.filter(type="mic.link_closed")) == 1, message="link closed")
            wait_until(lambda: len(chat.events.filter(type="mic.link_open")) == 2, message="link open again")
            wait_until(lambda: sum(v == "link" for v, *_ in seen) >= 100, message="more frames over the link")
            page.locator(".rtv-seg", has_text="Mute").click()  # the capture stops numbering frames
            wait_until(lambda: chat.mode == "mute", message="muted")

            last_count = [-1, time.monotonic()]

            def complete() -> bool:
                frames = {seq: pcm for _, _, seq, pcm in list(seen)}
                expected = b"".join(frames.get(i, b"") for i in range(max(frames) + 1))
                if len(seen) != last_count[0]:
                    last_count[:] = [len(seen), time.monotonic()]
                # Settled: frames captured before the mute may still be in flight for a moment.
                return appended_audio(server) == expected and time.monotonic() - last_count[1] > 1.0
            # The kernel may still be receiving the last frames: wait until it has all it was sent.
            wait_until(complete, timeout=20, message="the session has every frame, in order")
            streams = {stream for _, stream, _, _ in seen}
            seqs = {seq for _, _, seq, _ in seen}
            assert len(streams) == 1, streams
            assert seqs == set(range(len(seqs))), "a frame went neither way"  # from mic start (seq 0) on
            assert {"jupyter", "link"} <= {v for v, *_ in seen}
            metrics = chat.metrics()
            assert metrics["mic_frames_in"] == len(seqs) and metrics["mic_frames_missing"] == 0
            assert chat.events.filter(type="mic.gap").empty
            assert chat.events.filter(type="mic.live").payload.iloc[-1].get("reads") == "track"
            assert len(appended_audio(server)) == len(seqs) * 960  # every sample of every 20 ms frame
            server.assert_client_events_valid()
            assert not bridge.page_errors and not errors, (bridge.page_errors, errors)
        finally:
            ctx.close()
            chat.close()
            http.shutdown()


def appended_audio(server: ScriptedServer) -> bytes:
    return b"".join(base64.b64decode(e["audio"]) for e in server.client_events("input_audio_buffer.append"))


def test_assistant_audio_keeps_its_order_when_the_link_takes_over_from_jupyter(tmp_path, mic_wav, playwright_driver):
    """Reply A goes through Jupyter, which is slow here (the bridge holds the player's messages
    back); then the link opens and reply B goes over it, fast. B must not play before A: the
    page holds link audio until the hand-over marker, which comes through Jupyter behind A."""
    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        chat = VoiceChat(url=server.url, headphones=True)
        bridge.hold("mic_link")
        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge)
            page.locator(".rtv-header button").click()
            server.wait_for("input_audio_buffer.append", count=5, timeout=20)  # audio is up, no link yet
            bridge.hold("audio", "flush", "player_link")

            def replies_done(n: int) -> bool:
                return len(chat.events.filter(type="response.done")) >= n

            server.play(voice_turn(with_speech=False, item_id="item_a", transcript="First.", audio_ms=800))
            wait_until(lambda: replies_done(1), message="reply A sent (through Jupyter, held)")
            assert sum(len(b[0]) for c, b in bridge.custom("audio") if c["item_id"] == "item_a") == 800 * 48
            bridge.release("mic_link")
            wait_until(lambda: len(chat.events.filter(type="mic.link_open")) == 1, message="link open")
            wait_until(lambda: bridge.custom("player_link"), message="hand-over marker sent (held)")
            server.play(voice_turn(with_speech=False, item_id="item_b", transcript="Second.", audio_ms=400))
            wait_until(lambda: replies_done(2), message="reply B sent over the link")
            assert not [c for c, _ in bridge.custom("audio") if c["item_id"] == "item_b"]
            time.sleep(0.5)  # B is in the page already; it must wait for A
            assert not played_reports(page, "item_b"), "link audio played before the Jupyter audio ahead of it"

            bridge.release()
            wait_until(lambda: getattr(chat.session.protocol.items.get("item_b"), "played_ms", 0) >= 390,
                       message="B played to the end")
            a_started = played_reports(page, "item_a")[0]["started_t"]
            b_started = played_reports(page, "item_b")[0]["started_t"]
            # One player plays in push order: B starts after all 800 ms of A (one render block
            # of slack for the stamps).
            assert b_started - a_started >= 800 - 25, (a_started, b_started)
            assert max(r["ms"] for r in played_reports(page, "item_a")) >= 799
            assert not bridge.page_errors and not errors, (bridge.page_errors, errors)
        finally:
            ctx.close()
            chat.close()
            http.shutdown()


def test_agent_badge_follows_a_handoff_and_approve_runs_the_tool(tmp_path, mic_wav, screenshots, playwright_driver):
    """Issue 16 in the real front end: the header names the active agent and follows a handoff;
    a ``needs_approval`` tool's call shows Approve / Deny, and clicking Approve runs it."""
    from rtvoice_widget import Agent
    from scripted_server import function_call_turn

    billing = Agent("Billing", "You handle invoices.", handoff_description="Invoices.")
    triage = Agent("Triage", "You route callers.", handoffs=[billing])
    ran: list[str] = []
    http, base = serve_static()
    with ScriptedServer() as server, BrowserBridge() as bridge:
        chat = VoiceChat(url=server.url, agent=triage)

        @chat.tool(needs_approval=True)
        def delete_file(path: str) -> str:
            """Delete a file."""
            ran.append(path)
            return f"deleted {path}"

        ctx = launch(playwright_driver, tmp_path, *fake_mic(mic_wav))
        try:
            page, errors = open_harness(ctx, base, bridge)
            page.locator(".rtv-header button").click()
            wait_until(lambda: chat.status == "connected", message="connected")
            page.wait_for_function("document.querySelector('.rtv-agent').textContent === 'Agent: Triage'")

            server.play(function_call_turn(name="transfer_to_billing", arguments='{"reason": "invoice"}', call_id="call_h"))
            page.wait_for_function("document.querySelector('.rtv-agent').textContent === 'Agent: Billing'")
            assert chat.agent == "Billing" and chat.instructions == "You handle invoices."

            server.play(function_call_turn(name="delete_file", arguments='{"path": "/tmp/report.txt"}', call_id="call_d"))
            row = page.locator(".rtv-approval[data-call-id='call_d']")
            row.wait_for()
            assert row.locator(".rtv-approval-call").text_content() == 'delete_file(path="/tmp/report.txt")'
            assert not ran and not any(e["item"].get("call_id") == "call_d"
                                       for e in server.client_events("conversation.item.create"))
            page.screenshot(path=str(screenshots / "widget-approval.png"), full_page=True)
            row.locator("button", has_text="Approve").click()
            outputs = wait_until(lambda: [e["item"]["output"] for e in server.client_events("conversation.item.create")
                                          if e["item"].get("call_id") == "call_d"], message="the approved call's output")
            assert outputs == ["deleted /tmp/report.txt"] and ran == ["/tmp/report.txt"]
            decision = chat.events.filter(type="tool.approval").iloc[-1]["payload"]
            assert decision["decision"] == "approved" and decision["by"] == "widget" and decision["call_id"] == "call_d"
            page.wait_for_selector(".rtv-approval", state="detached")
            server.assert_client_events_valid()
            assert not errors, errors
        finally:
            ctx.close()
            chat.close()
            http.shutdown()
