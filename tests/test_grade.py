"""Can the grade command be fooled, crashed or slowed into wrong marks?

A class of submissions is built from the solution notebooks. Each attacker submits chapter 01
with one exercise left unsolved, plus an attack meant to get credit for it anyway (or to
break the grader, another learner's marks or the machine). Each attacker has a twin who
submits the same work without the attack: the attack must earn nothing, and the honest
learners must get full marks. Attacks on the sandbox also say what they managed (in a cell
error that the feedback quotes), so a test can tell an attack that was stopped from one
that never ran.
"""
import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path

import nbformat
import pytest

from checkers.engine import workspace
from checkers.grading import grade, isolation, plugin as grade_plugin, report
from checkers.authoring.build import ROOT
from checkers.paths import PACKAGE as INSTALLED

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



MARK = uuid.uuid4().hex[:12]  # names what this session's attacks leave, so a test can look for it
LISTENER = socket.create_server(("127.0.0.1", 0))  # a service on the grading machine's loopback


def reporting(body: str) -> str:
    """An attack that ends by raising what it achieved, `done` (the feedback quotes the error)."""
    return "done = {}\n" + body + "\nraise RuntimeError('attack-report ' + json.dumps(done, sort_keys=True))"


# attacks on the sandbox: on other learners, the course's code, the machine and the grader itself
SANDBOX_ATTACKS = {
    "neighbours": in_cell(reporting("""
import glob, json, pathlib
root = pathlib.Path.cwd().parents[3]  # the run's folder of submissions, in a run without sandboxes
others = set(glob.glob(str(root / '*' / '*'))) | set(glob.glob('/tmp/tickethub-grade-*/submissions/*/*'))
mine = str(pathlib.Path.cwd().parents[1])
done['written'] = done['read'] = 0
for folder in sorted(others - {mine}):
    chapter = pathlib.Path(folder).name
    for path, text in ((f'{folder}/work/{chapter}/flask.py', 'raise ImportError("planted")'),
                       (f'{folder}/{chapter}.ipynb', '{}')):
        try:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(path).write_text(text)
            done['written'] += 1
        except OSError:
            pass
    for theirs in glob.glob(f'{folder}/work/{chapter}/tickethub/**/*.py', recursive=True):
        try:
            copy = pathlib.Path('tickethub') / pathlib.Path(theirs).relative_to(f'{folder}/work/{chapter}/tickethub')
            copy.write_text(pathlib.Path(theirs).read_text())
            done['read'] += 1
        except (OSError, ValueError):
            pass
""")),
    "installed-package": in_cell(reporting(f"""
import json, os, pathlib
done['written'] = 0
roots = [{str(INSTALLED)!r}] + [f'/proc/{{p}}/root{str(INSTALLED)}' for p in os.listdir('/proc') if p.isdigit()]
for root in roots:
    try:
        pathlib.Path(root, 'backdoor_{MARK}.py').write_text('PASS = True')
        done['written'] += 1
    except OSError:
        pass
""")),
    "fill-the-disk": in_cell(reporting(f"""
import json, os, pathlib
chunk = bytes(16 << 20)
for place in ['/tmp', '/dev/shm', '/var/tmp', str(pathlib.Path.home()), str(pathlib.Path.cwd().parents[3]), '/',
              {str(INSTALLED.parent)!r}]:
    path, written = os.path.join(place, 'tickethub-fill-{MARK}'), 0
    try:
        with open(path, 'wb') as f:
            while written < 1 << 30:
                f.write(chunk)
                written += len(chunk)
    except OSError:
        pass
    done[place] = written >> 20
    try:
        os.remove(path)  # so that only the attempt differs from the twin's notebook
    except OSError:
        pass
""")),
    "network": in_cell(reporting(f"""
import json, socket
done['reached'] = []
for address in [('127.0.0.1', {LISTENER.getsockname()[1]}), ('1.1.1.1', 53), ('8.8.8.8', 443)]:
    try:
        socket.create_connection(address, timeout=2).close()
        done['reached'].append(address[0])
    except OSError:
        pass
""")),
    "fork-bomb": in_cell(reporting("""
import json, os, time
done['forked'] = 0
for _ in range(400):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    done['forked'] += 1
""")),
    "stop-the-others": in_cell(reporting("""
import json, os, signal
done['stopped'] = 0
for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()]:
    if pid not in (os.getpid(), 1):
        try:
            os.kill(pid, signal.SIGSTOP)
            done['stopped'] += 1
        except OSError:
            pass
""")),
    "daemon": in_cell(reporting(f"""
import json, subprocess, sys
script = "import glob, time\\nwhile True:\\n    time.sleep(1)\\n    for f in glob.glob('/**/grades.csv', recursive=True): open(f, 'w').write('HACKED')"
subprocess.Popen(['env', '-i', 'setsid', sys.executable, '-c', script, 'tickethub-daemon-{MARK}'],
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
done['started'] = 1
""")),
    "forge-results": in_cell(reporting("""
import glob, json, os
row = json.dumps({'kind': 'check', 'learner': 'forge-results', 'notebook': '01-project-structure', 'exercise': 'ex2',
                  'outcome': 'PASS', 'message': 'forged'})
done['written'] = 0
paths = [v for k, v in os.environ.items() if 'RESULT' in k] + glob.glob('/tmp/**/*.jsonl', recursive=True)
paths += [p for p in glob.glob('/proc/*/fd/*') if not p.startswith(f'/proc/{os.getpid()}/')]
for path in paths:
    try:
        with open(path, 'a') as f:
            f.write(row + '\\n')
        done['written'] += 1
    except OSError:
        pass
""")),
}
SELF_HARM = {"fork-bomb", "stop-the-others"}  # attacks that may cost the attacker its own later checks


