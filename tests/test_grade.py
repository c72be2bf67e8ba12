"""Can the grade command be fooled, crashed or slowed into wrong marks?

A class of submissions is built from the solution notebooks. Each attacker submits chapter 01
with one exercise left unsolved, plus an attack meant to get credit for it anyway (or to
break the grader). Each attacker has a twin who submits the same work without the attack:
the attack must change nothing, and the honest learner must get full marks.
"""
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from checkers.engine import workspace
from checkers.grading import grade, plugin as grade_plugin, report
from checkers.authoring.build import ROOT

CH = "01-project-structure"
TARGET = "ex2"  # the exercise every attacker leaves unsolved


def solution(chapter: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)


def unsolved(exercise: str = TARGET) -> nbformat.NotebookNode:
    """Chapter 01 fully solved except `exercise`, whose cell holds the starter."""
    nb = solution(CH)
    starter = {c.id: c for c in nbformat.read(ROOT / "notebooks" / f"{CH}.ipynb", as_version=4).cells}
    cell = next(c for c in nb.cells if c.id == f"{exercise}-code")
    cell.source = starter[cell.id].source
    return nb


def cell_index(nb, cell_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.id == cell_id)


def insert_after(nb, cell_id: str, source: str):
    nb.cells.insert(cell_index(nb, cell_id) + 1, nbformat.v4.new_code_cell(source))
    return nb


def replace_check(source: str, tags=()):
    def attack(nb):
        cell = nb.cells[cell_index(nb, f"{TARGET}-check")]
        cell.source, cell.metadata["tags"] = source, list(tags)
        return nb
    return attack


def delete_check(nb):
    del nb.cells[cell_index(nb, f"{TARGET}-check")]
    return nb


def in_cell(source: str):
    return lambda nb: insert_after(nb, f"{TARGET}-code", source)


def always_equal(nb):
    """A service whose every answer claims to equal whatever it is compared with."""
    cell = nb.cells[cell_index(nb, "ex1-code")]
    cell.source = cell.source.split("\n", 1)[0] + '''
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __hash__(self): return 0
    def __getitem__(self, key): return Anything()
    def __iter__(self): return iter([Anything()])
    def __len__(self): return 1


class EventNotFound(LookupError):
    pass


class InvalidEvent(ValueError):
    def __init__(self, errors):
        super().__init__(errors)
        self.errors = Anything()


class EventService:
    def list_events(self): return Anything()
    def get_event(self, event_id): return Anything()
    def create_event(self, data): return Anything()
'''
    return nb


PACKAGE = "import checkers, pathlib\nroot = pathlib.Path(checkers.__file__).parent\n"
ATTACKS = {
    "print-the-output": replace_check('print("[PASS] Exercise 2")'),
    "delete-the-check": delete_check,
    "nbval-skip": replace_check("# NBVAL_SKIP\nex2.check()", tags=["nbval-skip"]),
    "patch-checkers": in_cell(
        "import checkers.notebook.api, checkers.engine.server\n"
        "checkers.notebook.api.Exercise.check = lambda self: print('[PASS]')\n"
        "checkers.engine.server.Client.run = lambda *args: None"
    ),
    "patch-flask": in_cell("import flask\nflask.Flask.test_client = lambda self, *a, **k: None"),
    "sys-exit": in_cell("import sys\nsys.exit(0)"),
    "os-exit": in_cell("import os\nos._exit(0)"),
    "endless-loop": in_cell("while True:\n    pass"),
    "memory-hog": in_cell("hog = bytearray(8 * 1024 ** 3)"),
    "kernel-crash": in_cell("import ctypes\nctypes.string_at(0)"),
    "stray-process": in_cell("import subprocess\nsubprocess.Popen(['sleep', '600'])"),
    "write-into-checkers": in_cell(
        PACKAGE + "for p in (root / 'checkpoints').glob('*.json'):\n    p.write_text('{}')\n"
        "(root / 'chapters' / 'ch01_project_structure.py').write_text('raise SystemExit')"
    ),
}


def fixed_below(nb):
    """The exercise is solved in a new cell below its check, not in its own cell."""
    solved = solution(CH).cells[cell_index(solution(CH), f"{TARGET}-code")].source
    return insert_after(nb, f"{TARGET}-check", solved)


