"""Do all the ways of installing the course install the same thing?"""
import re

import importlib.util

from checkers.authoring.build import ROOT

_spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course)

PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-\[\]]+==[^\s#]+)", re.M)


def pins(path: str) -> list[str]:
    return sorted(p.lower() for p in PIN.findall((ROOT / path).read_text()))


def test_every_environment_pins_the_same_packages():
    """Can requirements.txt, environment.yml and binder/environment.yml drift apart?"""
    wanted = pins("requirements.txt")
    assert wanted and all("==" in p for p in wanted)
    assert pins("environment.yml") == wanted
    assert pins("binder/environment.yml") == wanted


def test_every_requirement_is_pinned_exactly():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    loose = [l for l in lines if l and not l.startswith("#") and "==" not in l]
    assert not loose


def test_binder_installs_the_package_and_starts_cleanly():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps --no-build-isolation -e ." in post_build
    # the same kernels and JupyterLab settings as `course.py setup` gives (checkers/notebook/magics.py)
    assert "python -m checkers.notebook.magics" in post_build
    assert '"checkers.notebook.magics"' in (ROOT / "course.py").read_text()
    start = (ROOT / "binder" / "start").read_text().strip().splitlines()
    assert start[-1] == 'exec "$@"'
    assert "redis-server" in (ROOT / "binder" / "apt.txt").read_text()


def test_readme_and_ci_run_the_same_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 course.py test" in readme and "python3 course.py test" in ci.splitlines()
    assert "urlpath=lab/tree/notebooks/index.ipynb" in readme
