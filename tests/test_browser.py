"""The tour in a real browser: JupyterLab on loopback, Chromium driven by Playwright.

JupyterLab runs the tour notebook; the test then looks at the page as a user would: the graph's
nodes are in the DOM with a size, the retrace explanation and the gradient table are shown, and the
trace menu (an ipywidgets Dropdown) renders and changes the drawing when another trace is chosen.
Screenshots go to ``out/screenshots`` (or ``$TFMAGIC_SCREENSHOTS``); the test prints the folder.

Chromium is Debian's (``/usr/bin/chromium``, or ``$TFMAGIC_CHROMIUM``); nothing is downloaded.
"""

import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("TFMAGIC_CHROMIUM", "/usr/bin/chromium")
SHOTS = pathlib.Path(os.environ.get("TFMAGIC_SCREENSHOTS", ROOT / "out" / "screenshots"))

pytestmark = pytest.mark.browser


def _missing() -> str:
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[browser]')"
    return ""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1, serving a copy of the tour; yields (base url, token)."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run in CI: {missing}")
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "tour.ipynb", root / "tour.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    # Every cell in the DOM (no windowing), so the test sees outputs wherever they are.
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (root / "settings" / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (root / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
             "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces")})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    log.flush()
                    pytest.fail("JupyterLab did not start: " + (root / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab, request):
    """The tour opened in Chromium and run to the end with Run All Cells."""
    from playwright.sync_api import sync_playwright

    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"browser test: screenshots in {SHOTS}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.goto(f"{base}/lab/tree/tour.ipynb?token={token}")
        tab.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        select = tab.get_by_role("button", name="Select", exact=True)
        try:  # JupyterLab asks for a kernel when it cannot tell which one the notebook had
            select.wait_for(timeout=5_000)
            select.click()
        except Exception:  # no dialog: the notebook's kernel started by itself
            pass
        tab.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        tab.get_by_role("menuitem", name="Run", exact=True).click()
        tab.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        _wait_until_run(tab)
        tab.screenshot(path=str(SHOTS / "tour-end.png"))
        yield tab
        browser.close()


def _wait_until_run(tab, timeout=240):
    """Until every code cell has an execution count and the kernel is idle."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pending = tab.evaluate("""() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
            return prompts.filter(p => !/\\[\\d+\\]/.test(p.textContent)).length;
        }""")
        idle = tab.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
        if pending == 0 and idle:
            return
        time.sleep(1)
    tab.screenshot(path=str(SHOTS / "tour-unfinished.png"))
    raise AssertionError(f"the tour did not finish running in {timeout} s ({pending} cells pending); "
                         f"see {SHOTS / 'tour-unfinished.png'}")


def _show(tab, locator, name):
    locator.scroll_into_view_if_needed()
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(SHOTS / name))
    return locator.bounding_box()


def test_graph_svg_is_drawn_with_visible_nodes(page):
    nodes = page.locator(".jp-OutputArea-output svg g.node")
    assert nodes.count() >= 10
    box = _show(page, nodes.first, "graph.png")
    assert box and box["width"] > 0 and box["height"] > 0
    first_svg = page.locator(".jp-OutputArea-output svg").first
    assert "MatMul" in first_svg.inner_html() or "AddV2" in first_svg.inner_html()


def test_retrace_explanation_is_shown(page):
    note = page.get_by_text("retraced: trace 2").first
    box = _show(page, note, "retrace.png")
    assert box and box["height"] > 0
    assert "a: float32[2] -> float32[3]" in note.inner_text()


def test_tape_table_is_shown(page):
    table = page.locator(".tfmagic-tape").first
    box = _show(page, table, "tape-table.png")
    assert box and box["height"] > 0
    text = table.inner_text()
    assert "w1" in text and "36" in text and "10" in text


def test_trace_menu_widget_renders_and_responds(page):
    cell = page.locator(".jp-CodeCell", has=page.locator(".widget-dropdown select")).first
    menu = cell.locator(".widget-dropdown select")
    static = cell.locator(".tfmagic-graph").first
    _show(page, menu, "trace-menu-before.png")
    assert "trace 2: x: int32[2]" in static.inner_html()  # --trace 2, drawn as a static output
    assert cell.locator(".widget-output .tfmagic-graph").count() == 0
    menu.select_option(label="1: x: int32")
    drawn = cell.locator(".widget-output .tfmagic-graph")
    drawn.wait_for(timeout=30_000)
    assert "trace 1: x: int32" in drawn.inner_html() and drawn.locator("svg g.node").count() > 0
    _show(page, drawn, "trace-menu-after.png")


def test_explorer_draws_on_a_click(page):
    cell = page.locator(".jp-CodeCell", has=page.locator(".widget-toggle-buttons")).first
    button = cell.get_by_role("button", name="collapse all")
    _show(page, button, "explorer-before.png")
    assert cell.locator(".widget-html .tfmagic-graph").count() == 0
    button.click()
    drawn = cell.locator(".widget-html .tfmagic-graph")
    drawn.wait_for(timeout=30_000)
    assert drawn.locator("svg g.node").count() > 0
    _show(page, drawn, "explorer-after.png")
