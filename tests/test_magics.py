"""Does a kernel's `%%writefile` say what to do when the chapter's project is not set up?"""
import queue
import sys
import time
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from checkers.notebook import magics


@pytest.mark.parametrize(("line", "path"), [
    ("tickethub/warmup.py", "tickethub/warmup.py"),
    ("-a tickethub/x.py", "tickethub/x.py"),
    ('"my folder/x.py"', "my folder/x.py"),
    ("", None), ("a.py b.py", None), ('"unclosed', None),
])
def test_the_target_is_read_like_ipython_reads_it(line, path):
    assert magics.target(line) == (None if path is None else Path(path))


@pytest.fixture
def kernel(tmp_path):
    """A kernel of this Python (as JupyterLab starts it), in an empty folder, as after a restart."""
    assert (Path(sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.py").exists(), \
        "python3 course.py setup installs the extension (python -m checkers.notebook.magics)"
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    outputs = []

    def run(code: str) -> dict:
        reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: outputs.append(m["content"]))
        return reply["content"]

    run.outputs = outputs
    yield run
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def test_an_exercise_cell_before_setup_is_explained_and_writes_nothing(kernel, tmp_path):
    reply = kernel("%%writefile tickethub/warmup.py\nprint('hello')\n")
    assert reply["status"] == "error" and reply["ename"] == "UsageError", reply
    assert "Run the setup cell at the top of the notebook first" in reply["evalue"]
    assert "`tickethub/`" in reply["evalue"]
    assert list(tmp_path.iterdir()) == []


def test_writefile_still_writes_and_appends_where_the_folder_exists(kernel, tmp_path):
    (tmp_path / "tickethub").mkdir()
    assert kernel("%%writefile tickethub/a.py\nx = 1\n")["status"] == "ok"
    assert kernel("%%writefile -a tickethub/a.py\ny = 2\n")["status"] == "ok"
    assert (tmp_path / "tickethub" / "a.py").read_text() == "x = 1\ny = 2\n"
    assert any("Appending to tickethub/a.py" in out.get("text", "") for out in kernel.outputs)


@pytest.fixture
def impatient_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv(magics.SLOW_CELL, "1")
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    yield manager, client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def _outputs_until_idle(client, msg_id: str, timeout: float = 30, grace: float = 2) -> list[str]:
    """The cell's stream output: until the kernel is idle again, and for `grace` seconds after, since
    ipykernel's IOPub thread may send a busy machine's last output after the idle status."""
    texts, deadline = [], None
    while deadline is None or time.monotonic() < deadline:
        try:
            message = client.get_iopub_msg(timeout=timeout if deadline is None else max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            if deadline is None:
                raise
            break
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "stream":
            texts.append(message["content"]["text"])
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            deadline = time.monotonic() + grace
    return texts


def test_an_endless_loop_says_how_to_stop_it(impatient_kernel):
    """Does a cell stuck in a loop say how to interrupt it, and does interrupting it work?"""
    manager, client = impatient_kernel
    msg_id = client.execute("while True:\n    pass\n")
    while "stop it with the ■ button" not in client.get_iopub_msg(timeout=30)["content"].get("text", ""):
        pass
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:  # start_new_kernel's own replies come first
        reply = client.get_shell_msg(timeout=30)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    quick = client.execute("print('done')")
    assert "".join(_outputs_until_idle(client, quick)) == "done\n"  # a quick cell says nothing more
