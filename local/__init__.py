"""Local mode and offline checks. The Lambda code root (`lambdas/`) is importable from here,
as it is inside the Lambda runtime (unless something put the packages on the path first, as
pytest's `pythonpath` and the mutation-testing copy do)."""

import importlib.util
import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if importlib.util.find_spec("pipeline") is None and _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
