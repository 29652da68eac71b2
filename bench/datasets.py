"""Benchmark datasets, made reproducibly on the spot (nothing downloaded).

- `digits`: scikit-learn's bundled 8x8 digits, 10 classes. Easy: most sane settings reach ~97%.
- `shapes`: procedurally drawn shapes (6 classes) at random position, size and thickness, with
  heavy pixel noise and random distractor strokes, 16x16. Hard enough that settings differ.
- `shapes-v2`: the next version of `shapes` (same generator, new draw): warm start's retrain.
- `textures`: the hold-out. A different generator, never used to choose a range or a bound:
  8 classes of periodic texture (gratings at four angles, checkerboard, dot lattice, rings,
  spiral arms) at random period, phase and contrast, inside a random window, with noise, 16x16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Data:
    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    num_classes: int

    @property
    def image_shape(self) -> str:
        c, h, w = self.train[0].shape[1:]
        return f"{c},{h},{w}"


def _split(x: np.ndarray, y: np.ndarray, name: str, classes: int, seed: int, val_fraction: float = 0.25) -> Data:
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - val_fraction))
    tr, va = order[:cut], order[cut:]
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return Data(
        name,
        (as_t(x[tr]), torch.tensor(y[tr], dtype=torch.long)),
        (as_t(x[va]), torch.tensor(y[va], dtype=torch.long)),
        classes,
    )


def digits(n: int = 0) -> Data:  # n: unused, the bundled set has 1,797 images
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return _split(x, d.target, "digits", 10, seed=0)


def _draw(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = rng.uniform(5, size - 5, 2)
    r = rng.uniform(3, 6)
    t = rng.uniform(0.8, 1.6)
    d = np.hypot(xx - cx, yy - cy)
    if kind == 0:  # disc
        img = d <= r
    elif kind == 1:  # ring
        img = np.abs(d - r) <= t
    elif kind == 2:  # square outline
        m = np.maximum(np.abs(xx - cx), np.abs(yy - cy))
        img = np.abs(m - r) <= t
    elif kind == 3:  # cross
        img = ((np.abs(xx - cx) <= t) & (np.abs(yy - cy) <= r)) | ((np.abs(yy - cy) <= t) & (np.abs(xx - cx) <= r))
    elif kind == 4:  # diagonal cross (X)
        a, b = (xx - cx) + (yy - cy), (xx - cx) - (yy - cy)
        img = ((np.abs(a) <= t * 1.4) | (np.abs(b) <= t * 1.4)) & (d <= r * 1.2)
    else:  # triangle outline
        inside = (yy - cy <= r * 0.8) & (np.abs(xx - cx) <= (yy - cy + r) * 0.6)
        inner = (yy - cy <= r * 0.8 - 2 * t) & (np.abs(xx - cx) <= (yy - cy + r - 2 * t) * 0.6 - t)
        img = inside & ~inner
    return img.astype(np.float32)


def shapes(n: int = 2400, size: int = 16, seed: int = 7) -> Data:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, n)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    for i, kind in enumerate(labels):
        img = _draw(int(kind), rng, size) * rng.uniform(0.5, 1.0)
        for _ in range(rng.integers(1, 4)):  # distractor strokes
            x0, y0 = rng.integers(0, size, 2)
            length = rng.integers(3, 7)
            if rng.random() < 0.5:
                img[y0, x0 : x0 + length] = np.maximum(img[y0, x0 : x0 + length], rng.uniform(0.4, 0.9))
            else:
                img[y0 : y0 + length, x0] = np.maximum(img[y0 : y0 + length, x0], rng.uniform(0.4, 0.9))
        img += rng.normal(0, 0.35, img.shape).astype(np.float32)
        images[i, 0] = np.clip(img, 0, 1)
    return _split(images, labels, "shapes", 6, seed=seed)


def _texture(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(3.0, 6.0)
    phase = rng.uniform(0, 2 * np.pi)
    k = 2 * np.pi / period
    cx, cy = rng.uniform(4, size - 4, 2)
    if kind < 4:  # gratings at 0, 45, 90 and 135 degrees, each jittered by up to 12 degrees
        angle = kind * np.pi / 4 + rng.uniform(-0.2, 0.2)
        wave = np.cos(k * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    elif kind == 4:  # checkerboard
        wave = np.cos(k * xx + phase) * np.cos(k * yy + rng.uniform(0, 2 * np.pi))
    elif kind == 5:  # dot lattice
        wave = np.maximum(np.cos(k * xx + phase), 0) * np.maximum(np.cos(k * yy + phase), 0) * 2 - 0.5
    elif kind == 6:  # rings around a random centre
        wave = np.cos(k * np.hypot(xx - cx, yy - cy) + phase)
    else:  # spiral arms around a random centre
        wave = np.cos(3 * np.arctan2(yy - cy, xx - cx) + k * np.hypot(xx - cx, yy - cy) * 0.5 + phase)
    x0, y0 = rng.integers(0, size // 3, 2)
    x1, y1 = rng.integers(2 * size // 3, size + 1, 2)
    window = np.zeros((size, size), dtype=np.float32)
    window[y0:y1, x0:x1] = 1.0
    return (0.5 + 0.5 * wave * window * rng.uniform(0.4, 0.8)).astype(np.float32)


def textures(n: int = 2400, size: int = 16, seed: int = 11) -> Data:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 8, n)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    for i, kind in enumerate(labels):
        img = _texture(int(kind), rng, size) + rng.normal(0, 0.25, (size, size)).astype(np.float32)
        images[i, 0] = np.clip(img, 0, 1)
    return _split(images, labels, "textures", 8, seed=seed)


def shapes_v2(n: int = 2400) -> Data:
    """A new version of `shapes`: the same classes and drawing, new images (what a retrain sees)."""
    data = shapes(n, seed=8)
    return Data("shapes-v2", data.train, data.validation, data.num_classes)


DATASETS = {"digits": digits, "shapes": shapes, "shapes-v2": shapes_v2, "textures": textures}
# a dataset -> its previous version, whose run a warm start learns from
PREVIOUS_VERSION = {"shapes-v2": "shapes"}
