"""Do the notebooks run as learners and instructors run them?

- every solution notebook passes strict `pytest --nbval` (stored outputs are reproducible);
- every learner notebook runs top to bottom with no error, and every check in it reports
  NOT_ATTEMPTED, because nothing has been solved yet.
Each runs in a copy, so the repository's own folders are never touched.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checkers.authoring.execute import execute_notebook
from checkers.authoring.build import CHAPTER, ROOT

CHAPTERS = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb") if CHAPTER.match(p.name))
SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def test_solutions_pass_strict_nbval(tmp_path):
    """Does every solution notebook reproduce its stored outputs exactly?"""
    for name in CHAPTERS:
        shutil.copy(ROOT / "solutions" / name, tmp_path / name)
    workers = ["-n", str(min(len(CHAPTERS), os.cpu_count() or 1)), "--dist", "loadscope"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-cell-timeout=120",
         "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q", *workers, str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


@pytest.mark.parametrize("name", CHAPTERS)
def test_learner_notebook_runs_and_reports_not_attempted(tmp_path, name):
    shutil.copy(ROOT / "notebooks" / name, tmp_path / name)
    nb = execute_notebook(tmp_path / name)  # raises CellExecutionError on any error
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert checks, f"{name} has no check cells"
    for cell in checks:
        text = "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
        assert text.startswith("[NOT_ATTEMPTED]"), f"{name}, cell {cell.id}: {text or cell.outputs}"
    assert not any(o.output_type == "error" for c in nb.cells for o in c.get("outputs", []))
