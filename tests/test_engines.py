"""The local server's offline engines, run for real on espeak-ng speech.

Tests marked ``models`` load the bundled Whisper-base / SmolLM2 / Silero models (seconds each);
the others use espeak-ng, the energy VAD, EchoLLM and a real local HTTP server.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtvoice_widget.server.engines import (
    ASR,
    LLM,
    TTS,
    VAD,
    EchoLLM,
    EnergyVAD,
    Engines,
    LLMChunk,
    OpenAICompatLLM,
    ToolCall,
    load_engines,
)
from rtvoice_widget.server.engines.evaluation import normalize_words, spoken, word_error_rate, word_errors
from rtvoice_widget.server.engines.loader import resolved_llm
from rtvoice_widget.server.engines.sentences import SentenceBudget
from rtvoice_widget.server.engines.tool_routing import function_spec, guess_arguments, route
from rtvoice_widget.server.engines.tts import OPENAI_VOICES, EspeakTTS
from engine_stubs import NullASR
from speech_checks import median_pitch_hz

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIMER_TOOL = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown timer.",
    "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]},
}

ASR_PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave for the city?",
    "I would like a cup of coffee with milk.",
    "Tell me a short story about a friendly dragon.",
]


@pytest.fixture(scope="module")
def tts() -> EspeakTTS:
    return EspeakTTS()


def frames_of(audio: np.ndarray, size: int) -> list[np.ndarray]:
    return [audio[i : i + size] for i in range(0, len(audio) - size + 1, size)]


def true_span(audio: np.ndarray, frame_samples: int) -> tuple[int, int]:
    """(first, last) frame index holding a sample above -40 dBFS: where the speech really is."""
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return int(loud[0]) // frame_samples, int(loud[-1]) // frame_samples


def speech_span(vad: VAD, audio: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    """(first, last) frame index whose speech probability reaches ``threshold``."""
    stream = vad.new_stream()
    probs = [stream.speech_prob(f) for f in frames_of(audio, vad.frame_samples)]
    voiced = [i for i, p in enumerate(probs) if p >= threshold]
    assert voiced, "no speech found at all"
    return voiced[0], voiced[-1]


# --- evaluation helpers --------------------------------------------------------------------------


def test_word_errors_counts_substitutions_insertions_deletions():
    assert word_errors("the cat sat", "the cat sat") == (0, 3)
    assert word_errors("the cat sat", "the bat sat") == (1, 3)
    assert word_errors("the cat sat", "the cat") == (1, 3)
    assert word_errors("the cat", "the big cat") == (1, 2)
    assert normalize_words("Don't stop-now!") == ["don't", "stop", "now"]
    assert word_error_rate(["a b", "c d"], ["a b", "c x"]) == 0.25
    with pytest.raises(ValueError):
        word_error_rate(["a"], [])


# --- VAD -----------------------------------------------------------------------------------------


def test_energy_vad_finds_onset_and_offset_of_espeak_speech(tts):
    vad = EnergyVAD()
    audio = spoken(tts, "Hello, this is a test of voice activity.", vad.sample_rate, pad_s=1.0)
    first, last = speech_span(vad, audio)
    onset, offset = true_span(audio, vad.frame_samples)
    assert onset > 20 and offset < len(audio) // vad.frame_samples - 20  # the padding is there
    assert abs(first - onset) <= 1
    assert abs(last - offset) <= 1


def test_energy_vad_is_deterministic_and_stateless():
    vad = EnergyVAD()
    stream = vad.new_stream()
    assert stream.speech_prob(np.zeros(512, np.float32)) == 0.0
    assert stream.speech_prob(np.full(512, 0.1, np.float32)) == 1.0
    middle = stream.speech_prob(np.full(512, 10 ** (-45 / 20), np.float32))
    assert middle == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("frame", [np.zeros(511, np.float32), np.zeros((2, 512), np.float32)])
def test_vad_rejects_wrong_frame_shape(frame):
    with pytest.raises(ValueError, match="512"):
        EnergyVAD().new_stream().speech_prob(frame)


def test_vad_rejects_integer_and_non_finite_frames():
    stream = EnergyVAD().new_stream()
    with pytest.raises(TypeError, match="float"):
        stream.speech_prob(np.zeros(512, np.int16))
    with pytest.raises(ValueError, match="NaN"):
        stream.speech_prob(np.full(512, np.nan, np.float32))
    assert stream.speech_prob(np.zeros(512, np.float64)) == 0.0  # float64 is fine


def test_energy_vad_rejects_inverted_levels():
    with pytest.raises(ValueError, match="speech_db"):
        EnergyVAD(floor_db=-30, speech_db=-40)


@pytest.mark.models
def test_silero_vad_finds_onset_and_offset(tts):
    from rtvoice_widget.server.engines.vad import SileroVAD

    vad = SileroVAD()
    assert isinstance(vad, VAD)
    audio = spoken(tts, "Hello, this is a test of voice activity.", vad.sample_rate, pad_s=1.0)
    first, last = speech_span(vad, audio)
    onset, offset = true_span(audio, vad.frame_samples)
    assert 0 <= first - onset <= 2  # within 64 ms (the breathy "H" of "Hello" takes a frame)
    assert 0 <= last - offset <= 3  # Silero lets its probability decay over a few frames
    stream = vad.new_stream()
    assert max(stream.speech_prob(f) for f in frames_of(np.zeros(16000, np.float32), 512)) < 0.1


@pytest.mark.models
def test_silero_streams_keep_separate_state(tts):
    from rtvoice_widget.server.engines.vad import SileroVAD

    vad = SileroVAD()
    a = frames_of(spoken(tts, "First speaker talking here.", 16000, pad_s=0.3), 512)
    b = frames_of(spoken(tts, "Another voice entirely.", 16000, voice="echo", pad_s=0.3), 512)
    alone_a = [p for s in [vad.new_stream()] for p in (s.speech_prob(f) for f in a)]
    alone_b = [p for s in [vad.new_stream()] for p in (s.speech_prob(f) for f in b)]
    sa, sb = vad.new_stream(), vad.new_stream()
    inter_a, inter_b = [], []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            inter_a.append(sa.speech_prob(a[i]))
        if i < len(b):
            inter_b.append(sb.speech_prob(b[i]))
    np.testing.assert_allclose(inter_a, alone_a, atol=1e-6)
    np.testing.assert_allclose(inter_b, alone_b, atol=1e-6)
    sa.reset()
    np.testing.assert_allclose([sa.speech_prob(f) for f in a], alone_a, atol=1e-6)


# --- TTS -----------------------------------------------------------------------------------------


def test_tts_outputs_24khz_float_audio_of_plausible_length(tts):
    assert isinstance(tts, TTS)
    assert tts.sample_rate == 24000
    audio = tts.synthesize("This sentence takes a couple of seconds to say out loud.")
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = len(audio) / tts.sample_rate
    assert 2.0 < seconds < 6.0  # 11 words at espeak's 175 words per minute ≈ 3.8 s
    assert 0.05 < float(np.abs(audio).max()) <= 1.0


def test_tts_speed_scales_duration(tts):
    text = "Speaking faster makes this sentence shorter."
    normal = len(tts.synthesize(text))
    fast = len(tts.synthesize(text, speed=2.0))
    slow = len(tts.synthesize(text, speed=0.6))
    assert fast < 0.7 * normal < normal < slow


def test_tts_voices_sound_different(tts):
    assert tts.voices == list(OPENAI_VOICES)
    assert set(tts.voices) == {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
    assert len({tts.espeak_voice(v) for v in tts.voices}) == len(tts.voices)
    text = "Hello, how are you doing on this lovely morning?"
    pitch = {v: median_pitch_hz(tts.synthesize(text, voice=v)) for v in tts.voices}
    female, male = ("coral", "sage", "shimmer", "marin"), ("ash", "ballad", "echo", "verse", "cedar")
    assert min(pitch[v] for v in female) > 1.4 * max(pitch[v] for v in male), pitch
    assert len(tts.synthesize(text, voice="en+f3")) > 0  # espeak names pass through
    assert tts.espeak_voice("ALLOY") == tts.espeak_voice("alloy") == tts.espeak_voice(None)


def test_tts_rejects_bad_input_clearly(tts):
    assert tts.synthesize("   ").size == 0
    with pytest.raises(ValueError, match="speed"):
        tts.synthesize("hi", speed=0)
    with pytest.raises(TypeError, match="str"):
        tts.synthesize(b"hi")
    assert len(tts.synthesize("still works afterwards")) > 0


@pytest.mark.parametrize("backend", ["library", "cli"])
def test_tts_unknown_voice_speaks_with_the_default_and_warns_once(backend, caplog):
    # Not "no-such-voice": the CLI reads that as Norwegian ("no") and speaks it.
    engine = EspeakTTS(backend=backend)
    text = "A reply is not lost over its voice."
    with caplog.at_level("WARNING", logger="rtvoice_widget.server.engines"):
        fallback = engine.synthesize(text, voice="zzz-not-a-voice")
        again = engine.synthesize(text, voice="zzz-not-a-voice")
    warnings = [r for r in caplog.records if "zzz-not-a-voice" in r.getMessage()]
    assert len(warnings) == 1 and "default voice" in warnings[0].getMessage()
    default = engine.synthesize(text)
    # espeak is not sample-deterministic: same voice means same length within ~1 %.
    for audio in (fallback, again):
        assert abs(len(audio) - len(default)) / len(default) < 0.03


@pytest.mark.parametrize("backend", ["library", "cli"])
def test_tts_maps_language_codes_the_library_rejects(backend, caplog):
    engine = EspeakTTS(backend=backend)
    assert engine.espeak_voice("en-gb") == engine.espeak_voice("EN-UK") == "en"
    assert engine.espeak_voice("en-gb+f3") == "en+f3"
    with caplog.at_level("WARNING", logger="rtvoice_widget.server.engines"):
        british = engine.synthesize("Schedule a tomato.", voice="en-gb")
        female = engine.synthesize("Schedule a tomato.", voice="en-gb+f3")
    assert len(british) > 0 and len(female) > 0 and not caplog.records
    assert median_pitch_hz(female, engine.sample_rate) > 1.4 * median_pitch_hz(british, engine.sample_rate)


def test_tts_cli_fallback_matches_library(tts):
    cli = EspeakTTS(backend="cli")
    assert cli.backend == "cli" and tts.backend == "library"
    text = "Both backends say the same words."
    a, b = tts.synthesize(text, voice="ash"), cli.synthesize(text, voice="ash")
    assert b.dtype == np.float32
    assert abs(len(a) - len(b)) / len(a) < 0.25


def test_tts_is_thread_safe(tts):
    text = "Several threads speak at once."
    expected = tts.synthesize(text)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(tts.synthesize(text))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # espeak adds random noise to fricatives, so repeated runs differ slightly; interleaved
    # synthesis callbacks would instead mix or lose whole buffers.
    assert len(results) == 4
    for r in results:
        assert abs(len(r) - len(expected)) / len(expected) < 0.05


# --- sentence budget and tool routing ------------------------------------------------------------


def test_sentence_budget_cuts_after_the_last_allowed_sentence():
    budget = SentenceBudget(2)
    pieces = ["Hi", " there.", " It is", " 3.5 degrees", " today!", " More", " text."]
    out = "".join(budget.feed(p) for p in pieces)
    assert out == "Hi there. It is 3.5 degrees today!"
    assert budget.exhausted


@given(st.lists(st.text(alphabet="ab .!?\n", max_size=8), max_size=30), st.integers(1, 4))
def test_sentence_budget_emits_a_prefix_ending_at_a_sentence_end(pieces, limit):
    budget = SentenceBudget(limit)
    out = "".join(budget.feed(p) for p in pieces)
    full = "".join(pieces)
    assert full.startswith(out)
    if budget.exhausted:
        assert out.rstrip("\"')]")[-1:] in (".", "!", "?")
    else:
        assert out == full


def test_route_picks_the_tool_the_user_talks_about():
    tools = [WEATHER_TOOL, TIMER_TOOL]
    assert route("What's the weather like in Paris?", tools)["name"] == "get_weather"
    assert route("Set a timer for ten minutes", tools)["name"] == "set_timer"
    assert route("Tell me a joke", tools) is None
    nested = {"type": "function", "function": {"name": "lookup_stock_price", "parameters": {}}}
    assert route("what is the stock price of ACME", [nested])["name"] == "lookup_stock_price"


def test_guess_arguments_reads_values_off_the_words():
    assert json.loads(guess_arguments("What's the weather in Paris?", function_spec(WEATHER_TOOL))) == {"city": "Paris"}
    assert json.loads(guess_arguments("Set a timer for 12 minutes", function_spec(TIMER_TOOL))) == {"minutes": 12}


def test_function_spec_rejects_nameless_tools():
    with pytest.raises(ValueError, match="name"):
        function_spec({"type": "function", "description": "x"})
    with pytest.raises(TypeError):
        function_spec("get_weather")


def test_small_model_history_flattens_tool_turns_and_merges_system_prompts():
    from rtvoice_widget.server.engines.llm_llama import _plain_messages

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "weather in Rome?"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                             "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "rainy"},
        {"role": "developer", "content": "Mention the city."},
    ]  # fmt: skip
    assert _plain_messages(messages) == [
        {"role": "system", "content": "Be brief.\n\nMention the city."},
        {"role": "user", "content": "weather in Rome?"},
        {"role": "assistant", "content": "(calling get_weather({}))"},
        {"role": "user", "content": "(The get_weather tool said: rainy.)"},
    ]
    # The result the reply answers becomes a fact in the system prompt, in words; its call goes.
    answering = [*messages[:2], messages[2], {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "rainy"}'}]
    assert _plain_messages(answering) == [
        {"role": "system", "content": "Be brief.\n\nFacts from the get_weather tool: sky rainy."},
        {"role": "user", "content": "weather in Rome?"},
    ]


def test_system_note_is_appended_to_the_system_prompt_or_becomes_one():
    from rtvoice_widget.server.engines.llm_llama import _with_note

    plain = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert _with_note(plain, "Answer first.") == [
        {"role": "system", "content": "Be brief.\n\nAnswer first."}, {"role": "user", "content": "Hi"}]
    assert _with_note(plain[1:], "Answer first.") == [
        {"role": "system", "content": "Answer first."}, {"role": "user", "content": "Hi"}]
    assert _with_note(plain, None) == plain and _with_note(plain, "") == plain


def test_small_model_sees_tool_results_as_words_not_json():
    from rtvoice_widget.server.engines.llm_llama import tool_result_words

    assert tool_result_words('{"temperature_c": 21, "condition": "sunny", "windy": false, "alerts": []}') == \
        "temperature c 21, condition sunny, windy no, alerts none"
    assert tool_result_words('{"forecast": [{"day": "Mon", "high": 20}, {"day": "Tue", "high": null}]}') == \
        "forecast day Mon, high 20, day Tue, high unknown"
    assert tool_result_words("It is raining.") == "It is raining"
    assert tool_result_words("42") == "42"


# --- EchoLLM -------------------------------------------------------------------------------------


def test_echo_llm_repeats_the_user_in_its_template():
    llm = EchoLLM()
    assert isinstance(llm, LLM)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "good morning!"}]
    chunks = list(llm.stream(messages))
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == "You said: good morning."
    parts = [{"role": "user", "content": [{"type": "input_text", "text": "from parts"}]}]
    assert "".join(c.text for c in llm.stream(parts)) == "You said: from parts."
    assert "".join(c.text for c in llm.stream([])) == "I did not catch that."


def test_echo_llm_honours_cancel_and_max_tokens():
    llm = EchoLLM()
    messages = [{"role": "user", "content": "one two three four five six"}]
    cancel = threading.Event()
    received = []
    for chunk in llm.stream(messages, cancel=cancel):
        received.append(chunk)
        cancel.set()
    assert len(received) == 1
    assert len(list(llm.stream(messages, max_tokens=3))) == 3


def test_echo_llm_calls_tools_and_reports_results():
    llm = EchoLLM()
    messages = [{"role": "user", "content": "What's the weather in Oslo?"}]
    chunks = list(llm.stream(messages, tools=[WEATHER_TOOL, TIMER_TOOL]))
    assert chunks == [LLMChunk(tool_call=ToolCall("get_weather", '{"city": "Oslo"}'))]
    messages += [
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                               "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21 degrees"},
    ]  # fmt: skip
    text = "".join(c.text for c in llm.stream(messages, tools=[WEATHER_TOOL]))
    assert text == "The get_weather tool says: sunny, 21 degrees."


# --- OpenAICompatLLM against a real local HTTP server --------------------------------------------


class ChatStub(ThreadingHTTPServer):
    """A tiny OpenAI-compatible chat server speaking the streaming (SSE) format."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []
        self.sent_chunks = 0
        self.disconnected = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    server: ChatStub

    def log_message(self, *args):  # keep test output clean
        pass

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        body = {
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "stub",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }  # fmt: skip
        return f"data: {json.dumps(body)}\n\n".encode()

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(request)
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if request["model"] == "broken":
            body = json.dumps({"error": {"message": "model exploded", "type": "server_error"}}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if request.get("tools"):
            pieces = [
                {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                      "function": {"name": "get_weather", "arguments": ""}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]},
            ]  # fmt: skip
            chunks = [self._chunk(d) for d in pieces] + [self._chunk({}, "tool_calls")]
        elif request["model"] == "endless":
            chunks = [self._chunk({"content": f" word{i}"}) for i in range(2000)]
        else:
            words = ["Hello", " from", " the", " stub", " server."]
            chunks = [self._chunk({"role": "assistant", "content": ""})]
            chunks += [self._chunk({"content": w}) for w in words] + [self._chunk({}, "stop")]
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                self.server.sent_chunks += 1
                if request["model"] == "endless":
                    time.sleep(0.005)  # pace the stream so a cancel lands before the end
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnected.set()