def check_above(nb):
    """The check cell moved above the exercise's code cell."""
    check = nb.cells.pop(cell_index(nb, f"{TARGET}-check"))
    nb.cells.insert(cell_index(nb, f"{TARGET}-code"), check)
    return nb


def broken_later(nb):
    """After the check passed, a last cell puts the starter back."""
    starter = unsolved().cells[cell_index(unsolved(), f"{TARGET}-code")].source
    nb.cells.append(nbformat.v4.new_code_cell(starter))
    return nb


PLACES = {  # honest learners whose check cell is not where their code is
    "fixed-below": (lambda: fixed_below(unsolved()), report.FINAL),
    "check-above": (lambda: check_above(solution(CH)), report.FINAL),
    "broken-later": (lambda: broken_later(solution(CH)), report.AT_CELL),
}


def leftovers(folder: Path) -> set:
    """The grader's temporary folders (its checks' folders are made inside them)."""
    return set(folder.glob("tickethub-grade-*"))


def read_rows(out: Path) -> dict:
    with (out / "grades.csv").open(encoding="utf-8") as f:
        return {(r["learner"], r["notebook"], r["exercise"]): r for r in csv.DictReader(f)}


def outcomes(rows: dict, learner: str, notebook: str = CH) -> dict:
    return {ex: r["outcome"] for (l, nb, ex), r in rows.items() if l == learner and nb == notebook}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole class once; return its rows and what the package looked like before."""
    submissions = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("out")

    def submit(learner: str, chapter: str, nb) -> None:
        (submissions / learner).mkdir(exist_ok=True)
        nbformat.write(nb, submissions / learner / f"{chapter}.ipynb")

    for chapter in workspace.chapters():
        submit("honest", chapter, solution(chapter))
    submit("twin", CH, unsolved())
    submit("twin-ex1", CH, unsolved("ex1"))
    for name, attack in ATTACKS.items():
        submit(name, CH, attack(unsolved()))
    submit("always-equal", CH, always_equal(unsolved("ex1")))
    for name, (notebook, _) in PLACES.items():
        submit(name, CH, notebook())
    for name in ("build", ".ada"):  # names pytest would skip as folders to collect
        submit(name, CH, solution(CH))
    (submissions / "fifo").mkdir()
    os.mkfifo(submissions / "fifo" / f"{CH}.ipynb")  # reading it would block forever
    (submissions / "huge").mkdir()
    with open(submissions / "huge" / f"{CH}.ipynb", "wb") as huge:
        huge.truncate(64 << 20)  # sparse: large to the grader, cheap to the test
    (submissions / "link").mkdir()
    (submissions / "link" / f"{CH}.ipynb").symlink_to(submissions / "honest" / f"{CH}.ipynb")
    submit("broken-json", CH, unsolved())
    (submissions / "broken-json" / f"{CH}.ipynb").write_text('{"cells": [', encoding="utf-8")
    before = grade_plugin.package_files()
    # this run's own temporary folder and mark: other runs (other tests, other checkouts) may be going on
    temp, marks, kill_strays = tmp_path_factory.mktemp("temp"), [], grade.kill_strays
    grade.kill_strays = lambda mark: marks.append(mark) or kill_strays(mark)
    tempfile.tempdir, saved = str(temp), tempfile.tempdir
    try:
        status = grade.grade(submissions, out, jobs=2, cell_timeout=10, quiet=True)
    finally:
        grade.kill_strays, tempfile.tempdir = kill_strays, saved
    return {"status": status, "rows": read_rows(out), "out": out, "package": before,
            "temp": temp, "mark": f"{grade.RUN_MARK}={marks[0]}".encode()}


def test_grading_completes_and_writes_the_gradebook(graded):
    assert graded["status"] == 0
    out = graded["out"]
    header = (out / "grades.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "learner,notebook,exercise,outcome,counted,seed,message"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Exercises, hardest first" in report and 'href="feedback/honest.md"' in report
    assert "Exercise 2: NOT_ATTEMPTED" in (out / "feedback" / "twin.md").read_text(encoding="utf-8")


def test_honest_learner_gets_full_marks(graded):
    rows = [r for (learner, *_), r in graded["rows"].items() if learner == "honest"]
    assert rows and all(r["outcome"] == "PASS" for r in rows), [r for r in rows if r["outcome"] != "PASS"]


def test_verdicts_count_where_the_learner_checked(graded):
    """Does an honest learner's work count at its check cell, with no second verdict when it passed there?"""
    rows = [r for (learner, nb, _), r in graded["rows"].items() if learner == "honest" and nb == CH]
    assert {r["counted"] for r in rows} == {report.AT_CELL}
    feedback = (graded["out"] / "feedback" / "honest.md").read_text(encoding="utf-8")
    assert "Counted:" not in feedback


