"""The chapter notebooks in notebooks/ run top to bottom, stand alone and are committed run.

Each notebook is executed with nbclient in a temporary copy, on a kernel of the Python
running the tests (so it sees this bayeslm); any failing cell fails the test. Together
they take a few minutes on two cores; ``-m 'not notebooks'`` deselects them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "bayeslm-tests"
CELL_TIMEOUT = 300  # seconds
MAX_BYTES = 1_500_000
FORBIDDEN = ("../shared", "shared/data")  # a clone without the shared directory must run them

pytestmark = pytest.mark.notebooks


def _ids(paths):
    return [p.name for p in paths]


def _errors(nb) -> list[str]:
    """Error outputs of a notebook, as 'cell N: Name: message'."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return found


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
    """A kernelspec running this interpreter, found first on JUPYTER_PATH for the session."""
    path = tmp_path_factory.mktemp("jupyter")
    spec = path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bayeslm tests",
        "language": "python",
    }))
    patch = pytest.MonkeyPatch()
    patch.setenv("JUPYTER_PATH", str(path))
    patch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    yield KERNEL
    patch.undo()


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_self_contained_and_committed_with_outputs(path):
    text = path.read_text(encoding="utf-8")
    for needle in FORBIDDEN:
        assert needle not in text, f"{path.name} mentions {needle!r}: notebooks must run without the shared directory"
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes; keep it under {MAX_BYTES}"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, f"{path.name} has no code"
    unrun = [i for i, c in enumerate(nb.cells) if c in code and c.get("execution_count") is None]
    assert not unrun, f"{path.name}: cells {unrun} are committed without being run"
    assert not _errors(nb), f"{path.name} is committed with errors: {_errors(nb)}"


def test_sources_are_self_contained():
    """Sources the notebooks are built from (if any) do not read the shared directory either."""
    for path in sorted(NOTEBOOK_DIR.rglob("*")):
        if path.suffix in (".py", ".md") and path.is_file():
            text = path.read_text(encoding="utf-8")
            for needle in FORBIDDEN:
                assert needle not in text, f"{path.relative_to(ROOT)} mentions {needle!r}"


def test_notebooks_match_their_sources():
    """Where notebooks/src holds the sources, every notebook was rebuilt from its source."""
    if not (NOTEBOOK_DIR / "build.py").is_file():
        pytest.skip("no notebooks/build.py: the notebooks are edited directly")
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for src in sorted((NOTEBOOK_DIR / "src").glob("*.py")):
        target = NOTEBOOK_DIR / f"{src.stem}.ipynb"
        assert target.is_file(), f"{src.name} has no notebook: run python notebooks/build.py {src.stem[:2]}"
        built = [(c.cell_type, c.source) for c in build.parse(src).cells]
        committed = [(c.cell_type, c.source) for c in nbformat.read(target, as_version=4).cells]
        assert built == committed, f"{target.name} differs from {src.name}: run python notebooks/build.py {src.stem[:2]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes(path, tmp_path, kernel_name):
    from nbclient import NotebookClient

    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel_name, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError at the first failing cell
    assert not _errors(nb)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip())