@pytest.fixture
def chat_stub():
    server = ChatStub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_openai_compat_streams_text(chat_stub):
    llm = OpenAICompatLLM(chat_stub.url, "stub-model", api_key="sk-test")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    chunks = list(llm.stream(messages, max_tokens=50))
    assert [c.text for c in chunks] == ["Hello", " from", " the", " stub", " server."]
    request = chat_stub.requests[0]
    assert request["messages"] == messages and request["stream"] is True
    assert request["max_tokens"] == 50 and request["model"] == "stub-model"
    assert chat_stub.headers_seen[0]["authorization"] == "Bearer sk-test"


def test_openai_compat_passes_tools_through_and_assembles_tool_calls(chat_stub):
    llm = OpenAICompatLLM(chat_stub.url + "/chat/completions", "stub-model")
    chunks = list(llm.stream([{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]))
    assert chunks == [LLMChunk(tool_call=ToolCall("get_weather", '{"city": "Paris"}'))]
    sent_tool = chat_stub.requests[0]["tools"][0]
    assert sent_tool == {
        "type": "function",
        "function": {"name": "get_weather", "description": WEATHER_TOOL["description"],
                     "parameters": WEATHER_TOOL["parameters"]},
    }  # fmt: skip


def test_openai_compat_cancel_drops_the_connection(chat_stub):
    llm = OpenAICompatLLM(chat_stub.url, "endless")
    cancel = threading.Event()
    received = []
    for chunk in llm.stream([{"role": "user", "content": "talk forever"}], cancel=cancel):
        received.append(chunk)
        if len(received) == 3:
            cancel.set()
    assert len(received) == 3
    assert chat_stub.disconnected.wait(timeout=30), "the server never saw the client leave"
    assert chat_stub.sent_chunks < 2000


def test_openai_compat_reports_server_errors(chat_stub):
    import openai

    llm = OpenAICompatLLM(chat_stub.url, "broken")
    with pytest.raises(openai.InternalServerError, match="model exploded"):
        list(llm.stream([{"role": "user", "content": "hi"}]))


def test_openai_compat_validates_its_arguments():
    with pytest.raises(ValueError, match="URL"):
        OpenAICompatLLM("localhost:11434", "m")
    with pytest.raises(ValueError, match="model"):
        OpenAICompatLLM("http://127.0.0.1:1/v1", "")


# --- load_engines --------------------------------------------------------------------------------


def test_load_engines_caches_and_reports_progress():
    seen: list[tuple[str, float]] = []
    engines = load_engines(vad="energy", asr=NullASR(), llm="echo", tts="espeak", progress=lambda m, f: seen.append((m, f)))
    assert isinstance(engines, Engines)
    assert isinstance(engines.vad, EnergyVAD) and isinstance(engines.llm, EchoLLM)
    assert [f for _, f in seen] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert seen[-1][0] == "engines ready"
    assert set(engines.info) == {"vad", "asr", "llm", "tts", "turn_end", "total_load_s"}
    assert engines.info["llm"]["name"] == "echo" and engines.info["vad"]["load_s"] >= 0
    again = load_engines(vad="energy", asr=engines.asr, llm="echo", tts="espeak")
    assert again is engines


def test_load_engines_caches_each_engine_on_its_own():
    first = load_engines(vad="energy", asr=NullASR(), llm="echo", tts="espeak")
    seen: list[str] = []
    other_tts = load_engines(vad="energy", asr=first.asr, llm="echo", tts="espeak-cli", progress=lambda m, f: seen.append(m))
    assert other_tts is not first and other_tts.tts is not first.tts and other_tts.tts.backend == "cli"
    assert other_tts.vad is first.vad and other_tts.llm is first.llm and other_tts.asr is first.asr
    assert other_tts.info["vad"]["cached"] and other_tts.info["llm"]["cached"]
    # (espeak-cli itself may be cached already when another test module loaded it first)
    assert "loading vad: energy (cached)" in seen and any(m.startswith("loading tts: espeak-cli") for m in seen)
    assert other_tts.info["total_load_s"] == other_tts.info["tts"]["load_s"] + other_tts.info["asr"]["load_s"]
    # A different endpoint for the same llm name is a different engine.
    assert load_engines(vad="energy", asr=first.asr, llm="echo", tts="espeak", llm_url="http://127.0.0.1:9/v1", llm_model="m").llm is not first.llm


def test_load_engines_loads_once_under_concurrency():
    asr = NullASR()
    results: list[Engines] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_engines(vad="energy", asr=asr, llm="echo", tts="espeak-cli")))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r is results[0] for r in results)


