"""Benchmark: how long each exercise's check takes on the reference solution.

Measured as a learner sees it: from `check()` asking the warm server to the result coming
back (fork, copy of the project, the learner's imports, the check itself). Target
(COURSE.md §10): median under 100 ms, none over 1 s.
"""
from __future__ import annotations

import importlib
import statistics
import tempfile
import time
from pathlib import Path

from . import server, workspace
from .outcomes import Outcome


def bench(repeat: int = 5) -> int:
    client = server.Client()
    client.start()
    client.run("checkers.ch00_welcome", "ex1", Path(tempfile.gettempdir()))  # wait for the warm-up
    timings, failures = [], []
    print(f"{'chapter':<26}{'exercise':<10}{'median ms':>10}{'max ms':>10}")
    try:
        with tempfile.TemporaryDirectory(prefix="tickethub-bench-") as tmp:
            for name in workspace.chapters():
                root = Path(tmp) / name
                workspace.write_files(root, workspace.files(name, "solution"))
                module = workspace.module_name(name)
                for exercise in importlib.import_module(module).chapter.exercises:
                    samples = []
                    for _ in range(repeat):
                        started = time.perf_counter()
                        result = client.run(module, exercise.key, root)
                        samples.append((time.perf_counter() - started) * 1000)
                        if result.outcome is not Outcome.PASS:
                            failures.append(f"{name} {exercise.key}: {result.outcome.value}")
                    timings += samples
                    print(f"{name:<26}{exercise.key:<10}{statistics.median(samples):>10.1f}{max(samples):>10.1f}")
    finally:
        client.stop()
    for failure in failures:
        print(f"not a PASS on the reference solution: {failure}")
    print(f"checks: {len(timings)}  median: {statistics.median(timings):.1f} ms  max: {max(timings):.1f} ms"
          "  (target: median < 100 ms, max < 1000 ms)")
    return 1 if failures else 0
