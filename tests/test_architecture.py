"""The architecture contracts: layers, no import cycles, no private names across modules.

setup.cfg's ``[importlinter]`` sections state the layers (lowest first: text, counting,
stats, core, ngram | neural, report, cli), that bayeslm.exceptions imports nothing of
bayeslm, that no module imports the package root, and that no imports form a cycle between
the subpackages or between the modules of one. These tests run them with the installed
``lint-imports`` (the ``test`` extra), and check with the AST what import-linter has no
contract for: that no module of bayeslm imports another module's private (``_name``)
attribute. Each check is also shown to fail on a deliberately bad import.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Imports the contracts tolerate (contract id -> "importer -> imported"), none today. An entry
# that no longer matches an import fails the test (import-linter reports an unmatched ignored
# import), so the list cannot outlive the violations it names.
KNOWN_IMPORTS: dict[str, list[str]] = {}
KNOWN_PRIVATE: set[tuple[str, str]] = set()


def contracts_config(tmp_path: Path, known: dict[str, list[str]]) -> Path:
    """setup.cfg's import-linter sections in a file of their own, ``known`` imports ignored per contract id."""
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(ROOT / "setup.cfg", encoding="utf-8")
    config = configparser.ConfigParser(interpolation=None)
    for section in setup.sections():
        if section == "importlinter" or section.startswith("importlinter:"):
            config[section] = dict(setup[section])
    for contract_id, imports in known.items():
        config[f"importlinter:contract:{contract_id}"]["ignore_imports"] = "\n" + "\n".join(imports)
    path = tmp_path / "contracts.ini"
    with path.open("w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def lint_imports(config: Path, source_root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the bayeslm package found in ``source_root``."""
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} not found: install the test extra (import-linter)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source_root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)], cwd=source_root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold(tmp_path):
    result = lint_imports(contracts_config(tmp_path, KNOWN_IMPORTS), ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_the_contracts_catch_an_upward_import_inside_a_function_and_a_cycle(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "bayeslm", copy / "bayeslm", ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "bayeslm" / "text" / "tokenize.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef _upward():\n    from bayeslm.core import files  # noqa: F401\n")
    with (copy / "bayeslm" / "counting" / "keys.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\nfrom bayeslm.counting import counts  # noqa: E402,F401\n")
    result = lint_imports(contracts_config(tmp_path, KNOWN_IMPORTS), copy)
    assert result.returncode != 0
    assert "bayeslm.text is not allowed to import bayeslm.core" in result.stdout, result.stdout
    assert "No cycles are allowed in bayeslm.counting" in result.stdout, result.stdout


# ------------------------------------------------------------------------ private names
def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package in ``package_dir``."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a chain of attribute accesses on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _in_package(name: str, modules: dict) -> bool:
    """Whether ``name`` is a module of the checked package (another library's documented
    underscore names, such as ``os._exit``, are that library's business)."""
    return name in modules or name.partition(".")[0] == next(iter(modules)).partition(".")[0]


def private_imports(package_dir: Path) -> set[tuple[str, str]]:
    """``(module, "other_module._name")`` for every use of another module's private attribute.

    Found: ``from m import _name`` (also relative), and ``alias._name`` / ``a.b._name``
    where the alias or dotted name is a module (bound by ``import``, or by ``from`` naming
    a module of the package). Dunder names (``__version__``) are not private.
    """
    modules = _modules(package_dir)
    found = set()
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        bound: dict[str, str] = {}  # local name -> module it refers to
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):  # import a.b binds a; import a.b as m binds m to a.b
                for alias in node.names:
                    target = alias.name if alias.asname else alias.name.partition(".")[0]
                    bound[alias.asname or target] = target
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    if _is_private(alias.name) and _in_package(base, modules):
                        found.add((module, f"{base}.{alias.name}"))
                    elif f"{base}.{alias.name}" in modules:
                        bound[alias.asname or alias.name] = f"{base}.{alias.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                owner = _dotted(node.value)
                if owner is None or owner.partition(".")[0] not in bound:
                    continue
                head, _, rest = owner.partition(".")
                target = bound[head] + (f".{rest}" if rest else "")
                if target != module and _in_package(target, modules):
                    found.add((module, f"{target}.{node.attr}"))
    return found


def test_no_module_uses_another_modules_private_names():
    found = private_imports(ROOT / "bayeslm")
    assert found - KNOWN_PRIVATE == set(), "import the public name, or make it public where it is shared"
    assert KNOWN_PRIVATE - found == set(), "fixed: delete these from KNOWN_PRIVATE"


def test_the_private_name_check_finds_every_form_of_a_bad_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '1'\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("_LIMIT = 3\n\n\ndef _helper():\n    return _LIMIT\n\n\ndef helper():\n    return _helper()\n")
    sources = {
        "from_import.py": "from pkg.a import helper, _helper\n",
        "relative.py": "from .a import _LIMIT\n",
        "in_function.py": "def f():\n    from pkg.a import _helper\n    return _helper()\n",
        "module_alias.py": "from pkg import a as mod\n\nx = mod._LIMIT\n",
        "dotted.py": "import pkg.a\n\nx = pkg.a._helper()\n",
        "sub/deeper.py": "from ..a import _helper\n",
        "fine.py": ("from pkg import __version__\nfrom pkg.a import helper\nimport numpy as np\n\n\n"
                    "class C:\n    def __init__(self):\n        self._own = helper()\n\n    def g(self, other):\n"
                    "        return self._own + other._value + np.__name__.__len__()\n"),
    }
    for name, text in sources.items():
        (pkg / name).write_text(text)
    assert private_imports(pkg) == {
        ("pkg.from_import", "pkg.a._helper"),
        ("pkg.relative", "pkg.a._LIMIT"),
        ("pkg.in_function", "pkg.a._helper"),
        ("pkg.module_alias", "pkg.a._LIMIT"),
        ("pkg.dotted", "pkg.a._helper"),
        ("pkg.sub.deeper", "pkg.a._helper"),
    }
