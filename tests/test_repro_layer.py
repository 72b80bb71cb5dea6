"""The reproduction layer (``facd.reproduce``) sits above the core, in both directions.

Down: nothing in ``src/facd`` outside ``src/facd/reproduce`` imports it, except
``facd.commands.reproduce``, the command that runs it (loaded only when ``facd reproduce`` is
called). An AST scan flags ``import facd.reproduce...``, ``from facd.reproduce... import``, ``from
facd import reproduce``, relative imports that reach it (``from ..reproduce import``) and
``importlib.import_module("facd.reproduce...")``; a fresh interpreter that imports the core's
entry points checks that none of them loads it.

Up: the layer imports from the core only the extension API that docs/api.md documents (its
section "Building on facd: the extension API": one ``### `module` `` heading per module, then a
table whose rows start with `` `name` ``). The same forms of import are scanned, plus the
attributes read from a plain ``import facd`` (``facd.load``).
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "facd"
API_DOC = ROOT / "docs" / "api.md"
API_SECTION = "## Building on facd: the extension API"
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


# ------------------------------------------------------------------ the layer on the public API


def documented_api(markdown: str) -> dict[str, set[str]]:
    """Module -> the names the extension API section of ``markdown`` lists for it."""
    start = markdown.index(API_SECTION)
    end = markdown.find("\n## ", start + len(API_SECTION))
    api: dict[str, set[str]] = {}
    module = None
    for line in markdown[start : end if end >= 0 else None].splitlines():
        heading = re.fullmatch(r"### `(facd(?:\.\w+)*)`", line.strip())
        if heading:
            module = heading[1]
            api[module] = set()
        elif (row := re.match(r"\| `(\w+)` \|", line)) and module is not None:
            api[module].add(row[1])
    return api


def core_imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, dotted name)`` for each name of the core (``facd`` outside the layer) that
    ``source`` (the code of ``module``) imports: ``facd.x`` for a module, ``facd.x:name`` for a
    name taken from one."""

    def core(name: str) -> bool:
        return (name == "facd" or name.startswith("facd.")) and not _reaches_layer(name)

    tree = ast.parse(source)
    found = []
    binds_facd = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if core(a.name)]
            binds_facd |= any(
                a.asname is None and a.name.split(".")[0] == "facd" for a in node.names
            )
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            found += [
                (node.lineno, f"{target}:{a.name}")
                for a in node.names
                if core(target) and not _reaches_layer(f"{target}.{a.name}")
            ]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and core(node.args[0].value)
            and ast.unparse(node.func).endswith("import_module")
        ):
            found.append((node.lineno, node.args[0].value))
    if binds_facd:  # facd.load after a plain ``import facd``
        found += [
            (node.lineno, f"facd:{node.attr}")
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "facd"
            and not _reaches_layer(f"facd.{node.attr}")
        ]
    return sorted(set(found))


def is_documented(imported: str, api: dict[str, set[str]]) -> bool:
    """Whether ``imported`` (``facd.x`` or ``facd.x:name``) is in ``api``; a name that is itself
    a documented module (``from facd import fileio``) counts."""
    module, _, name = imported.partition(":")
    if not name:
        return module in api
    return name in api.get(module, set()) or f"{module}.{name}" in api


def undocumented_imports(api: dict[str, set[str]]) -> list[str]:
    """``src/facd/reproduce/FILE:LINE: NAME`` for each core name the layer imports that ``api``
    does not list."""
    found = []
    for path in sorted((SRC / "reproduce").rglob("*.py")):
        rel = path.relative_to(SRC)
        hits = core_imports(
            path.read_text(encoding="utf-8"), _module_name(rel), rel.name == "__init__.py"
        )
        found += [
            f"src/facd/{rel.as_posix()}:{line}: {name.replace(':', '.')}"
            for line, name in hits
            if not is_documented(name, api)
        ]
    return found


def test_the_api_section_is_read_as_modules_and_names() -> None:
    doc = f"""# Page

## Before

### `facd.ignored`

| name | what it is for |
|---|---|
| `not_read` | outside the section |

{API_SECTION}

Prose with `inline` code.

### `facd`

| name | what it is for |
|---|---|
| `load` | one |
| `Distiller` | two, with `code` inside |

### `facd.train.config`

| name | what it is for |
|---|---|
| `load_config` | three |

## After

| `not_read_either` | x |
"""
    assert documented_api(doc) == {
        "facd": {"load", "Distiller"},
        "facd.train.config": {"load_config"},
    }


def test_the_scan_finds_every_core_name_the_layer_imports() -> None:
    source = """
import facd
import facd.compare as cmp
from facd.fileio import atomic_write_text, LockFile
from facd import fileio, reproduce
from .. import metrics
from ..train.config import load_config
from .stats import mean
from facd.reproduce.paper import TABLES
import importlib
importlib.import_module("facd.evaluate")
import numpy
x = facd.load("edsr-tiny-s")
"""
    assert core_imports(source, "facd.reproduce.figures") == [
        (2, "facd"),
        (3, "facd.compare"),
        (4, "facd.fileio:LockFile"),
        (4, "facd.fileio:atomic_write_text"),
        (5, "facd:fileio"),
        (6, "facd:metrics"),
        (7, "facd.train.config:load_config"),
        (11, "facd.evaluate"),
        (13, "facd:load"),
    ]
    api = {"facd": {"load"}, "facd.fileio": {"atomic_write_text"}, "facd.compare": set()}
    assert [
        n
        for n in ["facd:load", "facd:fileio", "facd.compare", "facd.fileio:atomic_write_text"]
        if not is_documented(n, api)
    ] == []
    assert [
        n
        for n in ["facd:metrics", "facd.fileio:LockFile", "facd.evaluate"]
        if is_documented(n, api)
    ] == []


def test_the_layer_imports_only_the_documented_api() -> None:
    found = undocumented_imports(documented_api(API_DOC.read_text(encoding="utf-8")))
    assert not found, (
        "the reproduction layer imports names that docs/api.md's extension API does not list "
        "(use a documented name, or document it there):\n" + "\n".join(found)
    )


def test_every_documented_name_exists() -> None:
    api = documented_api(API_DOC.read_text(encoding="utf-8"))
    assert {"facd", "facd.fileio", "facd.train"} <= set(api)
    missing = [
        f"{module}.{name}"
        for module, names in sorted(api.items())
        for name in sorted(names)
        if not hasattr(importlib.import_module(module), name)
    ]
    assert not missing, f"docs/api.md documents names that do not exist: {missing}"
