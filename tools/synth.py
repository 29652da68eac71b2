"""Synthesize the app in-process (the same build as `cdk synth`), cdk-nag included."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def synthesize(outdir: Path, env_name: str, overrides: dict[str, Any] | None = None) -> str:
    """Write the cloud assembly to `outdir`; return the stacks' name prefix. `overrides`: keys of
    the environment's block replaced (as `-c` would), e.g. a smaller capacity for a test."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from stacks.app_builder import build

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    if overrides:
        context["environments"][env_name] = {**context["environments"][env_name], **overrides}
    app = App(context=context, outdir=str(outdir))
    built = build(app, env_name=env_name)
    app.synth()
    return built.storage.stack_name.removesuffix("-storage")


def main(argv: list[str] | None = None) -> int:
    """`cdk synth` without the CDK CLI: python -m tools.synth [--env dev] [--out cdk.out]."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tools.synth", description=main.__doc__)
    parser.add_argument("--env", default="dev")
    parser.add_argument("--out", type=Path, default=ROOT / "cdk.out")
    args = parser.parse_args(argv)
    prefix = synthesize(args.out, args.env)
    sys.stdout.write(f"synthesized {prefix}-storage and {prefix}-pipeline into {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
