"""Does the exercise engine turn anything a learner writes into a precise, safe outcome?"""
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

import checkers.notebook.progress
import checkers.paths
from checkers.engine import sandbox, server, testrun, workspace
from checkers.chapters.ch00_welcome import chapter, ex1
from checkers.notebook.api import Bug, Chapter, CheckFailed, Correct
from checkers.engine.outcomes import Outcome, Result, Step
from conftest import assert_outcome

CHAPTER = "00-welcome"
WARMUP = "tickethub/warmup.py"
GREET = '    return {"message"'
REFERENCE = workspace.files(CHAPTER, "solution")[WARMUP].splitlines()
BP_LINE = next(n for n, line in enumerate(REFERENCE, 1) if line.startswith("bp = Blueprint("))  # where `bp` is made
GREET_LINE = next(n for n, line in enumerate(REFERENCE, 1) if line.startswith(GREET))  # the greet view's return


def in_greet(code: str) -> tuple[str, str]:
    """A mutation that runs `code` at the start of the greet view (at GREET_LINE of warmup.py)."""
    return GREET, f"    {code}\n{GREET}"


@pytest.mark.parametrize(
    ("mutation", "outcome", "fragments"),
    [
        (("bp = Blueprint(", "bp = Blueprint((("), Outcome.ERROR,
         ["SyntaxError", f"{WARMUP}, line {BP_LINE}"]),
        (("bp = Blueprint(", "1 / 0\nbp = Blueprint("), Outcome.ERROR,
         ["ZeroDivisionError: division by zero", f"{WARMUP}, line {BP_LINE}, in <module>", "1 / 0"]),
        (in_greet("raise KeyError('seat')"), Outcome.ERROR,
         ["KeyError: 'seat'", f"{WARMUP}, line {GREET_LINE}, in greet", "! `GET /api/greet/<name>`"]),
        (in_greet("while True: pass"), Outcome.TIMEOUT,
         ["still running after", f"{WARMUP}, line {GREET_LINE}, in greet", "while True: pass"]),
        (("bp = Blueprint(", "while True: pass\nbp = Blueprint("), Outcome.TIMEOUT,
         [f"{WARMUP}, line {BP_LINE}, in <module>"]),
        (in_greet("import sys; sys.exit(3)"), Outcome.ERROR, ["sys.exit()", f"{WARMUP}, line {GREET_LINE}"]),
        (in_greet("import os; os._exit(3)"), Outcome.ERROR, ["os._exit(3)", f"{WARMUP}, line {GREET_LINE}"]),
        (in_greet("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), Outcome.ERROR,
         ["ended abruptly (signal 9)"]),
        (in_greet("hog = bytearray(8 * 1024 ** 3)"), Outcome.ERROR, ["out of memory", f"{WARMUP}, line {GREET_LINE}"]),
    ],
)
def test_learner_failures_are_reported_precisely(project, mutation, outcome, fragments):
    """Does each way learner code can break give its outcome, the learner's line, and nothing of ours?"""
    p = project(CHAPTER).edit(WARMUP, *mutation)
    started = time.monotonic()
    result = p.check("ex1")
    assert time.monotonic() - started < server.hard_timeout() + 2
    assert_outcome(result, outcome, *fragments)
    text = result.text() + result._repr_html_()
    for internal in ("Traceback", "checkers/", "site-packages", " 0x", "tickethub-check-"):
        assert internal not in text, text


def test_swallowed_timeout_is_killed(project):
    """Is code that catches the soft timeout still stopped, by the hard one?"""
    loop = "while True:\n        try:\n            import time; time.sleep(1)\n        except BaseException:\n            pass"
    p = project(CHAPTER).edit(WARMUP, *in_greet(loop))
    assert_outcome(p.check("ex1"), Outcome.TIMEOUT, "did not finish within")


def test_nothing_is_left_behind(project, tmp_path, monkeypatch):
    """After a killed check, are its process group and its temporary folder gone?"""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TICKETHUB_SCRATCH", str(scratch))  # the new server's check folders go here
    p = project(CHAPTER).edit(WARMUP, *in_greet(
        "import subprocess; subprocess.Popen(['sleep', '300']); import os; os.kill(os.getpid(), 9)"))
    client = server.Client()
    try:
        assert_outcome(client.run(p.module, "ex1", p.root), Outcome.ERROR, "ended abruptly")
    finally:
        client.stop()
    assert list(scratch.iterdir()) == []
    sleepers = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True).stdout
    assert not sleepers.strip()


