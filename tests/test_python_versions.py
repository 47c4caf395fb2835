"""The kernel-side core on the oldest Python that ``pyproject.toml`` admits.

The suite runs on one interpreter (CI's); a call that exists only in newer Pythons passes there
and breaks every user of the oldest supported one (``binascii.a2b_base64(strict_mode=...)``,
new in 3.11, once turned every received audio delta into a protocol error on 3.10). So this
test builds a virtual environment of that Python with the package's runtime dependencies and
the test tools, and runs the core's test modules in it against this working tree.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OLDEST = re.fullmatch(r">=\s*(3\.\d+)", PYPROJECT["project"]["requires-python"]).group(1)

# Browserless and model-free: protocol, session, event log, audio, tools, config, turns.
CORE_TESTS = [
    "tests/test_protocol.py", "tests/test_events.py", "tests/test_audio.py", "tests/test_config.py",
    "tests/test_session.py", "tests/test_session_wire.py", "tests/test_session_scripted_server.py", "tests/test_session_outbox.py",
    "tests/test_tools.py", "tests/test_turns.py",
]
TEST_TOOLS = ["openai>=1.100", "pytest>=8", "pytest-asyncio>=0.23", "pytest-timeout>=2", "hypothesis>=6",
              "jsonschema>=4", "pyarrow>=14"]


def _interpreter(version: str) -> str | None:
    # pyenv keeps its versions out of PATH unless selected, and its shims fail for unselected
    # ones (this machine kind has 3.10-3.13 there); else a pythonX.Y on PATH.
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")))
    if candidates:
        return candidates[-1]
    found = shutil.which(f"python{version}")
    return found if found and "/shims/" not in found else None


@pytest.mark.timeout(1200)
def test_the_core_suite_passes_on_the_oldest_supported_python(tmp_path):
    assert sys.version_info[:2] > tuple(map(int, OLDEST.split("."))), "this suite runs on a newer Python"
    python = _interpreter(OLDEST)
    # This machine kind (and CI's) has pyenv's 3.10: a missing one is a broken setup, not a pass.
    assert python is not None, f"no Python {OLDEST} interpreter found (pyenv versions or python{OLDEST} on PATH)"
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run(pip + PYPROJECT["project"]["dependencies"] + TEST_TOOLS,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    # The working tree itself, first on the path, not an installed copy.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE_TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"Python {OLDEST}: {summary}\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
