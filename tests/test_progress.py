"""Is the learner's progress kept safely, and shown right, in JupyterLab and in plain text?"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import checkers.notebook.progress
import checkers.paths
from checkers.engine import server, workspace
from checkers.notebook import dashboard, progress
from checkers.chapters.ch00_welcome import chapter, ex1
from checkers.engine.outcomes import Outcome

CHAPTER = "00-welcome"


@pytest.fixture
def notebook_dir(tmp_path, monkeypatch):
    """A fresh notebook folder as the kernel's current directory, with no progress yet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkers.notebook.progress, "_notebook_dir", None)
    monkeypatch.setattr(chapter, "root", None)
    for name in (checkers.paths.GRADING, checkers.paths.GRADER):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(progress, "notices", [])
    yield tmp_path
    server.client().stop()


def saved(folder: Path) -> dict:
    return json.loads((folder / "work" / ".progress.json").read_text())["chapters"]


def test_a_check_records_its_latest_outcome(notebook_dir):
    """Does every check leave its outcome in work/.progress.json, the latest one winning?"""
    chapter.setup()
    ex1.check()
    assert saved(notebook_dir) == {CHAPTER: {"ex1": "NOT_ATTEMPTED"}}
    workspace.write_files(chapter.root, workspace.files(CHAPTER, "solution"))
    ex1.check()
    assert saved(notebook_dir) == {CHAPTER: {"ex1": "PASS"}}


def test_progress_survives_a_restart(notebook_dir):
    """Does a new process (a restarted kernel) see what an earlier one recorded?"""
    progress.record(CHAPTER, "ex1", Outcome.FAIL)
    code = "from checkers.notebook import progress; print(progress.load()['00-welcome']['ex1'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=notebook_dir)
    assert done.stdout.strip() == "FAIL", done.stderr


def test_a_failed_write_leaves_the_old_file_whole(notebook_dir, monkeypatch, capsys):
    """If writing fails halfway, is the previous progress still there, with no debris?"""
    progress.record(CHAPTER, "ex1", Outcome.PASS)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(progress.json, "dump", broken)
    progress.record(CHAPTER, "ex1", Outcome.FAIL)  # must not raise
    assert "Your progress could not be saved: OSError: disk full" in capsys.readouterr().err
    assert saved(notebook_dir) == {CHAPTER: {"ex1": "PASS"}}
    assert sorted(p.name for p in (notebook_dir / "work").iterdir()) == [".progress.json", ".progress.lock"]


@pytest.mark.parametrize("content", [b"{not json", b"", b"[]", b'{"chapters": []}',
                                     b'{"chapters": {"00-welcome": {"ex1": 3}}}', b"\xff\xfe\x00"])
def test_an_unreadable_file_is_kept_aside_not_wiped(notebook_dir, capsys, content):
    """Is a corrupt progress file moved aside with a clear message, and progress started afresh?"""
    target = notebook_dir / "work" / ".progress.json"
    target.parent.mkdir()
    target.write_bytes(content)
    assert progress.load() == {}
    aside = list(target.parent.glob(".progress-unreadable-*.json"))
    assert [p.read_bytes() for p in aside] == [content]
    message = capsys.readouterr().err
    assert f"kept as work/{aside[0].name}" in message and "Your code is not affected" in message
    assert progress.notices == [message.strip()]
    progress.record(CHAPTER, "ex1", Outcome.PASS)
    assert saved(notebook_dir) == {CHAPTER: {"ex1": "PASS"}}
    assert "kept as work/" in dashboard.Dashboard(CHAPTER).html()  # the dashboard says so too


@pytest.mark.parametrize("variable", [checkers.paths.GRADING, checkers.paths.GRADER])
def test_nothing_is_recorded_while_grading(notebook_dir, monkeypatch, variable):
    """Does grading (plain nbval or the grade command) leave no progress behind?"""
    monkeypatch.setenv(variable, "1")
    progress.record(CHAPTER, "ex1", Outcome.PASS)
    assert not (notebook_dir / "work").exists()


def test_a_broken_progress_file_never_breaks_a_check(notebook_dir, capsys):
    """When progress cannot be saved, does the check still show its result, without raising?"""
    chapter.setup()
    (notebook_dir / "work" / ".progress.json").mkdir()  # unreadable and unwritable as a file
    capsys.readouterr()
    ex1.check()
    captured = capsys.readouterr()
    assert captured.out.startswith("[NOT_ATTEMPTED] Exercise 1")
    assert "Your progress could not be saved" in captured.err


def test_notebooks_recording_at_once_lose_nothing(notebook_dir):
    """Do several kernels recording at the same moment keep every one of their outcomes?"""
    code = ("import sys; from checkers.notebook import progress\n"
            "for n in range(20): progress.record(f'ch{sys.argv[1]}', f'ex{n}', 'PASS')")
    kernels = [subprocess.Popen([sys.executable, "-c", code, str(k)], cwd=notebook_dir) for k in range(4)]
    assert [k.wait(60) for k in kernels] == [0] * 4
    assert {name: len(exercises) for name, exercises in saved(notebook_dir).items()} == {f"ch{k}": 20 for k in range(4)}


def test_dashboard_text_lists_exercises_with_their_outcomes(notebook_dir):
    progress.record("01-project-structure", "ex2", Outcome.FAIL)
    progress.record(CHAPTER, "ex1", Outcome.PASS)
    assert str(dashboard.dashboard(CHAPTER)).splitlines() == [
        "Your progress (00 · Welcome to TicketHub): 1 of 1 passed",
        "  ex1   PASS           Warm-up: routes, request data and JSON",
    ]
    lines = str(dashboard.dashboard()).splitlines()
    assert lines[:3] == [lines[0], "00 · Welcome to TicketHub: 1 of 1 passed",
                         "  ex1   PASS           Warm-up: routes, request data and JSON"]
    assert "01 · Project structure: 0 of 4 passed" in lines
    assert "  ex2   FAIL           The events blueprint" in lines
    assert "  ex1   not checked    The event service" in lines
    with pytest.raises(LookupError):
        dashboard.dashboard("99-nothing")


