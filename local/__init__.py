"""Local mode and offline checks. The Lambda code root (`lambdas/`) is importable from here,
as it is inside the Lambda runtime."""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
