"""Does a graded edition withhold the released chapter's solutions, and grade exactly as the course does?

Chapter 03 is released into a temporary folder and installed from there with pip, as a
learner's setup installs it; the edition is then searched for the chapter's reference code,
and the grader, run from the installed edition, grades the reference, the starter and a
learner who copies every solution the installed package holds.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from checkers.authoring.build import ROOT, derive
from checkers.authoring.release import ReleaseError, release as release_edition, without_last_hints
from checkers.paths import PACKAGE
from checkers.engine import workspace
from checkers.notebook.api import WITHHELD

CH = "03-database"
REGION = re.compile(r"^[ \t]*# BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*# END SOLUTION", re.M | re.S)
ONE_LINE = re.compile(r"^[ \t]*(\S.*?)\s*# SOLUTION[ \t]*$", re.M)

# a learner who takes, for each of the chapter's exercise files, any reference text the installed
# package holds: the chapter's own solutions, or a later chapter's start (which holds them)
THIEF = '''
import json, pathlib, checkers
folder = pathlib.Path(checkers.__file__).parent / "checkpoints"
mine = json.loads((folder / "03-database.json").read_text())
starters = {c["path"]: c["starter"] for c in mine["cells"] if c["exercise"]}
stolen = {}
for record in sorted(folder.glob("*.json")):
    data = json.loads(record.read_text())
    texts = [(c["path"], c.get("solution")) for c in data["cells"]] if data["chapter"] == "03-database" else []
    texts += list(data["start"].items()) if data["chapter"] > "03-database" else []
    for path, text in texts:
        if path in starters and text and text != starters[path]:
            stolen.setdefault(path, text)  # the chapter's own solution first, then what a later start holds
for path, text in stolen.items():
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text(text)
print(len(stolen), "files stolen")
'''


def normal(text: str) -> str:
    return " ".join(text.split())


def regions(chapter: str) -> list[str]:
    """The chapter's solution regions, but those its own text states (the task dictates them)."""
    nb = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    prose = normal("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))
    found = [normal(r) for r in REGION.findall(code) + ONE_LINE.findall(code)]
    return [r for r in found if r and r not in prose]


def readable(path: Path) -> list[str]:
    """A file's text, and the strings a JSON file holds (where code is escaped), white space normalised."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    texts = [raw]
    if path.suffix in (".json", ".ipynb"):
        def strings(value):
            if isinstance(value, str):
                yield value
            elif isinstance(value, (list, dict)):
                for item in value.values() if isinstance(value, dict) else value:
                    yield from strings(item)
        texts += list(strings(json.loads(raw)))
    return [normal(t) for t in texts]


def holding(folder: Path, needles: list[str]) -> list[str]:
    files = {p: readable(p) for p in folder.rglob("*") if p.is_file()}
    return [f"{p.relative_to(folder)}: {n[:50]}" for p, texts in files.items() for n in needles
            if any(n in t for t in texts)]


def release(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "checkers", "release", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """Chapter 03's edition, and the package installed from it with pip, as a learner's setup does."""
    root = tmp_path_factory.mktemp("release")
    done = release("03", "--out", root / "edition")
    assert done.returncode == 0, done.stderr
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                "--no-deps", "--target", str(root / "site"), str(root / "edition")],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETHUB_")}
    env["PYTHONPATH"] = str(root / "site")
    return {"root": root, "out": root / "edition", "site": root / "site", "env": env}


def in_edition(edition, code: str, cwd=None) -> str:
    """Run Python code with the installed edition's `checkers` (never the repository's)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd or edition["root"], env=edition["env"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_edition_is_the_course_up_to_the_released_chapter(edition):
    """Chapters 00-03 only; 00-02 as in the course; 03 with its start and starters but no solutions?"""
    out = edition["out"]
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [
        "00-welcome.ipynb", "01-project-structure.ipynb", "02-configuration.ipynb", "03-database.ipynb", "index.ipynb"]
    checkpoints = edition["site"] / "checkers" / "checkpoints"
    assert sorted(p.stem for p in checkpoints.glob("*.json")) == workspace.chapters()[:4]
    for chapter in workspace.chapters()[:3]:
        assert json.loads((checkpoints / f"{chapter}.json").read_text()) == workspace.checkpoint(chapter)
    mine, course = json.loads((checkpoints / f"{CH}.json").read_text()), workspace.checkpoint(CH)
    assert mine["start"] == course["start"]  # the previous chapters' reference
    assert [c["starter"] for c in mine["cells"]] == [c["starter"] for c in course["cells"]]
    assert all(c["solution"] is None for c in mine["cells"] if c["exercise"])
    assert not list((edition["site"] / "checkers" / "chapters").glob("ch0[45]_*.py"))
    assert "04-migrations" not in (out / "notebooks" / f"{CH}.ipynb").read_text()


def test_no_solution_text_is_anywhere_in_the_edition(edition):
    """Is no solution region of chapter 03, nor any exercise's last hint, in any file, installed or not?"""
    from checkers.chapters import ch03_database

    needles = regions(CH) + [normal(ex.hints[-1]) for ex in ch03_database.chapter.exercises]
    assert len(needles) > 10
    assert holding(ROOT / "checkers", needles)  # the search finds them where they are
    assert holding(edition["out"], needles) == []
    assert holding(edition["site"], needles) == []


def test_solution_and_last_hint_say_they_are_withheld(edition):
    """Do `solution()` and the last hint say they are not available, while earlier hints and chapters are?"""
    shown = json.loads(in_edition(edition, """
import json, checkers
from checkers.engine.outcomes import Text
from checkers.notebook import api
seen = []
api._show = lambda text: seen.append(text.body)
from checkers.chapters.ch03_database import ex2
from checkers.chapters.ch02_configuration import ex1 as earlier
ex2.solution(); ex2.hint(3); ex2.hint(2); ex2.hint(1); earlier.solution()
print(json.dumps({"file": checkers.__file__, "seen": seen}))
"""))
    assert shown["file"].startswith(str(edition["site"]))
    solution, last, second, first, earlier = shown["seen"]
    from checkers.chapters.ch03_database import ex2

    assert solution == WITHHELD and last == WITHHELD
    assert second.startswith(ex2.hints[1]) and "not available in this edition" in second
    assert first.startswith(ex2.hints[0])
    assert workspace.exercise_files("02-configuration", "ex1")[0]["solution"] in earlier


def test_checks_grade_the_edition_as_the_course(edition):
    """Graded from the edition: full marks for the reference, NOT_ATTEMPTED for the starter, and nothing
    for a learner who copies what the installed package holds in a cell after every check?"""
    subs = edition["root"] / "submissions"
    starter = nbformat.read(edition["out"] / "notebooks" / f"{CH}.ipynb", as_version=4)
    thief = nbformat.read(edition["out"] / "notebooks" / f"{CH}.ipynb", as_version=4)
    thief.cells.append(nbformat.v4.new_code_cell(THIEF))
    for learner, nb in (("honest", nbformat.read(ROOT / "solutions" / f"{CH}.ipynb", as_version=4)),
                        ("starter", starter), ("thief", thief)):
        (subs / learner).mkdir(parents=True)
        nbformat.write(nb, subs / learner / f"{CH}.ipynb")
    done = subprocess.run([sys.executable, "-m", "checkers", "grade", str(subs), "--out", str(edition["root"] / "out"),
                           "--jobs", "2", "--cell-timeout", "30"],
                          cwd=edition["root"], env=edition["env"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with (edition["root"] / "out" / "grades.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["notebook"] == CH]
    outcomes = {learner: {r["exercise"]: r["outcome"] for r in rows if r["learner"] == learner}
                for learner in ("honest", "starter", "thief")}
    exercises = [f"ex{n}" for n in range(1, 7)]
    assert outcomes["honest"] == dict.fromkeys(exercises, "PASS")
    assert outcomes["starter"] == dict.fromkeys(exercises, "NOT_ATTEMPTED")
    assert outcomes["thief"] == outcomes["starter"]


def test_the_thief_would_succeed_on_the_full_course(edition, tmp_path):
    """Is the thief's copying real: with the course's own package, does it write the reference files?"""
    env = {**edition["env"], "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", THIEF], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    cells = [c for c in workspace.checkpoint(CH)["cells"] if c["exercise"]]
    assert done.stdout.strip() == f"{len(cells)} files stolen", done.stderr
    assert all((tmp_path / c["path"]).read_text() == c["solution"] for c in cells)
    assert in_edition(edition, THIEF, cwd=tmp_path).strip() == "0 files stolen"


def test_no_check_needs_a_solution(tmp_path):
    """With every chapter's solutions withheld at once, does each check still pass the reference and call the
    starter NOT_ATTEMPTED (nothing a check, a warm-up or a setup reads is a solution)?"""
    shutil.copytree(PACKAGE, tmp_path / "lib" / "checkers", ignore=shutil.ignore_patterns("__pycache__", "checkpoints"))
    chapters = workspace.chapters()
    for path, text in derive(checkpoints=tmp_path / "lib" / "checkers" / "checkpoints", notebooks=tmp_path / "nb",
                             withheld=frozenset(chapters)).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for chapter in chapters:
        for version in ("solution", "starter"):
            workspace.write_files(tmp_path / version / chapter, workspace.files(chapter, version))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETHUB_")}
    env["PYTHONPATH"] = str(tmp_path / "lib")
    code = f"""
import importlib, json, checkers
from checkers.engine import server, workspace
assert checkers.__file__.startswith({str(tmp_path / "lib")!r})
client, seen = server.Client(), {{}}
for chapter in workspace.chapters():
    assert workspace.withheld(chapter)
    for warm_up in importlib.import_module(workspace.module_name(chapter)).chapter.warm_ups:
        warm_up()  # the server would only print what one raised
    for version in ("solution", "starter"):
        for ex in workspace.checkpoint(chapter)["exercises"]:
            project = {str(tmp_path)!r} + f"/{{version}}/{{chapter}}"
            seen[f"{{chapter}} {{ex}} {{version}}"] = client.run(workspace.module_name(chapter), ex, project).outcome.value
client.stop()
print(json.dumps(seen))
"""
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    wanted = {f"{chapter} {ex} {version}": "PASS" if version == "solution" else "NOT_ATTEMPTED"
              for chapter in chapters for version in ("solution", "starter") for ex in workspace.checkpoint(chapter)["exercises"]}
    assert json.loads(ran.stdout) == wanted


@pytest.mark.parametrize(("args", "says"), [
    (["03", "04"], "chapter 04-migrations starts from chapter 03-database's solutions"),
    (["99"], "no chapter '99'"),
])
def test_an_edition_that_cannot_be_made_is_refused(tmp_path, args, says):
    with pytest.raises(ReleaseError, match=re.escape(says)):
        release_edition(args, tmp_path / "edition")
    assert not (tmp_path / "edition").exists()


def test_an_edition_is_written_only_into_an_empty_folder(tmp_path):
    (tmp_path / "edition").mkdir()
    (tmp_path / "edition" / "mine.txt").write_text("keep me")
    with pytest.raises(ReleaseError, match="is not an empty folder"):
        release_edition(["00"], tmp_path / "edition")
    assert [p.name for p in (tmp_path / "edition").iterdir()] == ["mine.txt"]


def test_last_hints_are_replaced_in_the_source():
    """Is only the last of several hints replaced, with the module still valid Python?"""
    source = ('ex1 = chapter.exercise("One", hints=["first", "second",\n    "the whole " f"{answer}"])\n'
              'ex2 = chapter.exercise("Two", hints=["only"])\nex3 = chapter.exercise("Three")\n')
    rewritten = without_last_hints(source)
    assert rewritten == source.replace('"the whole " f"{answer}"', repr(WITHHELD))
    compile(rewritten, "chapter", "exec")
    with pytest.raises(ReleaseError, match="must be a list written out"):
        without_last_hints('ex1 = chapter.exercise("One", hints=HINTS)\n')


def test_an_edition_keeps_what_a_tests_exercise_runs_on(tmp_path, capsys):
    """Releasing chapter 05, whose ex2 asks for tests run on ex1's overview: is ex1's solution kept, and said so,
    while every other exercise's solution is withheld?"""
    assert release_edition(["05"], tmp_path / "edition") == 0
    said = capsys.readouterr().out
    assert "kept in 05-query-performance: the solutions of ex1" in said
    record = json.loads((tmp_path / "edition" / "checkers" / "checkpoints" / "05-query-performance.json").read_text())
    kept = {c["exercise"] for c in record["cells"] if c["exercise"] and c["solution"] is not None}
    assert kept == {"ex1"}
    assert "keeps the solutions of ex1" in (tmp_path / "edition" / "README.md").read_text()