def attack_report(out: Path, learner: str) -> dict:
    """What an attack said it achieved, from its learner's feedback."""
    feedback = (out / "feedback" / f"{learner}.md").read_text(encoding="utf-8")
    found = re.search(r"attack-report (\{.*?\})`", feedback)
    assert found, f"the attack did not run to its end: {feedback}"
    return json.loads(found.group(1))


def leftovers() -> set:
    """The grader's temporary folders (its checks' folders are made inside them)."""
    return set(Path(tempfile.gettempdir()).glob("tickethub-grade-*")) | set(Path(tempfile.gettempdir()).glob("tickethub-probe-*"))


def read_rows(out: Path) -> dict:
    with (out / "grades.csv").open(encoding="utf-8") as f:
        return {(r["learner"], r["notebook"], r["exercise"]): r for r in csv.DictReader(f)}


def outcomes(rows: dict, learner: str, notebook: str = CH) -> dict:
    return {ex: r["outcome"] for (l, nb, ex), r in rows.items() if l == learner and nb == notebook}


def sandboxed_check(nb):
    """A solved notebook whose first exercise file imports only where the sandbox is (as any check's will)."""
    cell = nb.cells[cell_index(nb, "ex1-code")]
    cell.source += f"""

import os as _os, socket as _socket
assert _os.getuid() == {isolation.INSIDE_ID}, "not the sandbox's user"
assert b"TICKETHUB_" not in open("/proc/self/environ", "rb").read(), "grading shows in the environment"
assert not _os.path.exists({str(INSTALLED)!r}), "the installed package is in sight"
try:
    _socket.create_connection(("127.0.0.1", {LISTENER.getsockname()[1]}), timeout=1).close()
    raise AssertionError("the grading machine's loopback is in reach")
except OSError:
    pass
"""
    return nb


