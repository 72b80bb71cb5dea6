"""The import graph of ``src/facd``: no cycles, and no import from a lower layer to a higher one.

The graph is built from the source (``ast``), without importing anything. What counts as an
import of module A by module B:

- every ``import`` and ``from ... import`` statement in B, wherever it is: at module level,
  inside a function or method (the lazy imports that keep ``facd --help`` fast), and under
  ``if TYPE_CHECKING:`` (a type named there is still a dependency of the design);
- relative imports are resolved; ``from pkg import name`` is an import of the module
  ``pkg.name`` when that is a module, else of ``pkg``;
- ``import a.b.c`` is an import of ``a.b.c`` only, not of the packages ``a`` and ``a.b`` that
  Python runs first (otherwise every package whose ``__init__`` re-exports its submodules
  would form a loop with them); a module importing its own package's names is counted;
- names computed at run time are not seen: ``importlib.import_module`` in the CLI (one module
  per command), the registries' lists of built-in modules (``facd.registry.Registry``: the
  architectures and the loss terms, which register themselves) and ``facd.__getattr__``;
- only ``facd`` modules count (the standard library and third-party packages are leaves).

The layers, lowest first. A module may import modules of its own layer (without a cycle) and
of any layer below; never one above.

0. **base**: the error tree, safe file writes, typed configs, the registry type, messages and
   shipped assets; metrics and complexity counting (no torch model code).
1. **archs**: the architecture declarations, ``ArchSpec``, checkpoint formats and I/O.
2. **data**: image files, bicubic resizing, training patches, benchmark sets, and downloads
   (``facd.fetch``).
3. **infer**: inference (``facd.infer``: ``Upscaler``, tiling, devices, export), evaluation
   (``facd.evaluate``) and comparison crops (``facd.compare``).
4. **distill**: the loss terms and the method declarations (``facd.distill``); a teacher may
   be an ``Upscaler``, so this sits above inference.
5. **distiller**: ``facd.distiller.Distiller``, the public distillation step.
6. **train**: configs, the trainer, run folders and checkpoints (``facd.train``).
7. **api**: the package's public facade, ``facd`` itself (``facd.load``, lazy exports).
8. **commands**: the command line (``facd.cli``, ``facd.commands``) and ``facd.quickstart``.
9. **reproduce**: the reproduction of the paper (``facd.reproduce``) and its command
   (``facd.commands.reproduce``). The top layer: nothing in the core imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: (layer, the modules in it). An entry names a module and its submodules, except the root
#: package ``facd``, which names only itself; the longest matching entry decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "facd.errors",
            "facd.fileio",
            "facd.typedconfig",
            "facd.registry",
            "facd.messages",
            "facd.assets",
            "facd.metrics",
            "facd.complexity",
        ),
    ),
    ("archs", ("facd.archs",)),
    ("data", ("facd.data", "facd.fetch")),
    ("infer", ("facd.infer", "facd.evaluate", "facd.compare")),
    ("distill", ("facd.distill",)),
    ("distiller", ("facd.distiller",)),
    ("train", ("facd.train",)),
    ("api", ("facd",)),
    ("commands", ("facd.cli", "facd.__main__", "facd.commands", "facd.quickstart")),
    ("reproduce", ("facd.reproduce", "facd.commands.reproduce")),
]

#: Upward imports tolerated for now, each with the change that would remove it: none today
#: (the quickstart trains through ``facd.train.run`` and plots with ``facd.compare``).
KNOWN_UPWARD: set[tuple[str, str]] = set()


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The dotted names that the file ``path`` (module ``name``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: drop level - 1 trailing parts of the package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return found


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the ``facd`` modules it imports (see the module docstring)."""
    paths = {module_name(p, src): p for p in sorted((src / "facd").rglob("*.py"))}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        graph[name] = {_known(n, modules) for n in _imports(path, name, modules)} - {"", name}
    return graph


def _known(name: str, modules: set[str]) -> str:
    """The longest prefix of ``name`` that is a ``facd`` module ('' for other packages)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (entry length, layer)
    for rank, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            inside = module == entry or (entry != "facd" and module.startswith(entry + "."))
            if inside and (best is None or len(entry) > best[0]):
                best = (len(entry), rank)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            la, lb = layer_of(a), layer_of(b)
            if la is not None and lb is not None and lb > la and (a, b) not in KNOWN_UPWARD:
                out.append(f"{a} ({LAYERS[la][0]}) imports {b} ({LAYERS[lb][0]})")
    return out


def test_the_graph_sees_module_level_function_level_and_type_checking_imports():
    graph = import_graph()
    assert "facd.distill.methods" in graph["facd.distiller"]  # module level
    assert "facd.infer.api" in graph["facd.distill.inputs"]  # inside a function
    assert "facd.archs.spec" in graph["facd.archs.edsr"]  # under TYPE_CHECKING
    assert "facd.errors" in graph["facd.fileio"]
    assert not any(m.startswith(("torch", "numpy")) for deps in graph.values() for m in deps)


def test_cycle_finder_and_layers_on_a_made_up_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert layer_of("facd.commands.reproduce") == layer_of("facd.reproduce.runner")
    assert layer_of("facd") != layer_of("facd.errors")
    assert upward_imports({"facd.messages": {"facd.archs.spec"}}) == [
        "facd.messages (base) imports facd.archs.spec (archs)"
    ]


def test_no_import_cycles():
    loops = cycles(import_graph())
    assert not loops, "import cycles: " + "; ".join(" <-> ".join(c) for c in loops)


def test_every_module_has_a_layer():
    missing = [m for m in import_graph() if layer_of(m) is None]
    assert not missing, f"modules without a layer (add them to LAYERS): {missing}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = upward_imports(import_graph())
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_known_upward_imports_are_still_there():
    """An exception that is gone must leave the list (so it cannot hide a new one)."""
    graph = import_graph()
    stale = [(a, b) for a, b in sorted(KNOWN_UPWARD) if b not in graph.get(a, set())]
    assert not stale, f"no longer imported, remove from KNOWN_UPWARD: {stale}"
