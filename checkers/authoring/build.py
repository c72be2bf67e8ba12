"""Derive everything learners get from `solutions/`, the course's one source.

For each chapter `solutions/NN-topic.ipynb` the build writes:
- `notebooks/NN-topic.ipynb`: solution regions replaced by a placeholder, outputs stripped,
  hint and solution calls commented out, check cells locked, navigation cells added;
- `checkers/checkpoints/NN-topic.json`: the project as it stood when the chapter starts,
  and each file the chapter's `%%writefile` cells write (starter and solution versions), after
  the files it gives without a cell, from `solutions/NN-topic/` (a tool's generated boilerplate,
  such as what `flask db init` writes: setup puts them in the project, later chapters keep them);
and `notebooks/index.ipynb`, listing every chapter by its first heading. The index, and each
learner notebook after its title, get a progress dashboard cell (`checkers.dashboard`).

Solution markers: lines between `# BEGIN SOLUTION` and `# END SOLUTION` become
`...  # YOUR CODE HERE`; a line ending in `# SOLUTION` becomes `name = ...` (for an
assignment), `return ...` (for a return) or disappears.
"""
from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..paths import CHECKPOINTS, ROOT, module_name

CHAPTER = re.compile(r"^\d\d-[a-z0-9-]+\.ipynb$")
INDEX = "index.ipynb"
BEGIN = re.compile(r"^(\s*)#\s*BEGIN SOLUTION\b")
END = re.compile(r"^\s*#\s*END SOLUTION\b")
ONE_LINE = re.compile(r"^(\s*)(.*?)\s*#\s*SOLUTION\s*$")
ASSIGN = re.compile(r"^([A-Za-z_][\w.\[\]\"', ]*?)\s*(=|:[^=]+=)\s*\S")
WRITEFILE = re.compile(r"^%%writefile\s+(\S+)\s*$")
CHECK = re.compile(r"^\s*(ex\d+)\.check\(\)\s*$", re.M)
EXERCISE_HEADING = re.compile(r"^#+\s+Exercise (\d+) · (.+?)\s*$", re.M)
SETUP = re.compile(r"^from checkers\.(?:chapters\.)?ch\d\d_\w+ import .*\n\s*setup\(\)", re.M)
REVEAL = re.compile(r"^(\s*)(ex\d+\.(?:hint|solution)\(.*\))\s*$", re.M)
PLACEHOLDER = "...  # YOUR CODE HERE"
KEPT_CELL_METADATA = ("tags", "editable", "deletable", "jupyter")
KERNEL = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


class BuildError(Exception):
    """The solutions cannot be built; the message says where and why."""


@dataclass
class Chapter:
    name: str  # 00-welcome
    title: str  # the first heading
    learner: nbformat.NotebookNode
    cells: list[dict]  # the files the chapter's %%writefile cells write
    protected: list[dict]  # setup and check cells: the grader restores them by id
    headings: dict[str, str]  # each exercise's heading, "## Exercise N · title", as {"exN": title}


def split_solution(source: str, where: str) -> tuple[str, str]:
    """Return (starter, solution) versions of a cell's source."""
    starter, solution, region = [], [], None
    for number, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if region is not None:
                raise BuildError(f"{where}, line {number}: `# BEGIN SOLUTION` inside another solution region (opened on line {region})")
            region = number
            starter.append(begin.group(1) + PLACEHOLDER)
        elif end:
            if region is None:
                raise BuildError(f"{where}, line {number}: `# END SOLUTION` without a `# BEGIN SOLUTION` before it")
            region = None
        elif region is not None:
            solution.append(line)
        elif one := ONE_LINE.match(line):
            indent, code = one.groups()
            solution.append(indent + code)
            if assign := ASSIGN.match(code):
                starter.append(f"{indent}{assign.group(1)} {assign.group(2)} {PLACEHOLDER}")
            elif code.startswith("return"):
                starter.append(f"{indent}return {PLACEHOLDER}")
        else:
            starter.append(line)
            solution.append(line)
    if region is not None:
        raise BuildError(f"{where}, line {region}: `# BEGIN SOLUTION` has no matching `# END SOLUTION`")
    return _join(starter, source), _join(solution, source)


def solution_regions(source: str) -> list[str]:
    """Return the code of each solution region of a cell: a marked block, or a `# SOLUTION` line."""
    regions, region = [], None
    for line in source.splitlines():
        if BEGIN.match(line):
            region = []
        elif END.match(line):
            regions.append("\n".join(region or []))
            region = None
        elif region is not None:
            region.append(line)
        elif one := ONE_LINE.match(line):
            regions.append(one.group(2))
    return [text for text in regions if text.strip()]


def _join(lines: list[str], original: str) -> str:
    return "\n".join(lines) + ("\n" if original.endswith("\n") else "")


def _file_text(body: str) -> str:
    """What `%%writefile` leaves on disk for a cell body (plus a final newline)."""
    return body if body.endswith("\n") else body + "\n"


