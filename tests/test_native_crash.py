"""The default engines on every CPU, and a native crash of the local server that says what happened.

Two halves. The rules (no models): which llama.cpp load parameters a CPU gets (no extra buffer
types where AMX is present: repacking into the AMX buffer type crashed with SIGSEGV on Sapphire
Rapids), which builds a CPU must refuse (compiled for instructions it lacks: SIGILL), and how a
dead server process is described. The real thing (models): the local server subprocess, as
``VoiceChat()`` and ``RealtimeSession()`` start it, killed with SIGSEGV or SIGKILL while it warms
up the language model and in the middle of a reply; what the session raises, the widget shows and
the event log keeps, and that the next connect starts one fresh server.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from rtvoice_widget.server import crash
from rtvoice_widget.server.engines import native_cpu

# /proc/cpuinfo "flags" of real CPUs (abridged to the flags that matter here, order kept).
SAPPHIRE_RAPIDS = ("fpu sse sse2 ssse3 fma cx16 pni sse4_1 sse4_2 popcnt aes avx f16c rdrand bmi1 avx2 "
                   "bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni "
                   "avx512_fp16 avx_vnni amx_bf16 amx_tile amx_int8")
ICE_LAKE = ("fpu sse sse2 ssse3 fma cx16 pni sse4_1 sse4_2 popcnt avx f16c bmi1 avx2 bmi2 avx512f "
            "avx512dq avx512cd avx512bw avx512vl avx512vbmi avx512_vnni")
AVX2_LAPTOP = "fpu sse sse2 ssse3 fma cx16 pni sse4_1 sse4_2 popcnt avx f16c bmi1 avx2 bmi2"
GRAVITON2 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs"

NATIVE_AVX512_BUILD = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
                       "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | "
                       "OPENMP = 1 | REPACK = 1 | ")
PORTABLE_X86_BUILD = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
                      "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")
ARM_V9_BUILD = "CPU : NEON = 1 | ARM_FMA = 1 | FP16_VA = 1 | DOTPROD = 1 | SVE = 1 | MATMUL_INT8 = 1 | REPACK = 1 |"


def flags(line: str) -> frozenset[str]:
    return native_cpu.cpu_flags(f"processor\t: 0\nflags\t\t: {line}\n")


# -- which load parameters a CPU gets -----------------------------------------------------------


def test_an_amx_cpu_loads_llama_without_extra_buffer_types_and_others_keep_them():
    assert native_cpu.llama_extra_buffers(flags(SAPPHIRE_RAPIDS), "auto") is False
    for cpu in (ICE_LAKE, AVX2_LAPTOP):
        assert native_cpu.llama_extra_buffers(flags(cpu), "auto") is True
    arm = native_cpu.cpu_flags(f"processor\t: 0\nFeatures\t: {GRAVITON2}\n")
    assert "asimd" in arm and native_cpu.llama_extra_buffers(arm, "auto") is True
    # The override wins both ways; a typo is an error, not a silent default.
    assert native_cpu.llama_extra_buffers(flags(SAPPHIRE_RAPIDS), "on") is True
    assert native_cpu.llama_extra_buffers(flags(AVX2_LAPTOP), "off") is False
    with pytest.raises(ValueError, match=native_cpu.EXTRA_BUFFERS_ENV):
        native_cpu.llama_extra_buffers(flags(AVX2_LAPTOP), "sometimes")


@pytest.mark.models
def test_the_engine_loads_the_model_with_the_parameters_its_cpu_needs(monkeypatch):
    from rtvoice_widget.server.engines.llm_llama import LlamaCppLLM

    monkeypatch.delenv(native_cpu.EXTRA_BUFFERS_ENV, raising=False)
    amx = LlamaCppLLM(cpu_flags=flags(SAPPHIRE_RAPIDS) | native_cpu.cpu_flags())
    # What llama.cpp was really handed, read back from the Llama object's model params.
    assert amx.extra_buffers is False and amx._llama.model_params.use_extra_bufts is False
    words = "".join(chunk.text or "" for chunk in amx.stream([{"role": "user", "content": "Say hello."}]))
    assert words.strip()
    here = LlamaCppLLM()
    expected = not (native_cpu.AMX_FLAGS & native_cpu.cpu_flags())
    assert here._llama.model_params.use_extra_bufts is expected


# -- a build compiled for another CPU ---------------------------------------------------------


def test_a_build_for_instructions_the_cpu_lacks_is_refused_with_the_rebuild_command():
    assert native_cpu.missing_features(NATIVE_AVX512_BUILD, flags(AVX2_LAPTOP)) == [
        "AVX512", "AVX512_BF16", "AVX512_VBMI", "AVX512_VNNI"]
    assert native_cpu.missing_features(NATIVE_AVX512_BUILD, flags(ICE_LAKE)) == ["AVX512_BF16"]
    assert native_cpu.missing_features(PORTABLE_X86_BUILD, flags(AVX2_LAPTOP)) == []
    graviton2 = native_cpu.cpu_flags(f"Features\t: {GRAVITON2}\n")
    assert native_cpu.missing_features(ARM_V9_BUILD, graviton2) == ["MATMUL_INT8", "SVE"]
    assert native_cpu.missing_features(NATIVE_AVX512_BUILD, frozenset()) == []  # unknown CPU: no verdict
    with pytest.raises(native_cpu.NativeBuildMismatch) as refused:
        native_cpu.check_llama_build(NATIVE_AVX512_BUILD, flags(AVX2_LAPTOP))
    message = str(refused.value)
    assert "AVX512" in message and "SIGILL" in message and native_cpu.PORTABLE_REBUILD in message
    native_cpu.check_llama_build(PORTABLE_X86_BUILD, flags(AVX2_LAPTOP))  # no error


@pytest.mark.models
def test_the_engine_refuses_the_installed_build_on_a_cpu_it_was_not_compiled_for():
    from rtvoice_widget.server.engines.llm_llama import LlamaCppLLM

    real_build = native_cpu.llama_build_features()
    assert native_cpu.missing_features(real_build, native_cpu.cpu_flags()) == []  # it runs here
    weaker = flags("fpu sse sse2 ssse3 pni")  # a CPU without AVX: nothing ggml builds by default runs
    assert native_cpu.missing_features(real_build, weaker)
    with pytest.raises(native_cpu.NativeBuildMismatch, match="Rebuild it for this CPU"):
        LlamaCppLLM(cpu_flags=weaker)


# -- a dead server process in words -------------------------------------------------------------


def test_a_crash_while_starting_names_the_stage_the_signal_and_what_to_try():
    message = crash.describe_exit(-signal.SIGSEGV, ["rtvoice-server stage: Warming up the language model\n"],
                                  stage="Warming up the language model", serving=False)
    assert message.startswith("the local server crashed while warming up the language model: killed by SIGSEGV")
    assert native_cpu.EXTRA_BUFFERS_ENV in message and native_cpu.PORTABLE_REBUILD in message
    assert "Connecting again starts a fresh server" in message
    illegal = crash.describe_exit(-signal.SIGILL, [], stage="Loading the language model (smollm2)", serving=False)
    assert "SIGILL" in illegal and "another CPU" in illegal and native_cpu.PORTABLE_REBUILD in illegal
    killed = crash.describe_exit(-signal.SIGKILL, [], stage="Starting the server", serving=True)
    assert "during the conversation" in killed and "out-of-memory" in killed


def test_a_crash_while_serving_names_the_engine_from_a_real_faulthandler_dump(tmp_path):
    # A real dump: a child with faulthandler on, one thread inside a module whose path is an
    # engine's, the main thread waiting, killed by SIGSEGV from outside.
    engine = tmp_path / "faster_whisper" / "transcribe.py"
    engine.parent.mkdir()
    (engine.parent / "__init__.py").write_text("")
    engine.write_text("import time\ndef decode():\n    while True:\n        time.sleep(0.01)\n")
    code = ("import faulthandler, sys, threading, time; faulthandler.enable(all_threads=True);"
            f"sys.path.insert(0, {str(tmp_path)!r}); from faster_whisper import transcribe;"
            "threading.Thread(target=transcribe.decode, daemon=True).start();"
            "print('ready', flush=True); time.sleep(60)")
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    child.send_signal(signal.SIGSEGV)
    output = child.stdout.readlines()
    returncode = child.wait(10)
    assert returncode == -signal.SIGSEGV and any("faster_whisper" in line for line in output)
    assert crash.engine_in_traceback(output) == "speech recognition (faster-whisper on CTranslate2)"
    message = crash.describe_exit(returncode, output, stage="Starting the server", serving=True)
    assert "during the conversation, in speech recognition" in message and "SIGSEGV" in message
    assert "Fatal Python error" in message  # the dump's tail is quoted


# -- the real server, killed ------------------------------------------------------------------


def server_processes() -> list[psutil.Process]:
    """The local server subprocesses of this test process (live ones: an earlier test's killed
    server may still be a zombie, not yet reaped, whose command line cannot be read)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any("rtvoice_widget.server" in part for part in (p.cmdline() or [])):
                found.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def kill_server(sig: signal.Signals) -> int:
    (server,) = server_processes()
    os.kill(server.pid, sig)
    return server.pid


