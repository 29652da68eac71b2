"""Habits of the deployed code, kept by the quality gate: short functions, small modules.

What ships in the functions (`lambdas/`) and what builds the infrastructure (`stacks/`) is read
by whoever is paged at night; a function
longer than a screen or a module longer than a sitting is where bugs hide. The complexity
ceiling is ruff's (C901, PLR0915 in pyproject.toml); the sizes are checked here.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parents[1] / "lambdas"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 350


STACKS = LAMBDAS.parent / "stacks"


def deployed_modules() -> list[Path]:
    modules = sorted(LAMBDAS.rglob("*.py"))
    assert len(modules) > 20, "the deployed code moved: point LAMBDAS at it"
    return modules


def sized_modules() -> list[Path]:
    """What the size habits apply to: the functions' code and the stacks."""
    stacks = sorted(STACKS.rglob("*.py"))
    assert len(stacks) > 20, "the stacks moved: point STACKS at them"
    return deployed_modules() + stacks


def test_no_deployed_function_is_longer_than_60_lines() -> None:
    too_long = []
    for module in sized_modules():
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - first + 1 if node.end_lineno else 0
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{module.relative_to(LAMBDAS.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert too_long == [], f"split these functions (at most {MAX_FUNCTION_LINES} lines): {too_long}"


def test_no_deployed_module_is_longer_than_350_lines() -> None:
    too_long = [
        f"{m.relative_to(LAMBDAS.parent)} ({n} lines)"
        for m in sized_modules()
        if (n := len(m.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert too_long == [], f"split these modules (at most {MAX_MODULE_LINES} lines): {too_long}"


def test_no_local_mode_module_is_longer_than_350_lines() -> None:
    # Local mode is where the next stand-in change goes (a quota, a resource): the same bar.
    local = sorted((LAMBDAS.parent / "local").rglob("*.py"))
    assert len(local) > 10, "local mode moved: point the test at it"
    too_long = [
        f"{m.relative_to(LAMBDAS.parent)} ({n} lines)"
        for m in local
        if (n := len(m.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert too_long == [], f"split these modules (at most {MAX_MODULE_LINES} lines): {too_long}"


ROOT = LAMBDAS.parent
LOCAL_ONLY = {"local", "torch", "optuna", "sklearn", "moto", "numpy", "tests", "bench"}


def imported_roots(paths: list[Path]) -> dict[str, set[str]]:
    """file -> the top-level packages it imports."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.setdefault(str(path.relative_to(ROOT)), set()).update(n.split(".")[0] for n in names)
    return found


def requirements(name: str) -> set[str]:
    """Package names a requirements file installs, following -r."""
    out: set[str] = set()
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            out |= requirements(line[3:].strip())
        elif line:
            out.add(line.split("==")[0].split("[")[0].lower())
    return out


def test_deploying_and_the_operator_tools_need_no_local_mode() -> None:
    """`make deploy` and `make dataset` install requirements-tools.txt only: the CDK app, the
    handlers and the tools must import nothing that only local mode installs."""
    code = [ROOT / "app.py", *(ROOT / "stacks").rglob("*.py"), *(ROOT / "tools").rglob("*.py"), *deployed_modules()]
    leaks = {f: sorted(roots & LOCAL_ONLY) for f, roots in imported_roots(code).items() if roots & LOCAL_ONLY}
    assert leaks == {}
    deploy = requirements("requirements-tools.txt")
    assert {"aws-cdk-lib", "boto3", "pillow"} <= deploy
    assert deploy.isdisjoint({"torch", "optuna", "scikit-learn", "moto", "numpy"})


def test_the_workflow_builds_no_step_task_of_its_own() -> None:
    """Each step builds its task state beside its function and grants (stacks/steps); the workflow
    only chains them. A LambdaInvoke in the workflow module is a step's task in the wrong house."""
    workflow = STACKS / "constructs" / "workflow.py"
    built = {
        node.func.attr
        for node in ast.walk(ast.parse(workflow.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "LambdaInvoke" not in built
    steps_built = set()
    for module in (STACKS / "steps").glob("*.py"):
        steps_built |= {
            node.func.attr
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
    assert "LambdaInvoke" in steps_built, "the steps' tasks moved: point this test at them"