def test_load_engines_rejects_unknown_names():
    with pytest.raises(ValueError, match="vad"):
        load_engines(vad="webrtc-nope", asr=NullASR(), llm="echo", tts="espeak")
    with pytest.raises(ValueError, match="llm"):
        load_engines(vad="energy", asr=NullASR(), llm="gpt-17", tts="espeak")
    with pytest.raises(ValueError, match="llm_url"):
        load_engines(vad="energy", asr=NullASR(), llm="openai", tts="espeak")
    with pytest.raises(ValueError, match="unknown ASR"):
        load_engines(vad="energy", asr="whisper-nonexistent", llm="echo", tts="espeak")


def test_load_engines_llm_url_selects_the_endpoint(chat_stub):
    engines = load_engines(vad="energy", asr=NullASR(), llm="echo", tts="espeak", llm_url=chat_stub.url, llm_model="stub")
    assert isinstance(engines.llm, OpenAICompatLLM)
    assert "".join(c.text for c in engines.llm.stream([{"role": "user", "content": "hi"}])) == "Hello from the stub server."


# --- models: Whisper, SmolLM2, the full default set ----------------------------------------------


@pytest.fixture(scope="module")
def default_engines() -> Engines:
    return load_engines()


@pytest.mark.models
def test_default_engines_load_with_times(default_engines):
    info = default_engines.info
    assert info["vad"]["name"] == "silero" and info["asr"]["name"] == "whisper-base"
    assert info["llm"]["name"] == resolved_llm("auto") and info["tts"]["name"] == "piper"
    assert info["asr"]["load_s"] > 0 and info["llm"]["load_s"] > 0 and info["total_load_s"] > 0
    assert info["vad"]["load_s"] >= 0 and info["tts"]["load_s"] > 0
    assert load_engines() is default_engines
    for engine, protocol in zip(
        (default_engines.vad, default_engines.asr, default_engines.llm, default_engines.tts), (VAD, ASR, LLM, TTS)
    ):
        assert isinstance(engine, protocol)


