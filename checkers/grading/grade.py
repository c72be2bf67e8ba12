"""`python -m checkers grade`: grade a class's notebooks safely, in parallel, with nbval.

SUBMISSIONS holds one folder per learner (named after the learner) with any of the course's
notebooks under their usual names. Each notebook is cleaned (canonical setup and check cells
restored by id, nbval markers and tags stripped), copied into a folder of its own, and run by
`pytest --nbval-lax` with the grade plugin (which runs every check outside the kernel, at its
check cell and, if it did not pass there, on the notebook's final state), a kernel of our own
in a sandbox of its own (`isolation.py`) with memory, process and CPU limits, per-cell time
limits and a time budget per notebook. Without a sandbox (`--unsafe`) the gradebook says so.
The installed package is verified before and after the run.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
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

from . import isolation, report

from ..engine import workspace
from ..paths import PACKAGE
from ..paths import GRADER

NBVAL_COMMENT = re.compile(r"^\s*#\s*(NBVAL_\w+|PYTEST_VALIDATE_IGNORE_OUTPUT)\s*$", re.M)
NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-raises-exception", "nbval-skip",
              "raises-exception", "pytest-validate-ignore-output", "skip-execution"}
RUN_MARK = GRADER  # also marks every process of a run, so leftovers can be found
KERNEL = "tickethub-grader"
DISTRIBUTION = "tickethub-checkers"  # pyproject.toml's name for the package
NOTEBOOK_TIMEOUT = 120  # seconds a whole notebook may take (a course notebook takes a few)


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
MAX_CODE = 2 << 20  # bytes of cells once outputs are dropped: what every worker holds while it runs


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


def kernelspec(folder: Path, sandboxed: bool) -> None:
    """Write the grader's kernelspec: our limits, and (with the sandbox) its kernel provisioner."""
    spec = {"argv": [sys.executable, "-m", "checkers.grading.kernel", "-f", "{connection_file}"],
            "display_name": "TicketHub grader", "language": "python",
            "interrupt_mode": "message"}  # a signal would stop at the sandbox's edge; a message reaches the kernel
    if sandboxed:
        spec["metadata"] = {"kernel_provisioner": {"provisioner_name": isolation.PROVISIONER}}
    target = folder / "kernels" / KERNEL
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=1))


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


