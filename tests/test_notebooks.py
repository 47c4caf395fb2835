"""Every notebook in notebooks/ runs headless (nbclient, a real ipykernel) without an error.

Each runs in a temporary copy of notebooks/ (so files it writes stay out of the repo) with
``OPENAI_API_KEY`` removed: the local backend, with espeak-ng WAVs as the scripted microphone.
The notebooks that talk load the local server's models: marked ``models``. Outputs are
checked for what each notebook promises to show, not only for the absence of errors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, tmp_path: Path, monkeypatch, timeout: int = 600) -> nbformat.NotebookNode:
    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, workdir, ignore=shutil.ignore_patterns("*.zip", ".ipynb_checkpoints"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    notebook = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    return notebook


def outputs(notebook: nbformat.NotebookNode, mime: str) -> list:
    return [out["data"][mime] for cell in notebook.cells if cell.cell_type == "code"
            for out in cell.outputs if "data" in out and mime in out["data"]]


def stream_text(notebook: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.get("output_type") == "stream")


def test_every_notebook_is_tested():
    tested = {"quickstart", "analyze_events", "tools", "agents", "compare"}
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == tested


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


def test_analyze_events_shows_every_table_and_plot(tmp_path, monkeypatch):
    notebook = execute("analyze_events", tmp_path, monkeypatch)
    images = outputs(notebook, "image/png")
    assert len(images) == 3  # timeline, latency, event counts
    tables = outputs(notebook, "text/html")
    assert len(tables) >= 8
    html = "\n".join(tables)
    for column in ("speech_to_first_audio_ms", "truncated_at_ms", "audio_end_ms", "call_id", "usage.total_tokens"):
        assert column in html
    audio = [h for h in tables if "<audio" in h]
    assert len(audio) == 2


@pytest.mark.models
def test_quickstart_talks_on_the_local_backend(tmp_path, monkeypatch):
    notebook = execute("quickstart", tmp_path, monkeypatch)
    text = stream_text(notebook)
    assert "backend: local" in text
    assert "assistant:" in text and "latency" in text
    assert any("<audio" in h for h in outputs(notebook, "text/html"))
    assert (tmp_path / "notebooks" / "quickstart_session.zip").is_file()
    assert outputs(notebook, "image/png")
    assert outputs(notebook, "application/vnd.jupyter.widget-view+json")


@pytest.mark.models
def test_tools_notebook_calls_python_over_the_dataframe(tmp_path, monkeypatch):
    notebook = execute("tools", tmp_path, monkeypatch)
    text = stream_text(notebook)
    assert "('total_sales', 'north')" in text
    assert "('best_product', None)" in text
    html = "\n".join(outputs(notebook, "text/html"))
    assert "total_sales" in html and "best_product" in html


@pytest.mark.models
def test_agents_notebook_hands_off_and_asks_for_approval(tmp_path, monkeypatch):
    notebook = execute("agents", tmp_path, monkeypatch)
    text = stream_text(notebook)
    assert "active agent: Triage" in text and "active agent: Billing" in text
    assert "('get_balance'," in text
    html = "\n".join(outputs(notebook, "text/html"))
    assert "agent.handoff" in html and "Triage -&gt; Billing" in html
    assert "tool.approval_requested" in html and "tool.approval" in html
    assert outputs(notebook, "application/vnd.jupyter.widget-view+json")


def test_compare_notebook_replays_two_instruction_sets(tmp_path, monkeypatch):
    notebook = execute("compare", tmp_path, monkeypatch)
    text = stream_text(notebook)
    # Two replays of two turns each, every turn answered.
    assert text.count("answered") == 4, text
    html = "\n".join(outputs(notebook, "text/html"))
    for column in ("gap_ms_default", "gap_ms_terse", "reply_terse", "tool_calls_default", "user_recorded"):
        assert column in html
    assert len(outputs(notebook, "image/png")) == 1