def marked_processes(mark: str) -> list[str]:
    """Processes whose command line holds `mark`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark.encode() in (proc / "cmdline").read_bytes():
                found.append(proc.name)
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def sandbox():
    """Skip where no grading sandbox can be made (in CI that is a failure: `course.py test` installs bubblewrap)."""
    why = isolation.unavailable()
    if why and os.environ.get("CI"):
        pytest.fail(f"CI must grade in the sandbox, but {why}", pytrace=False)
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, sandbox):
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
    for name, attack in {**ATTACKS, **SANDBOX_ATTACKS}.items():
        submit(name, CH, attack(unsolved()))
    submit("always-equal", CH, always_equal(unsolved("ex1")))
    for name, (notebook, _) in PLACES.items():
        submit(name, CH, notebook())
    submit("sandboxed-check", CH, sandboxed_check(solution(CH)))
    for name in ("build", ".ada"):  # names pytest would skip as folders to collect
        submit(name, CH, solution(CH))
    (submissions / "fifo").mkdir()
    os.mkfifo(submissions / "fifo" / f"{CH}.ipynb")  # reading it would block forever
    (submissions / "huge").mkdir()
    with open(submissions / "huge" / f"{CH}.ipynb", "wb") as huge:
        huge.truncate(64 << 20)  # sparse: large to the grader, cheap to the test
    (submissions / "link").mkdir()
    (submissions / "link" / f"{CH}.ipynb").symlink_to(submissions / "honest" / f"{CH}.ipynb")
    submit("wordy", CH, insert_after(unsolved(), "ex1-code", "# " + "x" * (3 << 20)))  # small enough to read
    submit("broken-json", CH, unsolved())
    (submissions / "broken-json" / f"{CH}.ipynb").write_text('{"cells": [', encoding="utf-8")
    before = grade_plugin.package_files()
    private = tmp_path_factory.mktemp("tmp")  # this run's temporary folders, apart from other runs'
    connections = []
    LISTENER.settimeout(0.5)
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                connections.append(LISTENER.accept()[0])
            except OSError:
                continue

    listening = threading.Thread(target=listen, daemon=True)
    listening.start()
    run = uuid.uuid4()  # the mark of every process of the run, so a test can look for this run's own
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(grade, "uuid", types.SimpleNamespace(uuid4=lambda: run))
            patch.setattr(tempfile, "tempdir", str(private))
            status = grade.grade(submissions, out, jobs=2, cell_timeout=10, quiet=True)
            left = leftovers()
    finally:
        stop.set()
        listening.join()
    backdoor = INSTALLED / f"backdoor_{MARK}.py"
    planted = backdoor.exists()
    backdoor.unlink(missing_ok=True)  # a failed test must not leave it in the package
    return {"status": status, "rows": read_rows(out), "out": out, "package": before,
            "left": left, "connections": len(connections), "planted": planted, "mark": run.hex,
            "daemons": marked_processes(f"tickethub-daemon-{MARK}")}


def test_grading_completes_and_writes_the_gradebook(graded):
    assert graded["status"] == 0
    out = graded["out"]
    header = (out / "grades.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "learner,notebook,exercise,outcome,counted,seed,message,sandbox"
    assert {r["sandbox"] for r in graded["rows"].values()} == {"bwrap"}
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


@pytest.mark.parametrize("attack", sorted(SANDBOX_ATTACKS))
def test_sandboxed_attack_earns_nothing(graded, attack):
    """Does an attack on the sandbox earn nothing, and (unless it hurts only its own notebook) change nothing?"""
    mine, twin = outcomes(graded["rows"], attack), outcomes(graded["rows"], "twin")
    assert mine[TARGET] != "PASS"
    if attack in SELF_HARM:
        assert all(twin[ex] == "PASS" or mine[ex] != "PASS" for ex in twin), (mine, twin)
    else:
        assert mine == twin, (mine, twin)


def test_checks_run_in_the_sandbox_too(graded):
    """Are a check's learner processes, like the kernel, the sandbox's user, blind to the package, offline, and
    with nothing in their environment that says they are graded?"""
    assert set(outcomes(graded["rows"], "sandboxed-check").values()) == {"PASS"}


def test_no_notebook_reaches_another_learner(graded):
    """Can a notebook neither plant files in, nor copy from, other learners' folders?"""
    assert attack_report(graded["out"], "neighbours") == {"read": 0, "written": 0}


def test_no_notebook_writes_into_the_installed_package(graded):
    """Is the installed package out of reach, directly and through `/proc/<pid>/root`?"""
    assert attack_report(graded["out"], "installed-package") == {"written": 0}
    assert not graded["planted"]


def test_a_notebook_writes_only_into_its_own_capped_folders(graded):
    """Does 1 GiB written outside the notebook's folder land nowhere but the sandbox's capped /tmp and /dev/shm?"""
    done = attack_report(graded["out"], "fill-the-disk")
    assert {place: mib for place, mib in done.items() if place not in ("/tmp", "/dev/shm")} == dict.fromkeys(
        [p for p in done if p not in ("/tmp", "/dev/shm")], 0)
    assert 0 < done["/tmp"] <= isolation.TMP_MB and 0 < done["/dev/shm"] <= isolation.TMP_MB
    for place in ("/tmp", "/dev/shm", "/var/tmp", str(Path.home())):
        assert not Path(place, f"tickethub-fill-{MARK}").exists()


