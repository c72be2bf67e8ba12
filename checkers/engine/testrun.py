"""The learner's tests, run by pytest in a process of their own, with what happened as plain data.

Used on the learner's side only (`learner.py`'s `pytest` request). Each run gets a new project
folder, written from the files the judge sent (a reference, or a variant of it), a temporary
folder and a home of its own, all deleted afterwards; pytest runs in a new process (forked from
the learner's process, or a new interpreter where there is no fork), so no run sees what an
earlier one imported or wrote there, and the learner's own project is never touched. A small
plugin collects pytest's reports (`pytest_collectreport`, `pytest_runtest_logreport`) into a
dict: no terminal output is read. A run that outlives its budget answers where it was.
"""
from __future__ import annotations

import ast
import gc
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import wire
from .faults import ADDRESS, frame_where

# as sandbox.FORK; read when the server (or a spawned learner's process) starts, before the
# learner's process drops TICKETHUB_* variables
FORK = hasattr(os, "fork") and not os.environ.get("TICKETHUB_NO_FORK")
_real_exit = os._exit  # kept before the learner's process guards os._exit
SPAWN_START = 5.0  # seconds a new interpreter may take to import pytest, before a run's budget starts
CONFIGS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")  # where pytest looks for settings
TEXT_LINES, LINE_WIDTH = 10, 160  # how much of pytest's failure text a report keeps
ENTRY = re.compile(r"^(?P<path>\S.*?):\d+: in \S")  # a traceback entry of `--tb=short`: `path:line: in name`
ADVICE = re.compile(r"Use -v to get|make sure your test modules/packages have valid Python names|^Traceback:$")


def warm_up() -> None:
    """Import pytest and its built-in plugins in the check server, so that each run starts warm."""
    from _pytest.config import default_plugins  # here: only chapters with such exercises pay for pytest

    for name in default_plugins:
        importlib.import_module(f"_pytest.{name}")


def start_time() -> float:
    """Seconds a run takes to start before the learner's tests do: none for a fork of a warm process."""
    return 0.0 if FORK else SPAWN_START


def test_functions(text: str, filename: str) -> list[str]:
    """The tests pytest would find in a module's source, by its default names; a SyntaxError says where.

    Compiling runs none of the code, so the learner's process stays untouched by it.
    """
    compile(text, filename, "exec", dont_inherit=True)
    names = []
    for node in ast.parse(text, filename).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            if not any(m.name == "__init__" for m in methods):  # pytest does not collect such a class
                names += [f"{node.name}.{m.name}" for m in methods if m.name.startswith("test")]
    return names


