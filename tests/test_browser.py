"""Does the course work in a real browser, the way learners use it in JupyterLab?

JupyterLab runs on loopback over a copy of notebooks/ and solutions/; Debian's chromium,
driven by Playwright, opens the notebooks and uses JupyterLab's own commands and keyboard.
Screenshots of every chapter, in the light and the dark theme, are saved to
tests/screenshots/ for a maintainer to look at.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from checkers.engine import workspace
from checkers.engine.outcomes import Outcome
from checkers.authoring.build import ROOT, split_solution

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).parent / "screenshots"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
VIEWPORT = {"width": 1280, "height": 900}
CHAPTERS = workspace.chapters()
LAB_SETTINGS = {  # no news pop-up over the screenshots
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}

# helpers the tests call in the page, through JupyterLab's application object
HELPERS = r"""
window.th = {
  sleep: ms => new Promise(resolve => setTimeout(resolve, ms)),
  panel: id => [...window.jupyterapp.shell.widgets('main')].find(w => w.id === id),
  async open(path) {
    const app = window.jupyterapp;
    await app.started; await app.restored;
    app.shell.collapseLeft();
    const panel = await app.commands.execute('docmanager:open', {path});
    await panel.context.ready;
    await panel.sessionContext.ready;
    for (let i = 0; i < 1200; i++) {
      const kernel = panel.sessionContext.session?.kernel;
      if (kernel && kernel.status === 'idle') return panel.id;
      await th.sleep(100);
    }
    throw new Error(`the kernel of ${path} never became idle`);
  },
  async runAll(id) {
    const commands = window.jupyterapp.commands;  // widgetId: this notebook, whichever has focus
    await commands.execute('notebook:clear-all-cell-outputs', {widgetId: id});
    return await commands.execute('notebook:run-all-cells', {widgetId: id});
  },
  cells(id) {
    return th.panel(id).content.widgets.map(cell => ({
      id: cell.model.id,
      state: cell.model.executionState,
      source: cell.model.sharedModel.getSource(),
      results: [...cell.node.querySelectorAll('.tickethub-result')].map(e => e.classList[1]),
      texts: [...cell.node.querySelectorAll('.tickethub-text')].map(e => e.textContent),
      badges: Object.fromEntries([...cell.node.querySelectorAll('.tickethub-badge')]
        .map(e => [e.dataset.exercise, e.classList[1]])),
      output: cell.outputArea ? cell.outputArea.node.textContent : '',
    }));
  },
  activeCell: id => th.panel(id).content.activeCell.model.id,
  diagrams(id) {  // every Mermaid diagram of a notebook: drawn (an SVG, inline or as an image), or failed
    return [...th.panel(id).node.querySelectorAll('.jp-RenderedMermaid')].map(e => ({
      svg: !!e.querySelector('svg, img[src^="data:image/svg+xml"]'), failed: e.classList.contains('jp-mod-warning'), text: e.textContent.slice(0, 80),
    }));
  },
  async show(id, cellId) {
    window.jupyterapp.shell.activateById(id);
    const cell = th.panel(id).content.widgets.find(c => c.model.id === cellId);
    cell.node.scrollIntoView({block: 'start'});
    await th.sleep(300);
  },
  async theme(name) {
    // wait until the theme's stylesheet applies, not only until it is announced
    const background = name.includes('Dark') ? '#111' : 'white';
    const applied = () => getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim() === background;
    await window.jupyterapp.commands.execute('apputils:change-theme', {theme: name});
    while (document.body.dataset.jpThemeName !== name || !applied()) await th.sleep(50);
    await th.sleep(300);
  },
  contrast(el) {
    // WCAG contrast of an element's text against what is really behind it, translucent layers included
    const rgba = s => { const v = s.match(/[\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; };
    const over = ([r, g, b, a], below) => [r, g, b].map((v, i) => v * a + below[i] * (1 - a));
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] === 1) break;
    }
    const background = layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255]);
    const text = over(rgba(getComputedStyle(el).color), background);
    const channel = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const [light, dark] = [luminance(text), luminance(background)].sort((a, b) => b - a);
    return (light + 0.05) / (dark + 0.05);
  },
  contrasts(id) {
    const selector = '.tickethub-result, .tickethub-label, .tickethub-text, .tickethub-badge, .tickethub-progress';
    return [...th.panel(id).node.querySelectorAll(selector)]
      .map(e => [e.className + ': ' + e.textContent.slice(0, 40), th.contrast(e)]);
  },
  async close(id) {
    const panel = th.panel(id);
    await panel.sessionContext.shutdown();
    panel.dispose();
  },
};
"""


def unavailable(reason: str):
    """Skip where the browser cannot be had; in CI that is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback, serving a copy of notebooks/ and solutions/: its URL and folder."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: `apt-get install chromium` (course.py test does it as root)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Playwright is not installed: `pip install -r requirements-test.txt`")
    tmp = tmp_path_factory.mktemp("lab")
    course = tmp / "course"
    for folder in ("notebooks", "solutions"):
        shutil.copytree(ROOT / folder, course / folder, ignore=shutil.ignore_patterns("work", ".ipynb_checkpoints"))
    for name, value in LAB_SETTINGS.items():
        (tmp / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "settings" / name).write_text(json.dumps(value))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETHUB_", "FLASK_"))}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    log = (tmp / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
         "--ServerApp.password=", "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={course}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.2)
        yield SimpleNamespace(url=url, course=course)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    """A chromium page with JupyterLab loaded and the helpers above."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    for old in SHOTS.glob("*.png"):  # this module's own screenshots only: the site tests keep theirs here too
        if not old.name.startswith("site-"):
            old.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(90_000)
        page.add_init_script(HELPERS)
        page.goto(f"{lab.url}/lab/tree/notebooks/index.ipynb")
        page.wait_for_function("window.jupyterapp !== undefined && window.th !== undefined")
        yield page
        browser.close()
    print(f"\nbrowser screenshots: {SHOTS}")


@pytest.fixture(scope="module")
def index(page):
    """The index notebook, run once; it stays open while the chapters are worked on."""
    panel = page.evaluate("th.open('notebooks/index.ipynb')")
    assert page.evaluate("id => th.runAll(id)", panel)
    page.wait_for_function("id => th.cells(id).some(c => Object.keys(c.badges).length)", arg=panel)
    return panel


def cell(page, panel: str, cell_id: str) -> dict:
    return next(c for c in page.evaluate("id => th.cells(id)", panel) if c["id"] == cell_id)


def wait_for(page, panel: str, cell_id: str, condition: str, timeout: float = 30_000) -> dict:
    """Wait until `condition` (JavaScript, about `c`, the cell) holds; return the cell."""
    try:
        page.wait_for_function(
            f"([panel, cellId]) => {{ const c = th.cells(panel).find(c => c.id === cellId); return {condition}; }}",
            arg=[panel, cell_id], timeout=timeout,
        )
    except Exception:  # Playwright's TimeoutError: say what the cell holds instead
        found = cell(page, panel, cell_id)
        raise AssertionError(f"cell {cell_id} never met `{condition}`: {found}") from None
    return cell(page, panel, cell_id)


def exercises(chapter: str) -> dict[str, str]:
    """Check cell id -> exercise, for every check in the chapter."""
    return {p["id"]: p["exercise"] for p in workspace.checkpoint(chapter)["protected"] if p["exercise"]}


def reference(chapter: str, cell_id: str) -> str:
    """The solution notebook's source of a cell, without its solution markers."""
    nb = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.id == cell_id)
    return split_solution(source, cell_id)[1]


