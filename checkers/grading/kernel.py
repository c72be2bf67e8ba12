"""The kernel the grader runs submissions in: an ipykernel with limits on what it may take.

Started by the grader's kernelspec (see `grade.py`). In a notebook's sandbox (`isolation.py`)
it is given `--forkserver FD MODULE` first: it then starts, beside the kernel, the process
that forks the learner's processes of the notebook's checks (`checkers.engine.forkserver`),
on the socket the grader handed in, with no `TICKETHUB_*` setting in its environment.
"""
from __future__ import annotations

import os
import resource
import runpy
import sys

MEMORY_MB = int(os.environ.get("TICKETHUB_GRADE_MEMORY_MB", "2048"))
PROCESSES = int(os.environ.get("TICKETHUB_GRADE_PROCESSES", "256"))
CPU_SECONDS = int(os.environ.get("TICKETHUB_GRADE_CPU_SECONDS", "0"))  # 0: no limit of its own
FILE_MB = 256  # the largest file a notebook may write (a course project's are tiny)


def limit() -> None:
    """Cap memory, processes, CPU time, file size and core dumps for this kernel and what it starts.

    Its processes are also the first the system kills when memory runs out, not the grader's.

    In a sandbox the notebook's processes run as a user of their own, so the process limit
    counts only them (it never binds root).
    """
    memory = MEMORY_MB * 1024 * 1024
    limits = [(resource.RLIMIT_AS, memory), (resource.RLIMIT_NPROC, PROCESSES), (resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_FSIZE, FILE_MB * 1024 * 1024)]
    if CPU_SECONDS:
        limits.append((resource.RLIMIT_CPU, CPU_SECONDS))
    for what, value in limits:
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass  # a limit the system will not lower: the time limits still apply
    try:  # when memory runs short, the kernel's out-of-memory killer takes a notebook's process first
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def start_forkserver(fd: int, module: str) -> None:
    """Fork the notebook's forkserver: a new interpreter, so its environment is its own."""
    os.set_inheritable(fd, True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETHUB_", "JPY_"))}
    if os.fork() == 0:
        try:
            os.execve(sys.executable, [sys.executable, "-m", "checkers.engine.forkserver", str(fd), module], env)
        finally:
            os._exit(127)
    os.close(fd)  # the kernel itself never holds it


if __name__ == "__main__":
    args = sys.argv[1:]
    limit()
    if args[:1] == ["--forkserver"]:
        start_forkserver(int(args[1]), args[2])
        args = args[3:]
    sys.argv = ["ipykernel_launcher", *args]
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
