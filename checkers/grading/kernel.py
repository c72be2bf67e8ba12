"""The kernel the grader runs submissions in: an ipykernel with limits on what it may take.

Started by the grader's kernelspec (see `grade.py`), possibly inside a mount namespace
where the course's code and the Python environment are read-only.
"""
from __future__ import annotations

import os
import resource
import runpy
import sys

MEMORY_MB = int(os.environ.get("TICKETHUB_GRADE_MEMORY_MB", "2048"))
PROCESSES = int(os.environ.get("TICKETHUB_GRADE_PROCESSES", "256"))


def limit() -> None:
    """Cap memory, processes and core dumps for this kernel and whatever it starts."""
    memory = MEMORY_MB * 1024 * 1024
    for what, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_NPROC, PROCESSES),
        (resource.RLIMIT_CORE, 0),
    ):
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass  # a limit the system will not lower: the per-cell timeout still applies


if __name__ == "__main__":
    limit()
    sys.argv = ["ipykernel_launcher", *sys.argv[1:]]
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
