"""The pipeline's layers: each sub-package imports only those below it (`pipeline.LAYERS`).

A newcomer looking for where a concept lives finds one package; a change that makes a lower
layer import a higher one (the `.lst` parser importing the settings, say) is a circle waiting to
happen and fails here, naming the file and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline
from pipeline import LAYERS

PIPELINE = Path(pipeline.__file__).parent


def layer_of(module: str) -> str:
    """`pipeline.dataset.lst` -> "dataset"; `pipeline.contract` -> "contract"."""
    return module.split(".")[1]


def imported(node: ast.AST, package: str) -> list[str]:
    """The pipeline modules an import statement in `package` names, in every spelling:
    `import pipeline.aws.errors`, `from pipeline.aws import errors`, `from pipeline import aws`,
    `from ..aws import errors`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("pipeline.")]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the package this file is in, up level - 1
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parts, base] if base else parts)
    if base == "pipeline":  # the layer is the name imported
        return [f"pipeline.{alias.name}" for alias in node.names]
    return [base] if base.startswith("pipeline.") else []


def imports() -> list[tuple[str, int, str]]:
    """(file, line, imported pipeline module) for every import in the package."""
    found = []
    for path in sorted(PIPELINE.rglob("*.py")):
        relative = path.relative_to(PIPELINE.parent)
        package = ".".join(relative.parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            found += [(str(relative), node.lineno, module) for module in imported(node, package)]  # type: ignore[attr-defined]
    return found


def test_every_module_is_in_a_layer_and_at_most_eight_sit_at_the_top() -> None:
    top = sorted(
        p.stem if p.is_file() else p.name
        for p in PIPELINE.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    )
    assert set(top) - {"__init__"} == set(LAYERS)
    assert len([p for p in PIPELINE.glob("*.py")]) <= 8  # issue 20: "no more than about 8 modules"


def test_no_layer_imports_one_above_it() -> None:
    upward = [
        f"{file}:{line} imports {module}"
        for file, line, module in imports()
        if LAYERS.index(layer_of(module))
        > LAYERS.index(layer_of("pipeline." + file.removeprefix("pipeline/").replace("/", ".")))
    ]
    assert upward == []


def test_the_layer_check_sees_the_imports() -> None:
    # Which bug this guards: a check that parses nothing passes everything.
    modules = {module for _, _, module in imports()}
    assert "pipeline.aws.errors" in modules and "pipeline.contract" in modules
    assert layer_of("pipeline.dataset.lst") == "dataset"


def test_every_spelling_of_an_import_is_seen() -> None:
    # Which bug this guards: an upward import written another way than `from pipeline.x import y`.
    def names(source: str, package: str = "pipeline.dataset") -> list[str]:
        return [m for node in ast.walk(ast.parse(source)) for m in imported(node, package)]

    assert names("import pipeline.tuning.request") == ["pipeline.tuning.request"]
    assert names("from pipeline import tuning, aws") == ["pipeline.tuning", "pipeline.aws"]
    assert names("from pipeline.tuning import request") == ["pipeline.tuning"]
    assert names("from ..tuning import request") == ["pipeline.tuning"]
    assert names("from . import lst") == ["pipeline.dataset"]
    assert names("import os\nfrom typing import Any") == []
