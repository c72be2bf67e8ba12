"""Does the course website build, hold every chapter, and look right in a real browser?

The site is built the way a maintainer builds it, with `python3 course.py site` (Sphinx and
MyST-NB over solutions/, warnings as errors), into site/_build/html/. Then its HTML is read
(pages, links, Mermaid blocks), and Debian's chromium, driven by Playwright, opens it from a
loopback server; screenshots go to tests/screenshots/site-*.png for a maintainer to look at.
"""
import functools
import html
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("site_build", ROOT / "site" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).parent / "screenshots"
CHAPTERS = [path.stem for path in build.chapters()]
FENCE = re.compile(r"^```mermaid\n(.*?)^```", re.MULTILINE | re.DOTALL)


def unavailable(reason: str):
    """Skip where a tool cannot be had; in CI that is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the site tests must run)")
    pytest.skip(reason)


def solution(chapter: str) -> dict:
    return json.loads((ROOT / "solutions" / f"{chapter}.ipynb").read_text(encoding="utf-8"))


def diagrams(chapter: str) -> list[str]:
    """The Mermaid sources in a chapter's Markdown cells, in order."""
    return [found for cell in solution(chapter)["cells"] if cell["cell_type"] == "markdown"
            for found in FENCE.findall("".join(cell["source"]))]


