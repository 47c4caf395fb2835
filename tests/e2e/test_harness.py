"""The harness itself, proved with a tiny anywidget of our own (tests/e2e/probe_widget.py).

If these fail, the product tests in this folder cannot be trusted either way; if these pass and a
VoiceChat test fails, the fault is in the product, not in Jupyter, Chromium or the fake mic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

E2E_DIR = str(Path(__file__).resolve().parent)

PROBE_CELL = f"""
import sys
sys.path.insert(0, {E2E_DIR!r})
from probe_widget import ProbeWidget
probe = ProbeWidget()
probe
"""


@pytest.mark.parametrize("kind", ["lab", "notebook"])
def test_probe_widget_hears_the_wav_and_plays_kernel_audio(jupyter, browsers, wavs, kind):
    name = jupyter.create_notebook(f"probe-{kind}.ipynb")
    page = browsers(wavs["question"]).open(jupyter, name, kind)

    page.run_cell(PROBE_CELL)
    page.page.wait_for_selector(".rtvoice-probe:has-text('probe running')", timeout=30_000)

    # The spoken question reaches the kernel as 20 ms PCM16 frames, in order.
    heard = page.wait_kernel_true(
        "probe.summary() if probe.summary()['speech_frames'] >= 20 else None", timeout_s=30)
    assert heard, page.kernel_json("probe.summary()")
    assert heard["samples_per_frame"] == [480]
    assert heard["in_order"]
    assert heard["max_rms"] > 0.05
    assert heard["state"] == "running"
    assert heard["context_rate"] > 0

    # One second of tone sent from the kernel is played out by the worklet, and no more.
    sent = page.kernel_json("probe.play_tone(1.0)")
    played = page.wait_kernel_true(
        f"probe.played_samples if probe.played_samples >= {sent} - 24 else None", timeout_s=20)
    assert played, page.kernel_json("probe.summary()")
    assert played <= sent + 24

    assert page.console_errors() == []


def test_kernel_json_reports_kernel_errors(jupyter, browsers, wavs):
    from e2e_harness import CellError

    name = jupyter.create_notebook("errors.ipynb")
    page = browsers(wavs["silence"]).open(jupyter, name, "lab")
    assert page.kernel_json("{'answer': 6 * 7}") == {"answer": 42}
    with pytest.raises(CellError, match="ZeroDivisionError"):
        page.kernel_json("1 / 0")
    with pytest.raises(CellError, match="NameError"):
        page.run_cell("undefined_name_for_the_harness")
