"""One check in two throwaway processes: the judge, and the learner's process it talks to.

The server forks the judge; the judge forks (or, without fork, spawns) the learner's
process and keeps only its end of their channel. Both run in a process group of their own
that the server kills at the hard time limit, whatever they do. The judge's result reaches
the server through a pipe the learner's process never holds. When the grader names a
notebook's sandbox in the request, the learner's process is forked in there instead
(`forkserver.py`), and the judge reaches it through the sandbox's socket.
"""
from __future__ import annotations

import importlib
import json
import os
import random
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import databases, judge, learner, wire
from .limits import HARD_MARGIN, SOFT_TIMEOUT
from .outcomes import Outcome, Result

_real_exit = os._exit
SANDBOX_START = 20.0  # seconds for a graded notebook's sandbox to hand over a learner's process
# where there is no fork (Windows), checks start new interpreters; TICKETHUB_NO_FORK=1 does the
# same here, so the tests prove that path too
FORK = hasattr(os, "fork") and not os.environ.get("TICKETHUB_NO_FORK")


def scratch_folder() -> str:
    """A new folder for one check: in memory (/dev/shm) where there is one, as disks are slow."""
    root = os.environ.get("TICKETHUB_SCRATCH")
    if root is None and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        root = "/dev/shm"
    return tempfile.mkdtemp(prefix="tickethub-check-", dir=root)


def hard_timeout(request: dict | None = None) -> float:
    """How long a whole check may take: each exercise of its chain has its own budget.

    In a graded notebook's sandbox, the wait for its learner's process comes on top: the
    sandbox may still be warming up (importing Flask and the chapter) when its first check comes.
    """
    chain = _chapter(request["module"]).chain(request["exercise"]) if request else []
    waiting = SANDBOX_START if request and request.get("sandbox") else 0
    return (sum(ex.budget for ex in chain) if chain else SOFT_TIMEOUT) + 2 * HARD_MARGIN + waiting


def _chapter(module: str):
    return importlib.import_module(module).chapter


# --- the judge's process ----------------------------------------------------------------


class SandboxGone(Exception):
    """The notebook's sandbox did not give the judge a learner's process."""


def judge_check(request: dict, scratch: Path) -> dict:
    """Run in the judge's process: start the learner's process, run the steps, return the result."""
    chapter = _chapter(request["module"])
    project = Path(request["project"])
    seed = request.get("seed")
    try:
        pid, channel, scratch = start_learner(project, scratch, request.get("sandbox"))
    except SandboxGone as gone:
        return Result(request["exercise"], title(request), Outcome.ERROR, message=(
            f"The check could not start its process in your notebook's sandbox ({gone}). Did a cell stop "
            "or kill the notebook's own processes, or start so many that no more could start?")).to_dict()
    # the seed is drawn after the learner's process exists, so it never holds a copy of it
    seed = seed if isinstance(seed, int) else secrets.randbelow(2**32)
    try:
        t = judge.Checker(channel, project, scratch, random.Random(seed))
        result = judge.run(chapter, request["exercise"], t)
        result.seed = seed
        return result.to_dict()
    finally:
        stop_learner(pid)
        databases.clean_up()


