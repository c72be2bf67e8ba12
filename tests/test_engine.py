"""Does the exercise engine turn anything a learner writes into a precise, safe outcome?"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import checkers.notebook.progress
import checkers.paths
from checkers.engine import sandbox, server, workspace
from checkers.chapters.ch00_welcome import chapter, ex1
from checkers.notebook.api import CheckFailed
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
