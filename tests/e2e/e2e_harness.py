"""A real JupyterLab / Notebook 7 driven by headless Debian Chromium, with a WAV as the microphone.

Plain classes, no pytest in here, so that ``bench/bench_browser.py`` reuses exactly what the e2e
suite uses. The recipe and its pitfalls are in ``/work/shared/browser-testing.md``; the ones that
shaped this file:

- the kernel start race: "idle" shows before the kernel runs code, so :meth:`NotebookPage.run_cell`
  checks that the cell really started and retries;
- JupyterLab restores its last workspace: every server gets fresh workspace / settings dirs;
- Playwright refuses ``--user-data-dir``: Chromium is launched with ``launch_persistent_context``;
- the fake microphone file loops, and is fixed for the life of a browser: one browser per WAV.

Everything binds to 127.0.0.1 and only processes started here are stopped here.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"

# Flags proved on this machine (browser-testing.md); the networking ones stop Chromium from
# retrying hosts it can never reach.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


class HarnessError(RuntimeError):
    """The harness could not bring up or drive Jupyter / Chromium (not a product failure)."""


# ---------------------------------------------------------------------------------------------
# Speech fixtures


def make_speech_wav(path: Path, text: str, *, lead_s: float = 0.5, tail_s: float = 3.0,
                    rate: int = 48000, voice: str = "en-us", words_per_min: int = 160) -> Path:
    """Speak ``text`` with espeak-ng into a mono 16-bit WAV at ``rate``, padded with silence.

    Chromium plays this file as the microphone, in a loop: ``tail_s`` is the pause before the
    sentence comes round again.
    """
    path = Path(path)
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_min), "-w", str(raw), text],
                   check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path),
                    "pad", str(lead_s), str(tail_s)], check=True, capture_output=True)
    raw.unlink()
    return path


def make_silence_wav(path: Path, seconds: float, rate: int = 48000) -> Path:
    """A silent mono WAV: a microphone that hears nothing."""
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(path),
                    "trim", "0", str(seconds)], check=True, capture_output=True)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Jupyter server


ANNOUNCEMENTS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


@dataclass
class JupyterServer:
    """One ``jupyter lab`` on 127.0.0.1 with a random port, a token and fresh state dirs.

    The same server also serves Notebook 7 (``/notebooks/NAME.ipynb``): the ``notebook`` package
    registers itself as a server extension, so one process covers both front ends.
    """

    root: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    url: str = ""
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, timeout_s: float = 90.0) -> "JupyterServer":
        state = self.root / ".jupyter-state"
        notebooks = self.root / "notebooks"
        for sub in ("config/labconfig", "runtime", "workspaces", "settings"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        notebooks.mkdir(parents=True, exist_ok=True)
        # The news pop-up can cover controls; switch the plugin off for this server only.
        (state / "config/labconfig/page_config.json").write_text(
            json.dumps({"disabledExtensions": {ANNOUNCEMENTS_PLUGIN: True}}))
        env = dict(os.environ)
        # The kernel must reach our package and must never pick a hosted backend by accident.
        env.pop("OPENAI_API_KEY", None)
        env.pop("AZURE_OPENAI_API_KEY", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["JUPYTER_CONFIG_DIR"] = str(state / "config")
        env["JUPYTER_RUNTIME_DIR"] = str(state / "runtime")
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        env.update(self.env_overrides)
        self.log_path = state / "server.log"
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            "--ServerApp.allow_root=True",  # CI containers run as root
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={notebooks}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}",
            f"--LabApp.user_settings_dir={state / 'settings'}",
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=notebooks, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"jupyter lab exited early:\n{self.log_path.read_text()[-3000:]}")
            info = self._runtime_info(state / "runtime")
            if info and self._status_ok(info["url"]):
                self.url = info["url"].rstrip("/")
                return self
            time.sleep(0.2)
        self.stop()
        raise HarnessError(f"jupyter lab not up in {timeout_s}s:\n{self.log_path.read_text()[-3000:]}")

    @property
    def notebook_dir(self) -> Path:
        return self.root / "notebooks"

    def _runtime_info(self, runtime: Path) -> dict | None:
        assert self.process is not None
        for path in glob.glob(str(runtime / f"jpserver-{self.process.pid}.json")):
            try:
                return json.loads(Path(path).read_text())
            except (OSError, json.JSONDecodeError):
                return None  # being written
        return None

    def _status_ok(self, url: str) -> bool:
        req = urllib.request.Request(f"{url.rstrip('/')}/api/status",
                                     headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def create_notebook(self, name: str, cells: list[str] = ()) -> str:
        """Write ``name`` (a fresh .ipynb with a python3 kernel) and return its file name."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src) for src in (list(cells) or [""])]
        nbformat.write(nb, self.notebook_dir / name)
        return name

    def page_url(self, kind: str, name: str) -> str:
        if kind == "lab":
            # ?reset drops any restored workspace so this notebook is the one in front.
            return f"{self.url}/lab/tree/{name}?reset&token={self.token}"
        if kind == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        raise ValueError(f"kind must be 'lab' or 'notebook', not {kind!r}")

    def shutdown_kernels(self) -> None:
        """Stop every kernel of this server (through its REST API, so nothing else is touched)."""
        headers = {"Authorization": f"token {self.token}"}
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    f"{self.url}/api/kernels", headers=headers), timeout=5) as resp:
                kernels = json.load(resp)
            for k in kernels:
                urllib.request.urlopen(urllib.request.Request(
                    f"{self.url}/api/kernels/{k['id']}", method="DELETE", headers=headers), timeout=10)
        except OSError:
            pass

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.shutdown_kernels()
        # Our own process group only (start_new_session=True above).
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