@pytest.mark.models
def test_whisper_transcribes_espeak_prompts(default_engines, tts):
    asr = default_engines.asr
    hypotheses = [asr.transcribe(spoken(tts, p, asr.sample_rate, pad_s=0.2)) for p in ASR_PROMPTS]
    wer = word_error_rate(ASR_PROMPTS, hypotheses)
    # espeak-ng is not deterministic (random noise), so WER on five prompts wanders between about
    # 2 % and 15 %; a broken recogniser scores near 100 %. The 10 % goal is the benchmark's.
    assert wer <= 0.25, list(zip(ASR_PROMPTS, hypotheses))


@pytest.mark.models
def test_whisper_returns_nothing_for_silence_and_rejects_bad_audio(default_engines):
    asr = default_engines.asr
    assert asr.transcribe(np.zeros(16000, np.float32)) == ""
    assert asr.transcribe(np.zeros(0, np.float32)) == ""
    with pytest.raises(TypeError, match="float"):
        asr.transcribe(np.zeros(16000, np.int16))
    with pytest.raises(ValueError, match="mono"):
        asr.transcribe(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        asr.transcribe(np.full(16000, np.inf, np.float32))


def test_whisper_rejects_bad_options_before_loading_anything():
    from rtvoice_widget.server.engines.asr import WhisperASR

    with pytest.raises(ValueError, match="window"):
        WhisperASR(window="sliding")
    with pytest.raises(ValueError, match="tail_s"):
        WhisperASR(tail_s=-1)
    with pytest.raises(ValueError, match="beam_size"):
        WhisperASR(beam_size=0)
    with pytest.raises(ValueError, match="fallback_beam_size"):
        WhisperASR(fallback_beam_size=True)
    with pytest.raises(ValueError, match="fallback_logprob"):
        WhisperASR(fallback_logprob=0.5)


def test_whisper_text_stops_at_the_first_timestamp_past_the_audio():
    from rtvoice_widget.server.engines.asr import _text_before

    begin = 50000  # timestamp tokens: begin + k means k * 20 ms
    ids = [begin, 11, 12, begin + 100, begin + 100, 13, begin + 150, begin + 150, 11, 12, begin + 200]
    assert _text_before(ids, begin, end_s=2.5) == [11, 12, 13]  # 3.0 s and on is the tail: cut
    assert _text_before(ids, begin, end_s=10.0) == [11, 12, 13, 11, 12]
    assert _text_before([11, 12], begin, end_s=0.1) == [11, 12]  # no timestamps at all: keep the text


@pytest.mark.models
def test_whisper_unpadded_is_as_accurate_as_padded_and_does_not_repeat(default_engines, tts):
    from rtvoice_widget.server.engines.asr import WhisperASR

    unpadded = default_engines.asr
    assert unpadded.window == "unpadded"
    padded = WhisperASR(window="padded")
    clips = [spoken(tts, p, 16000, pad_s=0.2) for p in ASR_PROMPTS]
    by_window = {asr.window: [asr.transcribe(c) for c in clips] for asr in (unpadded, padded)}
    for window, hypotheses in by_window.items():
        assert word_error_rate(ASR_PROMPTS, hypotheses) <= 0.25, (window, hypotheses)
        # Short windows tempt Whisper to say the sentence again: never more words than were said.
        for reference, hypothesis in zip(ASR_PROMPTS, hypotheses):
            assert len(normalize_words(hypothesis)) <= len(normalize_words(reference)) + 2, (window, hypothesis)


@pytest.mark.models
def test_whisper_unpadded_keeps_the_prompt_and_long_audio_takes_the_padded_path(default_engines, tts):
    asr = default_engines.asr
    said = "The quick brown fox jumps over the lazy dog."
    clip = spoken(tts, said, 16000, pad_s=0.2)
    # A lost or garbled path loses every word. "jumps over the" is the hard part (beam search hears
    # "dumb, sober, blazy dog" in some espeak renderings), so only the other words are counted:
    # 50 renderings kept at least 4 of the 5.
    for text in (asr.transcribe(clip, prompt="Animals."), asr.transcribe(clip, language=None)):  # detected on the short window
        assert len({"quick", "brown", "fox", "lazy", "dog"} & set(normalize_words(text))) >= 3, text
    # 31 s: longer than Whisper's window, so the padded path runs (the unpadded one cannot hold it).
    long_audio = np.concatenate([clip, np.zeros(31 * 16000, np.float32), clip])
    text = asr.transcribe(long_audio)
    words = normalize_words(text)
    assert words.count("fox") == 2 and words.count("dog") == 2, text  # both sentences, not just the first


@pytest.mark.models
def test_whisper_redoes_unsure_greedy_decodes_with_beam_search(default_engines, tts):
    asr = default_engines.asr
    assert (asr.beam_size, asr.fallback_beam_size) == (1, 5) and asr.fallback_logprob < 0
    # Prompts greedy Whisper-base often garbles in espeak's male voice (bench_server's worst ones).
    clips = [spoken(tts, p, 16000, voice="echo", pad_s=0.25) for p in (
        "Who wrote the play Romeo and Juliet?", "Tell me a fun fact about the moon.", "Give me a synonym for happy.")]
    saved = {name: getattr(asr, name) for name in ("beam_size", "fallback_logprob")}

    def run(**options) -> tuple[list[str], int]:
        for name, value in {**saved, **options}.items():
            setattr(asr, name, value)
        redone = asr.stats["redone"]
        texts = [asr.transcribe(clip) for clip in clips]
        return texts, asr.stats["redone"] - redone

    try:
        greedy, _ = run(fallback_logprob=None)
        beam, _ = run(beam_size=5, fallback_logprob=None)
        # Every decode has a negative log-probability, so a 0 threshold redoes them all...
        assert run(fallback_logprob=0.0) == (beam, len(clips))
        # ... and none is as unsure as -50: the greedy text stands.
        assert run(fallback_logprob=-50.0) == (greedy, 0)
    finally:
        for name, value in saved.items():
            setattr(asr, name, value)


@pytest.mark.models
def test_whisper_is_thread_safe(default_engines, tts):
    asr = default_engines.asr
    clips = [spoken(tts, p, 16000, pad_s=0.2) for p in ASR_PROMPTS[:2]]
    sequential = [asr.transcribe(c) for c in clips]
    results: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, asr.transcribe(clips[i % 2]))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(4)] == sequential * 2


