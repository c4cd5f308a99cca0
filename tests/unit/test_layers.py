"""The layer rules of DESIGN.md §3, enforced from the imports themselves.

Every module under src/seawall is parsed (not imported), and every import it makes is checked,
including those inside functions (the CLI's lazy imports are imports all the same):

- `seawall.http` does not import `seawall.db`: handlers go through services;
- `seawall.services` import neither Starlette nor `seawall.config`: services take values, not
  `Settings` (`seawall.wiring` and `seawall.app` read the settings and hand values over);
- `seawall.domain` imports none of db, http, services, storage, config, nor Starlette: it is
  pure code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import seawall

SOURCE = Path(seawall.__file__).parent

# (layer, what it must not import, why)
RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("seawall.http", ("seawall.db",), "handlers reach the database through services"),
    (
        "seawall.services",
        ("starlette", "seawall.config"),
        "services take values, not Settings, and know nothing of HTTP",
    ),
    (
        "seawall.domain",
        (
            "seawall.db",
            "seawall.http",
            "seawall.services",
            "seawall.storage",
            "seawall.config",
            "starlette",
        ),
        "the domain is pure code",
    ),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported name) for every import in the file, at any depth. `from X import Y`
    yields X.Y: Y may be a submodule (`from seawall import db`)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_violations() -> list[str]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        module = _module_name(path)
        rules = [(banned, why) for layer, banned, why in RULES if _within(module, layer)]
        if not rules:
            continue
        for line, imported in _imports(path, module):
            for banned, why in rules:
                hit = next((b for b in banned if _within(imported, b)), None)
                if hit is not None:
                    where = path.relative_to(SOURCE.parent)
                    found.append(f"{module} ({where}:{line}) imports {imported}: {why}")
    return sorted(set(found))


def test_layers_import_only_what_they_may() -> None:
    violations = layer_violations()
    assert not violations, "layer rules broken:\n" + "\n".join(violations)


def test_the_rules_see_imports_inside_functions(tmp_path: Path) -> None:
    """The checker itself: a lazy import and a relative one are found."""
    source = tmp_path / "seawall" / "http" / "thing.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "def f():\n    from seawall.db.store import MetadataStore\n"
        "from ..db import audit\nimport starlette\n"
    )
    imported = {name for _, name in _imports(source, "seawall.http.thing")}
    assert {"seawall.db.store.MetadataStore", "seawall.db.audit", "starlette"} <= imported