@pytest.fixture
def fresh_server():
    from rtvoice_widget.server import stop_local_server

    stop_local_server()
    yield
    stop_local_server()


def kill_during_warm_up(sig: signal.Signals) -> threading.Thread:
    """Start the shared local server (default engines) and kill it once it says it is warming
    up the language model; returns the thread whose start this is."""
    from rtvoice_widget.server import ensure_local_server

    def on_stage(stage: str) -> None:
        if stage == "Warming up the language model":
            kill_server(sig)

    def start() -> None:
        try:
            ensure_local_server(progress=on_stage)
        except RuntimeError:
            pass  # the caller under test sees the same start fail

    starter = threading.Thread(target=start)
    starter.start()
    deadline = time.monotonic() + 30
    while not server_processes() and time.monotonic() < deadline:
        time.sleep(0.01)
    return starter


SIGNALS = [pytest.param(signal.SIGSEGV, id="SIGSEGV"), pytest.param(signal.SIGKILL, id="SIGKILL")]


@pytest.mark.models
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", SIGNALS)
def test_a_crash_while_warming_up_is_raised_by_connect_and_logged(fresh_server, monkeypatch, sig):
    from rtvoice_widget.server import LocalServerCrashed
    from rtvoice_widget.session import RealtimeSession

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    starter = kill_during_warm_up(sig)
    session = RealtimeSession(backend="local")
    with pytest.raises(LocalServerCrashed) as crashed:
        session.connect(timeout=120)  # joins the start under way
    starter.join(60)
    message = str(crashed.value)
    assert f"while warming up the language model: killed by {sig.name}" in message
    assert "What to try:" in message and "Connecting again starts a fresh server" in message
    failed = session.events.filter(type="connection.failed")
    assert len(failed) == 1 and failed["category"].iloc[0] == "error" and sig.name in failed["text"].iloc[0]
    assert server_processes() == []  # nothing restarted it

    with RealtimeSession(backend="local") as again:  # a fresh server, started once
        assert len(server_processes()) == 1
        again.send_text("Hello there.")
        assert again.wait_for("response.done", timeout=120)["type"] == "response.done"


