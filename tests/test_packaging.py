"""What a user gets from ``pip install rtvoice-widget`` (a wheel), not from this checkout.

A checkout reads the front end from ``js/``; a wheel has no ``js/`` beside the package, so
``setup.py`` copies it into ``rtvoice_widget/static``. Without that a wheel imports fine and
then every ``VoiceChat()`` fails looking for its JavaScript.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, rtvoice_widget
from rtvoice_widget._assets import js_dir
from rtvoice_widget.widget import VoiceChat
chat = VoiceChat(url="ws://127.0.0.1:9/v1/realtime", api_key="unused")  # not connected
print(json.dumps({"package": rtvoice_widget.__file__, "js_dir": str(js_dir()), "esm": str(chat._esm),
                  "modules": {name: len(source) for name, source in chat._modules.items()}}))
"""


def test_a_wheel_carries_the_front_end_the_widget_loads(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("rtvoice_widget-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("rtvoice_widget/static/")}
    sources = {f"rtvoice_widget/static/{p.relative_to(ROOT / 'js').as_posix()}"
               for pattern in ("*.js", "*.css", "lib/*.js") for p in (ROOT / "js").glob(pattern)}
    assert shipped == sources
    assert not any("/test/" in n or n.endswith("package.json") for n in names)

    # Unpacked where no js/ is beside it, first on the path: the widget must find everything.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)})
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    static = site / "rtvoice_widget" / "static"
    assert Path(found["package"]).parent == site / "rtvoice_widget"
    assert Path(found["js_dir"]) == static
    assert found["esm"] == (static / "widget.js").read_text(encoding="utf-8")  # anywidget holds the text
    assert sorted(found["modules"]) == ["dsp", "handover", "player", "state", "worklets"]
    assert all(size > 1000 for size in found["modules"].values())