# ---------------------------------------------------------------------------------------------
# Browser


@dataclass
class ConsoleEntry:
    kind: str  # console message type ("log", "error", ...) or "pageerror"
    text: str
    t: float


class Browser:
    """Headless Debian Chromium whose microphone is ``mic_wav`` (looping unless ``loop=False``)."""

    def __init__(self, playwright, mic_wav: Path, *, loop: bool = True, user_data_dir: Path | None = None):
        self._own_dir = user_data_dir is None
        self.user_data_dir = Path(user_data_dir or tempfile.mkdtemp(prefix="rtvoice-chromium-"))
        mic = str(Path(mic_wav).resolve()) + ("" if loop else "%noloop")
        self.context = playwright.chromium.launch_persistent_context(
            str(self.user_data_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS + [f"--use-file-for-fake-audio-capture={mic}"],
            ignore_default_args=["--mute-audio"],
            viewport={"width": 1400, "height": 1000},
        )
        self.pages: list[NotebookPage] = []

    def open(self, server: JupyterServer, name: str, kind: str = "lab") -> "NotebookPage":
        page = self.context.new_page()
        nb_page = NotebookPage(page, kind)
        self.pages.append(nb_page)
        page.goto(server.page_url(kind, name))
        nb_page.wait_ready()
        nb_page.ready_at = len(nb_page.console)
        return nb_page

    def close(self) -> None:
        for page in self.pages:
            page.shutdown_kernel()
        try:
            self.context.close()
        finally:
            if self._own_dir:
                shutil.rmtree(self.user_data_dir, ignore_errors=True)


# JS run inside the page. `window.jupyterapp` exists because the server runs with
# expose_app_in_browser; in both Lab and Notebook 7 the current widget is the NotebookPanel.
_JS_KERNEL_READY = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const ctx = panel && panel.sessionContext;
  const kernel = ctx && ctx.session && ctx.session.kernel;
  return !!(kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'
            && panel.content && panel.content.widgets.length > 0);
}"""

_JS_APPEND_AND_RUN = """async (code) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const nb = panel.content;
  const index = nb.widgets.length;
  nb.model.sharedModel.insertCell(index, {cell_type: 'code', source: code});
  nb.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
  return index;
}"""

_JS_RERUN = """async (index) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  nb.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
}"""

_JS_CELL_STATE = """(index) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const cell = nb.widgets[index];
  const prompt = cell.node.querySelector('.jp-InputPrompt');
  return {
    count: cell.model.executionCount,
    prompt: prompt ? prompt.textContent : '',
    outputs: cell.model.outputs.toJSON(),
  };
}"""

_JS_KERNEL_EXEC = """async ([code, timeoutMs]) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, store_history: false, silent: false});
  let out = '', err = null;
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === 'stream') out += msg.content.text;
    else if (t === 'error') err = msg.content.ename + ': ' + msg.content.evalue + '\\n'
                                  + (msg.content.traceback || []).join('\\n');
  };
  const timedOut = await Promise.race([
    future.done.then(() => false),
    new Promise((resolve) => setTimeout(() => resolve(true), timeoutMs)),
  ]);
  return {out, err, timedOut};
}"""


class CellError(AssertionError):
    """A cell raised in the kernel; the message carries the traceback."""


class NotebookPage:
    """One open notebook (JupyterLab or Notebook 7) with console capture and kernel helpers."""

    def __init__(self, page, kind: str):
        self.page = page
        self.kind = kind
        self.console: list[ConsoleEntry] = []
        self.ready_at = 0  # console entries before this index were logged while Jupyter started
        page.on("console", lambda m: self.console.append(ConsoleEntry(m.type, m.text, time.time())))
        page.on("pageerror", lambda e: self.console.append(ConsoleEntry("pageerror", str(e), time.time())))

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the notebook is shown and its kernel is connected and idle."""
        try:
            self.page.wait_for_function(_JS_KERNEL_READY, timeout=timeout_s * 1000, polling=200)
        except Exception as exc:  # playwright's TimeoutError
            raise HarnessError(f"kernel never became ready in the {self.kind} page: {exc}") from exc

    def run_cell(self, code: str, *, timeout_s: float = 120.0, start_timeout_s: float = 5.0,
                 attempts: int = 4) -> list[dict]:
        """Append a cell with ``code``, run it through the UI command, wait for it to finish.

        Returns the cell's outputs (nbformat dicts). Retries when the run command was swallowed
        by the kernel start race (the cell neither shows ``[*]`` nor gets an execution count).
        Raises :class:`CellError` when the cell raised.
        """
        index = self.page.evaluate(_JS_APPEND_AND_RUN, code)
        for attempt in range(attempts):
            if self._wait_started(index, start_timeout_s):
                break
            self.wait_ready()
            self.page.evaluate(_JS_RERUN, index)
        else:
            raise HarnessError(f"cell {index} never started after {attempts} attempts")
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.page.evaluate(_JS_CELL_STATE, index)
            if state["count"] is not None and "*" not in state["prompt"]:
                break
            if time.monotonic() > deadline:
                raise HarnessError(f"cell {index} still running after {timeout_s}s")
            time.sleep(0.1)
        errors = [o for o in state["outputs"] if o.get("output_type") == "error"]
        if errors:
            e = errors[0]
            raise CellError(f"{e['ename']}: {e['evalue']}\n" + "\n".join(e.get("traceback", [])))
        return state["outputs"]

    def _wait_started(self, index: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.page.evaluate(_JS_CELL_STATE, index)
            if state["count"] is not None or "*" in state["prompt"]:
                return True
            time.sleep(0.1)
        return False

    def kernel_exec(self, code: str, timeout_s: float = 120.0) -> str:
        """Run ``code`` in this notebook's kernel (no cell) and return its stdout."""
        result = self.page.evaluate(_JS_KERNEL_EXEC, [code, timeout_s * 1000])
        if result["timedOut"]:
            raise HarnessError(f"kernel did not finish {code[:200]!r} within {timeout_s}s "
                               f"(busy or hung); output so far: {result['out'][-1000:]!r}")
        if result["err"]:
            raise CellError(result["err"])
        return result["out"]

    def kernel_json(self, expr: str, timeout_s: float = 120.0):
        """Evaluate the Python expression ``expr`` in the kernel and return it, through JSON."""
        marker = "@@RTVOICE-JSON@@"
        out = self.kernel_exec(
            f"import json as _j\nprint({marker!r} + _j.dumps({expr}, default=str))", timeout_s)
        for line in reversed(out.splitlines()):
            if line.startswith(marker):
                return json.loads(line[len(marker):])
        raise HarnessError(f"no JSON in kernel output: {out[-2000:]!r}")

    def wait_kernel_true(self, expr: str, timeout_s: float, poll_s: float = 0.5):
        """Poll the kernel until ``expr`` is truthy; return its last value (falsy on timeout)."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.kernel_json(expr)
            if value:
                return value
            time.sleep(poll_s)
        return value

    def shutdown_kernel(self) -> None:
        """Shut this notebook's kernel down (and with it any local server it started)."""
        try:
            self.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception:  # the page or its kernel may already be gone
            pass

    def console_errors(self, include_startup: bool = False) -> list[ConsoleEntry]:
        """Errors and uncaught exceptions logged by the page.

        By default only those since the notebook became ready: Notebook 7 itself logs a couple of
        errors while its app starts (e.g. "Command 'filebrowser:open-path' not registered"),
        before any cell of ours has run.
        """
        entries = self.console if include_startup else self.console[self.ready_at:]
        return [c for c in entries if c.kind in ("error", "pageerror")]

    def save_artifacts(self, directory: Path, stem: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=str(directory / f"{stem}.png"), full_page=True)
        except Exception as exc:  # the page may be gone; the console log still matters
            (directory / f"{stem}.screenshot-error.txt").write_text(repr(exc))
        (directory / f"{stem}.console.log").write_text(
            "".join(f"{c.t:.3f} [{c.kind}] {c.text}\n" for c in self.console))
