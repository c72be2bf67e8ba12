"""Does `course.py`, the one command a learner types, do what its help says?

The help paths run a copy of course.py in an empty folder, so anything it set up or started
would show; `lab` builds its JupyterLab command line in `lab_command`, tested as root and as a
user; and one real `course.py lab` serves JupyterLab on loopback, then is stopped.
"""
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course)

PYTHON, INDEX = str(course.PYTHON), course.INDEX
LAB = [PYTHON, "-m", "jupyterlab"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bare(tmp_path):
    """A copy of course.py alone in a folder: run it, then see what it left there."""
    shutil.copy(ROOT / "course.py", tmp_path / "course.py")

    def run(*args):
        done = subprocess.run([sys.executable, str(tmp_path / "course.py"), *args],
                              capture_output=True, text=True, timeout=30, cwd=tmp_path)
        left = sorted(p.name for p in tmp_path.iterdir() if p.name != "course.py")
        return done, left

    return run


@pytest.mark.parametrize("args, says", [
    ([], "python3 course.py lab [JUPYTERLAB OPTIONS...]"),
    (["help"], "python3 course.py test [PYTEST OPTIONS...]"),
    (["--help"], "python3 course.py site [SPHINX OPTIONS...]"),
    (["-h"], "python3 course.py help [COMMAND]"),
    (["help", "lab"], "--allow-root is added for you"),
    (["lab", "--help"], 'after "To access the server"'),
    (["lab", "-h", "--no-browser"], "Every option goes to JupyterLab unchanged"),
    (["lab", "--port", "8890", "--help"], "--no-browser"),
    (["test", "--help"], "Every option goes to pytest unchanged"),
    (["test", "-k", "ch01", "-h"], "python3 course.py test -- --help"),
    (["site", "--help"], "site/_build/html/"),
    (["setup", "--help"], "Create .venv/"),
])
def test_help_explains_and_starts_nothing(bare, args, says):
    """Does every way of asking for help answer at once, with exit 0, setting up nothing?"""
    done, left = bare(*args)
    assert done.returncode == 0, done.stderr
    assert says in done.stdout
    assert left == []  # no .venv/: nothing was installed, so nothing was started either


@pytest.mark.parametrize("args", [["bogus"], ["help", "bogus"], ["setup", "--no-browser"]])
def test_a_wrong_command_is_refused_with_the_usage(bare, args):
    """Is a command course.py does not know refused (exit 2) before any set-up?"""
    done, left = bare(*args)
    assert done.returncode == 2
    assert "python3 course.py" in done.stdout + done.stderr
    assert left == []


@pytest.mark.parametrize("extra, root, expected", [
    ([], True, [*LAB, INDEX, "--allow-root"]),
    ([], False, [*LAB, INDEX]),
    (["--no-browser", "--port", "8890", "--ip=0.0.0.0"], True,
     [*LAB, INDEX, "--allow-root", "--no-browser", "--port", "8890", "--ip=0.0.0.0"]),
    (["--no-browser", "--port", "8890", "--ip=0.0.0.0"], False,
     [*LAB, INDEX, "--no-browser", "--port", "8890", "--ip=0.0.0.0"]),
    (["--ServerApp.port_retries=0", "--IdentityProvider.token="], False,
     [*LAB, INDEX, "--ServerApp.port_retries=0", "--IdentityProvider.token="]),
    # the user's own --allow-root (or its long form) is never doubled
    (["--allow-root", "--no-browser"], True, [*LAB, INDEX, "--allow-root", "--no-browser"]),
    (["--ServerApp.allow_root=True"], True, [*LAB, INDEX, "--ServerApp.allow_root=True"]),
    (["--allow-root"], False, [*LAB, INDEX, "--allow-root"]),
    # a notebook of the learner's choosing replaces the index (JupyterLab opens one path)
    (["notebooks/03-database.ipynb", "--no-browser"], True,
     [*LAB, "--allow-root", "notebooks/03-database.ipynb", "--no-browser"]),
    (["--port", "8890", "notebooks"], False, [*LAB, "--port", "8890", "notebooks"]),
])
def test_lab_command(extra, root, expected):
    """Does `lab` pass every option on, and add --allow-root only as root when it is missing?"""
    assert course.lab_command(extra, root=root) == expected


def test_lab_command_knows_who_runs_it(monkeypatch):
    """Without `root=`, is --allow-root added exactly when the process runs as root?"""
    assert course.running_as_root() is (os.name == "posix" and os.geteuid() == 0)
    for uid, added in ((0, True), (1000, False)):
        monkeypatch.setattr(course, "running_as_root", lambda uid=uid: os.name == "posix" and uid == 0)
        assert ("--allow-root" in course.lab_command(["--no-browser"])) is added


@pytest.fixture
def dispatched(monkeypatch):
    """main() with set-up and every command recorded instead of run."""
    calls = []
    monkeypatch.setattr(course, "setup", lambda: calls.append(("setup",)))
    monkeypatch.setattr(course, "sync_copies", lambda: calls.append(("sync",)))
    monkeypatch.setattr(course, "foreground", lambda command: calls.append(("foreground", command)))
    for name in ("test", "site"):
        monkeypatch.setattr(course, name, lambda extra, name=name: calls.append((name, extra)))
    return calls


@pytest.mark.parametrize("argv, expected", [
    (["lab"], [("setup",), ("sync",), ("foreground", course.lab_command([]))]),
    (["lab", "--no-browser", "--port", "8890"],
     [("setup",), ("sync",), ("foreground", course.lab_command(["--no-browser", "--port", "8890"]))]),
    # after `--` even --help is JupyterLab's or pytest's
    (["lab", "--", "--help-all"], [("setup",), ("sync",), ("foreground", course.lab_command(["--help-all"]))]),
    (["test", "-k", "ch01", "-x"], [("setup",), ("test", ["-k", "ch01", "-x"])]),
    (["test", "--", "--help"], [("setup",), ("test", ["--help"])]),
    (["site", "-q"], [("setup",), ("site", ["-q"])]),
])
def test_commands_set_up_first_then_pass_their_options_on(dispatched, capsys, argv, expected):
    """Does every command set up first (a fresh machine's first run) and hand its options on?"""
    course.main(argv)
    assert dispatched == expected


def test_update_pulls_then_sets_up_then_syncs(dispatched, monkeypatch):
    """Does `update` take the course's new version first, and bring the copies up to date after?"""
    ran = []
    monkeypatch.setattr(course.subprocess, "run", lambda args, **kw: ran.append(args) or subprocess.CompletedProcess(args, 0))
    course.main(["update"])
    assert ran == [["git", "pull", "--ff-only"]] and dispatched == [("setup",), ("sync",)]


def test_course_py_and_the_package_name_the_same_copies_folder():
    from checkers import paths

    assert course.MINE == paths.MINE and course.INDEX == f"{paths.MINE}/index.ipynb"


def test_lab_says_where_the_url_will_be(dispatched, capsys):
    """Before JupyterLab starts, is the learner told where to find the URL it prints?"""
    course.main(["lab", "--no-browser"])
    out = capsys.readouterr().out
    assert "To access the server" in out and "http://localhost:8888/lab?token=" in out


def test_lab_serves_jupyterlab_on_loopback(tmp_path):
    """Does `course.py lab` with options start JupyterLab as this user, at the URL it prints?"""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETHUB_", "FLASK_", "JUPYTER"))}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    log_path = tmp_path / "lab.log"
    # no --allow-root: as root (CI), course.py must add it; as a user, it must not be needed
    command = [sys.executable, str(ROOT / "course.py"), "lab", "--no-browser", "--port", str(port),
               "--ServerApp.port_retries=0", "--ip=127.0.0.1"]
    printed = re.compile(rf"To access the server,.*?(http://127\.0\.0\.1:{port}/lab\?token=(\w+))", re.DOTALL)
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            output = log_path.read_text()
            found = printed.search(output)
            if found:
                try:  # the printed URL's token lets us in
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={found[2]}", timeout=2) as r:
                        assert r.status == 200
                    break
                except OSError:
                    pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer (exit {server.poll()}):\n{output[-3000:]}")
            time.sleep(0.2)
        # course.py pointed to the URL before JupyterLab printed it
        assert output.index('after "To access the server"') < found.start()
        assert "Running as root is not recommended" not in output
        with urllib.request.urlopen(found[1], timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """Stop a server started in a session of its own: the whole group, kernels included."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    server.wait()
