"""The learner's processes of a graded notebook, forked inside that notebook's sandbox.

When `checkers grade` runs a notebook in a sandbox, its checks' judges stay outside; each
judge connects to this process's socket (which the grader made and handed in, so nothing in
the sandbox can put another socket in its place) and gets a fresh learner's process forked
from here, warm (Flask and the chapter's code already imported), that answers on the same
connection. The judge treats it exactly as a learner's process it forked itself: untrusted.
"""
from __future__ import annotations

import importlib
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from ..paths import SCRUBBED_ENV
from . import learner, wire, workspace

# a learner's process is killed this long after it started, whatever it does: longer than any
# check's hard limit, so only one the judge has abandoned (stuck in C code, say) is ever cut
MAX_AGE = 120.0
HELLO_TIMEOUT = 5.0  # seconds for a judge to say what it wants once connected


def serve(listener: socket.socket, preload: list[str]) -> None:
    """Fork a learner's process for every judge that connects, until the sandbox ends."""
    os.setsid()  # an interrupt of the notebook's kernel is not for this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in [n for n in os.environ if n.startswith(SCRUBBED_ENV)]:
        del os.environ[name]
    warm(preload)
    children: dict[int, tuple[float, str]] = {}
    while True:
        ready = select.select([listener], [], [], 1.0)[0]
        _reap(children)
        if not ready:
            continue
        try:
            connection, _ = listener.accept()
        except OSError:
            continue
        try:
            child = _start(listener, connection)
        except (OSError, wire.WireError, ValueError, KeyError, TypeError):
            child = None  # a judge that went away, or no process left to fork: it sees the channel close
        finally:
            connection.close()
        if child:
            children[child[0]] = (time.monotonic(), child[1])


def warm(modules: list[str]) -> None:
    """Import Flask and the chapters' code now, so that every forked process has them."""
    for name in ["flask", *modules]:
        try:
            chapter = getattr(importlib.import_module(name), "chapter", None)
            if chapter is not None:
                workspace.preload(chapter.name)
            for warm_up in getattr(chapter, "warm_ups", []):
                warm_up()
        except Exception as error:  # noqa: BLE001 — a check would say what is wrong; this only warms up
            print(f"checkers: could not preload {name}: {error!r}", file=sys.stderr)


def _start(listener: socket.socket, connection: socket.socket) -> tuple[int, str] | None:
    fd = connection.fileno()  # blocking: the learner's process reads it as its channel
    if not select.select([fd], [], [], HELLO_TIMEOUT)[0]:
        return None
    project = Path(wire.receive(fd)["project"])
    scratch = tempfile.mkdtemp(prefix="tickethub-check-", dir=_scratch_root())
    wire.send(fd, {"scratch": scratch})
    pid = os.fork()
    if pid == 0:
        try:
            listener.close()
            os.setsid()
            learner.run(project, Path(scratch), (fd, fd))
        finally:
            learner._real_exit(0)
    return pid, scratch


def _scratch_root() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _reap(children: dict[int, tuple[float, str]]) -> None:
    """Collect ended processes (and their folders); kill those past `MAX_AGE`."""
    now = time.monotonic()
    for pid, (started, scratch) in list(children.items()):
        if now - started > MAX_AGE:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            shutil.rmtree(scratch, ignore_errors=True)
            del children[pid]

