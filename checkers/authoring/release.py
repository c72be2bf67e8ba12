"""`python -m checkers release NN [NN ...] --out DIR`: a graded edition, with solutions withheld.

For assessed work, an instructor gives learners an edition of the course instead of the
course itself: what `python3 course.py setup` installs from (the `checkers` package with its
checkpoints, the learner notebooks, the pinned requirements), up to the last chapter
released. The released chapters' checkpoints keep their exercises' starters and their start
(the previous chapters' reference, since a chapter starts where the last one ended) but not
their solutions; their chapter modules lose each exercise's last hint, which nearly gives
the solution; `exN.solution()` and that hint say they are not available. The checks need
neither, but for an exercise whose answer is a test: its check runs the test on the earlier
exercises' solutions, which stay (the command says which). Later chapters are left out: their start would hold the released chapters'
solutions. Before it succeeds, the command searches every file of the edition for every
solution region of the released chapters.
"""
from __future__ import annotations

import ast
import json
import shutil
import textwrap
from pathlib import Path

import nbformat

from ..notebook.api import WITHHELD
from ..paths import PACKAGE, ROOT, module_name
from .build import CHAPTER, derive, solution_regions

# what a learner's copy of the course holds besides notebooks/ and checkers/: the setup and
# its pins, Binder's configuration (an instructor may host the edition there), the licence
SHIPPED = ["course.py", "requirements.txt", "pyproject.toml", "environment.yml", "LICENSE", ".gitignore", "binder"]


class ReleaseError(Exception):
    """The edition cannot be made as asked; the message says why."""


def release(chosen: list[str], out: Path, solutions: Path = ROOT / "solutions") -> int:
    """Write the edition into `out` (absent or empty) and say what it holds."""
    names = sorted(p.stem for p in solutions.glob("*.ipynb") if CHAPTER.match(p.name))
    withheld = sorted({_chapter(name, names) for name in chosen})
    if not withheld:
        raise ReleaseError("name at least one chapter to release, e.g. `release 03`")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} is not an empty folder: an edition is written into a new one")
    through = withheld[-1]
    regions = {name: _regions(solutions / f"{name}.ipynb") for name in withheld}
    package = out / "checkers"
    wanted = derive(solutions, out / "notebooks", package / "checkpoints", through, frozenset(withheld))
    kept = {}  # chapter: the exercises whose solutions stay, since a later exercise runs the learner's tests on them
    for name in withheld:
        cells = [c for c in json.loads(wanted[package / "checkpoints" / f"{name}.json"])["cells"]
                 if c["exercise"] and c["solution"] is not None]
        if cells:
            kept[name] = sorted({c["exercise"] for c in cells}, key=lambda key: int(key[2:]))
            texts_kept = [_normal(c["solution"]) for c in cells]
            regions[name] = [r for r in regions[name] if not _found([r], texts_kept)]
    for name in withheld:  # a later released chapter would start from an earlier one's solutions
        start = json.loads(wanted[package / "checkpoints" / f"{name}.json"])["start"]
        for earlier in withheld:
            if earlier < name and _found(regions[earlier], [_normal(text) for text in start.values()]):
                raise ReleaseError(f"chapter {name} starts from chapter {earlier}'s solutions, so one edition "
                                   f"cannot withhold both: release {earlier}, and {name} once {earlier}'s "
                                   "solutions are published")

    out.mkdir(parents=True, exist_ok=True)
    later = {module_name(n).rsplit(".", 1)[-1] for n in names if n > through}
    dropped = {f"{n}.txt" for n in names if n in withheld or n > through}  # mutants quote the solutions
    shutil.copytree(PACKAGE, package, ignore=lambda folder, files: _left_out(Path(folder), files, later, dropped))
    for name in withheld:
        module = package / "chapters" / (module_name(name).rsplit(".", 1)[-1] + ".py")
        if module.exists():
            module.write_text(without_last_hints(module.read_text(encoding="utf-8")), encoding="utf-8")
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name in SHIPPED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name)
        elif source.exists():
            shutil.copy2(source, out / name)
    (out / "README.md").write_text(readme(names[0], through, withheld, kept), encoding="utf-8")

    found = leaks(out, regions)
    if found:
        raise ReleaseError("solution text is still in the edition (nothing may be given to learners):\n  "
                           + "\n  ".join(found))
    count = sum(len(r) for r in regions.values())
    print(f"wrote the graded edition of chapters {names[0][:2]} to {through[:2]} into {out}")
    print(f"solutions withheld: {', '.join(withheld)}; searched every file for their {count} solution regions "
          "(those the chapter's own text does not state): none found")
    for name, keys in kept.items():
        print(f"kept in {name}: the solutions of {', '.join(keys)}, which a later exercise runs the learner's tests on")
    return 0


