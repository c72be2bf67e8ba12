"""Does the package keep to its layers (pyproject.toml's import-linter contracts)?"""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "checkers"


def test_layer_contracts_are_kept():
    """Does every layer import only the layers below it, with no cycles in the engine?"""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_package_import_hides_in_a_function():
    """Are the package's own modules imported at the top of each file, where the linter sees them?"""
    hidden = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.level or (inner.module or "").startswith("checkers")):
                        hidden.append(f"{path.relative_to(PACKAGE)}:{inner.lineno}")
    assert not hidden, "imports of the package inside functions: " + ", ".join(hidden)
