"""One sandbox per graded notebook, built on bubblewrap (`bwrap`).

A notebook's kernel and the learner's processes of its checks run in one sandbox: their own
user, mount, pid, ipc, uts and network namespaces (no network at all), as an unprivileged
user, seeing only the notebook's own folder (read-write) and the Python environment and the
course's code (read-only); every other path is absent. When the grader runs as root, each
sandbox is also a user id of its own on the machine, so process limits count only its own
processes. Every process of a sandbox dies with it: it is a pid namespace whose first
process dies when the grader's kernel manager kills the sandbox or itself dies.

The kernel is reached over ZeroMQ's IPC transport (sockets in a folder of the sandbox's own),
since loopback does not cross a network namespace. The judges stay outside: they connect to a
socket the grader made and handed in (`checkers.engine.forkserver`), never to a path the
sandbox could replace.

`python -m checkers grade` uses it through a kernel provisioner (`Provisioner`, named in the
grader's kernelspec), so nbval starts kernels as usual.
"""
from __future__ import annotations

import itertools
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

from ..engine import workspace

PROVISIONER = "tickethub-sandbox"  # the kernel provisioner's name (pyproject.toml's entry point)
INSIDE_ID = 65534  # who the notebook's processes are inside the sandbox: nobody
TMP_MB = 256  # the sandbox's /tmp and /dev/shm, each a memory file system of this size at most
SYSTEM = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
ETC = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "hosts",
       "localtime", "alternatives", "mime.types"]  # what Python and its libraries read; no secrets


@dataclass
class Settings:
    """What all the sandboxes of one run share."""

    run: Path  # the run's private folder: sockets (`ctl/`) and kernels' connections (`k/`)
    readonly: list[Path] = field(default_factory=list)  # the Python environment, the course's code
    env: dict[str, str] = field(default_factory=dict)  # the whole environment inside
    cpu_seconds: int = 0  # each process's CPU time (0: no limit of its own)


_settings: Settings | None = None
_boxes: dict[Path, "Sandbox"] = {}
_names = itertools.count(1)


def configure(settings: Settings | None) -> None:
    global _settings
    _settings = settings


def enabled() -> bool:
    return _settings is not None


def python_paths() -> list[Path]:
    """The folders this Python runs from: its environment, its installation and their real places."""
    paths = []
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)):
        for candidate in (Path(path).absolute(), Path(path).resolve()):
            if candidate not in paths:
                paths.append(candidate)
    return paths


def running_as_root() -> bool:
    return os.geteuid() == 0


def unavailable() -> str | None:
    """Why no sandbox can be made here, said precisely; None when one can."""
    if not sys.platform.startswith("linux"):
        return f"the grading sandbox needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return ("bubblewrap is not installed (no `bwrap` on PATH): install Debian's or Ubuntu's `bubblewrap` "
                "package (`apt-get install bubblewrap`)")
    if running_as_root() and shutil.which("setpriv") is None:
        return "util-linux's `setpriv` is missing, which gives each sandbox a user of its own"
    with tempfile.TemporaryDirectory(prefix="tickethub-probe-") as tmp:
        folder = Path(tmp) / "notebook"
        folder.mkdir()
        box = Sandbox(Settings(run=Path(tmp), readonly=python_paths(), env={"PATH": "/usr/bin:/bin"}), folder,
                      listen=False)
        try:
            done = subprocess.run(box.command([sys.executable, "-c", "open('probe', 'w').write('ok')"]),
                                  capture_output=True, text=True, timeout=60, cwd=folder)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`bwrap` could not be run ({error})"
        finally:
            box.close()
        wrote = (folder / "probe").is_file() and (folder / "probe").read_text() == "ok"
        if done.returncode or not wrote:
            why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            return (f"`bwrap` could not make a sandbox here ({why}). It needs user namespaces (`sysctl "
                    "user.max_user_namespaces` above 0, `kernel.unprivileged_userns_clone` 1 where it exists; in a "
                    "container, a seccomp and AppArmor profile that allow them) and, in a container, a /proc that is "
                    "not masked (Kubernetes' `procMount: Unmasked`, Docker's `--security-opt systempaths=unconfined`)")
    return None


def free_id() -> int:
    """A user and group id for one sandbox: mapped here, and no account's or group's."""
    taken = set()
    for table in ("/etc/passwd", "/etc/group"):
        try:
            taken |= {int(line.split(":")[2]) for line in Path(table).read_text().splitlines() if line.count(":") >= 3}
        except (OSError, ValueError):
            pass
    ranges = []
    for table in ("uid_map", "gid_map"):
        rows = [line.split() for line in Path(f"/proc/self/{table}").read_text().splitlines()]
        ranges.append([(int(first), int(first) + int(count)) for first, _, count in rows])
    low, high = max(ranges[0], key=lambda r: r[1] - r[0])
    low, high = (max(low, 1 << 20), min(high, 1 << 30)) if high > 1 << 21 else (max(low, 10000), high - 2)
    rng = random.SystemRandom()
    for _ in range(1000):
        candidate = rng.randrange(low, high)
        if candidate not in taken and any(a <= candidate < b for a, b in ranges[1]):
            return candidate
    raise RuntimeError("no free user id for a sandbox")


