"""Fixtures of the browser suite: one JupyterLab per test session, one Chromium per microphone WAV.

A failed test leaves, for every page it opened, a full-page screenshot and the browser console log
in ``artifacts/e2e/<test>/`` at the repo root (the pytest hook at the bottom).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2e_harness import REPO_ROOT, Browser, JupyterServer, make_silence_wav, make_speech_wav

ARTIFACTS = REPO_ROOT / "artifacts" / "e2e"

QUESTION_TEXT = "What is the capital of France?"


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def jupyter(e2e_root):
    """The one JupyterLab (also serving Notebook 7) shared by the whole session."""
    server = JupyterServer(e2e_root / "jupyter").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wavs(e2e_root) -> dict[str, Path]:
    """Microphone recordings, generated once with espeak-ng + sox (48 kHz mono 16-bit).

    - ``question``: the question, then a long silence so one turn ends before it comes round;
    - ``silence``: a microphone that hears nothing.
    """
    d = e2e_root / "wavs"
    d.mkdir()
    return {
        "question": make_speech_wav(d / "question.wav", QUESTION_TEXT, lead_s=1.0, tail_s=30.0),
        "silence": make_silence_wav(d / "silence.wav", 5.0),
    }


@pytest.fixture
def browsers(playwright_driver, request):
    """Factory: ``browsers(mic_wav, loop=True) -> Browser``; all closed after the test.

    The pages of every browser are saved to ``artifacts/`` when the test fails.
    """
    opened: list[Browser] = []

    def launch(mic_wav: Path, loop: bool = True) -> Browser:
        browser = Browser(playwright_driver, mic_wav, loop=loop)
        opened.append(browser)
        return browser

    yield launch
    report = getattr(request.node, "rep_call", None)
    failed = report is None or report.failed
    if failed:
        stem_dir = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        for b_index, browser in enumerate(opened):
            for p_index, page in enumerate(browser.pages):
                page.save_artifacts(stem_dir, f"browser{b_index}-page{p_index}-{page.kind}")
    for browser in opened:
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
