"""Layer rules that hold for the whole code base, checked on the source (ast, no imports).

* The store owns its SQL: no SQL string and no use of ``store.db`` outside ``lrcal/store``.
* Private means private: no module imports another module's underscore-prefixed name (a
  package's private module may be imported inside that package).
* Layers: every import between packages is one the rules in scripts/gen_architecture.py allow,
  and the picture in docs/architecture.md is the import graph of the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "lrcal"

SQL = re.compile(
    r"\bselect\b[\s\S]+\bfrom\b|\binsert\s+(or\s+\w+\s+)?into\b|\bupdate\s+\w+\s+set\b|\bdelete\s+from\b"
    r"|\b(create|drop)\s+(unique\s+)?(table|index|view|trigger)\b|\balter\s+table\b|\bpragma\s+\w+"
    r"|\bbegin\s+(immediate|exclusive|transaction)\b",
    re.IGNORECASE,
)

def _python_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _string_text(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's literal parts with ``{}`` for each field."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _sql_offences(tree: ast.AST) -> list[str]:
    found = []
    inside_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        text = None if id(node) in inside_fstring else _string_text(node)
        if text is not None and SQL.search(text):
            found.append(f"{node.lineno}: SQL {' '.join(text.split())[:70]!r}")
        # ``x.db.<anything>`` or ``x.db[...]``: the sqlite-utils handle of the store
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "db":
                found.append(f"{node.lineno}: uses .db directly")
    return found


def test_no_sql_outside_the_store():
    offenders: dict[str, list[str]] = {}
    for path in _python_files(PACKAGE):
        name = _relative(path)
        if name.startswith("lrcal/store/"):
            continue
        found = _sql_offences(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[name] = found
    assert not offenders, "SQL outside lrcal/store (add a typed Store method instead):\n" + "\n".join(
        f"{name}:{line}" for name, found in offenders.items() for line in found
    )


def test_the_sql_check_finds_what_it_looks_for():
    code = '''
rows = store.query("select id from models where name = ?", [n])
store.db.execute(f"update runs set status = ? where id = {run_id}")
with store.db.conn: store.db["events"].insert({})
help = "Calibration sets: load, register, select examples."
'''
    found = _sql_offences(ast.parse(code))
    assert sorted(int(line.split(":")[0]) for line in found) == [2, 3, 3, 4, 4]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private_imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Uses of lrcal's private names from outside the package that owns them: imported
    (``from lrcal.x import _name``, ``import lrcal._x``) or read off an imported module (``x._name``)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    bound_modules: dict[str, str] = {}  # local name -> the lrcal module it is bound to

    def check(dotted: str, lineno: int) -> None:
        parts = dotted.split(".")
        if parts[0] != "lrcal":
            return
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:i])
                if package != owner and not package.startswith(owner + "."):
                    found.append(f"{lineno}: {dotted}")
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(alias.name, node.lineno)
                if alias.asname:
                    bound_modules[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [node.module])
            for alias in node.names:
                check(f"{base}.{alias.name}", node.lineno)
                if _is_module(f"{base}.{alias.name}"):
                    bound_modules[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound_modules:
            check(f"{bound_modules[node.value.id]}.{node.attr}", node.lineno)
    return found


def test_no_private_names_imported_across_modules():
    offenders = []
    for path in _python_files(PACKAGE, REPO / "scripts"):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{_relative(path)}:{line}" for line in _private_imports(tree, module, path.name == "__init__.py")]
    assert not offenders, "private names imported from another module (make them public):\n" + "\n".join(offenders)


def test_the_private_import_check_finds_what_it_looks_for():
    code = '''
from lrcal.features.text import _bucket
from lrcal.cli._app import app
import lrcal.store.store._json
from lrcal.features.text import featurize_text
from lrcal.evaluation import baselines as B
mean = B._nanmean0(y) + B.routed(y, y)
'''
    tree = ast.parse(code)
    lines = lambda module: sorted(int(f.split(":")[0]) for f in _private_imports(tree, module, False))  # noqa: E731
    assert lines("lrcal.features.metadata") == [2, 3, 4, 7]
    # inside its own package a private module is fine; its private names are not
    assert lines("lrcal.cli.bench") == [2, 4, 7]


# ---- layers: the import graph against the rules in scripts/gen_architecture.py -----------

def _layers():
    import runpy

    return runpy.run_path(str(REPO / "scripts" / "gen_architecture.py"))


def test_every_import_follows_the_layer_rules():
    layers = _layers()
    found = layers["violations"](layers["import_graph"]())
    assert not found, "imports the layer rules do not allow (docs/architecture.md):\n" + "\n".join(found)


def test_the_rules_keep_the_router_and_the_tui_independent():
    layers = _layers()
    allowed, forbidden = layers["ALLOWED"], layers["FORBIDDEN"]
    assert {"store", "endpoints", "cli", "tui", "services"} <= forbidden["router"]
    assert "tui" in forbidden["services"] and "store" in forbidden["tui"]
    for source, targets in forbidden.items():
        assert not (allowed.get(source, set()) & targets), source


def test_the_layer_check_finds_a_forbidden_import():
    layers = _layers()
    graph = {"router": {"store": ["lrcal/router/x.py:3"]}, "tui": {"services.review": ["lrcal/tui/app.py:9"]}}
    found = layers["violations"](graph)
    assert found == ["router -> store (lrcal/router/x.py:3)"]


def test_the_architecture_picture_is_the_import_graph():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_architecture.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
