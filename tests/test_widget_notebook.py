"""The API key never lands in a saved notebook: a real kernel runs a VoiceChat and nbclient saves
the notebook with its widget state, exactly as "Save notebook with widget state" would."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-NOTEBOOK-SECRET-9876543210"


def test_saved_notebook_with_widget_state_holds_no_key(tmp_path, monkeypatch):
    # The key comes from the kernel's environment, as it should in real use (never typed in a cell).
    monkeypatch.setenv("RTV_TEST_KEY", SECRET)
    cells = [
        f"import sys\nsys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
        "from scripted_server import ScriptedServer, voice_turn\nserver = ScriptedServer().start()",
        "import os\nfrom rtvoice_widget import VoiceChat\nchat = VoiceChat(url=server.url, api_key=os.environ['RTV_TEST_KEY'])\n"
        "chat.connect(timeout=10)\nchat",
        "server.wait_for('session.update')\nserver.play(voice_turn(audio_ms=300))\nchat.say('hello')\n"
        "server.wait_for('response.create')\nimport time; time.sleep(0.5)\nprint(len(chat.events))\n"
        "print(any(os.environ['RTV_TEST_KEY'] in v for h in server.request_headers for v in h.values()))",
        "chat.disconnect()\nserver.stop()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name="python3", timeout=120, store_widget_state=True).execute()
    path = tmp_path / "chat.ipynb"
    nbformat.write(nb, path)
    text = path.read_text()

    # The widget and its state really are in the file (so the check below can fail) ...
    assert "application/vnd.jupyter.widget-view+json" in text
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    ours = [m for m in state.values() if "_widget_id" in m.get("state", {})]
    assert len(ours) == 1 and ours[0]["state"]["status"] in ("connected", "disconnected")
    n_events, key_used = nb.cells[2].outputs[0]["text"].split()
    assert int(n_events) > 5
    assert key_used == "True"  # the server did get the key, from the kernel
    # ... and the key is nowhere in it.
    assert SECRET not in text
    assert SECRET not in json.dumps(nb, default=str)

    # Nothing but state: the front end comes from the kernel, so the file carries only anywidget's
    # small loader, not the bundle, the worklets or the CSS (once ~100 kB per widget).
    mine = ours[0]["state"]
    sizes = {name: len(json.dumps(value)) for name, value in mine.items()}
    assert max(sizes.values()) < 4000, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    assert sum(sizes.values()) < 8000, sizes
    bundle = (ROOT / "rtvoice_widget" / "static" / "widget.js").read_text()
    for marker in ("registerProcessor", "AudioWorkletProcessor", "PlaybackQueue", ".rtv-root", bundle[-200:]):
        assert marker not in text, marker
    assert [n for n, v in mine.items() if isinstance(v, str) and "export " in v] == ["_esm"]
