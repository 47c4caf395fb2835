"""``rtvoice-quickstart``: prove the voice loop works here, then open the quickstart notebook.

1. Connects a :class:`~rtvoice_widget.session.RealtimeSession` (OpenAI when ``OPENAI_API_KEY``
   is set, otherwise the embedded local server, whose models load once, with progress).
2. Speaks a question into it (synthesised with the local TTS engine, streamed in real time, as a
   microphone would) and prints what the assistant heard, what it answered, and how fast.
3. Saves the whole session (events, both audio tracks, transcript) and, unless ``--no-lab``,
   starts JupyterLab on ``notebooks/quickstart.ipynb`` where ``VoiceChat()`` talks through the
   browser's microphone.

Step 2 needs no browser and no microphone, so it is also a smoke test for headless machines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_QUESTION = "Hello! In one short sentence, what can you do?"
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def speak(text: str) -> "tuple[object, int]":
    """``text`` as speech (float32, 24 kHz), from espeak-ng (the local server's fallback voice)."""
    from .server.engines.tts import EspeakTTS

    tts = EspeakTTS()
    return tts.synthesize(text), tts.sample_rate


def run_turn(question: str, backend: str, save_to: Path | None) -> int:
    from .session import RealtimeSession

    audio, rate = speak(question)
    print(f"Connecting ({backend} backend)...", flush=True)
    with RealtimeSession(backend=backend) as session:
        print(f"Connected to {session.endpoint.label}", flush=True)
        print(f'You (synthesised speech): "{question}"', flush=True)
        reply = session.talk(audio, rate, timeout=120)
        print(f'Assistant heard:  "{reply.user_transcript or ""}"')
        print(f'Assistant said:   "{reply.transcript}"')
        turns = session.protocol.turns
        gaps = session.voice_gaps()

        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.0f} ms"
        # The headline is what a person hears: the end of the voice, not the server's VAD decision.
        print(f"End of your voice -> first reply audio: {ms(gaps[-1] if gaps else None)} "
              f"(server heard you stop -> first reply audio: "
              f"{ms(turns[-1].speech_to_first_audio_ms if turns else None)}); "
              f"reply audio {reply.duration_ms / 1000:.1f} s")
        if save_to is not None:
            from .saved import save_session

            # Running the quickstart again replaces its last session (never a folder of anything else).
            save_session(session, save_to, overwrite=True)
            print(f"Session saved to {save_to} (load it with rtvoice_widget.load_session)")
    return 0 if reply.duration_ms > 0 else 1


def open_lab() -> int:
    jupyter = shutil.which("jupyter")
    if jupyter is None or not NOTEBOOK.is_file():
        print("To talk through your microphone, open a notebook and run:\n"
              "    from rtvoice_widget import VoiceChat\n    VoiceChat()")
        return 0
    print(f"Starting JupyterLab on {NOTEBOOK} (Ctrl+C to stop)...", flush=True)
    command = [jupyter, "lab", str(NOTEBOOK)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers and CI machines often run as root, which Jupyter refuses unless told.
        command.append("--allow-root")
    return subprocess.call(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtvoice-quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--question", default=DEFAULT_QUESTION, help="what to say to the assistant")
    parser.add_argument("--backend", default="auto", choices=["auto", "local", "openai", "azure"])
    parser.add_argument("--save", type=Path, default=Path("rtvoice-quickstart-session"),
                        help="folder to save the session in (events, audio, transcript)")
    parser.add_argument("--no-lab", action="store_true", help="only the spoken round trip, no JupyterLab")
    args = parser.parse_args(argv)

    code = run_turn(args.question, args.backend, args.save)
    if code != 0:
        print("The assistant's reply had no audio.", file=sys.stderr)
        return code
    return 0 if args.no_lab else open_lab()


if __name__ == "__main__":
    sys.exit(main())
