"""Does Binder build what we mean it to? repo2docker's Dockerfile for this repository, read without Docker."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checkers.authoring.build import ROOT
from test_packaging import pins


@pytest.fixture(scope="module")
def dockerfile(tmp_path_factory) -> str:
    """The Dockerfile `repo2docker --no-build --debug` writes for the repository."""
    repo2docker = Path(sys.executable).with_name("repo2docker")
    if not repo2docker.exists():
        reason = "repo2docker is not installed: `pip install -r requirements-test.txt`"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so Binder must be checked)")
        pytest.skip(reason)
    done = subprocess.run([str(repo2docker), "--no-build", "--debug", str(ROOT)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path_factory.mktemp("repo2docker"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "python=3.11" in done.stderr, done.stderr[-3000:]  # the base environment binder/ asks for
    return done.stdout


def test_binder_installs_the_pinned_packages(dockerfile):
    """Is the environment file that the image installs binder/environment.yml, with requirements.txt's pins?"""
    installed = re.findall(r'env update -p \$\{NB_PYTHON_PREFIX\} --file "([^"]+)"', dockerfile)
    assert installed == ["binder/environment.yml"]
    assert "COPY --chown=0:0 src/binder/environment.yml ${REPO_DIR}/binder/environment.yml" in dockerfile
    assert pins(installed[0]) == pins("requirements.txt")
    assert "requirements.txt" not in dockerfile  # binder/ wins: no second, unpinned install


def test_binder_runs_post_build_after_copying_the_repository(dockerfile):
    """Does postBuild (which installs the checkers package) run once the repository is in the image?"""
    lines = dockerfile.splitlines()
    copied = lines.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
    assert lines.index("RUN ./binder/postBuild") > copied
    assert "pip install --no-deps --no-build-isolation -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_binder_starts_redis_and_opens_the_index(dockerfile):
    """Are Redis and bubblewrap (the grader's sandbox) installed, Redis started by binder/start, and does
    the launch link open the course index?"""
    installs = re.search(r"apt-get install --yes --no-install-recommends ([^&\n]+)", dockerfile)
    assert installs and {"redis-server", "bubblewrap"} <= set(installs.group(1).split())
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in dockerfile
    assert "redis-server --daemonize yes" in (ROOT / "binder" / "start").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/\S+?urlpath=lab/tree/(\S+?\.ipynb)", (ROOT / "README.md").read_text())
    assert links and all((ROOT / path).exists() for path in links)
    assert set(links) == {"notebooks/index.ipynb"}
