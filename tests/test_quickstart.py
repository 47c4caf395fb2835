"""The README's first command ends in ``rtvoice-quickstart``: its headless round trip must work
on the local backend, with no key and no browser."""

from __future__ import annotations

import pytest

from rtvoice_widget import load_session
from rtvoice_widget.quickstart import main


@pytest.mark.models
def test_quickstart_round_trip_speaks_answers_and_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["--no-lab", "--save", str(tmp_path / "session")]) == 0
    out = capsys.readouterr().out
    assert "Connected to local ws://127.0.0.1:" in out
    assert "Voice-to-voice latency" in out and "n/a" not in out
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