def type_into(page, panel: str, cell_id: str, text: str) -> None:
    """Replace a cell's text by typing into its editor, as a learner would."""
    index = next(i for i, c in enumerate(page.evaluate("id => th.cells(id)", panel)) if c["id"] == cell_id)
    editor = page.locator(f"#{panel} .jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    assert cell(page, panel, cell_id)["source"] == text


def screenshots(page, chapter: str, views: list[tuple[str, str, str]]) -> None:
    """Save each (name, panel, cell to scroll to) in the light and the dark theme."""
    for theme, name in THEMES.items():
        page.evaluate("name => th.theme(name)", name)
        for view, panel, cell_id in views:
            page.evaluate("([id, cellId]) => th.show(id, cellId)", [panel, cell_id])
            page.screenshot(path=SHOTS / f"{chapter}-{view}-{theme}.png")
    page.evaluate("name => th.theme(name)", THEMES["light"])


GALLERY = """\
from IPython.display import HTML, display
from checkers.notebook.dashboard import Dashboard
from checkers.engine.outcomes import Outcome, Result, Step, Text

steps = [
    Step("`GET /api/events/` answers 200", "passed"),
    Step("`POST /api/events/` creates an event", "failed", expected="`201` and the event",
         seen="`500`", hint="Does the view `return` what the service created?"),
    Step("`GET /api/events/<id>` answers the event", "skipped"),
]
for outcome in Outcome:
    where = "tickethub/events/routes.py, line 12, in create_event" if outcome in ("ERROR", "TIMEOUT") else None
    display(Result("ex1", f"every block ({outcome.value})", outcome, steps, where=where))
display(Text("Hint 1 (of 2) for exercise 1", "Did you register the `events` blueprint?"))
display(Text("Solution to exercise 1", "def create_app():\\n    ...", code=True))
saved = {"01-project-structure": {"ex1": "PASS", "ex2": "FAIL", "ex3": "ERROR", "ex4": "TIMEOUT"},
         "02-configuration": {"ex1": "NOT_ATTEMPTED"}}
display(HTML(Dashboard("01-project-structure").html(saved)), HTML(Dashboard().html(saved)))
"""


def test_outcome_blocks_read_well_in_both_themes(page, lab):
    """Is the text of every outcome block, label, hint and dashboard at least 4.5:1 in both themes?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(GALLERY, id="gallery")],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nbformat.write(nb, lab.course / "notebooks" / "gallery.ipynb")
    panel = page.evaluate("path => th.open(path)", "notebooks/gallery.ipynb")
    assert page.evaluate("id => th.runAll(id)", panel)
    wait_for(page, panel, "gallery", f"c.results.length === {len(Outcome)} && c.badges['02-configuration/ex5']")
    page.set_viewport_size({"width": 1280, "height": 1900})  # every block in one picture
    try:
        for theme, name in THEMES.items():
            page.evaluate("name => th.theme(name)", name)
            page.evaluate("([id, cellId]) => th.show(id, cellId)", [panel, "gallery"])
            page.screenshot(path=SHOTS / f"outcomes-{theme}.png")
            poor = [(what, round(ratio, 1)) for what, ratio in page.evaluate("id => th.contrasts(id)", panel)
                    if ratio < 4.5]
            assert not poor, f"hard to read in the {theme} theme: {poor}"
    finally:
        page.set_viewport_size(VIEWPORT)
        page.evaluate("name => th.theme(name)", THEMES["light"])
        page.evaluate("id => th.close(id)", panel)


FENCE = re.compile(r"^```mermaid$", re.MULTILINE)
DIAGRAMS = {chapter: sum(len(FENCE.findall(c.source)) for c in nbformat.read(
    ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4).cells if c.cell_type == "markdown") for chapter in CHAPTERS}


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if DIAGRAMS[c]])
def test_diagrams_are_drawn_in_jupyterlab(page, chapter):
    """Does JupyterLab draw every Mermaid diagram of the learner's notebook (an SVG, no error)?"""
    panel = page.evaluate("path => th.open(path)", f"notebooks/{chapter}.ipynb")
    try:
        page.wait_for_function("([id, n]) => th.diagrams(id).filter(d => d.svg || d.failed).length >= n",
                               arg=[panel, DIAGRAMS[chapter]], timeout=30_000)
        drawn = page.evaluate("id => th.diagrams(id)", panel)
        assert len(drawn) == DIAGRAMS[chapter] and all(d["svg"] and not d["failed"] for d in drawn), drawn
        first = page.evaluate("id => th.panel(id).content.widgets.find(c => c.node.querySelector("
                              "'.jp-RenderedMermaid')).model.id", panel)
        page.evaluate("([id, cellId]) => th.show(id, cellId)", [panel, first])
        page.screenshot(path=SHOTS / f"{chapter}-diagram-light.png")
    finally:
        page.evaluate("id => th.close(id)", panel)


def test_index_shows_every_exercise_not_yet_checked(page, index):
    """Does the index's dashboard list every chapter's exercises, none checked yet?"""
    badges = cell(page, index, "progress")["badges"]
    wanted = {f"{chapter}/{ex}" for chapter in CHAPTERS for ex in exercises(chapter).values()}
    assert set(badges) == wanted
    assert set(badges.values()) == {"tickethub-unchecked"}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_in_the_browser(page, index, chapter):
    """Run All, solve one exercise by typing, ask for help, then run the solutions: right outcomes?"""
    checks = exercises(chapter)
    learner = page.evaluate("path => th.open(path)", f"notebooks/{chapter}.ipynb")
    assert page.evaluate("id => th.runAll(id)", learner), "Run All stopped at an error"
    for check_id in checks:  # outputs render a moment after the kernel's reply
        found = wait_for(page, learner, check_id, "c.results.length || c.output.includes('Traceback')")
        assert found["results"] == ["tickethub-not_attempted"], f"{check_id}: {found['output']}"
    dashboard = wait_for(page, learner, "progress",
                         "Object.values(c.badges).every(b => b === 'tickethub-not_attempted')")
    assert set(dashboard["badges"]) == {f"{chapter}/{ex}" for ex in checks.values()}

    # solve exercise 1 through the editor, then Shift+Enter twice: the code cell, then its check
    type_into(page, learner, "ex1-code", reference(chapter, "ex1-code"))
    page.keyboard.press("Shift+Enter")
    assert page.evaluate("id => th.activeCell(id)", learner) == "ex1-check"
    page.keyboard.press("Shift+Enter")
    found = wait_for(page, learner, "ex1-check", "c.state === 'idle' && c.results.length > 0")
    assert found["results"] == ["tickethub-pass"], found["output"]
    type_into(page, learner, "ex1-help", "ex1.hint()\nex1.solution()")
    page.keyboard.press("Shift+Enter")
    texts = wait_for(page, learner, "ex1-help", "c.texts.length === 2")["texts"]
    assert texts[0].startswith("Hint 1") and texts[1].startswith("Solution to exercise 1")

    # the chapter's dashboard follows at once; the index's (another kernel) within seconds
    wait_for(page, learner, "progress", f"c.badges['{chapter}/ex1'] === 'tickethub-pass'", 10_000)
    wait_for(page, index, "progress", f"c.badges['{chapter}/ex1'] === 'tickethub-pass'", 15_000)

    solution = page.evaluate("path => th.open(path)", f"solutions/{chapter}.ipynb")
    assert page.evaluate("id => th.runAll(id)", solution), "Run All stopped at an error"
    for check_id in checks:  # outputs render a moment after the kernel's reply
        found = wait_for(page, solution, check_id, "c.results.length || c.output.includes('Traceback')")
        assert found["results"] == ["tickethub-pass"], f"{check_id}: {found['output']}"

    screenshots(page, chapter, [
        ("top", learner, "progress"),
        ("exercise", learner, "ex1-check"),
        ("solution", solution, "ex1-check"),
        ("index", index, "progress"),
    ])
    for panel in (learner, solution):
        page.evaluate("id => th.close(id)", panel)


# last: it runs checks, and the index must see none before the chapters' own tests
def test_a_chapters_chips_lead_to_their_exercises(page):
    """Does clicking an exercise's chip at the top of a chapter scroll to that exercise's heading?"""
    chapter = "02-configuration"
    panel = page.evaluate("path => th.open(path)", f"notebooks/{chapter}.ipynb")
    try:
        assert page.evaluate("id => th.runAll(id)", panel)
        wait_for(page, panel, "progress", "Object.keys(c.badges).length > 0")
        for number in (4, 2):
            page.evaluate("([id, cellId]) => th.show(id, cellId)", [panel, "progress"])
            page.locator(f"#{panel} .tickethub-badge[data-exercise='{chapter}/ex{number}']").click()
            page.wait_for_function(
                """([id, n]) => { const h = [...th.panel(id).node.querySelectorAll('h2')]
                    .find(h => h.textContent.startsWith(`Exercise ${n} ·`));
                  const r = h.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight / 2; }""",
                arg=[panel, number], timeout=10_000)
    finally:
        page.evaluate("id => th.close(id)", panel)


def test_an_index_line_opens_its_chapter(page, index):
    """Does an exercise's title in the index's dashboard open its chapter's notebook, in a browser tab of its own?"""
    chapter = "02-configuration"
    page.evaluate("([id, cellId]) => th.show(id, cellId)", [index, "progress"])
    link = page.locator(f"#{index} a[href^='{chapter}.ipynb#Exercise-2-']")
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    try:
        tab.wait_for_load_state()
        assert f"/lab/tree/notebooks/{chapter}.ipynb" in tab.url
        tab.wait_for_selector(f".jp-NotebookPanel .jp-MarkdownOutput h2:has-text('Exercise 2 ·')", timeout=90_000)
    finally:
        tab.close()