@pytest.mark.models
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", SIGNALS)
def test_a_crash_while_warming_up_shows_in_the_widget(fresh_server, monkeypatch, sig):
    from widget_harness.bridge import CommRecorder

    from rtvoice_widget.widget import VoiceChat

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with CommRecorder():
        chat = VoiceChat(backend="local")
        starter = kill_during_warm_up(sig)
        with pytest.raises(RuntimeError):
            chat.connect(timeout=120)
        starter.join(60)
        assert chat.status == "error" and sig.name in chat.error and "warming up the language model" in chat.error
        failed = chat.events.filter(type="connection.failed")
        assert len(failed) == 1 and sig.name in failed["text"].iloc[0]
        chat.connect(timeout=120)  # Connect again: a fresh server
        assert chat.status == "connected" and chat.error == "" and len(server_processes()) == 1
        chat.close()


@pytest.mark.models
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", SIGNALS)
def test_a_crash_in_the_middle_of_a_reply_ends_the_session_with_the_reason_and_keeps_the_log(
        fresh_server, monkeypatch, sig):
    from widget_harness.bridge import CommRecorder

    from rtvoice_widget.widget import VoiceChat

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with CommRecorder():
        chat = VoiceChat(backend="local")
        chat.connect(timeout=120)
        session = chat.session
        session.send_text("Tell me a long story about a dragon who lives in a castle by the sea.")
        session.wait_for("response.output_audio.delta", timeout=120)
        before = session.events.to_pandas()
        pid = kill_server(sig)
        failed = session.wait_for("connection.failed", timeout=30)
        assert f"during the conversation" in failed["text"] and f"killed by {sig.name}" in failed["text"]
        assert "What to try:" in failed["text"]
        after = session.events.to_pandas()
        # Nothing logged before the crash is lost, and the loss itself is in the log.
        assert set(before["seq"]) <= set(after["seq"])
        assert (after["type"] == "response.output_audio.delta").sum() >= 1
        assert list(after["type"])[-2:] == ["connection.lost", "connection.failed"]
        assert not (after["type"] == "connection.reconnecting").any()  # no retries against a dead server
        assert not session.connected
        deadline = time.monotonic() + 10
        while chat.status != "error" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert chat.status == "error" and sig.name in chat.error and "reconnecting" not in chat.notice
        time.sleep(1.0)
        assert server_processes() == []  # no restart by itself
        chat.connect(timeout=120)
        (fresh,) = server_processes()
        assert fresh.pid != pid and chat.status == "connected"
        chat.session.send_text("Hello.")
        assert chat.session.wait_for("response.done", timeout=120)["type"] == "response.done"
        chat.close()
