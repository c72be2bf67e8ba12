"""Is the build of learner notebooks and checkpoints right, idempotent and loud on bad input?"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from checkers.authoring.build import ROOT, BuildError, build, derive, split_solution

HERE = Path(__file__).parent / "build"


@pytest.fixture
def course(tmp_path):
    """A copy of the small test course; returns a function that builds it into tmp_path."""
    shutil.copytree(HERE / "solutions", tmp_path / "solutions")

    def run(check=False):
        return build(tmp_path / "solutions", tmp_path / "notebooks", tmp_path / "checkpoints", check=check)

    run.root = tmp_path
    return run


def test_build_matches_goldens(course, update_goldens):
    """Are the notebooks, index and checkpoints exactly the golden files?"""
    course()
    for kind in ("notebooks", "checkpoints"):
        built, golden = course.root / kind, HERE / "goldens" / kind
        if update_goldens:
            shutil.rmtree(golden, ignore_errors=True)
            shutil.copytree(built, golden)
        names = sorted(p.name for p in built.iterdir())
        assert names == sorted(p.name for p in golden.iterdir())
        for name in names:
            assert (built / name).read_text() == (golden / name).read_text(), f"{kind}/{name} differs"


def test_build_is_idempotent(course):
    assert course()  # the first build writes everything
    assert course() == []
    assert course(check=True) == []


def test_check_mode_reports_stale_files_and_changes_nothing(course):
    course()
    learner = course.root / "notebooks" / "00-first.ipynb"
    learner.write_text(learner.read_text().replace("Exercise one", "Exercise 1"))
    extra = course.root / "notebooks" / "99-removed.ipynb"
    extra.write_text("{}")
    stale = course(check=True)
    assert [Path(p).name for p in stale] == ["00-first.ipynb", "99-removed.ipynb"]
    assert "Exercise 1" in learner.read_text() and extra.exists()
    course()
    assert not extra.exists() and course(check=True) == []


def test_learner_notebook_hides_solutions_and_locks_checks(course):
    course()
    nb = nbformat.read(course.root / "notebooks" / "00-first.ipynb", as_version=4)
    cells = {c.id: c for c in nb.cells}
    assert cells["ex1-code"].source == (
        '%%writefile pkg/a.py\n"""Exercise one."""\nLIMIT = ...  # YOUR CODE HERE\n\n\n'
        'def double(n):\n    """Return twice n."""\n    ...  # YOUR CODE HERE\n\n\n'
        "def name():\n    return ...  # YOUR CODE HERE"
    )
    assert cells["ex1-help"].source == "# ex1.hint()\n# ex1.solution()"
    assert cells["ex1-check"].metadata == {"deletable": False, "editable": False, "tags": ["check"]}
    assert all(not c.get("outputs") for c in nb.cells)
    assert nb.cells[0].id == "navigation-top" and nb.cells[-1].id == "navigation-bottom"
    assert "[01 · Second steps →](01-second.ipynb)" in nb.cells[0].source


def test_checkpoints_chain_chapters(course):
    """Does each chapter start from the previous chapter's solution files?"""
    course()
    first = json.loads((course.root / "checkpoints" / "00-first.json").read_text())
    second = json.loads((course.root / "checkpoints" / "01-second.json").read_text())
    assert first["start"] == {}
    assert second["start"]["pkg/a.py"].count("return 2 * n") == 1
    assert "SOLUTION" not in json.dumps(second["start"])
    assert [c["exercise"] for c in first["cells"]] == [None, "ex1"]


def test_files_given_without_a_cell_are_in_the_checkpoints(course):
    """Does `solutions/NN-topic/` reach the chapter's checkpoint as given files, and the next chapter's start?"""
    given = course.root / "solutions" / "00-first" / "tool" / "settings.ini"
    given.parent.mkdir(parents=True)
    given.write_text("[tool]\nname = first\n")
    course()
    first = json.loads((course.root / "checkpoints" / "00-first.json").read_text())
    second = json.loads((course.root / "checkpoints" / "01-second.json").read_text())
    assert first["cells"][0] == {"path": "tool/settings.ini", "exercise": None,
                                 "starter": "[tool]\nname = first\n", "solution": "[tool]\nname = first\n"}
    assert second["start"]["tool/settings.ini"] == "[tool]\nname = first\n"
    assert course(check=True) == []
    given.write_text("[tool]\nname = changed\n")
    assert [Path(p).name for p in course(check=True)] == ["00-first.json", "01-second.json"]


