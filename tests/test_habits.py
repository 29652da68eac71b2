"""Habits of the deployed code, kept by the quality gate: short functions, small modules.

What ships in the functions (`lambdas/`) is read by whoever is paged at night; a function
longer than a screen or a module longer than a sitting is where bugs hide. The complexity
ceiling is ruff's (C901, PLR0915 in pyproject.toml); the sizes are checked here.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parents[1] / "lambdas"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 350


def deployed_modules() -> list[Path]:
    modules = sorted(LAMBDAS.rglob("*.py"))
    assert len(modules) > 20, "the deployed code moved: point LAMBDAS at it"
    return modules


def test_no_deployed_function_is_longer_than_60_lines() -> None:
    too_long = []
    for module in deployed_modules():
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - first + 1 if node.end_lineno else 0
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{module.relative_to(LAMBDAS)}:{node.lineno} {node.name} ({lines} lines)")
    assert too_long == [], f"split these functions (at most {MAX_FUNCTION_LINES} lines): {too_long}"


def test_no_deployed_module_is_longer_than_350_lines() -> None:
    too_long = [
        f"{m.relative_to(LAMBDAS)} ({n} lines)"
        for m in deployed_modules()
        if (n := len(m.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert too_long == [], f"split these modules (at most {MAX_MODULE_LINES} lines): {too_long}"