def heading(chapter: str) -> str:
    return "".join(solution(chapter)["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()


class Page(HTMLParser):
    """What a built page links to, its element ids, its Mermaid blocks and inline scripts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.links, self.ids, self.mermaid, self.scripts = [], set(), [], []
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if attrs.get(name) is not None:
                self.links.append(attrs[name])
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "pre" and "mermaid" in (attrs.get("class") or "").split():
            self._in = "mermaid"
            self.mermaid.append("")
        elif tag == "script" and "src" not in attrs:
            self._in = "script"
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag in ("pre", "script"):
            self._in = None

    def handle_data(self, data):
        if self._in == "mermaid":
            self.mermaid[-1] += data
        elif self._in == "script":
            self.scripts[-1] += data


@pytest.fixture(scope="module")
def site():
    """The website, built by `course.py site`: its html folder and the build's output."""
    if not shutil.which("npm") and not (build.VENDOR / "mermaid" / "VERSION").exists():
        unavailable("npm is missing: the site build fetches Mermaid from the npm registry once")
    done = subprocess.run([sys.executable, str(ROOT / "course.py"), "site"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)  # one stream, in the order printed
    output = done.stdout
    assert done.returncode == 0, f"the site build failed:\n{output[-5000:]}"
    # Sphinx's part only: a first run's pip may warn about things that are none of the site's
    return build.HTML, output[output.index("[course] building the course website"):]


def pages(html_dir: Path) -> dict[Path, Page]:
    return {path: Page(path.read_text(encoding="utf-8")) for path in sorted(html_dir.rglob("*.html"))
            if "_static" not in path.parts}


def test_the_build_has_no_warnings(site):
    """Does the build succeed with warnings as errors, and print none?"""
    html_dir, output = site
    assert "WARNING" not in output and "ERROR" not in output, output[-5000:]
    assert "build succeeded" in output
    assert (html_dir / "index.html").exists()


# the theme and MyST still use APIs Sphinx 11 will remove: their business, not this test's
@pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")
def test_a_warning_fails_the_build(site, tmp_path, monkeypatch, capsys):
    """Does a single warning (here, a link to no page) fail the build?"""
    staged = build.stage

    def stage_with_a_broken_link():
        names = staged()
        index = build.SOURCE / "index.md"
        index.write_text(index.read_text(encoding="utf-8") + "\n[a broken link](nowhere.ipynb)\n", encoding="utf-8")
        return names

    monkeypatch.setattr(build, "SOURCE", tmp_path / "source")
    monkeypatch.setattr(build, "HTML", tmp_path / "html")
    monkeypatch.setattr(build, "stage", stage_with_a_broken_link)
    assert build.build(["-q"]) != 0
    assert "nowhere.ipynb" in capsys.readouterr().err


def test_every_chapter_has_its_page_and_its_place_in_the_index(site):
    """Is there a page per chapter, with its heading, linked from the index's chapter map?"""
    html_dir, _ = site
    assert CHAPTERS[:2] == ["00-welcome", "01-project-structure"]
    index = (html_dir / "index.html").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        page = html_dir / f"{chapter}.html"
        assert page.exists(), f"no page for {chapter}"
        text = html.unescape(page.read_text(encoding="utf-8"))
        assert f"<h1>{heading(chapter)}" in text
        assert f'href="{chapter}.html"' in index and heading(chapter) in html.unescape(index)


def test_every_chapter_shows_its_stored_outputs(site):
    """Are the outputs stored in solutions/ on the page (so nothing had to be run)?"""
    html_dir, _ = site
    for chapter in CHAPTERS:
        text = (html_dir / f"{chapter}.html").read_text(encoding="utf-8")
        assert "Setup complete" in text  # the setup cell's stored output
        checks = sum('class="tickethub-result' in "".join(output.get("data", {}).get("text/html", ""))
                     for cell in solution(chapter)["cells"] for output in cell.get("outputs", []))
        assert text.count('class="tickethub-result') == checks


def test_every_chapter_says_how_to_run_it(site):
    """Does each chapter offer Binder, at its learner notebook, and the local command?"""
    html_dir, _ = site
    for chapter in CHAPTERS:
        text = html.unescape((html_dir / f"{chapter}.html").read_text(encoding="utf-8"))
        binder = f"https://mybinder.org/v2/gh/tickethub-course/tickethub/main?urlpath=lab/tree/notebooks/{chapter}.ipynb"
        section = text[text.index("tickethub-launch"):]
        section = section[:section.index("</div>")]
        assert "python3 course.py lab" in " ".join(re.sub(r"<[^>]+>", "", section).split())
        assert f'href="{binder}"' in section
        assert text.count(f'href="{binder}"') == 2  # and the theme's launch button


def test_internal_links_resolve(site):
    """Does every relative href and src of every page name a file that is there (and an id that is)?"""
    html_dir, _ = site
    built = pages(html_dir)
    broken = []
    for path, page in built.items():
        for link in page.links:
            url = urlsplit(link)
            if url.scheme or url.netloc or link.startswith("#"):
                continue  # external, or an anchor on the same page (checked below)
            target = (path.parent / unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.name}: {link}")
            elif url.fragment and target in built and url.fragment not in built[target].ids:
                broken.append(f"{path.name}: {link} (no such id)")
        for link in page.links:
            if link.startswith("#") and len(link) > 1 and unquote(link[1:]) not in page.ids:
                broken.append(f"{path.name}: {link} (no such id)")
    assert not broken, broken
    assert len(built) >= len(CHAPTERS) + 1


def test_mermaid_blocks_are_ready_to_render(site):
    """Is every ```mermaid fence a Mermaid block, with its source, and the script served by the site?"""
    html_dir, _ = site
    assert any(diagrams(chapter) for chapter in CHAPTERS), "no chapter has a diagram to check"
    for chapter in CHAPTERS:
        path = html_dir / f"{chapter}.html"
        page = Page(path.read_text(encoding="utf-8"))
        assert [block.strip() for block in page.mermaid] == [d.strip() for d in diagrams(chapter)]
        if not page.mermaid:
            continue
        # the module script imports Mermaid from the site itself, never from a CDN
        imports = [m for script in page.scripts for m in re.findall(r'import mermaid from "([^"]+)"', script)]
        assert len(imports) == 1 and not urlsplit(imports[0]).netloc, imports
        assert (path.parent / imports[0]).resolve().is_file()
        assert "cdn.jsdelivr.net" not in path.read_text(encoding="utf-8")


# --- in a real browser ------------------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    """The built site on a free loopback port: its base URL."""
    html_dir, _ = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=html_dir))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_page(served):
    """A chromium page that may load only the site itself: its page and the URLs it asked for."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: `apt-get install chromium` (course.py test does it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed: `pip install -r requirements-test.txt`")
    SHOTS.mkdir(exist_ok=True)
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.on("request", lambda request: requested.append(request.url))
        yield page, requested
        browser.close()


def test_the_index_in_a_browser(browser_page, served):
    """Does the index show the course's title and a link to every chapter?"""
    page, _ = browser_page
    page.goto(f"{served}/index.html")
    assert page.locator("h1").first.inner_text().startswith("TicketHub")
    for chapter in CHAPTERS:
        assert page.locator(f'article a[href="{chapter}.html"]').count() >= 1
    page.screenshot(path=SHOTS / "site-index.png", full_page=True)


def test_a_chapter_in_a_browser_renders_its_diagrams(browser_page, served):
    """Does a chapter show its heading, and every Mermaid diagram drawn as an SVG, from loopback alone?"""
    page, requested = browser_page
    chapter = next(chapter for chapter in CHAPTERS if diagrams(chapter))
    page.goto(f"{served}/{chapter}.html")
    assert page.locator("h1").first.inner_text() == heading(chapter)
    count = len(diagrams(chapter))
    page.wait_for_function("n => document.querySelectorAll('pre.mermaid[data-processed=\"true\"] svg').length === n",
                           arg=count)
    svg = page.locator("pre.mermaid svg").first
    assert svg.bounding_box()["height"] > 50  # drawn, not an empty box
    assert page.locator("pre.mermaid .error-icon").count() == 0  # Mermaid's "Syntax error" picture
    page.screenshot(path=SHOTS / f"site-{chapter}.png")
    svg.scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / f"site-{chapter}-diagram.png")
    page.locator(".tickethub-launch").scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / f"site-{chapter}-launch.png")
    outside = [url for url in requested if not url.startswith(served)]
    assert not outside, f"the site asked the network for {outside}"