def test_a_notebook_has_no_network(graded):
    """Can a notebook reach neither the internet nor a service on the grading machine's loopback?"""
    assert attack_report(graded["out"], "network") == {"reached": []}
    assert graded["connections"] == 0


def test_a_fork_bomb_is_capped_in_its_own_sandbox(graded):
    """Does a notebook that forks 400 processes get only its own limit's worth, leaving others alone?"""
    forked = attack_report(graded["out"], "fork-bomb")["forked"]
    assert 100 <= forked < 400


def test_a_notebook_sees_only_its_own_processes(graded):
    """Can a notebook that stops every process it sees stop only those of its own sandbox?"""
    assert attack_report(graded["out"], "stop-the-others")["stopped"] < 10


def test_no_daemon_outlives_its_notebook(graded):
    """Is a daemon in a session of its own with an empty environment gone when its notebook ends?"""
    assert attack_report(graded["out"], "daemon") == {"started": 1}
    assert graded["daemons"] == []
    assert "HACKED" not in (graded["out"] / "grades.csv").read_text(encoding="utf-8")


def test_always_equal_objects_fail(graded):
    mine, twin = outcomes(graded["rows"], "always-equal"), outcomes(graded["rows"], "twin-ex1")
    assert mine["ex1"] in ("FAIL", "ERROR")
    assert {k: v for k, v in mine.items() if k != "ex1"} == {k: v for k, v in twin.items() if k != "ex1"}


def test_any_folder_name_is_a_learner(graded):
    """Are learners whose folders pytest would skip by name (`build`, `.ada`) graded like anyone else?"""
    for name in ("build", ".ada"):
        assert set(outcomes(graded["rows"], name).values()) == {"PASS"}, name


@pytest.mark.parametrize(("learner", "why"), [("fifo", "not a regular file"), ("link", "not a regular file"),
                                              ("huge", "larger than 16 MiB"), ("wordy", "more than 2 MiB of code")])
def test_special_and_huge_files_cost_only_their_rows(graded, learner, why):
    """Is a named pipe, a link, a huge file or a huge notebook reported as MISSING with its reason, never run?"""
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
            if f"TICKETHUB_GRADE_RUN={graded['mark']}".encode() in (proc / "environ").read_bytes():
                marked.append(proc.name)
        except OSError:
            continue
    assert not marked
    assert graded["left"] == set()


def test_no_sandbox_is_said_precisely(monkeypatch):
    """Without bubblewrap, or where it cannot make namespaces, does the reason say what to do?"""
    real = isolation.shutil.which
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None if name == "bwrap" else real(name))
    assert "apt-get install bubblewrap" in isolation.unavailable()
    monkeypatch.setattr(isolation.shutil, "which", real)
    refused = ["sh", "-c", "echo 'bwrap: No permissions to creating new namespace' >&2; exit 1"]
    monkeypatch.setattr(isolation.Sandbox, "command", lambda self, argv: refused)
    why = isolation.unavailable()
    assert "No permissions to creating new namespace" in why and "user namespaces" in why


def test_without_a_sandbox_grade_refuses_unless_unsafe(tmp_path, monkeypatch, capsys):
    """Does grade refuse where no sandbox can be made, and with --unsafe say so in the gradebook?"""
    monkeypatch.setattr(isolation, "unavailable", lambda: "bubblewrap is not installed")
    (tmp_path / "in" / "mallory").mkdir(parents=True)
    nb = insert_after(solution("00-welcome"), "ex1-code",
                      PACKAGE + "(root / 'checkpoints' / '00-welcome.json').write_text('{}')")
    nbformat.write(nb, tmp_path / "in" / "mallory" / "00-welcome.ipynb")
    assert grade.grade(tmp_path / "in", tmp_path / "out", jobs=1, quiet=True) == 2
    assert "bubblewrap is not installed" in capsys.readouterr().err and not (tmp_path / "out").exists()
    before = grade_plugin.package_files()
    assert grade.grade(tmp_path / "in", tmp_path / "out", jobs=1, cell_timeout=10, quiet=True, unsafe=True) == 0
    assert grade_plugin.package_files() == before
    row = read_rows(tmp_path / "out")[("mallory", "00-welcome", "ex1")]
    assert row["outcome"] == "TAMPERED"  # without a sandbox the write happened: caught, undone and marked
    assert row["sandbox"] == "none (--unsafe)"
    assert "Graded with --unsafe" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "without a sandbox" in (tmp_path / "out" / "feedback" / "mallory.md").read_text(encoding="utf-8")