def test_dashboard_updates_live_and_its_plain_text_stays_put(notebook_dir, monkeypatch):
    """In a kernel: is the widget redrawn on each check, while the text nbval compares never changes?"""
    monkeypatch.setattr(dashboard, "_in_kernel", lambda: True)
    monkeypatch.setattr(dashboard, "_thread", "not started")  # no file watcher in this test process
    monkeypatch.setattr(dashboard, "_live", {})
    board = dashboard.dashboard(CHAPTER)
    before = board._repr_mimebundle_()
    assert before["text/plain"] == "TicketHub progress dashboard (00 · Welcome to TicketHub)"
    assert "application/vnd.jupyter.widget-view+json" in before
    assert "tickethub-unchecked" in board.widget.value
    progress.record(CHAPTER, "ex1", Outcome.PASS)
    assert 'data-exercise="00-welcome/ex1"' in board.widget.value and "tickethub-pass" in board.widget.value
    assert board._repr_mimebundle_()["text/plain"] == before["text/plain"]
    newer = dashboard.dashboard(CHAPTER)
    newer._repr_mimebundle_()
    assert dashboard._live == {CHAPTER: newer} and board.widget.comm is None  # the old one is closed


def test_dashboard_outside_a_kernel_is_plain_text(notebook_dir):
    assert dashboard.dashboard(CHAPTER)._repr_mimebundle_() == {"text/plain": str(dashboard.dashboard(CHAPTER))}


def test_dashboards_import_no_chapter(tmp_path):
    """Do the dashboards read titles from the build's output, without importing any chapter (or SQLAlchemy)?"""
    code = ("import sys; from checkers.notebook import dashboard\n"
            "rows = dashboard.rows()\n"
            "loaded = [m for m in sys.modules if m.startswith(('checkers.chapters', 'sqlalchemy', 'alembic'))]\n"
            "print(len(rows), rows[0].title, loaded)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    count, rest = done.stdout.split(" ", 1)
    assert int(count) == sum(len(workspace.checkpoint(c)["exercises"]) for c in workspace.chapters())
    assert rest.strip() == "Warm-up: routes, request data and JSON []"


def test_progress_is_found_from_the_repository_root_and_from_a_project(tmp_path, monkeypatch):
    """Does `dashboard()` read the notebooks' progress from the repository root and from inside a project?"""
    monkeypatch.setattr(checkers.notebook.progress, "_notebook_dir", None)
    notebooks = tmp_path / "notebooks"
    monkeypatch.chdir(notebooks.mkdir() or notebooks)
    progress.record("00-welcome", "ex1", "PASS")
    for where in (tmp_path, notebooks, notebooks / "work" / "00-welcome"):
        where.mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(where)
        assert progress.load() == {"00-welcome": {"ex1": "PASS"}}, where


def test_a_pass_survives_a_later_experiment(tmp_path, monkeypatch):
    """After a PASS, does an experiment that times out keep the exercise passed, and show what happened since?"""
    monkeypatch.setattr(checkers.notebook.progress, "_notebook_dir", None)
    monkeypatch.chdir(tmp_path)
    progress.record("00-welcome", "ex1", "PASS")
    progress.record("00-welcome", "ex1", "TIMEOUT")
    assert progress.load() == {"00-welcome": {"ex1": "TIMEOUT"}}
    assert progress.ever_passed() == {"00-welcome": {"ex1"}}
    board = dashboard.Dashboard("00-welcome")
    assert "1 of 1 passed" in board.text() and "PASS" in board.text() and "now TIMEOUT" in board.text()
    assert "tickethub-pass" in board.html() and "now TIMEOUT" in board.html()


def test_a_version_1_file_still_reads(tmp_path, monkeypatch):
    """Is a progress file written before `passed` was kept read, its latest PASSes counted as passed?"""
    monkeypatch.setattr(checkers.notebook.progress, "_notebook_dir", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".progress.json").write_text(
        '{"version": 1, "chapters": {"00-welcome": {"ex1": "PASS"}, "01-project-structure": {"ex2": "FAIL"}}}')
    assert progress.ever_passed() == {"00-welcome": {"ex1"}}
    progress.record("00-welcome", "ex1", "ERROR")
    assert progress.ever_passed() == {"00-welcome": {"ex1"}} and progress.load()["01-project-structure"] == {"ex2": "FAIL"}


def test_a_damaged_passed_list_is_set_aside(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(checkers.notebook.progress, "_notebook_dir", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".progress.json").write_text('{"version": 2, "chapters": {}, "passed": {"00-welcome": "ex1"}}')
    assert progress.ever_passed() == {}
    assert list((tmp_path / "work").glob(".progress-unreadable-*.json")) and "could not read" in capsys.readouterr().err


def test_the_index_links_each_exercise_to_its_chapter():
    """Does each exercise of the course's dashboard link to its heading in its chapter's notebook, in a tab of its own?"""
    page = dashboard.Dashboard().html(saved={}, ever={})
    for chapter in workspace.chapters():
        for key, title in workspace.checkpoint(chapter)["exercises"].items():
            heading = f"Exercise {key[2:]} · {title.replace('`', '')}".replace(" ", "-")
            assert f'<a href="{chapter}.ipynb#{heading}" target="_blank"' in page.replace("&#x27;", "'")
