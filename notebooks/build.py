"""Build the chapter notebooks from their sources in ``notebooks/src`` and execute them.

Each source is a Python file in the "percent" format: a line ``# %%`` starts a code cell,
a line ``# %% [markdown]`` starts a markdown cell whose lines begin with ``#``. The
notebook is written beside this script with its outputs, so it reads well unexecuted.

    python notebooks/build.py                 # every source
    python notebooks/build.py 01 03           # sources whose names start with these
    python notebooks/build.py --no-execute    # write the notebooks without outputs

Needs nbformat, nbclient and a Jupyter kernel named ``python3`` of the environment that
has bayeslm installed (``python -m ipykernel install --sys-prefix``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
CELL = re.compile(r"^# %%( \[markdown\])?\s*$")
TIMEOUT = 300  # seconds per cell


def parse(path: Path) -> nbformat.NotebookNode:
    """The notebook of a percent-format source file (no outputs)."""
    cells, kind, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code" and text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in path.read_text(encoding="utf-8").splitlines():
        match = CELL.match(line)
        if match:
            flush()
            kind, lines = ("markdown" if match.group(1) else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = TIMEOUT) -> float:
    """Run every cell in ``notebooks/`` as working directory; returns the seconds taken."""
    from nbclient import NotebookClient

    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="build only sources whose names start with these")
    parser.add_argument("--no-execute", action="store_true")
    args = parser.parse_args(argv)
    sources = sorted(p for p in SRC.glob("*.py") if not args.prefixes or p.name.startswith(tuple(args.prefixes)))
    if not sources:
        parser.error("no matching sources in notebooks/src")
    for src in sources:
        nb = parse(src)
        seconds = 0.0 if args.no_execute else execute(nb)
        out = HERE / f"{src.stem}.ipynb"
        nbformat.write(nb, out)
        print(f"{out.name}: {len(nb.cells)} cells, {seconds:.0f} s, {out.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