def test_kernel_state_cannot_change_a_result(project, monkeypatch):
    """Do monkeypatches of checkers and Flask in the kernel, and stale modules, leave checks alone?"""
    p = project(CHAPTER).edit(WARMUP, "count = sum(", "count = len(items) or sum(")
    import flask

    import checkers.engine.judge

    monkeypatch.setattr(checkers.engine.judge.Checker, "require", lambda *args, **kwargs: None)
    monkeypatch.setattr(flask.Flask, "test_client", None)
    monkeypatch.syspath_prepend(str(p.root))
    workspace.fresh_import("tickethub")  # the kernel holds the learner's package, soon stale
    client = server.Client()  # a new server, started after the patches
    try:
        assert_outcome(client.run(p.module, "ex1", p.root), Outcome.FAIL, "sum of the quantities")
        p.edit(WARMUP, "count = len(items) or sum(", "count = sum(")
        for _ in range(2):  # re-running gives the same answer each time
            assert_outcome(client.run(p.module, "ex1", p.root), Outcome.PASS)
    finally:
        client.stop()
        for name in [m for m in sys.modules if m.split(".")[0] == "tickethub"]:
            del sys.modules[name]


def test_check_cannot_write_into_the_project(project):
    """Do files a check (or the learner's code under check) writes stay out of the project?"""
    p = project(CHAPTER).edit(WARMUP, *in_greet("open('written-by-check.txt', 'w').write('x')"))
    p.check("ex1")
    assert not (p.root / "written-by-check.txt").exists()


def test_spawned_fallback_gives_the_same_outcomes(project, monkeypatch):
    """Where fork is missing, do the judge and the learner's process in new interpreters give the same outcomes?"""
    monkeypatch.setenv("TICKETHUB_NO_FORK", "1")  # the spawned judge spawns the learner's process too
    p = project(CHAPTER).edit(WARMUP, *in_greet("print('debugging', name)"))  # the learner's print is no protocol
    request = {"module": p.module, "exercise": "ex1", "project": str(p.root), "seed": 7}
    assert_outcome(Result.from_dict(server.run_spawned(request)), Outcome.PASS)
    p.edit(WARMUP, "print('debugging', name)", "raise KeyError('seat')")
    assert_outcome(Result.from_dict(server.run_spawned(request)), Outcome.ERROR, f"{WARMUP}, line {GREET_LINE}")


def test_spawned_probes_work(project, monkeypatch):
    """Without fork, do the course's probes (which run beside the learner's code) still answer?"""
    monkeypatch.setenv("TICKETHUB_NO_FORK", "1")
    p = project("01-project-structure")
    request = {"module": p.module, "exercise": "ex1", "project": str(p.root), "seed": 7}
    assert_outcome(Result.from_dict(server.run_spawned(request)), Outcome.PASS)  # its last step is a probe


def test_a_correct_answer_that_prints_passes(project):
    """Does a learner's `print()` (to stdout and stderr) leave a correct answer's PASS alone?"""
    p = project(CHAPTER).edit(WARMUP, *in_greet("import sys; print('hi'); print('oops', file=sys.stderr)"))
    assert_outcome(p.check("ex1"), Outcome.PASS)


def test_a_failed_fork_is_reported_and_cleaned_up(project, monkeypatch, tmp_path):
    """When fork fails (no memory, no processes), is the check an INTERNAL with nothing left behind?"""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TICKETHUB_SCRATCH", str(scratch))

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    p = project(CHAPTER)
    result = Result.from_dict(sandbox.run_forked({"module": p.module, "exercise": "ex1", "project": str(p.root)}))
    assert_outcome(result, Outcome.INTERNAL, "could not start", "not in your code")
    assert list(scratch.iterdir()) == []


def test_fork_is_refused_while_threads_run(project):
    """Does the server refuse to fork (a clear INTERNAL) while another thread might hold a lock?"""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        p = project(CHAPTER)
        result = Result.from_dict(server.run({"module": p.module, "exercise": "ex1", "project": str(p.root)}))
    finally:
        stop.set()
        thread.join()
    assert_outcome(result, Outcome.INTERNAL, "other threads")