@pytest.mark.models
def test_whisper_model_is_assembled_atomically_and_verified(tmp_path):
    from rtvoice_widget.server.engines.whisper_files import bundled_whisper_base_dir

    folder = bundled_whisper_base_dir(tmp_path / "m")
    model_bin = folder / "model.bin"
    size = model_bin.stat().st_size
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    stamp = model_bin.stat().st_mtime_ns
    assert bundled_whisper_base_dir(tmp_path / "m") == folder and model_bin.stat().st_mtime_ns == stamp
    with open(model_bin, "r+b") as f:  # a crash mid-copy in some older version: a short file
        f.truncate(size // 2)
    bundled_whisper_base_dir(tmp_path / "m")
    assert model_bin.stat().st_size == size


@pytest.mark.models
def test_smollm2_streams_tokens_and_stops_at_sentences(default_engines):
    llm = default_engines.llm
    messages = [
        {"role": "system", "content": "You are a helpful voice assistant. Answer in one or two short sentences."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    chunks = list(llm.stream(messages, max_tokens=60))
    text = "".join(c.text for c in chunks)
    assert len(chunks) > 3 and all(c.tool_call is None for c in chunks)
    assert len(text.split()) >= 3
    assert len(list(llm.stream(messages, max_tokens=4))) <= 4


@pytest.mark.models
def test_a_conversation_longer_than_the_context_window_still_gets_answers():
    from rtvoice_widget.server.engines.llm_llama import LlamaCppLLM

    llm = LlamaCppLLM(n_ctx=512)  # SmolLM2: small, and a small window fills in a few turns
    system = {"role": "system", "content": "You are a helpful voice assistant. Answer in one short sentence."}
    history = [system]
    for i in range(40):  # far more than 512 tokens of conversation
        history += [{"role": "user", "content": f"Question {i}: what do cows eat on farm number {i}?"},
                    {"role": "assistant", "content": f"On farm {i} the cows eat grass and hay all day."}]
    asked = history + [{"role": "user", "content": "What colour is the sky?"}]
    # Before the window was respected, llama.cpp refused the prompt: every later reply failed.
    assert "".join(c.text for c in llm.stream(asked, max_tokens=30)).strip()
    kept = llm._fit_context(asked, 30)
    assert kept[0] == system and kept[-1] == asked[-1] and kept[1]["role"] == "user"
    assert len(kept) < len(asked)
    # The window's start moves in steps, not with every exchange, so the prompt prefix stays
    # cached between most turns (dropping one exchange per turn would move it 10 times here).
    starts = set()
    for i in range(10):
        asked += [{"role": "assistant", "content": "It is blue on a clear day."},
                  {"role": "user", "content": f"And on day {i}?"}]
        starts.add(llm._fit_context(asked, 30)[1]["content"])
    assert len(starts) <= 4, starts


@pytest.mark.models
def test_smollm2_honours_cancel(default_engines):
    llm = default_engines.llm
    cancel = threading.Event()
    received = []
    for chunk in llm.stream([{"role": "user", "content": "Tell me a long story about a ship."}], cancel=cancel):
        received.append(chunk)
        cancel.set()
    assert len(received) == 1
    # The engine is free again afterwards (the lock was released).
    assert list(llm.stream([{"role": "user", "content": "Say hi."}], max_tokens=5))


@pytest.mark.models
def test_smollm2_tool_call_has_valid_arguments(default_engines):
    llm = default_engines.llm
    messages = [{"role": "user", "content": "What's the weather in Berlin?"}]
    chunks = list(llm.stream(messages, tools=[WEATHER_TOOL, TIMER_TOOL]))
    assert len(chunks) == 1 and chunks[0].tool_call is not None
    assert chunks[0].tool_call.name == "get_weather"
    arguments = json.loads(chunks[0].tool_call.arguments)
    assert isinstance(arguments.get("city"), str) and arguments["city"]
    no_tool = list(llm.stream([{"role": "user", "content": "Say hello."}], tools=[WEATHER_TOOL], max_tokens=10))
    assert all(c.tool_call is None for c in no_tool) and "".join(c.text for c in no_tool)


@contextlib.contextmanager
def evaluations(llama):
    """What llama.cpp evaluates inside the block (its KV cache is what these tests watch), one
    string per batch."""
    batches: list[str] = []
    original = llama.eval

    def recording(tokens):
        batches.append(llama.detokenize(list(tokens)).decode(errors="replace"))
        return original(tokens)

    llama.eval = recording
    try:
        yield batches
    finally:
        del llama.eval  # back to the class's method


@pytest.mark.models
def test_prefill_of_the_words_so_far_leaves_the_reply_only_the_rest_to_evaluate(default_engines):
    llm = default_engines.llm
    llama = llm._llama  # the cache is llama.cpp's: watch what it evaluates
    system = {"role": "system", "content": "You answer in a few words."}
    other = {"role": "user", "content": "Tell me a long story about a dragon who guards a mountain of gold."}
    question = {"role": "user", "content": "Which ocean lies between Europe and North America?"}
    so_far = {"role": "user", "content": "Which ocean lies between Europe and North"}

    def reply_evaluates() -> str:
        with evaluations(llama) as evaluated:
            assert "".join(c.text for c in llm.stream([system, question], max_tokens=8)).strip()
        return "".join(evaluated)

    assert llm.prefill([system, other])  # the cache holds another turn
    cold = reply_evaluates()
    assert "Europe" in cold
    assert llm.prefill([system, so_far])
    warm = reply_evaluates()
    assert "Europe" not in warm and "America" in warm  # only the words after the prefilled ones
    assert len(llama.tokenize(warm.encode(), add_bos=False)) < len(llama.tokenize(cold.encode(), add_bos=False))


@contextlib.contextmanager
def thread_counts(llama):
    """The (generate, prompt) thread counts of llama.cpp's context at each evaluation, with
    whether it was a prompt (more than one token) or a generated token."""
    import llama_cpp

    seen: list[tuple[str, int, int]] = []
    original = llama.eval

    def recording(tokens):
        tokens = list(tokens)
        seen.append(("prompt" if len(tokens) > 1 else "token", llama_cpp.llama_n_threads(llama.ctx),
                     llama_cpp.llama_n_threads_batch(llama.ctx)))
        return original(tokens)

    llama.eval = recording
    try:
        yield seen
    finally:
        del llama.eval


@pytest.mark.models
def test_a_reply_evaluates_its_prompt_and_first_words_on_two_threads_unless_the_machine_is_busy(
        default_engines, monkeypatch):
    import os

    from rtvoice_widget.server.engines.llm_llama import _usable_cores

    llm = default_engines.llm
    llama = llm._llama
    two = min(2, _usable_cores())
    question = [{"role": "user", "content": "Tell me a long story about a dragon who guards a mountain of gold."}]
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))  # a quiet machine
    with thread_counts(llama) as seen:
        text = "".join(c.text for c in llm.stream(question, max_tokens=40))
    assert len(text.split()) > llm.lead_words + 2, text
    kinds = [kind for kind, _, _ in seen]
    assert kinds[0] == "prompt" and kinds.count("prompt") == 1
    assert seen[0][2] == two  # the prompt
    tokens = [generate for kind, generate, _ in seen if kind == "token"]
    assert tokens[0] == two and tokens[-1] == llm.n_threads == 1  # the lead words, then one thread
    assert tokens == sorted(tokens, reverse=True)  # two threads only until the lead words are out

    # While the user speaks (prefill), and on a busy machine, everything on one thread.
    with thread_counts(llama) as seen:
        assert llm.prefill([{"role": "user", "content": "What is the capital of"}])
    assert seen and all(generate == 1 and batch == 1 for _, generate, batch in seen)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0 * _usable_cores(), 1.0, 1.0))
    with thread_counts(llama) as seen:
        "".join(c.text for c in llm.stream([{"role": "user", "content": "Name three colours."}], max_tokens=12))
    assert seen and all(generate == 1 and batch == 1 for _, generate, batch in seen)