def installed_files(root: Path | None = None) -> dict[str, str]:
    """The sha256 of every file of the installed `checkers` package (bytecode aside), by path."""
    root = root or PACKAGE
    return {p.relative_to(root.parent).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def unlike_record(files: dict[str, str], root: Path | None = None) -> list[str] | None:
    """The package's files that differ from what pip installed (its RECORD), or None when the
    RECORD does not list them (an editable install: then the start of the run is the reference)."""
    root = root or PACKAGE
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    recorded = {}
    for entry in dist.files or []:
        name = entry.as_posix()
        if name.startswith(root.name + "/") and entry.hash and entry.hash.mode == "sha256":
            recorded[name] = entry.hash.value
    if not recorded or Path(dist.locate_file(f"{root.name}/__init__.py")).resolve() != (root / "__init__.py").resolve():
        return None
    found = {name: base64.urlsafe_b64encode(bytes.fromhex(digest)).rstrip(b"=").decode() for name, digest in files.items()}
    return sorted(name for name in recorded.keys() | found.keys() if recorded.get(name) != found.get(name))


def grade(submissions: Path, out: Path, jobs: int, shard: str | None = None, cell_timeout: int = 60,
          quiet: bool = False, unsafe: bool = False, notebook_timeout: float = NOTEBOOK_TIMEOUT) -> int:
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    if not unsafe:
        why = isolation.unavailable()
        if why:
            print(f"grade: no sandbox can be made here: {why}.\n"
                  "Refusing to grade: without it a submission could read and change other learners' work, the "
                  "course's code and this machine. Pass --unsafe to grade anyway (the gradebook will say so).",
                  file=sys.stderr)
            return 2
    before = installed_files()
    unlike = unlike_record(before)
    if unlike:
        print(f"grade: the installed `checkers` package is not what was installed ({', '.join(unlike[:5])}"
              f"{' and more' if len(unlike) > 5 else ''} differ from its RECORD). Reinstall it before grading.",
              file=sys.stderr)
        return 2
    learners = select_shard(sorted(d.name for d in submissions.iterdir() if d.is_dir()), shard)
    chapters = workspace.chapters()
    rows: list[dict] = []
    mark = uuid.uuid4().hex
    graded: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tickethub-grade-", dir=_run_parent()) as tmp:
        tmp = Path(tmp)
        runs = tmp / "submissions"
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
                text = nbformat.writes(sanitize(submitted, chapter))
                del submitted
                if len(text.encode()) > MAX_CODE:
                    rows += _all(learner, chapter, "MISSING", f"The cells of `{chapter}.ipynb` hold more than "
                                 f"{MAX_CODE >> 20} MiB of code and text, so it was not run.")
                    continue
                folder = runs / learner / chapter  # a folder per notebook: its sandbox's whole world
                folder.mkdir(parents=True)
                (folder / f"{chapter}.ipynb").write_text(text, encoding="utf-8")
                graded.append((learner, chapter))
        sandbox = "none (--unsafe)" if unsafe else "bwrap"
        say(f"grading {len(graded)} notebooks from {len(learners)} learners with {jobs} worker(s), "
            + ("WITHOUT a sandbox (--unsafe)" if unsafe else "one sandbox per notebook"))
        found: list[dict] = []
        if graded:
            found = _run_pytest(tmp, runs, jobs, cell_timeout, notebook_timeout, mark, quiet, sandboxed=not unsafe)
        killed = kill_strays(mark)
        if killed:
            say(f"stopped {killed} process(es) left behind by submissions")
        rows += _collect(found, graded)
    after = installed_files()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        print(f"grade: the installed `checkers` package changed during the run ({', '.join(changed[:5])}"
              f"{' and more' if len(changed) > 5 else ''}). Its marks cannot be trusted, so no gradebook was written; "
              "reinstall the package and grade again.", file=sys.stderr)
        return 3
    report.write(out, [{**r, "sandbox": sandbox} for r in rows])
    passed = sum(r["outcome"] == "PASS" for r in rows)
    say(f"{passed}/{len(rows)} exercises passed; gradebook: {out / 'grades.csv'}, report: {out / 'report.html'}")
    return 0


def _run_parent() -> str:
    """Where the run's folder goes: the temporary folder, unless its path is too long for the
    sockets made in it (a Unix socket's path has at most 107 bytes)."""
    parent = tempfile.gettempdir()
    return parent if len(parent) <= 60 or not os.path.isdir("/tmp") else "/tmp"


def _run_pytest(tmp: Path, runs: Path, jobs: int, cell_timeout: int, budget: float, mark: str, quiet: bool,
                sandboxed: bool) -> list[dict]:
    """Run the notebooks under pytest; return the rows its controller wrote, from its reports."""
    # the run imports a frozen copy of the course's code: what submissions could reach is
    # checked (and restored) there; the installed package is checked before and after the run
    frozen = tmp / "lib"
    shutil.copytree(PACKAGE, frozen / "checkers", ignore=shutil.ignore_patterns("__pycache__"))
    kernelspec(tmp / "jupyter", sandboxed)
    (tmp / "pytest.ini").write_text("[pytest]\n")
    scratch = tmp / "scratch"
    scratch.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(frozen), os.environ.get("PYTHONPATH")])),
        "JUPYTER_PATH": str(tmp / "jupyter"),
        "IPYTHONDIR": str(tmp / "ipython"),
        RUN_MARK: mark,
        "TICKETHUB_SCRATCH": str(scratch),  # the judges' folders too stay inside this run's folder
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("TICKETHUB_GRADING", None)  # verdicts come from the plugin, not the kernel
    if sandboxed:
        env.pop("DATABASE_URL", None)  # a sandbox has no network: its checks use SQLite
    results = tempfile.TemporaryFile("w+", encoding="utf-8")  # no path: only pytest's controller holds it
    command = [
        sys.executable, "-m", "pytest", str(runs), "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp),
        "-p", "checkers.grading.plugin", "-p", "no:cacheprovider", "--nbval-lax",
        "--nbval-kernel-name", KERNEL, f"--nbval-cell-timeout={cell_timeout}", "-q", "--no-header",
        "-o", "console_output_style=progress", "--tb=no", "-rN",
        "-o", "norecursedirs=",  # every folder is a learner's, even one named `build`, `venv` or `.ada`
        "--tickethub-run", str(tmp), f"--tickethub-budget={budget}", f"--tickethub-cell-timeout={cell_timeout}",
        f"--tickethub-results-fd={results.fileno()}",
    ]
    if sandboxed:
        command.append("--tickethub-sandbox")
    if jobs > 1:
        command += ["-n", str(jobs), "--dist", "loadscope"]
    with results:
        done = subprocess.run(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL if quiet else None,
                              pass_fds=(results.fileno(),))
        if done.returncode not in (0, 1):  # 1 only means that some cells failed
            # what was graded stands; every check that never ran is reported as such, learner by learner
            print(f"warning: pytest ended with exit status {done.returncode}; checks it did not reach are reported "
                  "as not run", file=sys.stderr)
        results.seek(0)
        lines = results.read().splitlines()
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a controller that died
    return rows


def _collect(found: list[dict], graded: list[tuple[str, str]]) -> list[dict]:
    verdicts, cells, stopped, tampered = {}, {}, {}, {}
    for row in found:  # a row may come more than once (each report of a test carries its rows so far)
        key, kind = (row.get("learner"), row.get("notebook")), row.get("kind")
        if kind in ("check", "final"):
            verdicts[(*key, row["exercise"], kind)] = row
        elif kind == "cell":
            cells.setdefault(key, {})[row["cell"]] = f"{row['cell']}: `{row['message']}`"
        elif kind == "budget":
            stopped[key] = row["message"]
        elif kind == "tampered":
            tampered[key] = row["message"]
    rows = []
    for key in graded:
        notes = list(cells.get(key, {}).values())
        for exercise in exercises(key[1]):
            if key in tampered:
                rows.append(report.row(*key, exercise, "TAMPERED", tampered[key], notes))
                continue
            at_cell, final = verdicts.get((*key, exercise, "check")), verdicts.get((*key, exercise, "final"))
            counted, other = better(at_cell, final)
            if counted is None:
                outcome, message = ("TIMEOUT", stopped[key]) if key in stopped else (
                    "ERROR", "The notebook stopped before this check could run.")
                rows.append(report.row(*key, exercise, outcome, message, notes))
                continue
            rows.append(report.row(*key, exercise, counted["outcome"], counted["message"], notes,
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
