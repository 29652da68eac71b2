"""The demo's sample dataset: scikit-learn's digits written as PNG class folders (local mode only)."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image
from sklearn.datasets import load_digits


def build_sample(out: Path, *, size: int = 32) -> Path:
    """scikit-learn's bundled digits (1,797 8x8 images, 10 classes) as PNG class folders."""
    digits = load_digits()
    if out.exists():
        shutil.rmtree(out)
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = out / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        gray = Image.fromarray((pixels * (255.0 / 16.0)).astype("uint8"), mode="L")
        gray.resize((size, size), Image.Resampling.BILINEAR).convert("RGB").save(folder / f"{index:04d}.png")
    return out
