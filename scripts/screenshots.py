#!/usr/bin/env python3
"""Regenerate the README's screenshots (docs/images/*.png) from a clean run of the tutorials.

    .venv/bin/python scripts/screenshots.py            # writes docs/images/builder.png, trend.png
    .venv/bin/python scripts/screenshots.py --out DIR  # somewhere else

The tutorials are copied, with their outputs cleared, into a temporary folder that an isolated
JupyterLab serves on 127.0.0.1 (its own config, data, runtime and IPython folders; no news or
update checks). Headless Chromium (Debian's ``/usr/bin/chromium``, or ``$HEAPSEG_CHROMIUM``,
driven by Playwright) opens each notebook, runs all its cells and photographs one cell or output.
Nothing in a picture may show a temporary path: the script checks the text of what it
photographs and fails if it finds one. Charts are drawn in the kernel (vl-convert) in DejaVu Sans
(``$HEAPSEG_CHART_FONT``, unless set otherwise), the font Chromium then shows their text in, so
that the text fits the layout computed for it.

Each shot is one entry of :data:`SHOTS`: the notebook, the cell (the first code cell whose
source contains a marker), what to photograph, and what to wait for first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
OUT = REPO / "docs" / "images"
CHROMIUM = Path(os.environ.get("HEAPSEG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECONDS = 1000  # Playwright counts in milliseconds
#: The font charts are drawn in: Debian's default sans-serif, which Chromium uses for SVG text.
CHART_FONT = "DejaVu Sans"
#: What a picture must never show: a temporary folder (the run's own is checked too).
TEMP_PATH = re.compile(r"/tmp/|/var/folders/|pytest-of-")


@dataclass(frozen=True)
class Shot:
    """One picture: ``what`` of the code cell of ``notebook`` whose source contains ``cell``."""

    image: str
    notebook: str
    cell: str
    #: "cell": the code and its output, in the whole JupyterLab window; "output": the first
    #: rendered image (a chart) of the cell's output, alone.
    what: str
    #: A CSS selector inside the cell to wait for before the picture (e.g. a finished count).
    ready: str = ""
    #: Device pixels per CSS pixel (2: a sharp chart).
    scale: int = 1


SHOTS = [
    Shot(
        "builder.png",
        "02-segment-builder.ipynb",
        'editor.open("Window shoppers")',
        "cell",
        ready=".heapseg-summary:not(.heapseg-busy) .heapseg-count",
    ),
    Shot(
        "trend.png", "03-analysis-by-segment.ipynb", 'charts.trend(ds, "Session"', "output", scale=2
    ),
]


# ---------------------------------------------------------------------------- JupyterLab


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def jupyterlab(home: Path, root: Path) -> Iterator[tuple[str, str]]:
    """An isolated JupyterLab serving ``root``: yields (base URL, token); stopped at the end."""
    dirs = {
        name: home / name.lower()
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    settings = dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {**os.environ, **{k: str(v) for k, v in dirs.items()}, "TMPDIR": str(home)}
    env.setdefault("HEAPSEG_CHART_FONT", CHART_FONT)
    # The kernel imports heapseg from this checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("JUPYTER_PATH", None)
    port, token = _free_port(), uuid.uuid4().hex
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = home / "jupyter-lab.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not start:\n{log.read_text()[-3000:]}"
                    ) from exc
                time.sleep(0.5)
        yield url, token
    finally:
        # The server and its kernels share its process group.
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


# ---------------------------------------------------------------------------- pictures


def copy_clean(notebook: str, root: Path) -> None:
    """The tutorial without its saved outputs: every output in a picture comes from this run."""
    document = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    for cell in document.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(document, root / notebook)


def run_all(page, url: str, token: str, notebook: str, timeout: float) -> None:
    """Open the notebook, run every cell, and wait until each code cell has its number."""
    # ?reset ignores a saved workspace: only this notebook is open.
    page.goto(f"{url}/lab/tree/{notebook}?reset&token={token}")
    # The status bar says "| Idle" once the kernel is connected; Run All before that is lost.
    page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=180 * SECONDS)
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll(
                '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout * SECONDS,
        polling=1000,
    )
    errors = page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type*='error']")
    if errors.count():
        raise RuntimeError(f"{notebook} failed:\n{errors.first.inner_text()[:3000]}")


def take(page, shot: Shot, target: Path, home: Path) -> None:
    cell = page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea", has_text=shot.cell)
    )
    cell = cell.first
    if shot.ready:
        cell.locator(shot.ready).first.wait_for(timeout=120 * SECONDS)
    if shot.what == "output":
        element = cell.locator(".jp-OutputArea-output img, .jp-OutputArea-output svg").first
        element.scroll_into_view_if_needed()
        check_no_temp_path(shot, cell.locator(".jp-OutputArea").inner_text(), home)
        element.screenshot(path=str(target))
        return
    # The cell, active, at the top of the notebook's view; the rest of JupyterLab around it.
    cell.locator(".jp-InputPrompt").first.click()
    cell.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.mouse.move(0, 0)  # no hover highlight
    page.wait_for_timeout(500)
    check_no_temp_path(shot, page.locator("body").inner_text(), home)
    page.screenshot(path=str(target))


def check_no_temp_path(shot: Shot, text: str, home: Path) -> None:
    found = TEMP_PATH.search(text) or re.search(re.escape(str(home)), text)
    if found:
        start = max(0, found.start() - 80)
        raise RuntimeError(
            f"{shot.image} would show a temporary path: {text[start : start + 200]!r}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the pictures go")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to run a notebook")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium, or set HEAPSEG_CHROMIUM")
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="heapseg-screenshots-"))
    root = home / "notebooks"
    root.mkdir()
    try:
        for notebook in dict.fromkeys(s.notebook for s in SHOTS):
            copy_clean(notebook, root)
        with jupyterlab(home / "jupyter", root) as (url, token), sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                for notebook in dict.fromkeys(s.notebook for s in SHOTS):
                    scale = max(s.scale for s in SHOTS if s.notebook == notebook)
                    context = browser.new_context(
                        viewport={"width": 1600, "height": 1000}, device_scale_factor=scale
                    )
                    page = context.new_page()
                    page.set_default_timeout(60 * SECONDS)
                    try:
                        started = time.monotonic()
                        run_all(page, url, token, notebook, args.timeout)
                        print(f"{notebook}: ran in {time.monotonic() - started:.0f} s")
                        for shot in (s for s in SHOTS if s.notebook == notebook):
                            take(page, shot, args.out / shot.image, home)
                            print(f"  wrote {args.out / shot.image}")
                    except Exception:
                        failure = home / f"failure-{Path(notebook).stem}.png"
                        page.screenshot(path=str(failure))
                        print(f"  failed; the page is in {failure}", file=sys.stderr)
                        raise
                    finally:
                        context.close()
            finally:
                browser.close()
    except BaseException:
        print(f"kept {home} for inspection", file=sys.stderr)
        raise
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
