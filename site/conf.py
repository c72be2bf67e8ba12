"""Sphinx configuration for the course website (`python3 course.py site` builds it).

The pages are the solution notebooks with their stored outputs, staged by site/build.py into
_build/source/ together with the generated index; this folder holds only the configuration.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = "https://github.com/tickethub-course/tickethub"
BINDER = "https://mybinder.org"

project = "TicketHub"
author = "the TicketHub course authors"
copyright = "TicketHub course authors; text under CC BY 4.0, code under the MIT License"

extensions = ["myst_nb", "sphinxcontrib.mermaid"]
exclude_patterns = ["**/.ipynb_checkpoints"]

# the outputs are the ones stored in solutions/: a build never runs a notebook
nb_execution_mode = "off"
# ```mermaid fences, which JupyterLab renders, become sphinxcontrib-mermaid's directive
myst_fence_as_directive = ["mermaid"]
myst_heading_anchors = 3

# Mermaid's script is served from the site itself (vendored from the npm registry by
# build.py), so the site works without a CDN: offline, on loopback in the tests, anywhere
mermaid_use_local = "mermaid/mermaid.esm.min.mjs"
mermaid_init_config = {"startOnLoad": False, "securityLevel": "strict"}
# the default button, "⛶", is missing from common fonts (DejaVu, for one)
mermaid_fullscreen_button = "⤢"
# a diagram as tall as its own proportions say, not a fixed 500 px box (tickethub.css caps it)
mermaid_height = "auto"

html_theme = "sphinx_book_theme"
html_title = "TicketHub: professional Flask"
html_static_path = [str(HERE / "_static"), str(HERE / "_build" / "vendor")]
html_css_files = ["tickethub.css"]
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    # the launch buttons open the learner's notebook, not the solution this page shows
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "launch_buttons": {"binderhub_url": BINDER, "notebook_interface": "jupyterlab"},
    "home_page_in_toc": False,
    "show_navbar_depth": 1,
}


def highlight_written_files(app, doctree):
    """Highlight a `%%writefile` cell as the file it writes: an .ini file is no Python."""
    from docutils import nodes
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound

    for block in doctree.findall(nodes.literal_block):
        first, _, _ = block.astext().partition("\n")
        if block.get("language") != "ipython3" or not first.startswith("%%writefile "):
            continue
        name = first.split()[-1]
        if name.endswith(".py"):
            continue
        try:
            block["language"] = get_lexer_for_filename(name).aliases[0]
        except ClassNotFound:
            block["language"] = "text"


def setup(app):
    app.connect("doctree-read", highlight_written_files)
