"""The front end's pure logic (resampler, PCM16 packing, jitter buffer, flush, played-ms
accounting, event store) under node's built-in test runner, so `pytest` is the one command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "js"


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the front-end tests (apt-get install nodejs)")
    files = sorted(str(p) for p in (JS / "test").glob("*.test.mjs"))
    assert files, "no js/test/*.test.mjs found"
    result = subprocess.run([node, "--test", *files], cwd=JS, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    passed = re.search(r"^# pass (\d+)", output, re.M)
    failed = re.search(r"^# fail (\d+)", output, re.M)
    assert result.returncode == 0 and failed and failed.group(1) == "0", output[-4000:]
    assert passed and int(passed.group(1)) > 0, output[-4000:]
