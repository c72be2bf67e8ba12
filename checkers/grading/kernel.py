"""The kernel the grader runs submissions in: an ipykernel with limits on what it may take.

Started by the grader's kernelspec (see `grade.py`). In a notebook's sandbox (`isolation.py`)
it is given `--cpu-seconds N --forkserver FD MODULE` first: it imports Flask and the chapter
(which the notebook's setup cell imports anyway), then forks, beside the kernel, the process
that forks the learner's processes of the notebook's checks (`checkers.engine.forkserver`),
warm, on the socket the grader handed in. The sandbox's environment holds no `TICKETHUB_*`
setting, so neither do those processes'; the kernel learns that it is graded here.
"""
from __future__ import annotations

import importlib
import os
import resource
import runpy
import socket
import sys

from ..engine import forkserver
from ..paths import GRADER

MEMORY_MB = int(os.environ.get("TICKETHUB_GRADE_MEMORY_MB", "2048"))
PROCESSES = int(os.environ.get("TICKETHUB_GRADE_PROCESSES", "256"))
FILE_MB = 256  # the largest file a notebook may write (a course project's are tiny)


def limit(cpu_seconds: int = 0) -> None:
    """Cap memory, processes, CPU time, file size and core dumps for this kernel and what it starts.

    In a sandbox the notebook's processes run as a user of their own, so the process limit
    counts only them (it never binds root). They are also the first the system kills when
    memory runs out, not the grader's.
    """
    memory = MEMORY_MB * 1024 * 1024
    limits = [(resource.RLIMIT_AS, memory), (resource.RLIMIT_NPROC, PROCESSES), (resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_FSIZE, FILE_MB * 1024 * 1024)]
    if cpu_seconds:
        limits.append((resource.RLIMIT_CPU, cpu_seconds))
    for what, value in limits:
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass  # a limit the system will not lower: the time limits still apply
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def start_forkserver(fd: int, module: str) -> None:
    """Fork the notebook's forkserver once Flask and the chapter are imported (they are shared)."""
    for name in ("flask", module):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 — the forkserver says what failed; the notebook still runs
            pass
    if os.fork() == 0:
        try:
            forkserver.serve(socket.socket(fileno=fd), [module])
        finally:
            os._exit(0)
    os.close(fd)  # the kernel itself never holds it


def main(args: list[str]) -> None:
    cpu_seconds = 0
    if args[:1] == ["--cpu-seconds"]:
        cpu_seconds, args = int(args[1]), args[2:]
    limit(cpu_seconds)
    if args[:1] == ["--forkserver"]:
        start_forkserver(int(args[1]), args[2])
        os.environ[GRADER] = "1"  # the kernel's checks are the grader's (not in the forkserver's environment)
        args = args[3:]
    sys.argv = ["ipykernel_launcher", *args]
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