def start_learner(project: Path, scratch: Path, sandbox: str | None = None):
    """Fork (or spawn) the learner's process; return it, the judge's `Channel` to it and its scratch folder.

    With `sandbox` (the socket of a graded notebook's sandbox, see `forkserver.py`) the process
    is forked in there instead, with a scratch folder of its own that only it can see.
    """
    if sandbox:
        return _sandboxed(project, sandbox)
    if FORK:
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            mine.close()
            fd = theirs.detach()
            try:
                learner.run(project, scratch, (fd, fd))
            finally:
                _real_exit(0)
        theirs.close()
        fd = mine.detach()
        return pid, judge.Channel(fd, fd, lambda: _ended(pid)), scratch
    process = subprocess.Popen([sys.executable, "-m", "checkers.engine.learner"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    channel = judge.Channel(process.stdout.fileno(), process.stdin.fileno(), lambda: _ended_process(process))
    wire.send(process.stdin.fileno(), {"project": str(project), "scratch": str(scratch)})
    return process, channel, scratch




def _sandboxed(project: Path, address: str):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(SANDBOX_START)
        connection.connect(address)
        connection.settimeout(None)  # the channel reads the descriptor itself, blocking
        wire.send(connection.fileno(), {"project": str(project)})
        if not select.select([connection], [], [], SANDBOX_START)[0]:
            raise SandboxGone("it did not answer")
        scratch = wire.receive(connection.fileno())["scratch"]
        if type(scratch) is not str or not scratch.startswith("/"):
            raise SandboxGone("it answered with no folder")
    except (OSError, wire.WireError, KeyError) as error:
        connection.close()
        raise SandboxGone("it did not answer" if isinstance(error, (OSError, wire.WireError)) else "a bad answer") from None
    except SandboxGone:
        connection.close()
        raise
    fd = connection.fileno()
    return connection, judge.Channel(fd, fd), Path(scratch)


def stop_learner(pid) -> None:
    if isinstance(pid, socket.socket):  # in a sandbox: closing the channel ends the learner's process
        pid.close()
        return
    if isinstance(pid, subprocess.Popen):
        pid.kill()
        pid.wait()
        return
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _ended(pid: int) -> str:
    """How the learner's process ended, when it has: `signal 9`, `exit status 3`."""
    for _ in range(50):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return describe_status(status)
        time.sleep(0.01)
    return ""


def _ended_process(process: subprocess.Popen) -> str:
    try:
        code = process.wait(0.5)
    except subprocess.TimeoutExpired:
        return ""
    return f"signal {-code}" if code < 0 else f"exit status {code}"


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


# --- the server's side of one check -----------------------------------------------------------


def run_forked(request: dict) -> dict:
    """Run one check in a forked judge and return its result, whatever happens to it."""
    scratch, reader, writer, pid = None, None, None, None
    try:
        scratch = scratch_folder()
        reader, writer = os.pipe()
        pid = os.fork()
    except OSError as error:  # no memory, no processes, no disk: say so, and keep serving
        for fd in (reader, writer):
            if fd is not None:
                os.close(fd)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        return internal(request, f"the check could not start ({error.strerror or error})")
    if pid == 0:  # the judge
        os.close(reader)
        os.setsid()
        keep = (writer,)
        learner._close_all_but(keep)
        try:
            payload = judge_check(request, Path(scratch))
        except BaseException as error:  # noqa: BLE001 — report, never hang the server
            payload = internal(request, f"{type(error).__name__}: {error}")
        try:
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(writer, data) :]
        finally:
            _real_exit(0)
    os.close(writer)
    try:
        data, timed_out = _read_until(reader, hard_timeout(request))
    finally:
        os.close(reader)
        _kill_group(pid)
        os.waitpid(pid, 0)
        shutil.rmtree(scratch, ignore_errors=True)
    return decode(request, data, timed_out)


def _read_until(fd: int, seconds: float) -> tuple[bytes, bool]:
    chunks, deadline = [], time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"".join(chunks), True
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def run_spawned(request: dict) -> dict:
    """Where there is no fork (Windows): the judge in a new interpreter, its result in a file."""
    scratch = scratch_folder()
    result = Path(scratch) / "result.json"
    try:
        subprocess.run([sys.executable, "-m", "checkers.engine.sandbox", scratch, str(result)],
                       input=json.dumps(request).encode(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=hard_timeout(request) + 5)
        data, timed_out = (result.read_bytes() if result.exists() else b""), False
    except subprocess.TimeoutExpired:
        data, timed_out = b"", True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return decode(request, data, timed_out)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def decode(request: dict, data: bytes, timed_out: bool) -> dict:
    key = request["exercise"]
    if timed_out:
        return Result(key, title(request), Outcome.TIMEOUT, message=(
            f"The check did not finish within {hard_timeout(request):g} seconds and was stopped. "
            "Is there a loop that never ends, or code that waits for something that never comes?")).to_dict()
    try:
        return json.loads(data)
    except ValueError:
        return internal(request, "the judge's process ended without a result")


def internal(request: dict, why: str) -> dict:
    return Result(request["exercise"], title(request), Outcome.INTERNAL, message=(
        f"This is a problem in the course's check, not in your code: {why}. Please report it; "
        "running the check again may work.")).to_dict()


def title(request: dict) -> str:
    try:
        return _chapter(request["module"]).get(request["exercise"]).title
    except Exception:  # noqa: BLE001 — a title is nice to have, never worth a crash
        return request["exercise"]


def main(argv: list[str]) -> None:
    """Spawn mode's judge: the request on stdin, the result written to the file named."""
    scratch, result = Path(argv[0]), Path(argv[1])
    request = json.loads(sys.stdin.read())
    try:
        payload = judge_check(request, scratch)
    except BaseException as error:  # noqa: BLE001
        payload = internal(request, f"{type(error).__name__}: {error}")
    result.write_text(json.dumps(payload))


if __name__ == "__main__":
    main(sys.argv[1:])