def _chapter(name: str, names: list[str]) -> str:
    """`03` or `03-database` (or a path to it) as the chapter's full name."""
    stem = Path(name).stem
    matches = [n for n in names if n == stem or stem.isdigit() and n[:2] == f"{int(stem):02d}"]
    if len(matches) != 1:
        raise ReleaseError(f"no chapter {name!r}: the chapters are {', '.join(names)}")
    return matches[0]


def _left_out(folder: Path, files: list[str], later: set[str], dropped: set[str]) -> set[str]:
    """What of the package a graded edition does not copy."""
    left = {f for f in files if f == "__pycache__" or f.endswith(".pyc")}
    if folder == PACKAGE:
        left.add("checkpoints")  # written anew, with the solutions withheld
    if folder == PACKAGE / "chapters":
        left |= {f for f in files if f.removesuffix(".py") in later}
    if folder == PACKAGE / "chapters" / "equivalents":
        left |= {f for f in files if f in dropped}
    return left


def without_last_hints(source: str) -> str:
    """A chapter module's source with each exercise's last hint (when there are several) replaced by WITHHELD."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "exercise":
            hints = next((k.value for k in node.keywords if k.arg == "hints"), node.args[1] if len(node.args) > 1 else None)
            if hints is None:
                continue
            if not isinstance(hints, (ast.List, ast.Tuple)):
                raise ReleaseError(f"line {node.lineno}: an exercise's hints must be a list written out, to withhold the last")
            if len(hints.elts) > 1:
                spans.append(hints.elts[-1])
    lines = source.encode("utf-8").splitlines(keepends=True)  # ast's columns count bytes
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    data = source.encode("utf-8")
    for node in sorted(spans, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        start = offsets[node.lineno - 1] + node.col_offset
        end = offsets[node.end_lineno - 1] + node.end_col_offset
        data = data[:start] + repr(WITHHELD).encode("utf-8") + data[end:]
    text = data.decode("utf-8")
    compile(text, "<chapter module>", "exec")  # fail here, not in a learner's kernel
    return text


def _regions(notebook: Path) -> list[str]:
    """A chapter's solution regions, but those its own text states (`create `x = ...``: the task dictates them)."""
    nb = nbformat.read(notebook, as_version=4)
    prose = [_normal(cell.source) for cell in nb.cells if cell.cell_type == "markdown"]
    regions = [_normal(r) for cell in nb.cells if cell.cell_type == "code" for r in solution_regions(cell.source)]
    return [region for region in regions if not _found([region], prose)]


def _normal(text: str) -> str:
    """Text with every run of white space as one space: code is found whatever its indentation."""
    return " ".join(text.split())


def _found(regions: list[str], texts: list[str]) -> list[str]:
    return [region for region in regions if any(region in text for text in texts)]


def texts(path: Path) -> list[str]:
    """A file's text as a reader would find code in it: raw, and each string a notebook, JSON or module holds."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    found = [raw]
    if path.suffix in (".json", ".ipynb"):
        try:
            found += list(_strings(json.loads(raw)))
        except ValueError:
            pass
    elif path.suffix == ".py":
        try:
            found += [n.value for n in ast.walk(ast.parse(raw)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        except SyntaxError:
            pass
    return [_normal(text) for text in found]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def leaks(out: Path, regions: dict[str, list[str]]) -> list[str]:
    """Every file of the edition that holds a released chapter's solution region, with the region."""
    found = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        held = texts(path)
        for name, mine in regions.items():
            for region in _found(mine, held):
                found.append(f"{path.relative_to(out).as_posix()}: {name}'s `{region[:60]}`")
    return found


def readme(first: str, through: str, withheld: list[str], kept: dict[str, list[str]] | None = None) -> str:
    """The edition's README: what it is, then the course README's part on how to learn with it."""
    course = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = course.find("## Start learning"), course.find("\n## ", course.find("## Start learning") + 1)
    learning = course[start:end] if start >= 0 and end > start else ""
    # the public course on Binder holds every solution: not a link for this edition
    learning = "\n\n".join(p for p in learning.split("\n\n") if "mybinder.org" not in p)
    released = " and ".join(name[:2] for name in withheld)
    about = textwrap.fill(
        f"This edition of the TicketHub course holds chapters {first[:2]} to {through[:2]}, for assessed work. "
        f"The solutions of chapter{'s' if len(withheld) > 1 else ''} {released} are not in it: `exN.solution()` "
        "and each exercise's last hint say so. Every check works as in the full course. Your notebooks "
        "(`notebooks/NN-topic.ipynb`) are your submission: hand them in as your instructor asks.", 96)
    for name, keys in (kept or {}).items():
        about += "\n\n" + textwrap.fill(
            f"Chapter {name[:2]} keeps the solutions of {', '.join(keys)}: a later exercise of it asks for tests, "
            "and its check runs them on that code.", 96)
    return f"# TicketHub: professional Flask, graded edition\n\n{about}\n\n{learning.strip()}\n"
