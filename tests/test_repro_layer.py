"""The reproduction layer (``facd.reproduce``) sits above the core: nothing in ``src/facd``
outside ``src/facd/reproduce`` imports it, except ``facd.commands.reproduce``, the command that
runs it (loaded only when ``facd reproduce`` is called).

An AST scan flags ``import facd.reproduce...``, ``from facd.reproduce... import``, ``from facd
import reproduce``, relative imports that reach it (``from ..reproduce import``) and
``importlib.import_module("facd.reproduce...")``; a fresh interpreter that imports the core's
entry points checks that none of them loads it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "facd"
LAYER = "facd.reproduce"
#: Core modules allowed to import the layer, and why. Keep this list short.
BRIDGES = {"commands/reproduce.py": "the `facd reproduce` command, imported only when it runs"}


def _module_name(rel: Path) -> str:
    parts = ["facd", *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from X import ...`` written in ``module``."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _reaches_layer(name: str) -> bool:
    return name == LAYER or name.startswith(LAYER + ".")


def layer_imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, imported name)`` for each import of the layer in ``source`` (the code of
    ``module``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _reaches_layer(a.name)]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            names = [target] + [f"{target}.{a.name}" for a in node.names]
            hits = [n for n in names if _reaches_layer(n)]
            if hits:
                found.append((node.lineno, hits[0]))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and _reaches_layer(node.args[0].value)
            and ast.unparse(node.func).endswith("import_module")
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_the_scan_finds_every_form_of_import() -> None:
    source = """
import facd.reproduce.figures
from facd.reproduce.job import run_job
from facd import reproduce
from . import reproduce as r
from .reproduce import stats
import importlib
importlib.import_module("facd.reproduce.report")
import facd.compare, facd.reproducer
from facd import compare
from .train import run
"""
    found = layer_imports(source, "facd.quickstart")
    assert [line for line, _ in found] == [2, 3, 4, 5, 6, 8]
    assert layer_imports("from ..reproduce import stats\n", "facd.commands.train") == [
        (1, "facd.reproduce")
    ]
    assert layer_imports("from .stats import mean\n", "facd.reproduce", is_package=True) == [
        (1, "facd.reproduce.stats")
    ]


def test_no_core_module_imports_the_reproduction_layer() -> None:
    found, bridges = [], set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "reproduce":
            continue
        hits = layer_imports(
            path.read_text(encoding="utf-8"), _module_name(rel), rel.name == "__init__.py"
        )
        if hits and rel.as_posix() in BRIDGES:
            bridges.add(rel.as_posix())
        else:
            found += [f"src/facd/{rel.as_posix()}:{line}: {name}" for line, name in hits]
    assert not found, "the core imports the reproduction layer:\n" + "\n".join(found)
    assert bridges == set(BRIDGES), f"stale bridges: {set(BRIDGES) - bridges}"


def test_the_core_entry_points_do_not_load_the_layer() -> None:
    code = (
        "import sys\n"
        "import facd, facd.cli, facd.compare, facd.quickstart, facd.train, facd.evaluate\n"
        "from facd.commands import train, compare\n"
        "print(sorted(m for m in sys.modules if m.startswith('facd.reproduce')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout
