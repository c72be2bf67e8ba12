"""`python -m checkers grade`: grade a class's notebooks safely, in parallel, with nbval.

SUBMISSIONS holds one folder per learner (named after the learner) with any of the course's
notebooks under their usual names. Each notebook is cleaned (canonical setup and check cells
restored by id, nbval markers and tags stripped), copied into a private folder, and run by
`pytest --nbval-lax` with the grade plugin (which runs every check outside the kernel, at its
check cell and, if it did not pass there, on the notebook's final state), a kernel of our own
with memory and process limits, and per-cell time limits.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat

from . import report

from ..engine import workspace
from ..paths import PACKAGE
from ..paths import GRADER

NBVAL_COMMENT = re.compile(r"^\s*#\s*(NBVAL_\w+|PYTEST_VALIDATE_IGNORE_OUTPUT)\s*$", re.M)
NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-raises-exception", "nbval-skip",
              "raises-exception", "pytest-validate-ignore-output", "skip-execution"}
RUN_MARK = GRADER  # also marks every process of a run, so leftovers can be found
KERNEL = "tickethub-grader"


def sanitize(nb: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """Return the notebook with the course's own cells restored and nbval's markers removed."""
    protected = workspace.checkpoint(chapter)["protected"]
    canonical = {p["id"]: p for p in protected}
    cells, seen = [], set()
    for cell in nb.cells:
        cell_id = cell.get("id")
        if cell_id in seen:  # a duplicated id must not pass for a canonical cell twice
            cell_id = f"learner-{len(cells)}"
        seen.add(cell_id)
        if cell_id in canonical:
            cells.append(nbformat.v4.new_code_cell(canonical[cell_id]["source"], id=cell_id))
        elif cell.cell_type == "code":
            tags = [t for t in cell.metadata.get("tags", []) if t not in NBVAL_TAGS]
            source = NBVAL_COMMENT.sub("", cell.source)
            cells.append(nbformat.v4.new_code_cell(source, id=cell_id, metadata={"tags": tags}))
        else:
            cells.append(nbformat.v4.new_markdown_cell(cell.get("source", ""), id=cell_id))
    for record in protected:  # put back what was deleted, after its canonical predecessor
        if record["id"] in {c.id for c in cells}:
            continue
        ids = [c.id for c in cells]
        position = ids.index(record["after"]) + 1 if record["after"] in ids else len(cells)
        cells.insert(position, nbformat.v4.new_code_cell(record["source"], id=record["id"]))
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": KERNEL, "display_name": "TicketHub grader"}})


MAX_NOTEBOOK = 16 << 20  # bytes; a course notebook with its outputs is well under 1 MiB


def refusal(source: Path, chapter: str) -> str | None:
    """Why a submitted file is not read (missing, not a regular file, too large), or None.

    A named pipe would block the reader forever, a link could point anywhere, and a huge file
    would cost many times its size in memory: each costs only its own learner's rows.
    """
    try:
        info = source.lstat()
    except FileNotFoundError:
        return f"`{chapter}.ipynb` was not submitted."
    except OSError as error:
        return f"`{chapter}.ipynb` could not be read ({type(error).__name__})."
    if not stat.S_ISREG(info.st_mode):
        return f"`{chapter}.ipynb` is not a regular file (a link, a folder or a special file), so it was not read."
    if info.st_size > MAX_NOTEBOOK:
        return f"`{chapter}.ipynb` is larger than {MAX_NOTEBOOK >> 20} MiB, so it was not read."
    return None


def exercises(chapter: str) -> list[str]:
    return [p["exercise"] for p in workspace.checkpoint(chapter)["protected"] if p["exercise"]]


def select_shard(learners: list[str], shard: str | None) -> list[str]:
    """Keep a deterministic share of the learners: `2/5` is the second of five shares."""
    if not shard:
        return learners
    index, count = (int(n) for n in shard.split("/"))
    if not 1 <= index <= count:
        raise ValueError(f"--shard {shard}: expected I/N with 1 <= I <= N")
    return [name for name in learners
            if int(hashlib.sha256(name.encode()).hexdigest(), 16) % count == index - 1]


def kernelspec(folder: Path, readonly: list[Path]) -> None:
    """Write the grader's kernelspec: our limits, and course code read-only where possible."""
    argv = [sys.executable, "-m", "checkers.grading.kernel", "-f", "{connection_file}"]
    if readonly and _can_unshare():
        script = " && ".join(f'mount --bind -o ro "${i}" "${i}"' for i in range(1, len(readonly) + 1))
        argv = ["unshare", "-m", "sh", "-c", f'{script} && shift {len(readonly)} && exec "$@"',
                KERNEL, *map(str, readonly), *argv]
    target = folder / "kernels" / KERNEL
    target.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "display_name": "TicketHub grader", "language": "python"}
    (target / "kernel.json").write_text(json.dumps(spec, indent=1))


def _can_unshare() -> bool:
    try:
        probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / / 2>/dev/null || mount --bind / /"],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def kill_strays(mark: str) -> int:
    """Kill every process still carrying this run's mark (kernels' leftovers, servers)."""
    killed = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"{RUN_MARK}={mark}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def grade(submissions: Path, out: Path, jobs: int, shard: str | None = None,
          cell_timeout: int = 60, quiet: bool = False) -> int:
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    learners = select_shard(sorted(d.name for d in submissions.iterdir() if d.is_dir()), shard)
    chapters = workspace.chapters()
    rows: list[dict] = []
    mark = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="tickethub-grade-") as tmp:
        tmp = Path(tmp)
        runs, results = tmp / "submissions", tmp / "results"
        results.mkdir()
        queued = 0
        for learner in learners:
            for chapter in chapters:
                source = submissions / learner / f"{chapter}.ipynb"
                refused = refusal(source, chapter)
                if refused:
                    rows += _all(learner, chapter, "MISSING", refused)
                    continue
                try:
                    submitted = nbformat.read(source, as_version=4)
                except Exception as error:  # noqa: BLE001 — any unreadable file is reported, not fatal
                    rows += _all(learner, chapter, "MISSING",
                                 f"`{chapter}.ipynb` could not be read as a notebook ({type(error).__name__}).")
                    continue
                nb = sanitize(submitted, chapter)
                folder = runs / learner
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o700)
                nbformat.write(nb, folder / f"{chapter}.ipynb")
                queued += 1
        say(f"grading {queued} notebooks from {len(learners)} learners with {jobs} worker(s)")
        if queued:
            _run_pytest(tmp, runs, results, jobs, cell_timeout, mark, quiet)
        killed = kill_strays(mark)
        if killed:
            say(f"stopped {killed} process(es) left behind by submissions")
        rows += _collect(results, runs, chapters)
    report.write(out, rows)
    passed = sum(r["outcome"] == "PASS" for r in rows)
    say(f"{passed}/{len(rows)} exercises passed; gradebook: {out / 'grades.csv'}, report: {out / 'report.html'}")
    return 0


def _run_pytest(tmp: Path, runs: Path, results: Path, jobs: int, cell_timeout: int, mark: str, quiet: bool):
    # the run imports a frozen copy of the course's code: what submissions could reach is
    # checked (and restored) there, and the installed package is never touched
    package = PACKAGE
    frozen = tmp / "lib"
    shutil.copytree(package, frozen / "checkers", ignore=shutil.ignore_patterns("__pycache__"))
    kernelspec(tmp / "jupyter", [frozen, package, Path(sys.prefix)])
    (tmp / "pytest.ini").write_text("[pytest]\n")
    scratch = tmp / "scratch"
    scratch.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(frozen), os.environ.get("PYTHONPATH")])),
        "JUPYTER_PATH": str(tmp / "jupyter"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "TICKETHUB_GRADE_RESULTS": str(results),
        RUN_MARK: mark,
        "TICKETHUB_SCRATCH": str(scratch),  # checks' folders too stay inside this run's folder
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("TICKETHUB_GRADING", None)  # verdicts come from the plugin, not the kernel
    command = [
        sys.executable, "-m", "pytest", str(runs), "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp),
        "-p", "checkers.grading.plugin", "-p", "no:cacheprovider", "--nbval-lax",
        "--nbval-kernel-name", KERNEL, f"--nbval-cell-timeout={cell_timeout}", "-q", "--no-header",
        "-o", "console_output_style=progress", "--tb=no", "-rN",
        "-o", "norecursedirs=",  # every folder is a learner's, even one named `build`, `venv` or `.ada`
    ]
    if jobs > 1:
        command += ["-n", str(jobs), "--dist", "loadscope"]
    done = subprocess.run(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL if quiet else None)
    if done.returncode not in (0, 1):  # 1 only means that some cells failed
        # what was graded stands; every check that never ran is reported as such, learner by learner
        print(f"warning: pytest ended with exit status {done.returncode}; checks it did not reach are reported "
              "as not run", file=sys.stderr)


def _collect(results: Path, runs: Path, chapters: list[str]) -> list[dict]:
    verdicts, cells, tampered = {}, {}, {}
    for path in results.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            key = (row["learner"], row["notebook"])
            if row["kind"] in ("check", "final"):
                verdicts[(*key, row["exercise"], row["kind"])] = row
            elif row["kind"] == "cell":
                cells.setdefault(key, []).append(f"{row['cell']}: `{row['message']}`")
            else:
                tampered[key] = row["message"]
    rows = []
    for notebook in sorted(runs.glob("*/*.ipynb")):
        key = (notebook.parent.name, notebook.stem)
        for exercise in exercises(notebook.stem):
            at_cell, final = verdicts.get((*key, exercise, "check")), verdicts.get((*key, exercise, "final"))
            if key in tampered:
                rows.append(report.row(*key, exercise, "TAMPERED", tampered[key], cells.get(key, [])))
                continue
            counted, other = better(at_cell, final)
            if counted is None:
                rows.append(report.row(*key, exercise, "ERROR", "The notebook stopped before this check could run.",
                                       cells.get(key, [])))
                continue
            rows.append(report.row(*key, exercise, counted["outcome"], counted["message"], cells.get(key, []),
                                   counted=report.AT_CELL if counted is at_cell else report.FINAL,
                                   seed=counted.get("seed"), other=other["outcome"] if other else ""))
    return rows


def better(at_cell: dict | None, final: dict | None) -> tuple[dict | None, dict | None]:
    """The verdict that counts and the other one: a pass over anything, an attempt over none,
    any verdict over none; on a tie, the one at the check cell (what the learner saw)."""
    def standing(row):
        return 3 if row is None else {"PASS": 0, "NOT_ATTEMPTED": 2}.get(row["outcome"], 1)

    return (final, at_cell) if standing(final) < standing(at_cell) else (at_cell, final)


def _all(learner: str, chapter: str, outcome: str, message: str) -> list[dict]:
    return [report.row(learner, chapter, ex, outcome, message) for ex in exercises(chapter)]


def merge(parts: list[Path], out: Path) -> int:
    """Combine the outputs of several `grade --shard` runs into one gradebook."""
    rows = {}
    for part in parts:
        for row in report.read(part):
            rows[(row["learner"], row["notebook"], row["exercise"])] = row
    report.write(out, [rows[key] for key in sorted(rows)])
    print(f"merged {len(parts)} part(s): {len(rows)} rows into {out / 'grades.csv'}")
    return 0
