"""The code's structure stays within its limits.

Later work keeps these, so the package stays readable and its layers stay layers:

* no module over 400 lines, no function over 80 (Alembic migrations exempt);
* no import cycle among labelfarm's modules;
* no import up a layer (``LAYERS``, bottom to top), and ``pydantic`` only in the web layer;
* no empty package.

The source is read with :mod:`ast`, never imported. Imports inside functions count (a lazy
import can hide a loop); imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "labelfarm"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# Bottom to top: a module may import its own layer or a lower one.
LAYERS: list[set[str]] = [
    {
        "labelfarm",
        "labelfarm.client",
        "labelfarm.errors",
        "labelfarm.settings",
        "labelfarm.settings_jobs",
        "labelfarm.jsonutil",
        "labelfarm.i18n",
        "labelfarm.sample_data",
    },
    {"labelfarm.schema", "labelfarm.ml"},
    {"labelfarm.formats"},
    {"labelfarm.db"},
    {"labelfarm.services"},
    {"labelfarm.jobs"},
    {"labelfarm.web"},
    {"labelfarm.demo", "labelfarm.demo_audio"},
    {"labelfarm.cli"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
PYDANTIC_ALLOWED = {
    "labelfarm.web",
    "labelfarm.settings",
    "labelfarm.settings_jobs",
}  # request models; typed settings


@dataclass(frozen=True)
class Module:
    name: str  # dotted; a package is named by its __init__.py
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


@dataclass(frozen=True)
class Import:
    target: str  # dotted name as written (relative ones resolved)
    names: tuple[str, ...]  # the names of ``from target import ...``, else ()
    line: int


def load_modules(src: Path = SRC) -> dict[str, Module]:
    modules = {}
    for path in sorted(src.rglob("*.py")):
        parts = [src.name, *path.relative_to(src).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return modules


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(node: ast.AST):
    """Every node under ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from runtime_nodes(other)
            continue
        yield child
        yield from runtime_nodes(child)


def imports(module: Module) -> list[Import]:
    found = []
    for node in runtime_nodes(module.tree):
        if isinstance(node, ast.Import):
            found += [Import(a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                package = module.name.split(".")
                if not module.is_package:
                    package.pop()
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([target] if target else [])])
            names = tuple(a.name for a in node.names)
            found.append(Import(target, names, node.lineno))
    return found


def targets(module: Module, modules: dict[str, Module]):
    """(imported module, line) for each import: ``from a import b`` is a.b if that is a module."""
    for imp in imports(module):
        found = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in modules]
        if len(found) < len(imp.names) or not imp.names:
            found.append(imp.target)
        yield from ((target, imp.line) for target in found)


