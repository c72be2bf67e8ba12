"""Build the course website into site/_build/html/ (run by `python3 course.py site`).

    python site/build.py [SPHINX-BUILD OPTIONS...]

Stages the pages into site/_build/source/ (each chapter is its solution notebook, with its
stored outputs and a "Run this chapter" section; the index is the chapter map), vendors
Mermaid's script from the npm registry (once), then runs Sphinx with warnings as errors.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "_build"
SOURCE = BUILD / "source"
HTML = BUILD / "html"
VENDOR = BUILD / "vendor"
# pinned: the version sphinxcontrib-mermaid 2.1.1 is made for, and the tarball's digest
MERMAID = "11.12.1"
MERMAID_SHA512 = "UlIZrRariB11TY1RtTgUWp65tphtBv4CSq7vyS2ZZ2TgoMjs2nloq+wFqxiwcxlhHUvs7DPGgMjs2aeQxz5h9g=="
BINDER = "https://mybinder.org/v2/gh/tickethub-course/tickethub/main?urlpath=lab/tree/notebooks/{name}.ipynb"
CHAPTER = re.compile(r"^\d\d-[a-z0-9-]+$")
# a row of the README's chapter table: | 01 | `01-project-structure` | what you learn |
ROW = re.compile(r"^\| *\d\d *\| *`([^`]+)` *\| *(.+?) *\|$", re.MULTILINE)

INDEX = """\
# TicketHub: professional Flask, one notebook at a time

An interactive course for Python developers who want to write Flask the way it is written in
well-run teams. Chapter by chapter you grow one real application, **TicketHub** (events,
venues, bookings), run it in-process through Flask's test client, and finish every exercise
with a check that tests your code's *behaviour* and tells you precisely what is wrong.

These pages show each chapter as its reference solution, with the outputs it gives. To do the
exercises yourself, run the course:

- **On Binder**, with nothing to install:
  [launch the course on Binder](https://mybinder.org/v2/gh/tickethub-course/tickethub/main?urlpath=lab/tree/notebooks/index.ipynb).
- **On your machine** (Python 3.11 or newer), in a clone of the repository:
  `python3 course.py lab` sets everything up on its first run and opens JupyterLab at the
  course index.

## Chapters

{chapters}

```{{toctree}}
:hidden:
:maxdepth: 1

{toctree}
```
"""

LAUNCH = """\
```{{admonition}} Run this chapter yourself
:class: tip tickethub-launch

This page is the chapter's reference solution. Its exercises are in the learner's notebook,
`notebooks/{name}.ipynb`, where every check tells you what works and what does not.

- **On Binder**, with nothing to install: [open {name} on Binder]({binder}).
- **On your machine**, in a clone of the repository: `python3 course.py lab` opens JupyterLab
  at the course index; this chapter is `{name}.ipynb` there.
```
"""


def chapters() -> list[Path]:
    """The solution notebooks, in chapter order."""
    return sorted(p for p in (ROOT / "solutions").glob("*.ipynb") if CHAPTER.match(p.stem))


def markdown_cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source}


def summaries() -> dict[str, str]:
    """What each chapter teaches, from the README's chapter table (one map, not two)."""
    return dict(ROW.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def stage() -> list[str]:
    """Write the site's sources: one page per chapter and the index; return the page names."""
    shutil.rmtree(SOURCE, ignore_errors=True)  # a chapter removed from solutions/ leaves no page
    SOURCE.mkdir(parents=True)
    names, entries, taught = [], [], summaries()
    for path in chapters():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        first = "".join(notebook["cells"][0]["source"])
        title = first.splitlines()[0].lstrip("# ").strip()
        launch = LAUNCH.format(name=path.stem, binder=BINDER.format(name=path.stem))
        notebook["cells"].insert(1, markdown_cell(launch, "site-launch"))
        (SOURCE / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")
        names.append(path.stem)
        summary = taught.get(path.stem)
        entries.append(f"- [**{title}**]({path.name})" + (f": {summary}" if summary else ""))
    index = INDEX.format(chapters="\n".join(entries), toctree="\n".join(names))
    (SOURCE / "index.md").write_text(index, encoding="utf-8")
    return names


def vendor_mermaid() -> Path:
    """Mermaid's ES module and its chunks, from the pinned npm tarball (fetched once)."""
    target = VENDOR / "mermaid"
    stamp = target / "VERSION"
    if stamp.exists() and stamp.read_text().strip() == MERMAID:
        return target
    npm = shutil.which("npm")
    if not npm:
        sys.exit("The website needs npm (Node.js) once, to fetch Mermaid from the npm registry.")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"[site] fetching mermaid@{MERMAID} from the npm registry (once)", flush=True)
        subprocess.run([npm, "pack", f"mermaid@{MERMAID}", "--silent", "--pack-destination", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        tarball = Path(tmp) / f"mermaid-{MERMAID}.tgz"
        digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != MERMAID_SHA512:
            sys.exit(f"mermaid-{MERMAID}.tgz does not have the pinned digest: refusing to use it")
        shutil.rmtree(target, ignore_errors=True)
        with tarfile.open(tarball) as archive:
            # the module and its chunks; the source maps (10 MB) are only for debugging mermaid
            for member in archive.getmembers():
                name = member.name.removeprefix("package/dist/")
                if member.isfile() and name.endswith(".mjs") and (
                        name == "mermaid.esm.min.mjs" or name.startswith("chunks/mermaid.esm.min/")):
                    (target / name).parent.mkdir(parents=True, exist_ok=True)
                    (target / name).write_bytes(archive.extractfile(member).read())
    stamp.write_text(MERMAID + "\n")
    return target


def build(extra: list[str]) -> int:
    """Stage, vendor and run Sphinx; return its exit status."""
    from sphinx.cmd.build import build_main

    stage()
    vendor_mermaid()
    # -E: a fresh environment every time, so every page's warnings are seen (and fail the build)
    return build_main(["-b", "html", "-E", "-W", "--keep-going", "-c", str(HERE), *extra,
                       str(SOURCE), str(HTML)])


if __name__ == "__main__":
    status = build(sys.argv[1:])
    if status == 0:
        print(f"[site] built: {HTML / 'index.html'}", flush=True)
    sys.exit(status)
