"""The rooms and the direction of their imports (DESIGN.md), read from every module's syntax tree.

- engine imports only engine (and third-party libraries other than Flask);
- workflows and notifications import engine (and themselves), never web;
- none of the three imports Flask;
- the web base (web/*.py) never imports a web sub-package, except the app factory, which assembles them;
- api and views never import each other, jobs or cli; jobs and exports import no api, views or cli;
- our own modules are imported at the top of a file (the CLI may defer for start-up speed);
- tests/engine builds the engine without the app: it imports neither Flask nor web.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"engine", "workflows", "notifications", "web"}
SUBPACKAGES = {"api", "views", "cli", "jobs", "exports"}
COMPOSITION_ROOT = "web.app"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    # `from . import x` names sub-modules: each is an import of its own
    return [f"{base}.{a.name}" if not node.module else base for a in node.names] if not node.module else [base]


def imports(path: Path, module: str | None = None) -> list[tuple[str, bool]]:
    """(imported module, at the top of the file?) for every import statement in the file."""
    module = module or _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(name, id(node) in top) for name in _absolute(module, path, node)]
    return found


def modules(*rooms: str):
    for room in rooms:
        for path in sorted((ROOT / room).rglob("*.py")):
            yield path


def _room(name: str) -> str:
    return name.split(".")[0]


def _web_part(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "web":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else "base"


ALL = list(modules("engine", "workflows", "notifications", "web"))


def violations(module: str, found: list[tuple[str, bool]]) -> list[str]:
    room, part = _room(module), _web_part(module)
    wrong = []
    for name, _top in found:
        target = _room(name)
        if room in ("engine", "workflows", "notifications") and target == "flask":
            wrong.append(f"{name}: no Flask outside web/")
        if room == "engine" and target in OURS - {"engine"}:
            wrong.append(f"{name}: engine imports only engine")
        if room in ("workflows", "notifications") and target == "web":
            wrong.append(f"{name}: {room} never imports web")
        if room == "workflows" and target == "notifications" or room == "notifications" and target == "workflows":
            wrong.append(f"{name}: workflows and notifications import engine only")
        other = _web_part(name)
        if room != "web" or other is None or other == part:
            continue
        if part == "base" and other != "base" and module != COMPOSITION_ROOT:
            wrong.append(f"{name}: the web base never imports a sub-package")
        if part in ("api", "views") and other in {"api", "views", "jobs", "cli"} - {part}:
            wrong.append(f"{name}: {part} never imports {other}")
        if part in ("jobs", "exports") and other in {"api", "views", "cli"}:
            wrong.append(f"{name}: {part} never imports {other}")
    return wrong


def local_imports(found: list[tuple[str, bool]]) -> list[str]:
    return sorted({name for name, top in found if not top and _room(name) in OURS})


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_it_keeps_the_direction_of_imports(path):
    module = _module_name(path)
    wrong = violations(module, imports(path))
    assert not wrong, f"{module}: " + "; ".join(wrong)


@pytest.mark.parametrize("path", [p for p in ALL if _web_part(_module_name(p)) != "cli"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_it_imports_our_own_modules_at_the_top(path):
    local = local_imports(imports(path))
    assert not local, f"{_module_name(path)} imports inside functions: {', '.join(local)}"


def test_it_builds_the_engine_in_tests_without_the_app():
    paths = list(modules("tests/engine"))
    assert len(paths) > 1, "tests/engine holds the engine's own tests"
    for path in paths:
        wrong = [name for name, _ in imports(path) if _room(name) in ("flask", "web")]
        assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(wrong)}"


def test_it_sees_a_wrong_import_when_there_is_one(tmp_path):
    """The checker itself: the engine importing the web inside a function breaks both rules."""
    probe = tmp_path / "probe.py"
    probe.write_text("from .models import Case\n\ndef f():\n    from web.app import create_app\n")
    found = imports(probe, "engine.probe")
    assert found == [("engine.models", True), ("web.app", False)]
    assert violations("engine.probe", found) == ["web.app: engine imports only engine"]
    assert local_imports(found) == ["web.app"]
    assert violations("web.views.cases", [("web.api.cases", True)]) == ["web.api.cases: views never imports api"]
    assert violations("web.health", [("web.jobs.heartbeat", True)]) == [
        "web.jobs.heartbeat: the web base never imports a sub-package"]