@pytest.mark.parametrize("learner", sorted(PLACES))
def test_honest_work_counts_wherever_its_check_cell_is(graded, learner):
    """A fix below the check, a check above its code, a break after the pass: does each keep full marks,
    with the verdict that counted named in the gradebook and the feedback?"""
    rows = {ex: r for (l, nb, ex), r in graded["rows"].items() if l == learner and nb == CH}
    assert {ex: r["outcome"] for ex, r in rows.items()} == dict.fromkeys(rows, "PASS")
    counted = PLACES[learner][1]
    assert rows[TARGET]["counted"] == counted
    assert {r["counted"] for ex, r in rows.items() if ex != TARGET} == {report.AT_CELL}
    feedback = (graded["out"] / "feedback" / f"{learner}.md").read_text(encoding="utf-8")
    section = feedback.split(f"### Exercise {TARGET[2:]}: PASS", 1)[1].split("###", 1)[0]
    if counted == report.FINAL:
        assert "Counted: the check on your notebook's final state" in section
        assert "at its check cell it was NOT_ATTEMPTED" in section
    else:
        assert "Counted:" not in section


def test_the_final_state_is_checked_only_where_the_project_changed(graded):
    """Is an unpassed exercise checked again only when later cells changed the project its check saw?"""
    rows = {(r["learner"], r["exercise"]): r for r in report.read(graded["out"]) if r["notebook"] == CH}
    # exercise 4's cell rewrote tickethub/__init__.py after exercise 2's check; nothing ran after exercise 4's
    assert (rows[("twin", TARGET)]["counted"], rows[("twin", TARGET)]["other"]) == (report.AT_CELL, "NOT_ATTEMPTED")
    assert (rows[("twin", "ex4")]["outcome"], rows[("twin", "ex4")]["other"]) == ("FAIL", "")


def test_the_same_notebook_gets_the_same_checks(graded):
    """Do identical notebooks from different learners get the same seeds and marks, each seed in the gradebook?"""
    rows = graded["rows"]
    same = [{ex: (r["outcome"], r["seed"]) for (l, nb, ex), r in rows.items() if l == learner and nb == CH}
            for learner in ("honest", "build", ".ada")]
    assert same[0] == same[1] == same[2]
    assert all(seed.isdigit() for _, seed in same[0].values())
    for ex, (_, seed) in same[0].items():
        assert f"check(seed={seed})" in rows[("honest", CH, ex)]["message"]
    twin = {ex: r["seed"] for (l, nb, ex), r in rows.items() if l == "twin" and nb == CH}
    assert twin != {ex: seed for ex, (_, seed) in same[0].items()}  # another notebook, other seeds


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_earns_nothing_and_spoils_nothing(graded, attack):
    """Does the attacker get exactly what the twin who did not attack gets?"""
    mine, twin = outcomes(graded["rows"], attack), outcomes(graded["rows"], "twin")
    assert mine[TARGET] != "PASS"
    assert mine == twin, (mine, twin)


def test_always_equal_objects_fail(graded):
    mine, twin = outcomes(graded["rows"], "always-equal"), outcomes(graded["rows"], "twin-ex1")
    assert mine["ex1"] in ("FAIL", "ERROR")
    assert {k: v for k, v in mine.items() if k != "ex1"} == {k: v for k, v in twin.items() if k != "ex1"}


def test_any_folder_name_is_a_learner(graded):
    """Are learners whose folders pytest would skip by name (`build`, `.ada`) graded like anyone else?"""
    for name in ("build", ".ada"):
        assert set(outcomes(graded["rows"], name).values()) == {"PASS"}, name


@pytest.mark.parametrize(("learner", "why"), [("fifo", "not a regular file"), ("link", "not a regular file"),
                                              ("huge", "larger than 16 MiB")])