class Sandbox:
    """One notebook's sandbox: its folder, its user, its sockets, and how to start a process in it."""

    def __init__(self, settings: Settings, folder: Path, listen: bool = True):
        self.settings, self.folder = settings, folder.absolute()
        name = f"{os.getpid()}-{next(_names)}"
        self.uid = free_id() if running_as_root() else None
        self.ipc = settings.run / "k" / name  # the kernel's connection file and sockets
        self.ipc.mkdir(parents=True, mode=0o700)
        self.address = str(settings.run / "ctl" / f"{name}.sock")
        self.listener = None
        if listen:  # made here, outside, so nothing inside can put another socket in its place
            Path(self.address).parent.mkdir(mode=0o700, exist_ok=True)
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(self.address)
            self.listener.listen(64)
        self.give(self.folder)
        self.give(self.ipc)

    def give(self, path: Path) -> None:
        """Make a path (and what is in it) the sandbox user's."""
        if self.uid is None:
            return
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.lchown(name, self.uid, self.uid)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` wrapped to run in this sandbox."""
        inner = ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(INSIDE_ID), "--gid", str(INSIDE_ID),
                 "--die-with-parent", "--new-session", "--chdir", str(self.folder), "--clearenv"]
        for name, value in self.settings.env.items():
            inner += ["--setenv", name, value]
        devices = ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_MB << 20), "--tmpfs", "/dev/shm"]
        bwrap = shutil.which("bwrap")
        if self.uid is None:  # one unprivileged bwrap builds the view and the namespaces
            return [bwrap, *self._view(), *devices, "--remount-ro", "/", *inner, "--", *argv]
        # as root: a first bwrap builds the view (it may read what root alone may), in a pid
        # namespace whose end kills everything below; a second, as the sandbox's own user, adds
        # the namespaces inside it
        outer = ["--unshare-pid", "--die-with-parent", "--bind", "/proc", "/proc", "--dev", "/dev", *self._view(),
                 "--remount-ro", "/"]
        drop = [shutil.which("setpriv"), "--reuid", str(self.uid), "--regid", str(self.uid), "--clear-groups"]
        return [bwrap, *outer, "--", *drop, "--", bwrap, "--bind", "/", "/", *devices, *inner, "--", *argv]

    def _view(self) -> list[str]:
        """The file system the sandbox sees: system and Python read-only, its own folders read-write."""
        args: list[str] = []
        made: set[str] = {"/etc", "/tmp"}
        binds: list[str] = []  # what is already there, read-only: nothing can be made inside it

        def inside(path: str) -> bool:
            return any(path == b or path.startswith(b + "/") for b in binds)

        def parents(path: Path):  # bwrap would make them private to root; they must be walkable
            for parent in map(str, reversed(path.parents[:-1])):
                if parent not in made and not inside(parent):
                    made.add(parent)
                    args.extend(["--perms", "0755", "--dir", parent])

        for top in SYSTEM:
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
                binds.append(top)
        args += ["--perms", "0755", "--dir", "/etc"]
        for name in ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--perms", "1777", "--size", str(TMP_MB << 20), "--tmpfs", "/tmp"]
        tools = [Path(found).parent for found in map(shutil.which, ("bwrap", "setpriv")) if found]
        for path in [*self.settings.readonly, *tools]:
            if not inside(str(path)):
                parents(path)
                args += ["--ro-bind", str(path), str(path)]
                binds.append(str(path))
        for path in (self.folder, self.ipc):
            parents(path)
            args += ["--bind", str(path), str(path)]
        return args

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            Path(self.address).unlink(missing_ok=True)


def sandbox(folder: Path) -> Sandbox:
    """The sandbox of the notebook in `folder`, made on first use."""
    folder = Path(folder).absolute()
    if folder not in _boxes:
        _boxes[folder] = Sandbox(_settings, folder)
    return _boxes[folder]


def close(folder: Path) -> None:
    box = _boxes.pop(Path(folder).absolute(), None)
    if box:
        box.close()


class Provisioner(LocalProvisioner):
    """Starts a grader's kernel in its notebook's sandbox (the grader's kernelspec names it)."""

    async def pre_launch(self, **kwargs):
        km = self.parent
        box = sandbox(Path(kwargs.get("cwd") or os.getcwd()))
        km.transport, km.ip = "ipc", str(box.ipc / "k")
        km.connection_file = str(box.ipc / "connection.json")
        kwargs = await super().pre_launch(**kwargs)
        box.give(box.ipc)
        chapter = box.folder.name  # a notebook's folder is named after its chapter
        command = list(kwargs["cmd"])
        at = command.index("checkers.grading.kernel") + 1
        command[at:at] = ["--cpu-seconds", str(self._cpu()), "--forkserver", str(box.listener.fileno()),
                          workspace.module_name(chapter)]
        kwargs["cmd"] = box.command(command)
        kwargs["pass_fds"] = (box.listener.fileno(),)
        kwargs["stdout"] = subprocess.DEVNULL  # nothing of the sandbox's reaches this process's streams
        kwargs["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # for bwrap; the sandbox sets its own
        return kwargs

    @staticmethod
    def _cpu() -> int:
        return _settings.cpu_seconds if _settings else 0
