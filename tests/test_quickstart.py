"""The README's first command ends in ``rtvoice-quickstart``: its headless round trip must work
on the local backend, with no key and no browser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rtvoice_widget import load_session
from rtvoice_widget.quickstart import main


@pytest.mark.models
def test_quickstart_round_trip_speaks_answers_and_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["--no-lab", "--save", str(tmp_path / "session")]) == 0
    out = capsys.readouterr().out
    assert "Connected to local ws://127.0.0.1:" in out
    assert "End of your voice -> first reply audio" in out and "n/a" not in out
    saved = load_session(tmp_path / "session")
    roles = saved.turns["role"].tolist()
    assert "user" in roles and "assistant" in roles
    assert saved.recording.assistant.size > 0
    first_events = len(saved.events)
    # A newcomer runs it twice: the second run replaces the first session instead of failing.
    assert main(["--no-lab", "--save", str(tmp_path / "session")]) == 0
    again = load_session(tmp_path / "session")
    assert again.events["time"].min() > saved.events["time"].max()
    assert len(again.events) > 0 and first_events > 0


@pytest.mark.models
def test_quickstart_command_ends_in_a_running_jupyterlab(tmp_path):
    # The README's first command, as a newcomer runs it (also as root, as in containers and CI,
    # where Jupyter refuses to start unless told): the round trip, then JupyterLab serving.
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(BROWSER="true", JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    proc = subprocess.Popen([sys.executable, "-m", "rtvoice_widget.quickstart", "--save", str(tmp_path / "s")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own group: JupyterLab is its child
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "is running at" in line:
                break
        output = "".join(lines)
        assert "End of your voice -> first reply audio" in output, output[-3000:]
        assert "is running at" in output, output[-3000:]
    finally:
        # Like Ctrl+C in a terminal: the whole group, the quickstart and the JupyterLab it started.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