def test_special_and_huge_files_cost_only_their_rows(graded, learner, why):
    """Is a named pipe, a link or a huge file reported as MISSING with its reason, without being read?"""
    rows = [r for (l, nb, _), r in graded["rows"].items() if l == learner and nb == CH]
    assert rows and all(r["outcome"] == "MISSING" and why in r["message"] for r in rows), rows


def test_unreadable_and_missing_notebooks_are_reported(graded):
    rows = graded["rows"]
    broken = rows[("broken-json", CH, "ex1")]
    assert broken["outcome"] == "MISSING" and "could not be read" in broken["message"]
    missing = rows[("twin", "00-welcome", "ex1")]
    assert missing["outcome"] == "MISSING" and "was not submitted" in missing["message"]


def test_nothing_is_left_behind(graded):
    """After grading: the course's code unchanged, no leftover processes or temporary folders?"""
    assert grade_plugin.package_files() == graded["package"]
    marked = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if graded["mark"] in (proc / "environ").read_bytes().split(b"\0"):
                marked.append(proc.name)
        except OSError:
            continue
    assert not marked
    assert not leftovers(graded["temp"])


def test_writes_into_checkers_are_caught_without_a_read_only_mount(tmp_path, monkeypatch):
    """Where course code cannot be made read-only, is a write detected, undone and marked TAMPERED?"""
    monkeypatch.setattr(grade, "_can_unshare", lambda: False)
    (tmp_path / "in" / "mallory").mkdir(parents=True)
    nb = insert_after(solution("00-welcome"), "ex1-code",
                      PACKAGE + "(root / 'checkpoints' / '00-welcome.json').write_text('{}')")
    nbformat.write(nb, tmp_path / "in" / "mallory" / "00-welcome.ipynb")
    before = grade_plugin.package_files()
    grade.grade(tmp_path / "in", tmp_path / "out", jobs=1, cell_timeout=10, quiet=True)
    assert grade_plugin.package_files() == before
    row = read_rows(tmp_path / "out")[("mallory", "00-welcome", "ex1")]
    assert row["outcome"] == "TAMPERED"


def test_shards_merge_into_the_full_gradebook(tmp_path):
    for learner in ("ada", "grace", "linus", "barbara"):
        (tmp_path / "in" / learner).mkdir(parents=True)
        source = ROOT / ("solutions" if learner in ("ada", "linus") else "notebooks") / "00-welcome.ipynb"
        (tmp_path / "in" / learner / "00-welcome.ipynb").write_bytes(source.read_bytes())
    parts = []
    for index in (1, 2):
        parts.append(tmp_path / f"part{index}")
        grade.grade(tmp_path / "in", parts[-1], jobs=1, shard=f"{index}/2", quiet=True)
    learners = [set(l for l, *_ in read_rows(p)) for p in parts]
    assert learners[0].isdisjoint(learners[1]) and learners[0] | learners[1] == {"ada", "grace", "linus", "barbara"}
    done = subprocess.run([sys.executable, "-m", "checkers", "merge", *map(str, parts), "--out", str(tmp_path / "all")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    merged = {k: r["outcome"] for k, r in read_rows(tmp_path / "all").items() if k[1] == "00-welcome"}
    assert merged == {(l, "00-welcome", "ex1"): "PASS" if l in ("ada", "linus") else "NOT_ATTEMPTED"
                      for l in ("ada", "grace", "linus", "barbara")}


def test_plain_nbval_lax_still_grades(tmp_path):
    """Does plain `pytest --nbval-lax` in grading mode pass a solved notebook and fail an unsolved one?"""
    for name, folder in (("solved", "solutions"), ("unsolved", "notebooks")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "00-welcome.ipynb").write_bytes((ROOT / folder / "00-welcome.ipynb").read_bytes())
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "TICKETHUB_GRADING": "1"}
    codes = {}
    for name in ("solved", "unsolved"):
        codes[name] = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-c", str(tmp_path / "pytest.ini"), "-p", "no:cacheprovider",
             "--nbval-lax", "--nbval-current-env", str(tmp_path / name)],
            cwd=tmp_path, env=env, capture_output=True, text=True).returncode
    assert codes == {"solved": 0, "unsolved": 1}


def test_memory_limit_stops_a_hog(graded):
    feedback = (graded["out"] / "feedback" / "memory-hog.md").read_text(encoding="utf-8")
    assert "MemoryError" in feedback
