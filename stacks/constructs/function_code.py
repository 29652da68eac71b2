"""The functions' code asset: the handlers and the Powertools library they import, bundled at synth.

Powertools is pure Python, so it is copied from the environment that synthesizes the app (the
version pinned in requirements.txt) instead of attached as a public layer: a layer lives in
one account per partition and is missing in some regions (cn-northwest-1 has none), while the
bundled copy works in every partition the image-URI table covers. No Docker is involved.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import shutil
import tempfile
from functools import cache
from pathlib import Path

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
# What the handlers import beyond the Lambda runtime (which has boto3 and botocore): Powertools,
# what it imports, and the X-Ray SDK its Tracer uses (wrapt without its compiled extension,
# built for this machine's Python: wrapt falls back to its pure-Python implementation).
BUNDLED_MODULES = ("aws_lambda_powertools", "typing_extensions", "jmespath", "aws_xray_sdk", "wrapt")
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed", "*.so", "*.c")


@cache
def function_code_dir() -> Path:
    """A directory with `handlers/`, `pipeline/` and the bundled modules, made once per process."""
    _check_pinned_powertools()
    out = Path(tempfile.mkdtemp(prefix="tuning-functions-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    for package in ("handlers", "pipeline"):
        shutil.copytree(LAMBDAS_DIR / package, out / package, ignore=_IGNORE)
    for module in BUNDLED_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{module} is not installed: run `make install` (requirements.txt pins it)")
        origin = Path(spec.origin)
        if spec.submodule_search_locations:
            shutil.copytree(origin.parent, out / module, ignore=_IGNORE)
        else:
            shutil.copy2(origin, out / origin.name)
    return out


def _check_pinned_powertools() -> None:
    """The bundle is what is installed: refuse to synthesize with another version than the pin."""
    pins = dict(
        line.split("==", 1)
        for line in REQUIREMENTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    pinned, installed = pins["aws-lambda-powertools"].strip(), importlib.metadata.version("aws-lambda-powertools")
    if installed != pinned:
        raise RuntimeError(
            f"aws-lambda-powertools {installed} is installed but requirements.txt pins {pinned}: the functions "
            "would ship the wrong version. Run `make install`."
        )
