"""The domain package stays the domain: ``grading/`` imports no simulator, no API and no device
driver, only the device interfaces (``drivers.interfaces``) and health helpers it programs
against. Read from the source with ``ast``, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

GRADING = Path(__file__).resolve().parents[3] / "grading"
ALLOWED_DRIVERS = {"drivers.interfaces", "drivers.health"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_grading_imports_no_simulator_api_or_driver() -> None:
    found = []
    for path in sorted(GRADING.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in {"simulators", "api"} or (top == "drivers" and name not in ALLOWED_DRIVERS):
                found.append(f"{path.relative_to(GRADING.parent)}: {name}")
    assert found == []
    assert list(GRADING.rglob("*.py")), "no grading sources found: the test would pass on nothing"
