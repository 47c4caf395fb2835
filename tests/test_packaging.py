"""What a user gets from ``pip install rtvoice-widget`` (a wheel), not from this checkout, and
whether the committed front-end bundle is the one ``js/`` builds.

The front end is built by esbuild from ``js/`` into ``rtvoice_widget/static`` (``npm run build``,
committed): a wheel carries those two files as package data and nothing else of ``js/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "js"
STATIC = ROOT / "rtvoice_widget" / "static"

PROBE = """
import json, rtvoice_widget
from rtvoice_widget._assets import STATIC, bundle
from rtvoice_widget.widget import VoiceChat
chat = VoiceChat(url="ws://127.0.0.1:9/v1/realtime", api_key="unused")  # not connected
print(json.dumps({"package": rtvoice_widget.__file__, "static": str(STATIC), "esm": str(chat._esm),
                  "front_end": chat._front_end, "bundle": bundle()[1].decode()}))
"""


def test_a_wheel_carries_the_front_end_the_widget_loads(tmp_path):
    # From a copy without build/: setuptools would reuse files a stale build/ still holds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "dist", ".git", "node_modules", "__pycache__", "*.egg-info", ".pytest_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("rtvoice_widget-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("rtvoice_widget/static/")}
    assert shipped == {"rtvoice_widget/static/loader.js", "rtvoice_widget/static/widget.js"}
    assert not any("/test/" in n or n.endswith("package.json") or n.startswith("js/") for n in names)

    # Unpacked where no js/ is beside it, first on the path: the widget must find everything.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)})
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    static = site / "rtvoice_widget" / "static"
    assert Path(found["package"]).parent == site / "rtvoice_widget"
    assert Path(found["static"]) == static
    assert found["esm"] == (static / "loader.js").read_text(encoding="utf-8")  # anywidget holds the text
    assert found["bundle"] == (STATIC / "widget.js").read_text(encoding="utf-8")
    assert len(found["front_end"]) == 16


def test_the_committed_bundle_is_what_js_builds(tmp_path):
    """``npm run build`` after every change in js/: rebuilt here, byte for byte."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required to check the front-end bundle (apt-get install nodejs)")
    if not (JS / "node_modules" / "esbuild").is_dir():
        pytest.fail("esbuild is not installed: run `npm ci` in js/ (the README's test command does)")
    result = subprocess.run([node, str(JS / "build.mjs"), str(tmp_path)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("widget.js", "loader.js"):
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), \
            f"rtvoice_widget/static/{name} is stale: run `npm run build` in js/ and commit it"