def given_files(path: Path) -> list[dict]:
    """The files a chapter gives without a cell: `solutions/NN-topic/`, each at its path in the project."""
    folder = path.with_suffix("")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if folder.is_dir() else []
    return [{"path": f.relative_to(folder).as_posix(), "exercise": None, "starter": text, "solution": text}
            for f in files for text in [f.read_text(encoding="utf-8")]]


def build_chapter(path: Path, start: dict[str, str]) -> Chapter:
    """Read one solution notebook and derive its learner notebook and checkpoint cells."""
    nb = nbformat.read(path, as_version=4)
    given = given_files(path)
    title, cells, pending, learner_cells, protected = None, list(given), [], [], []
    headings = {}
    for index, cell in enumerate(nb.cells):
        where = f"{path.name}, cell {index + 1}"
        source = cell.source
        if cell.cell_type == "markdown" and title is None:
            heading = re.search(r"^#\s+(.+)$", source, re.M)
            title = heading.group(1).strip() if heading else None
        if cell.cell_type == "markdown":
            headings.update((f"ex{n}", text) for n, text in EXERCISE_HEADING.findall(source))
        learner = nbformat.from_dict({k: v for k, v in cell.items() if k not in ("outputs", "execution_count")})
        learner.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        if cell.cell_type == "code":
            learner.outputs, learner.execution_count = [], None
            starter, solution = split_solution(source, where)
            marked = starter != solution
            first, _, body = source.partition("\n")
            target = WRITEFILE.match(first)
            if target:
                if any(g["path"] == target.group(1) for g in given):
                    raise BuildError(f"{where}: `{target.group(1)}` is written by this cell and given in "
                                     f"`{path.with_suffix('').name}/`; keep one of them")
                _, _, starter_body = starter.partition("\n")
                _, _, solution_body = solution.partition("\n")
                record = {
                    "path": target.group(1),
                    "exercise": None,
                    "starter": _file_text(starter_body),
                    "solution": _file_text(solution_body),
                }
                cells.append(record)
                if marked:
                    pending.append(record)
            elif marked:
                raise BuildError(f"{where}: solution markers are only allowed in `%%writefile` cells")
            checked = CHECK.findall(source)
            if checked:
                if not pending:
                    raise BuildError(f"{where}: `{checked[0]}.check()` follows no exercise cell with solution markers")
                for record in pending:
                    record["exercise"] = checked[0]
                pending = []
                protected.append({"id": cell.id, "source": source, "exercise": checked[0]})
                learner.metadata.update(editable=False, deletable=False)
                learner.metadata["tags"] = sorted(set(learner.metadata.get("tags", [])) | {"check"})
            elif SETUP.search(source):
                protected.append({"id": cell.id, "source": source, "exercise": None})
            learner.source = REVEAL.sub(r"\1# \2", starter)
        learner_cells.append(learner)
    if pending:
        raise BuildError(f"{path.name}: the exercise cell writing `{pending[0]['path']}` has no `exN.check()` cell after it")
    if title is None:
        raise BuildError(f"{path.name}: the notebook has no `# heading` to be listed by")
    owners: dict[str, str] = {}
    for record in cells:
        if record["exercise"]:
            if owners.setdefault(record["path"], record["exercise"]) != record["exercise"]:
                raise BuildError(f"{path.name}: `{record['path']}` is written by two exercises; give each exercise its own file")
    learner_nb = nbformat.v4.new_notebook(cells=learner_cells, metadata=KERNEL)
    previous = {c.id: nb.cells[i - 1].id if i else None for i, c in enumerate(nb.cells)}
    for record in protected:
        record["after"] = previous[record["id"]]
    return Chapter(path.stem, title, learner_nb, cells, protected, headings)


def navigation(names: list[str], titles: dict[str, str], position: int, where: str):
    parts = []
    if position > 0:
        parts.append(f"[← {titles[names[position - 1]]}]({names[position - 1]}.ipynb)")
    parts.append(f"[Course index]({INDEX})")
    if position + 1 < len(names):
        parts.append(f"[{titles[names[position + 1]]} →]({names[position + 1]}.ipynb)")
    cell = nbformat.v4.new_markdown_cell(" | ".join(parts), id=f"navigation-{where}")
    cell.metadata = {"tags": ["navigation"], "editable": False, "deletable": False}
    return cell


def progress_cell(chapter: str | None = None):
    """A locked cell showing the learner's progress: one chapter's, or the whole course's."""
    call = f'dashboard("{chapter}")' if chapter else "dashboard()"
    cell = nbformat.v4.new_code_cell(f"from checkers.notebook.dashboard import dashboard\n\n{call}", id="progress")
    cell.metadata = {"tags": ["progress"], "editable": False, "deletable": False}
    return cell


def with_progress(cells: list, chapter: str) -> list:
    """Put the chapter's progress cell right after its title cell."""
    title = next(i for i, c in enumerate(cells) if c.cell_type == "markdown")
    return [*cells[: title + 1], progress_cell(chapter), *cells[title + 1 :]]