@pytest.mark.models
def test_prefill_never_waits_for_a_reply_holding_the_model(default_engines):
    llm = default_engines.llm
    stream = llm.stream([{"role": "user", "content": "Count from one to twenty."}], max_tokens=32)
    next(stream)  # the reply holds the model now
    try:
        assert llm.prefill([{"role": "user", "content": "What is"}]) is False
    finally:
        stream.close()
    assert llm.prefill([{"role": "user", "content": "What is"}]) is True


@pytest.mark.models
def test_smollm2_warm_up_caches_the_system_prompt_for_the_next_reply(default_engines):
    llm = default_engines.llm
    llama = llm._llama  # the cache is llama.cpp's: watch what it evaluates
    system = {"role": "system", "content": "You are Quibble, a terse assistant who loves prime numbers."}
    llm.warm([system])
    with evaluations(llama) as evaluated:
        reply = "".join(c.text for c in llm.stream([system, {"role": "user", "content": "Name one."}], max_tokens=8))
    assert reply.strip()
    # Only the user's turn was evaluated: the system prompt came from the cache.
    assert "Name one." in evaluated[0] and "Quibble" not in evaluated[0]
    assert not any("Quibble" in batch for batch in evaluated)


@pytest.mark.models
def test_system_note_reaches_the_model_and_its_prompt_stays_cached(default_engines):
    llm = default_engines.llm
    llama = llm._llama
    system = {"role": "system", "content": "You are Quaver, an assistant for musicians."}
    saved_note, llm.system_note = llm.system_note, "Start with the answer itself, zebra-fashion."
    try:
        with evaluations(llama) as evaluated:
            llm.warm([system])
            warmed = len(evaluated)
            reply = "".join(c.text for c in llm.stream([system, {"role": "user", "content": "Name a note."}], max_tokens=8))
            sequence = llama.detokenize(list(llama.input_ids[:llama.n_tokens])).decode(errors="replace")
    finally:
        llm.system_note = saved_note
    assert reply.strip()
    # The note went into the system prompt the model evaluated, after the session's own text...
    # (llama.cpp skips a prefix shared with the sequence already cached, hence a word from the end.)
    assert any("musicians" in batch and "zebra-fashion" in batch for batch in evaluated[:warmed])
    # ... and the reply's prompt started with that same cached prefix: only the user's turn was new.
    assert "Name a note." in evaluated[warmed] and not any("zebra" in b for b in evaluated[warmed:])
    # The reply's prompt itself carries the note, between the session's text and the user's turn.
    assert sequence.index("musicians") < sequence.index("zebra-fashion") < sequence.index("Name a note.")
