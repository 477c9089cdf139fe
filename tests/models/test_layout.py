"""models/ is laid out by area, and imports only run downwards.

Areas sit in an order (identity, then market, bots, backtests, people, performance,
leaderboards); a module may import
the shared modules at the bottom, its own area and areas below it, never one above.
The shared modules import no area at all, and nothing in models/ imports the API or
the workers. The composition modules (the whole schema, the development seed and its
track records) sit on top and may import every area.
"""

from __future__ import annotations

import ast
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "models"
AREAS = (
    "identity",
    "market",
    "bots",
    "backtests",
    "people",
    "performance",
    "leaderboards",
    "community",
)
SHARED = {"db", "binary", "errors", "pagination", "equity_curves", "trades", "retention"}
COMPOSITION = {"schema", "seed", "seed_tracks", "seed_community"}


def imported_modules(path: Path) -> set[str]:
    """Every dotted module name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def area_of(module: str) -> str | None:
    """The area a ``models.<area>...`` name belongs to, or None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "models" and parts[1] in AREAS else None


def test_the_top_level_holds_only_shared_and_composition_modules() -> None:
    flat = {p.stem for p in MODELS.glob("*.py")} - {"__init__"}
    packages = {p.name for p in MODELS.iterdir() if (p / "__init__.py").exists()}
    assert flat == SHARED | COMPOSITION, "a new area gets its own package under models/"
    assert packages == set(AREAS)


def test_areas_import_only_downwards() -> None:
    upward = []
    for area in AREAS:
        allowed = set(AREAS[: AREAS.index(area) + 1])
        for path in sorted((MODELS / area).glob("*.py")):
            for module in imported_modules(path):
                target = area_of(module)
                if target is not None and target not in allowed:
                    upward.append(f"models/{area}/{path.name} imports {module}")
    assert upward == []


def test_shared_modules_import_no_area() -> None:
    found = [
        f"models/{name}.py imports {module}"
        for name in sorted(SHARED)
        for module in imported_modules(MODELS / f"{name}.py")
        if area_of(module) is not None
    ]
    assert found == []


def test_models_never_import_the_api_or_the_workers() -> None:
    found = [
        f"{path.relative_to(MODELS.parent)} imports {module}"
        for path in sorted(MODELS.rglob("*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] in {"api", "workers", "flask"}
    ]
    assert found == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from models.backtests.results import equity_page\nimport models.db\n")
    names = imported_modules(module)
    assert area_of("models.backtests.results.equity_page") == "backtests"
    assert "models.backtests.results" in names
    assert "models.db" in names