def index_notebook(names: list[str], titles: dict[str, str]):
    rows = "\n".join(f"- [{titles[n]}]({n}.ipynb)" for n in names)
    text = (
        "# TicketHub: professional Flask, one chapter at a time\n\n"
        "You will build **TicketHub**, an event-ticketing web app, with the practices that "
        "keep real Flask projects healthy: an application factory, blueprints, configuration "
        "per environment, a database, tests, security, performance and deployment.\n\n"
        "Each chapter is a notebook. Run its first code cell (the setup), read, run the demos, "
        "and solve the exercises: every exercise ends with a check that tells you what is right "
        "and what is not. Chapters build on each other, but each starts from a working "
        "checkpoint, so you can open any of them.\n\n"
        f"## Chapters\n\n{rows}\n\n"
        "## Your progress\n\n"
        "Run the cell below to see every exercise's latest outcome. It updates by itself as you "
        "run checks, in any chapter; progress is kept in `work/.progress.json` beside the notebooks.\n"
    )
    cell = nbformat.v4.new_markdown_cell(text, id="course-index")
    return nbformat.v4.new_notebook(cells=[cell, progress_cell()], metadata=KERNEL)


def derive(
    solutions: Path = ROOT / "solutions",
    notebooks: Path = ROOT / "notebooks",
    checkpoints: Path = CHECKPOINTS,
    through: str | None = None,
    withheld: frozenset[str] = frozenset(),
) -> dict[Path, str]:
    """Return the text of every file the build writes, by path.

    `through` stops after that chapter (the later ones are left out, with their links);
    each chapter in `withheld` gets a checkpoint without its exercises' solutions.
    """
    paths = sorted(p for p in solutions.glob("*.ipynb") if CHAPTER.match(p.name))
    if through is not None:
        paths = [p for p in paths if p.stem <= through]
    if not paths:
        raise BuildError(f"no chapter notebooks (NN-topic.ipynb) in {solutions}")
    chapters, start = [], {}
    for path in paths:
        chapter = build_chapter(path, start)
        chapters.append((chapter, dict(start)))
        start = {**start, **{c["path"]: c["solution"] for c in chapter.cells}}
    names = [c.name for c, _ in chapters]
    titles = {c.name: c.title for c, _ in chapters}
    wanted: dict[Path, str] = {notebooks / INDEX: _notebook_text(index_notebook(names, titles))}
    for position, (chapter, chapter_start) in enumerate(chapters):
        nb = chapter.learner
        cells = with_progress(nb.cells, chapter.name)
        nb.cells = [navigation(names, titles, position, "top"), *cells, navigation(names, titles, position, "bottom")]
        wanted[notebooks / f"{chapter.name}.ipynb"] = _notebook_text(nb)
        record = {
            "chapter": chapter.name,
            "title": chapter.title,
            "start": chapter_start,
            "cells": chapter.cells,
            "protected": chapter.protected,
            "exercises": exercise_titles(chapter.name),
        }
        for key, wanted_title in record["exercises"].items():  # results, dashboards and chips name it so
            if chapter.headings.get(key) != wanted_title:
                raise BuildError(f"{chapter.name}.ipynb: the heading of exercise {key[2:]} must read "
                                 f"`## Exercise {key[2:]} · {wanted_title}`, its title in the chapter's module "
                                 f"(it reads {chapter.headings.get(key)!r})")
        if chapter.name in withheld:
            # an exercise's starter stays (setup and NOT_ATTEMPTED need it); its solution goes, but
            # for the exercises before one whose answer is a test: that test runs on their solutions
            needed = needed_by_tests(chapter.name)
            record["cells"] = [{**c, "solution": None} if c["exercise"] and c["exercise"] not in needed else c
                               for c in chapter.cells]
            record["withheld"] = True
        wanted[checkpoints / f"{chapter.name}.json"] = json.dumps(record, indent=1, sort_keys=True) + "\n"
    return wanted


def build(
    solutions: Path = ROOT / "solutions",
    notebooks: Path = ROOT / "notebooks",
    checkpoints: Path = CHECKPOINTS,
    check: bool = False,
) -> list[str]:
    """Build (or, with `check`, only compare) and return the files that differ."""
    wanted = derive(solutions, notebooks, checkpoints)
    stale = [p for folder, pattern in ((notebooks, "*.ipynb"), (checkpoints, "*.json")) for p in folder.glob(pattern) if p not in wanted]
    changed = [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if not check:
        for path in changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted[path], encoding="utf-8")
        for path in stale:
            path.unlink()
    return sorted(_relative(p) for p in changed + stale)


def _exercises(chapter: str) -> list:
    name = module_name(chapter)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        return []  # a chapter without checks yet (or a test's made-up one)
    return module.chapter.exercises


def exercise_titles(chapter: str) -> dict[str, str]:
    """Each exercise's title, from the chapter's module, so dashboards need not import it."""
    return {ex.key: ex.title for ex in _exercises(chapter)}


def needed_by_tests(chapter: str) -> set[str]:
    """The exercises whose solutions a later exercise of the chapter runs the learner's tests on."""
    exercises = _exercises(chapter)
    last = max((int(ex.number) for ex in exercises if ex.tests), default=0)
    return {ex.key for ex in exercises if int(ex.number) < last}


def _notebook_text(nb) -> str:
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()