def edges(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """importer -> {labelfarm module it runs: line}, the packages an import runs included."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for module in modules.values():
        for target, line in targets(module, modules):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                ran = ".".join(parts[:i])
                # The importer's own parent packages ran before it did: no edge to them.
                implicit = i < len(parts) and module.name.startswith(ran + ".")
                if ran in modules and ran != module.name and not implicit:
                    graph[module.name].setdefault(ran, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The shortest cycle through each module that is on one, each cycle once."""
    found: dict[frozenset, list[str]] = {}
    for start in sorted(graph):
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in graph[node]:
                chain = [node]
                while chain[-1] != start:
                    chain.append(parent[chain[-1]])
                chain.reverse()
                found.setdefault(frozenset(zip(chain, [*chain[1:], start], strict=True)), chain)
                break
            for nxt in sorted(graph[node]):
                if nxt not in parent and nxt != start:
                    parent[nxt] = node
                    queue.append(nxt)
    return [[*chain, chain[0]] for chain in found.values()]


def top(name: str) -> str:
    return ".".join(name.split(".")[:2])


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def sized(modules: dict[str, Module]) -> list[Module]:
    migrations = SRC / "db" / "migrations"
    return [m for m in modules.values() if not m.path.is_relative_to(migrations)]


def functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield node, name
            yield from functions(node, name + ".")
        else:
            yield from functions(node, prefix)


def layer_offences(modules: dict[str, Module]) -> list[str]:
    offences = [
        f"{name} is in no layer: place {top(name)} in LAYERS"
        for name in sorted({top(n) for n in modules})
        if name not in LAYER
    ]
    for m in modules.values():
        for target, line in targets(m, modules):
            if LAYER.get(top(target), -1) > LAYER.get(top(m.name), len(LAYERS)):
                offences.append(
                    f"{rel(m.path)}:{line} {m.name} (layer {LAYER[top(m.name)]}) "
                    f"imports {target} (layer {LAYER[top(target)]})"
                )
    return offences


def pydantic_offences(modules: dict[str, Module]) -> list[str]:
    return [
        f"{rel(m.path)}:{imp.line} {m.name} imports {imp.target}"
        for m in modules.values()
        if top(m.name) not in PYDANTIC_ALLOWED
        for imp in imports(m)
        if imp.target.split(".")[0] == "pydantic"
    ]


DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def empty_packages(src: Path = SRC) -> list[str]:
    empty = []
    for init in sorted(src.rglob("__init__.py")):
        folder = init.parent
        others = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        subpackages = [p for p in folder.iterdir() if (p / "__init__.py").is_file()]
        defines = any(isinstance(n, DEFINITIONS) for n in ast.walk(ast.parse(init.read_text())))
        if not (others or subpackages or defines):
            empty.append(rel(folder))
    return empty


def test_no_module_is_too_long():
    long = []
    for m in sized(load_modules()):
        size = len(m.path.read_text().splitlines())
        if size > MAX_MODULE_LINES:
            long.append(f"{rel(m.path)}:1 {m.name} {size} lines")
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def test_no_function_is_too_long():
    long = []
    for m in sized(load_modules()):
        for node, name in functions(m.tree):
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION_LINES:
                long.append(f"{rel(m.path)}:{node.lineno} {name} {size} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_no_import_cycle():
    found = cycles(edges(load_modules()))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_import_runs_up_a_layer():
    offences = layer_offences(load_modules())
    assert not offences, "imports up a layer:\n" + "\n".join(offences)


def test_pydantic_only_in_the_web_layer():
    offences = pydantic_offences(load_modules())
    assert not offences, "pydantic outside labelfarm.web:\n" + "\n".join(offences)


def test_no_empty_package():
    empty = empty_packages()
    assert not empty, "packages with nothing in them:\n" + "\n".join(empty)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A small tree with one of each fault, so the checks above are known to bite."""
    files = {
        "__init__.py": "",
        "errors.py": "def f():\n    from labelfarm.db import tables\n",  # lazy, and upward
        "db/__init__.py": "from . import tables\n",
        "db/tables.py": "from labelfarm.errors import f\n",
        "web/__init__.py": "",
        "web/app.py": "import typing\nif typing.TYPE_CHECKING:\n    import labelfarm.cli\n",
        "cli.py": "import labelfarm.web.app\nimport pydantic\n",
        "extra.py": "",
        "empty/__init__.py": '"""Nothing yet."""\n',
    }
    for name, text in files.items():
        (tmp_path / "labelfarm" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "labelfarm" / name).write_text(text)
    modules = load_modules(tmp_path / "labelfarm")
    graph = edges(modules)
    assert graph["labelfarm.cli"] == {"labelfarm.web": 1, "labelfarm.web.app": 1}
    assert cycles(graph) == [
        ["labelfarm.db", "labelfarm.db.tables", "labelfarm.errors", "labelfarm.db"],
        ["labelfarm.db.tables", "labelfarm.errors", "labelfarm.db.tables"],
    ]
    offences = layer_offences(modules)
    assert "labelfarm.empty is in no layer: place labelfarm.empty in LAYERS" in offences
    assert "labelfarm.extra is in no layer: place labelfarm.extra in LAYERS" in offences
    upward = [o for o in offences if "imports" in o]
    assert [o.split(" ", 1)[1] for o in upward] == [
        "labelfarm.errors (layer 0) imports labelfarm.db.tables (layer 3)",
    ]
    assert [o.split(" ", 1)[1] for o in pydantic_offences(modules)] == [
        "labelfarm.cli imports pydantic"
    ]
    assert empty_packages(tmp_path / "labelfarm") == [str(tmp_path / "labelfarm" / "empty")]