def run(files: dict[str, str], path: str, scratch: Path, budget: float) -> dict:
    """Run pytest on `path` in a new project made of `files`; what each test did, as plain data.

    The answer holds `collected` (node ids), `errors` (collection errors), `tests` (one dict per
    test: `name`, `outcome`, `text`) and `exit`; or `timeout` (where the run was stopped) and
    `test`; or `crashed` (how the run's process ended without answering).
    """
    root = Path(tempfile.mkdtemp(prefix="pytest-", dir=scratch))
    try:
        project = root / "project"
        for rel, text in files.items():
            target = project / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for folder in ("tmp", "home"):
            (root / folder).mkdir()
        (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # settings for a project that has none
        # `budget` is for the learner's code once pytest is loaded; `wait`, for the whole run
        spec = {"root": str(root), "path": path, "budget": max(budget - start_time(), 0.05), "wait": budget}
        return _forked(spec) if FORK else _spawned(spec)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _forked(spec: dict) -> dict:
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        # the run keeps only its answer's pipe: never the learner's process's channel to the judge
        os.closerange(3, writer)
        os.closerange(writer + 1, max(os.sysconf("SC_OPEN_MAX"), writer + 1))
        try:
            _child(spec, writer)
        finally:
            _real_exit(0)
    os.close(writer)
    try:
        return wire.receive(reader)
    except wire.WireError:
        return {"crashed": _ended(pid)}
    finally:  # also when the learner's process runs out of time while it waits
        os.close(reader)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _ended(pid: int) -> str:
    """How a run's process ended, when it answered nothing: `signal 9`, `exit status 3`."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _spawned(spec: dict) -> dict:
    """Where there is no fork: a new interpreter, which answers on its stdout once pytest is done."""
    # -P: the run's folder is not put on the path, so nothing there can stand in for pytest
    process = subprocess.Popen([sys.executable, "-P", "-m", "checkers.engine.testrun"], cwd=spec["root"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = process.communicate(json.dumps(spec).encode(), timeout=spec["wait"])
    except subprocess.TimeoutExpired:  # no SIGALRM (Windows): the run says nothing of where it was
        return {"timeout": None, "test": None}
    finally:
        process.kill()
        process.wait()
    try:
        size = int.from_bytes(out[:4], "big")
        answer = json.loads(out[4:4 + size])
        if isinstance(answer, dict):
            return answer
    except ValueError:
        pass
    code = process.returncode
    return {"crashed": f"signal {-code}" if code < 0 else f"exit status {code}"}


# --- inside the run's process -----------------------------------------------------------------


def _child(spec: dict, out: int) -> None:
    """Become the run: the project's folder, path, temporary folder and home; then pytest, and answer on `out`."""
    # warm in the check server (see `warm_up`); cold in a new interpreter, so before the project is on the path
    import pytest

    warm_up()
    root = Path(spec["root"])
    project = root / "project"
    os.chdir(project)
    # CI and BUILD_NUMBER make pytest print assertions in full: the same test reads the same everywhere
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "CI", "BUILD_NUMBER"):
        os.environ.pop(name, None)
    os.environ.update({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "TMPDIR": str(root / "tmp"),
                       "HOME": str(root / "home"), "PWD": str(project)})
    tempfile.tempdir = None
    # the learner's process's own copy of the project, which it put on the path, is no part of this run
    scratch = str(root.parent) + os.sep
    sys.path[:] = [str(project)] + [p for p in sys.path if p not in ("", ".") and not p.startswith(scratch)]
    for name in [n for n, m in sys.modules.items() if str(getattr(m, "__file__", None) or "").startswith(scratch)]:
        del sys.modules[name]
    sys.dont_write_bytecode = True
    importlib.invalidate_caches()
    # Python's standard streams on the standard descriptors (which lead nowhere), whatever they were before
    sys.stdin = sys.__stdin__ = open(0, closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", closefd=False)
    gc.freeze()  # what the process holds already is no garbage: pytest's many gc.collect() calls then cost little
    collector = Collector(project)

    def time_up(signum, frame):
        _send(out, {"timeout": frame_where(frame, project, prefer=spec["path"]), "test": collector.current})
        _real_exit(0)

    budget = float(spec["budget"])
    if hasattr(signal, "setitimer"):  # a little before the learner's process gives up, so the run says where
        signal.signal(signal.SIGALRM, time_up)
        signal.setitimer(signal.ITIMER_REAL, max(budget - min(0.3, budget / 10), 0.01))
    args = [spec["path"], "-q", "-p", "no:cacheprovider", "--tb=short", f"--rootdir={project}",
            f"--confcutdir={project}", f"--basetemp={root / 'tmp' / 'pytest'}"]
    if not any((project / name).is_file() for name in CONFIGS):
        args += ["-c", str(root / "pytest.ini")]  # never a stray pytest.ini above the project
    try:
        code = int(pytest.main(args, plugins=[collector]))
    except BaseException as error:  # noqa: BLE001 — pytest itself gave up (a learner's conftest can do that)
        code = -1
        collector.errors.append({"name": spec["path"], "text": f"{type(error).__name__}: {error}"[:LINE_WIDTH]})
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
    _send(out, collector.answer(code))


def _send(out: int, message: dict) -> None:
    try:
        wire.send(out, message)
    except (OSError, ValueError, TypeError):
        pass


class Collector:
    """A pytest plugin that keeps what was collected and what each test did, as plain data."""

    def __init__(self, project: Path):
        self.prefixes = (str(project) + os.sep, str(project.parent) + os.sep)
        self.collected: list[str] = []
        self.errors: list[dict] = []
        self.tests: dict[str, dict] = {}
        self.skipped: list[str] = []  # reasons of modules skipped as a whole
        self.current: str | None = None

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append({"name": report.nodeid, "text": self.short(report.longreprtext)})
        elif report.skipped and isinstance(report.longrepr, tuple):
            self.skipped.append(str(report.longrepr[2]))

    def pytest_collection_finish(self, session):
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = nodeid

    def pytest_runtest_logreport(self, report):
        test = self.tests.setdefault(report.nodeid, {"name": report.nodeid, "outcome": "passed", "when": None,
                                                     "text": ""})
        if report.failed and test["outcome"] != "failed":  # the first failure of a test is its story
            test.update(outcome="failed", when=report.when, text=self.short(report.longreprtext))
        elif report.skipped and test["outcome"] == "passed":
            xfailed = hasattr(report, "wasxfail")
            reason = report.wasxfail if xfailed else report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            test.update(outcome="xfailed" if xfailed else "skipped", when=report.when, text=str(reason))

    def short(self, text: str) -> str:
        """pytest's own failure text (`--tb=short`) about the project's code, cut to its first and last lines.

        Paths of this run's folders and objects' addresses are left out, and so are the entries of code outside
        the project (Python's and the libraries'), pytest's advice about options, and empty `E` lines.
        """
        for prefix in self.prefixes:
            text = text.replace(prefix, "")
        text = ADDRESS.sub("", text)  # an object's address changes every run and means nothing
        lines, outside = [], False
        for line in text.strip().splitlines():
            entry = ENTRY.match(line)
            if entry:
                outside = Path(entry["path"]).is_absolute()
            elif not line.startswith(" "):
                outside = False
            if outside or not line.strip("E ^") or ADVICE.search(line):  # (`^^^` marks under Python's lines too)
                continue
            lines.append(line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH - 1] + "…")
        if len(lines) > TEXT_LINES:  # where the test failed (the top), and how (pytest's E lines, at the end)
            lines = lines[:2] + ["…"] + lines[-(TEXT_LINES - 3):]
        return "\n".join(lines)

    def answer(self, code: int) -> dict:
        return {"exit": code, "collected": self.collected, "errors": self.errors, "skipped": self.skipped,
                "tests": list(self.tests.values())}


def main() -> None:
    """Spawn mode: the run's settings on stdin; the answer, framed, on what was stdout."""
    out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)  # what the learner's tests print is no part of the answer
    spec = json.loads(sys.stdin.read())
    try:
        _child(spec, out)
    finally:
        _real_exit(0)


if __name__ == "__main__":
    main()