@pytest.fixture
def notebook_dir(tmp_path, monkeypatch):
    """A fresh notebook folder as the kernel's current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkers.notebook.progress, "_notebook_dir", None)
    monkeypatch.setattr(chapter, "root", None)
    yield tmp_path
    server.client().stop()


def test_setup_is_idempotent_and_keeps_learner_files(notebook_dir, capsys):
    chapter.setup()
    root = notebook_dir / "work" / CHAPTER
    assert Path.cwd() == root and (root / "tickethub" / "__init__.py").exists()
    assert capsys.readouterr().out.splitlines()[-1] == "Setup complete"
    (root / WARMUP).write_text("# my work\n")
    chapter.setup()  # re-run, from inside the project folder
    assert Path.cwd() == root and (root / WARMUP).read_text() == "# my work\n"
    assert not (root / "work").exists()


def test_notebooks_in_a_folder_named_work_keep_their_projects(notebook_dir, monkeypatch, capsys):
    """Under a folder named `work` (the Jupyter Docker stacks' mount), does setup use the notebook's folder?"""
    notebooks = notebook_dir / "work" / "course"
    notebooks.mkdir(parents=True)
    monkeypatch.chdir(notebooks)
    chapter.setup()
    chapter.setup()  # again, from inside the project: the recorded folder, not a guess from the path
    assert Path.cwd() == notebooks / "work" / CHAPTER
    assert checkers.notebook.progress.path() == notebooks / "work" / ".progress.json"


def test_a_check_can_be_replayed_with_its_seed(notebook_dir, capsys):
    """Does `check(seed=...)` give the same result, seed included, as the check it replays?"""
    chapter.setup()
    workspace.write_files(chapter.root, workspace.files(CHAPTER, "solution"))
    chapter.root.joinpath(WARMUP).write_text(
        chapter.root.joinpath(WARMUP).read_text().replace("count = sum(", "count = len(items) or sum("))
    ex1.check()
    first = ex1.last
    ex1.check(seed=first.seed)
    assert ex1.last.to_dict() == first.to_dict() and first.outcome is Outcome.FAIL
    assert f"seed {first.seed}" in first.text() and f"seed {first.seed}" not in repr(first)


def test_reset_keeps_a_backup(notebook_dir, capsys):
    chapter.setup()
    root = notebook_dir / "work" / CHAPTER
    (root / WARMUP).write_text("# my work\n")
    chapter.reset()
    assert (root / WARMUP).read_text() == workspace.files(CHAPTER, "starter")[WARMUP]
    backups = list((notebook_dir / "work" / ".backups").iterdir())
    assert [(b / WARMUP).read_text() for b in backups] == ["# my work\n"]
    assert "Your previous files are in work/.backups/" in capsys.readouterr().out


def test_learner_api_shows_outcome_hints_and_solution(notebook_dir, capsys):
    chapter.setup()
    capsys.readouterr()
    ex1.check()
    assert capsys.readouterr().out.startswith("[NOT_ATTEMPTED] Exercise 1")
    ex1.hint()
    assert "Try `ex1.hint(2)`" in capsys.readouterr().out
    ex1.hint(99)  # past the last tier shows the last one
    last = capsys.readouterr().out
    assert "Hint 3 (of 3)" in last and "Try" not in last
    ex1.solution()
    assert 'def greet(name):' in capsys.readouterr().out


def test_grading_mode_fails_the_cell(notebook_dir, monkeypatch, capsys):
    """When grading, does a check that does not pass raise, so nbval counts the cell as failed?"""
    chapter.setup()
    monkeypatch.setenv(checkers.paths.GRADING, "1")
    with pytest.raises(CheckFailed, match="NOT_ATTEMPTED"):
        ex1.check()
    workspace.write_files(chapter.root, workspace.files(CHAPTER, "solution"))
    ex1.check()  # a pass raises nothing
    assert "[PASS]" in capsys.readouterr().out


def test_rendering_is_escaped_and_has_both_forms():
    result = Result("ex2", "Events <api>", Outcome.FAIL, [
        Step("`GET /` lists", "passed"),
        Step("`POST /` creates", "failed", expected="201", seen="`<b>500</b>`", hint="Did you `return`?"),
        Step("later", "skipped"),
    ])
    assert result.text().splitlines() == [
        "[FAIL] Exercise 2: Events <api>",
        "  ✓ `GET /` lists",
        "  ✗ `POST /` creates",
        "      Expected: 201",
        "      Seen: `<b>500</b>`",
        "      Hint: Did you `return`?",
        "  – later",
        "  (✗ failed · – skipped: fix the step above it first)",  # what the marks mean
    ]
    html = result._repr_html_()
    assert 'title="skipped: fix the step above it first"' in html and "✗ failed · – skipped" in html
    assert "<code>&lt;b&gt;500&lt;/b&gt;</code>" in html and "Events &lt;api&gt;" in html
    assert Result.from_dict(result.to_dict()) == result


def test_bench_runs_every_check_and_prints_the_summary_last():
    """Does the benchmark pass every reference solution and end with the median and max?"""
    done = subprocess.run([sys.executable, "-m", "checkers", "bench", "--repeat", "1"],
                          capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("checks: ") and " median: " in last and " max: " in last


def test_an_error_has_a_hint_for_its_usual_cause(project):
    """Does an ERROR come with a question about what usually causes that exception?"""
    p = project(CHAPTER).edit(WARMUP, *in_greet("return {'message': nmae}"))
    assert_outcome(p.check("ex1"), Outcome.ERROR, "NameError", "Hint: Is the name spelt as where it is defined")


# --- the exercise kind in which the learner writes tests (`tests_catch`) -------------------------------

GREETING = 'f"Welcome to TicketHub, {name}!"'
TESTS = "tests/test_greet.py"
GREET_TESTS = '''from tickethub import create_app


def test_greet():
    client = create_app().test_client()
    assert client.get("/api/greet/Ada").get_json() == {"message": "Welcome to TicketHub, Ada!"}


def test_quote():
    client = create_app().test_client()
    assert client.get("/api/quote?price=2.5&quantity=4").get_json() == {"total": 10.0}
'''
TRACES = '''from pathlib import Path
import tempfile

MARKS = [Path("written.txt"), Path("tickethub/written.py"), Path("../written.txt"), Path.home() / "written.txt",
         Path(tempfile.gettempdir()) / "written.txt"]


def test_leaves_traces(tmp_path):
    assert not any(mark.exists() for mark in MARKS + [tmp_path.parent / "written.txt"])  # what an earlier run wrote
    for mark in MARKS + [tmp_path.parent / "written.txt"]:
        mark.write_text("x")
'''


def _tests_chapter():
    """A stand-in chapter on chapter 00's files, with one exercise whose check runs the learner's tests.

    And one declared wrongly, which runs pytest after the learner's code ran.
    """
    stand_in = Chapter("checkers.chapters.ch97_tests", "tests of the warm-up")
    stand_in.name = CHAPTER  # chapter 00's reference and files: its ex1 (warmup.py) counts as attempted
    ex = stand_in.exercise("Tests for the warm-up")
    ex.tests_catch(TESTS, bugs=[
        Bug("the greeting leaves the name out", WARMUP, GREETING, '"Welcome to TicketHub!"',
            hint="Does a test compare the whole message, name included?"),
        Bug("the quote forgets the quantity", WARMUP, "round(price * quantity, 2)", "round(price, 2)"),
    ], accepts=[Correct("the greeting is joined with `+`", WARMUP, GREETING, '"Welcome to TicketHub, " + name + "!"')])
    tainted = Chapter("checkers.chapters.ch97_tainted", "a check declared wrongly")
    tainted.name = CHAPTER

    @tainted.exercise("A run after the learner's code ran").step("imports the learner's module, then runs pytest")
    def _tainted(t, state):
        t.module("tickethub.warmup")
        t.pytest({TESTS: GREET_TESTS}, TESTS)

    return stand_in, tainted


TESTS_CHAPTER, TAINTED_CHAPTER = _tests_chapter()


@pytest.fixture
def tests_check(monkeypatch):
    """Run the stand-in chapter's check (forked from this process, which knows the chapter) on a project."""
    for stand_in in (TESTS_CHAPTER, TAINTED_CHAPTER):
        monkeypatch.setitem(sys.modules, stand_in.module, types.SimpleNamespace(chapter=stand_in))
    for warm_up in TESTS_CHAPTER.warm_ups:
        warm_up()

    def run(p, text: str, chapter=TESTS_CHAPTER) -> Result:
        p.write(TESTS, text)
        request = {"module": chapter.module, "exercise": "ex1", "project": str(p.root), "seed": 1}
        return Result.from_dict(sandbox.run_forked(request))

    return run


def test_written_tests_pass_when_they_pass_on_correct_code_and_catch_each_bug(project, tests_check):
    assert_outcome(tests_check(project(CHAPTER), GREET_TESTS), Outcome.PASS)


@pytest.mark.parametrize(("text", "outcome", "fragments"), [
    # fails on the reference: pytest's own failure text, with the learner's line
    (GREET_TESTS.replace('{"total": 10.0}', '{"total": 11.0}'), Outcome.FAIL,
     ["every test passes on the reference", "`test_quote` failed", "tests/test_greet.py:11: in test_quote",
      "E   AssertionError: assert {'total': 10.0} == {'total': 11.0}"]),
    # a bug survives: its description is what was seen, with the bug's own hint
    (GREET_TESTS.replace('== {"message": "Welcome to TicketHub, Ada!"}', '["message"].startswith("Welcome")'),
     Outcome.FAIL, ["Seen: all 2 tests passed when the greeting leaves the name out",
                    "Hint: Does a test compare the whole message"]),
    # too strict: it fails on code that is correct in another way
    (GREET_TESTS + '\n\ndef test_source():\n    assert "f\\"Welcome" in open("tickethub/warmup.py").read()\n',
     Outcome.FAIL, ["they pass when the greeting is joined with `+`", "`test_source` failed"]),
    ("def test_greet(:\n    pass\n", Outcome.ERROR, ["SyntaxError", f"{TESTS}, line 1"]),
    ("def greet_works():\n    assert True\n", Outcome.FAIL, ["it defines no test function"]),
    ("__test__ = False\n\n\ndef test_greet():\n    assert True\n", Outcome.FAIL, ["pytest collected no test"]),
    ("import pytest\n\n\ndef test_greet():\n    pytest.skip('later')\n", Outcome.FAIL,
     ["`test_greet` was skipped: `Skipped: later`", "A skipped (or expected-to-fail) test checks nothing"]),
    ("def test_greet():\n    pass\n", Outcome.FAIL, ["Seen: 1 test passed when the greeting leaves the name out"]),
    ("from tickethub.nowhere import greet\n\n\ndef test_greet():\n    pass\n", Outcome.FAIL,
     ["pytest could not collect it", "No module named 'tickethub.nowhere'"]),
    ("def test_greet():\n    while True:\n        pass\n", Outcome.TIMEOUT,
     ["still running after", f"{TESTS}, line 2, in test_greet", "while True:"]),
    ("import os, signal\n\n\ndef test_greet():\n    os.kill(os.getpid(), signal.SIGKILL)\n", Outcome.ERROR,
     ["ended abruptly (signal 9, running your tests)"]),
    # a report forged on every descriptor the run might answer on: not pytest's, so the learner's ERROR, never ours
    ("import json, os, struct\n\n\ndef test_greet():\n    data = json.dumps({'collected': [], 'errors': [], 'skipped': [], "
     "'tests': [{'name': 1}]}).encode()\n    for fd in range(3, 64):\n        try:\n"
     "            os.write(fd, struct.pack('>I', len(data)) + data)\n        except OSError:\n            pass\n",
     Outcome.ERROR, ["a report that is not pytest's"]),
    # what a run writes, in its project, beside it, in its temporary folder or its home, no later run sees
    (TRACES, Outcome.FAIL, ["Seen: 1 test passed when the greeting leaves the name out"]),
])
def test_written_tests_are_judged_by_what_pytest_reports(project, tests_check, text, outcome, fragments):
    """Does each way a learner's test module can fall short get its outcome, with pytest's words and nothing of ours?"""
    p = project(CHAPTER)
    before = {f: f.read_bytes() for f in p.root.rglob("*") if f.is_file() and f.name != "test_greet.py"}
    result = tests_check(p, text)
    assert_outcome(result, outcome, *fragments)
    for internal in ("Traceback", "checkers/", "site-packages", " 0x", "tickethub-check-", "pytest-"):
        assert internal not in result.text(), result.text()
    after = {f: f.read_bytes() for f in p.root.rglob("*") if f.is_file() and f.name != "test_greet.py"}
    assert after == before  # the learner's files are never changed, whatever their tests do


def test_written_tests_run_only_where_no_learner_code_ran(project, tests_check):
    """Is a pytest run asked of a learner's process that has run the learner's code refused, as a fault of the check?"""
    assert_outcome(tests_check(project(CHAPTER), GREET_TESTS, TAINTED_CHAPTER), Outcome.INTERNAL, "not in your code")


def test_a_tests_exercise_is_declared_first_and_with_bugs():
    """Does `tests_catch` refuse an exercise that requires another, follows other steps, or seeds no bug?"""
    stand_in = Chapter("checkers.chapters.ch97_declare", "declarations")
    first = stand_in.exercise("first")
    bug = Bug("x", WARMUP, "a", "b")
    with pytest.raises(ValueError, match="no `requires`"):
        stand_in.exercise("second", requires=[first]).tests_catch(TESTS, bugs=[bug])
    stepped = stand_in.exercise("stepped")
    stepped.step("a step of its own")(lambda t, state: state)
    with pytest.raises(ValueError, match="before any other step"):
        stepped.tests_catch(TESTS, bugs=[bug])
    with pytest.raises(ValueError, match="without a seeded bug"):
        stand_in.exercise("third").tests_catch(TESTS, bugs=[])
    assert not stand_in.warm_ups


def test_written_tests_run_the_same_without_fork(tmp_path, monkeypatch):
    """Where there is no fork, does a run in a new interpreter report the same, a loop and a crash included?"""
    monkeypatch.setattr(testrun, "FORK", False)
    files = {**workspace.files(CHAPTER, "solution"), TESTS: GREET_TESTS}
    report = testrun.run(files, TESTS, tmp_path, 20)  # a cold interpreter: generous
    assert [(t["name"], t["outcome"]) for t in report["tests"]] == [(f"{TESTS}::test_greet", "passed"),
                                                                    (f"{TESTS}::test_quote", "passed")]
    report = testrun.run({**files, TESTS: "def test_greet():\n    while True:\n        pass\n"}, TESTS, tmp_path, 10)
    assert report["timeout"] == f"{TESTS}, line 2, in test_greet\n    while True:"
    report = testrun.run({**files, TESTS: "import os\n\n\ndef test_greet():\n    os._exit(3)\n"}, TESTS, tmp_path, 20)
    assert report == {"crashed": "exit status 3"}
    assert list(tmp_path.iterdir()) == []  # each run's folder is gone
def test_a_project_digest_changes_with_what_a_check_sees(tmp_path):
    """Does the digest follow file names and contents, ignore caches, and give up on links and pipes?"""
    workspace.write_files(tmp_path, workspace.files("01-project-structure", "starter"))
    first = workspace.digest(tmp_path)
    (tmp_path / "tickethub" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "tickethub" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    assert first is not None and workspace.digest(tmp_path) == first
    (tmp_path / "tickethub" / "errors.py").write_text("changed\n")
    changed = workspace.digest(tmp_path)
    assert changed != first
    (tmp_path / "tickethub" / "empty").mkdir()
    assert workspace.digest(tmp_path) not in (first, changed)
    (tmp_path / "link").symlink_to(tmp_path / "tickethub" / "errors.py")
    assert workspace.digest(tmp_path) is None
    (tmp_path / "link").unlink()
    os.mkfifo(tmp_path / "pipe")
    assert workspace.digest(tmp_path) is None


def test_a_chapter_loads_the_libraries_its_project_imports_and_not_the_project():
    """Does loading a chapter in the check server import Alembic and the rest of what the project imports (so each
    forked check starts warm), read from the checkpoint, without importing any of the project's own modules?"""
    names = workspace.libraries("06-rest-api")
    assert {"flask_migrate", "flask_smorest", "sqlalchemy.orm", "webargs.flaskparser"} <= set(names)
    assert not any(name.split(".")[0] in {"tickethub", "wsgi", "tests", "playground", "migrations"} for name in names)
    code = ("import sys; from checkers.engine import server; server.load('checkers.chapters.ch06_rest_api'); "
            "print(sorted(n for n in ('flask_migrate', 'mako.template', 'flask_smorest', 'tickethub') if n in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert done.stdout.split() == ["['flask_migrate',", "'flask_smorest',", "'mako.template']"], done.stdout + done.stderr


def test_a_new_chapter_declares_its_exercises_before_its_first_build():
    """Can a chapter with no checkpoint yet declare `ex.defines(...)` (its first build writes the checkpoint)?"""
    new = Chapter("checkers.chapters.ch98_not_built_yet", "Not built yet")
    ex = new.exercise("Anything")
    ex.defines("tickethub.anything.services", functions=["run"])
    assert ex.steps[0].name.startswith("`tickethub/anything/services.py` defines")


def test_only_an_exercise_of_test_runs_alone_is_seed_free():
    """Is an exercise of `tests_catch` steps alone seed-free (no sweep needed), and one with a step of its own not?"""
    new = Chapter("checkers.chapters.ch97_seed_free", "Seed free")
    alone, more, plain = new.exercise("Tests"), new.exercise("Tests and more"), new.exercise("Plain")
    for ex in (alone, more):
        ex.tests_catch("tests/test_x.py", bugs=[Bug("a bug", "x.py", "a", "b")])
    more.step("a step of its own, which may draw from the seed")(lambda t, state: state)
    plain.step("a plain step")(lambda t, state: state)
    assert alone.seed_free and not more.seed_free and not plain.seed_free
