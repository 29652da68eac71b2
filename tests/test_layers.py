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


def imports() -> list[tuple[str, int, str]]:
    """(file, line, imported pipeline module) for every import in the package."""
    found = []
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline."):
                found.append((str(path.relative_to(PIPELINE.parent)), node.lineno, node.module))
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
