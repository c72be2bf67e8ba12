"""Command line: `python -m checkers build|execute|bench|mutate|release|grade|merge`."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .authoring.bench import bench as run_bench, bench_grading
from .authoring.build import BuildError, build as run_build
from .authoring.execute import execute_solutions
from .authoring.mutate import mutate as run_mutate
from .authoring.release import ReleaseError, release as run_release
from .grading.grade import NOTEBOOK_TIMEOUT, grade as run_grade, merge as run_merge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checkers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="regenerate notebooks/ and the checkpoints from solutions/")
    build.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    execute = commands.add_parser("execute", help="run solution notebooks and store their outputs")
    execute.add_argument("notebooks", nargs="*", help="solution notebooks (default: all)")
    bench = commands.add_parser("bench", help="time every exercise's check on the reference solution")
    bench.add_argument("chapters", nargs="*", metavar="CHAPTER",
                       help="chapters to time, by name or number (default: every chapter)")
    bench.add_argument("--repeat", type=int, default=5, help="checks per exercise (default: 5)")
    bench.add_argument("--grading", action="store_true",
                       help="benchmark the grade command against plain nbconvert instead")
    bench.add_argument("--learners", type=int, default=4, help="synthetic submissions for --grading")
    mutate = commands.add_parser("mutate", help="mutate each exercise's reference solution and report"
                                 " the mutants its check still passes")
    mutate.add_argument("chapter", nargs="?", help="a chapter, e.g. 01-project-structure or 01 (default: all)")
    mutate.add_argument("exercise", nargs="?", help="one exercise of that chapter, e.g. ex2 (default: all)")
    mutate.add_argument("--seed", type=int, default=0, help="seed of the checks and of --limit's sample (default: 0)")
    mutate.add_argument("--jobs", type=int, default=2, help="checks run in parallel (default: 2)")
    mutate.add_argument("--limit", type=int, help="check at most N mutants per exercise, a sample (default: all)")
    release = commands.add_parser("release", help="write a graded edition: the course up to the chapters"
                                   " released, their solutions withheld")
    release.add_argument("chapters", nargs="+", help="the chapters whose solutions are withheld, e.g. 03 or 03-database")
    release.add_argument("--out", type=Path, required=True, help="an empty or new folder for the edition")
    grade = commands.add_parser("grade", help="grade a folder of submissions (one folder per learner)")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--out", type=Path, required=True, help="where to write the gradebook")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel workers (default: cores)")
    grade.add_argument("--shard", help="grade only share I of N of the learners, e.g. 2/8")
    grade.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell (default: 60)")
    grade.add_argument("--notebook-timeout", type=float, default=NOTEBOOK_TIMEOUT,
                       help=f"seconds per notebook, all its cells and checks (default: {NOTEBOOK_TIMEOUT})")
    grade.add_argument("--unsafe", action="store_true",
                       help="grade even where no sandbox can be made (the gradebook says so)")
    merge = commands.add_parser("merge", help="combine the outputs of sharded grade runs")
    merge.add_argument("parts", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "build":
        try:
            changed = run_build(check=args.check)
        except BuildError as error:
            print(f"build failed: {error}", file=sys.stderr)
            return 2
        if args.check:
            if changed:
                print("stale (run `python -m checkers build`):\n  " + "\n  ".join(changed), file=sys.stderr)
                return 1
            print("notebooks/ and checkpoints are up to date")
        else:
            print("\n".join(f"wrote {p}" for p in changed) or "nothing to do: everything is up to date")
        return 0
    if args.command == "execute":
        return execute_solutions(args.notebooks)
    if args.command == "mutate":
        return run_mutate(args.chapter, args.exercise, args.seed, args.jobs, args.limit)
    if args.command == "release":
        try:
            return run_release(args.chapters, args.out)
        except ReleaseError as error:
            print(f"release failed: {error}", file=sys.stderr)
            return 2
    if args.command == "grade":
        return run_grade(args.submissions, args.out, args.jobs, args.shard, args.cell_timeout,
                         unsafe=args.unsafe, notebook_timeout=args.notebook_timeout)
    if args.command == "merge":
        return run_merge(args.parts, args.out)
    if args.command == "bench":
        return bench_grading(args.learners) if args.grading else run_bench(args.repeat, args.chapters)
    return 2


if __name__ == "__main__":
    sys.exit(main())