def test_a_file_both_given_and_written_by_a_cell_fails_loudly(course):
    """Is a file that a cell writes and the chapter's folder gives refused, naming both?"""
    given = course.root / "solutions" / "00-first" / "pkg" / "a.py"
    given.parent.mkdir(parents=True)
    given.write_text("LIMIT = 1\n")
    with pytest.raises(BuildError, match="`pkg/a.py` is written by this cell and given in `00-first/`"):
        course()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n# BEGIN SOLUTION\ny = 2", "line 2: `# BEGIN SOLUTION` has no matching `# END SOLUTION`"),
        ("x = 1\n# END SOLUTION", "line 2: `# END SOLUTION` without a `# BEGIN SOLUTION`"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "line 2: `# BEGIN SOLUTION` inside another"),
    ],
)
def test_unmatched_markers_fail_loudly(source, message):
    """Is an error raised, with the line, when a marker has no partner?"""
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        split_solution(source, "cell 3")


@pytest.mark.parametrize(
    ("cell", "new_source", "message"),
    [
        ("ex1-check", "print('no check here')", "has no `exN.check()` cell after it"),
        ("given", "x = 1  # SOLUTION", "only allowed in `%%writefile` cells"),
        ("ex1-code", "%%writefile pkg/a.py\nx = 1", "follows no exercise cell"),
    ],
)
def test_malformed_chapters_fail_loudly(course, cell, new_source, message):
    path = course.root / "solutions" / "00-first.ipynb"
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if c.id == cell).source = new_source
    nbformat.write(nb, path)
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        course()


def test_the_course_is_built():
    """Are the repository's notebooks/ and checkpoints current (what CI insists on)?"""
    done = subprocess.run([sys.executable, "-m", "checkers", "build", "--check"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_withheld_chapter_keeps_its_start_and_starters_only(course):
    """Does `derive` for an edition stop at the chapter, and drop its exercises' solutions but not its given code?"""
    full = {p.name: text for p, text in derive(course.root / "solutions", course.root / "nb", course.root / "cp").items()}
    wanted = derive(course.root / "solutions", course.root / "nb", course.root / "cp",
                    through="01-second", withheld=frozenset({"01-second"}))
    assert sorted(p.name for p in wanted) == sorted(full)
    second = json.loads(wanted[course.root / "cp" / "01-second.json"])
    course_second = json.loads(full["01-second.json"])
    assert second["withheld"] is True and "withheld" not in course_second
    assert second["start"] == course_second["start"]
    for mine, theirs in zip(second["cells"], course_second["cells"]):
        assert mine["starter"] == theirs["starter"]
        assert mine["solution"] == (None if theirs["exercise"] else theirs["solution"])
    first_only = derive(course.root / "solutions", course.root / "nb", course.root / "cp", through="00-first")
    assert sorted(p.name for p in first_only) == ["00-first.ipynb", "00-first.json", "index.ipynb"]
    assert "01-second" not in first_only[course.root / "nb" / "00-first.ipynb"]


def test_a_heading_that_is_not_its_exercises_title_fails_loudly(tmp_path):
    """Results, dashboards and their links name an exercise by its module's title: must the heading read the same?"""
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    path = tmp_path / "solutions" / "03-database.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and "## Exercise 3 · Pagination" in c.source)
    cell.source = cell.source.replace("## Exercise 3 · Pagination", "## Exercise 3 · A pager for every list")
    nbformat.write(nb, path)
    with pytest.raises(BuildError, match=r"must read `## Exercise 3 · Pagination`.*'A pager for every list'"):
        build(tmp_path / "solutions", tmp_path / "notebooks", tmp_path / "checkpoints")
