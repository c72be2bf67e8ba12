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

from ..engine import server
from ..grading.grade import grade
from ..grading.report import read
from .build import CHAPTER, ROOT

from ..engine import workspace
from ..engine.outcomes import Outcome


def bench(repeat: int = 5, chapters: list[str] | None = None) -> int:
    """Time each exercise of `chapters` (names or their two-digit numbers; all when empty)."""
    names = [n for n in workspace.chapters() if not chapters or any(n == c or n[:2] == c for c in chapters)]
    if not names:
        print(f"no chapter is called {', '.join(chapters)}: the chapters are {', '.join(workspace.chapters())}")
        return 2
    client = server.Client()
    timings, failures, firsts = [], [], []
    print(f"{'chapter':<26}{'exercise':<10}{'first ms':>10}{'median ms':>10}{'max ms':>10}")
    try:
        with tempfile.TemporaryDirectory(prefix="tickethub-bench-") as tmp:
            started = time.perf_counter()
            client.start()
            for name in names:
                root = Path(tmp) / name
                workspace.write_files(root, workspace.files(name, "solution"))
                module = workspace.module_name(name)
                for exercise in importlib.import_module(module).chapter.exercises:
                    samples = []
                    for _ in range(repeat + 1):  # the first run of a chapter also loads it
                        result = client.run(module, exercise.key, root)
                        samples.append((time.perf_counter() - started) * 1000)
                        started = time.perf_counter()
                        if result.outcome is not Outcome.PASS:
                            failures.append(f"{name} {exercise.key}: {result.outcome.value}")
                    first, samples = samples[0], samples[1:]
                    firsts.append(first)
                    timings += samples
                    print(f"{name:<26}{exercise.key:<10}{first:>10.1f}{statistics.median(samples):>10.1f}{max(samples):>10.1f}")
    finally:
        client.stop()
    for failure in failures:
        print(f"not a PASS on the reference solution: {failure}")
    print(f"first check after the server starts (loads Flask and chapter {names[0][:2]}): {firsts[0]:.1f} ms"
          " (target < 1500)")
    print(f"first check of every other exercise: max {max(firsts[1:] or [0]):.1f} ms")
    print(f"checks: {len(timings)}  median: {statistics.median(timings):.1f} ms  max: {max(timings):.1f} ms"
          "  (target: median < 100 ms, max < 1000 ms)")
    return 1 if failures else 0


def bench_grading(learners: int = 4, jobs: int | None = None) -> int:
    """Grade `learners` full-course submissions; compare with plain nbconvert, one after another.

    Target (COURSE.md §10): under 15 s of wall time per submission on 2 cores, and a ratio
    against `jupyter nbconvert --execute` of the same notebooks no worse than 1.0. Fails unless
    every exercise of every reference solution passes (and where the grader refuses to run).
    """
    import os
    import shutil
    import subprocess
    import sys


    jobs = jobs or os.cpu_count() or 1
    notebooks = sorted(p for p in (ROOT / "solutions").glob("*.ipynb") if CHAPTER.match(p.name))
    with tempfile.TemporaryDirectory(prefix="tickethub-bench-") as tmp:
        tmp = Path(tmp)
        for i in range(learners):
            folder = tmp / "submissions" / f"learner{i:03d}"
            folder.mkdir(parents=True)
            for nb in notebooks:
                shutil.copy(nb, folder / nb.name)
        started = time.perf_counter()
        status = grade(tmp / "submissions", tmp / "out", jobs=jobs, quiet=True)
        graded = time.perf_counter() - started
        if status:
            print(f"the grader did not grade (exit status {status}): nothing to time")
            return 1
        rows = read(tmp / "out")
        passed = sum(r["outcome"] == "PASS" for r in rows)
        failed = sorted({f"{r['notebook']} {r['exercise']}: {r['outcome']}" for r in rows if r["outcome"] != "PASS"})
        sandbox = ", ".join(sorted({r.get("sandbox", "?") for r in rows}))
        started, broken = time.perf_counter(), []
        for folder in sorted((tmp / "submissions").iterdir()):
            for nb in sorted(folder.glob("*.ipynb")):
                done = subprocess.run(
                    [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                     "--output-dir", str(tmp / "plain" / folder.name), str(nb)],
                    capture_output=True, cwd=folder,
                )
                if done.returncode:
                    broken.append(f"{folder.name}/{nb.name}")
        plain = time.perf_counter() - started
    print(f"submissions: {learners} x {len(notebooks)} notebooks, grade --jobs {jobs} (sandbox: {sandbox}), "
          f"{passed} of {len(rows)} exercises passed")
    print(f"grade:     {graded:.1f} s in all, {graded / learners:.1f} s per submission (target < 15 s)")
    print(f"nbconvert: {plain:.1f} s in all, {plain / learners:.1f} s per submission, one after another")
    for name in broken:
        print(f"nbconvert could not execute {name}: the solutions are broken")
    for name in failed:
        print(f"not a PASS on the reference solution when graded: {name}")
    print(f"ratio grade / nbconvert: {graded / plain:.2f} (target <= 1.0)")
    return 1 if broken or failed or not rows else 0