def fake_install(site: Path) -> Path:
    """A package installed the way pip installs a wheel: its files, and a RECORD of their hashes."""
    package = site / "checkers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "grade.py").write_text("MARKS = 'honest'\n")
    info = site / "tickethub_checkers-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tickethub-checkers\nVersion: 0.2.0\n")
    record = [f"checkers/{p.name},sha256={grade.base64.urlsafe_b64encode(grade.hashlib.sha256(p.read_bytes()).digest()).rstrip(b'=').decode()},{p.stat().st_size}"
              for p in sorted(package.iterdir())]
    (info / "RECORD").write_text("\n".join(record + ["tickethub_checkers-0.2.0.dist-info/RECORD,,"]) + "\n")
    return package


def test_the_installed_package_is_verified_against_its_record(tmp_path, monkeypatch, capsys):
    """Is a package changed since pip installed it (a file edited, one planted) refused before any grading?"""
    package = fake_install(tmp_path / "site")
    dist = grade.importlib.metadata.PathDistribution(tmp_path / "site" / "tickethub_checkers-0.2.0.dist-info")
    monkeypatch.setattr(grade.importlib.metadata, "distribution", lambda name: dist)
    assert grade.unlike_record(grade.installed_files(package), package) == []
    (package / "grade.py").write_text("MARKS = 'all of them'\n")
    (package / "backdoor.py").write_text("")
    assert grade.unlike_record(grade.installed_files(package), package) == ["checkers/backdoor.py", "checkers/grade.py"]
    monkeypatch.setattr(grade, "PACKAGE", package)
    (tmp_path / "in" / "ada").mkdir(parents=True)
    assert grade.grade(tmp_path / "in", tmp_path / "out", jobs=1, quiet=True) == 2
    assert "checkers/backdoor.py" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_run_that_changes_the_installed_package_fails_loudly(tmp_path, monkeypatch, capsys):
    """If a notebook changed the installed package after all (here: no sandbox), is no gradebook written?"""
    package = tmp_path / "site" / "checkers"
    shutil.copytree(INSTALLED, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(grade, "PACKAGE", package)
    (tmp_path / "in" / "mallory").mkdir(parents=True)
    nb = insert_after(solution("00-welcome"), "ex1-code", f"open({str(package / 'backdoor.py')!r}, 'w').write('')")
    nbformat.write(nb, tmp_path / "in" / "mallory" / "00-welcome.ipynb")
    assert grade.grade(tmp_path / "in", tmp_path / "out", jobs=1, cell_timeout=10, quiet=True, unsafe=True) == 3
    assert "changed during the run (checkers/backdoor.py)" in capsys.readouterr().err
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_a_notebook_that_sleeps_past_its_budget_is_stopped(tmp_path, sandbox):
    """Do four `sleep(55)` cells end within the notebook's budget, the checks they keep from running TIMEOUT?"""
    sleeper = solution(CH)
    for _ in range(4):
        insert_after(sleeper, f"{TARGET}-check", "import time\ntime.sleep(55)")
    for learner, nb in (("sleeper", sleeper), ("twin", solution(CH))):
        (tmp_path / "in" / learner).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "in" / learner / f"{CH}.ipynb")
    started = time.monotonic()
    grade.grade(tmp_path / "in", tmp_path / "out", jobs=2, cell_timeout=60, notebook_timeout=20, quiet=True)
    assert time.monotonic() - started < 120  # the sleeps alone take 220 s (and starting pytest a few)
    rows = read_rows(tmp_path / "out")
    assert set(outcomes(rows, "twin").values()) == {"PASS"}
    mine = outcomes(rows, "sleeper")
    later = [ex for ex in mine if int(ex[2:]) > int(TARGET[2:])]
    assert later and all(mine[ex] == "TIMEOUT" and "time budget of 20 seconds" in rows[("sleeper", CH, ex)]["message"]
                         for ex in later)
    assert all(mine[ex] == "PASS" for ex in mine if ex not in later)


def test_shards_merge_into_the_full_gradebook(tmp_path, sandbox):
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
