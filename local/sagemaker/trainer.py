"""A CPU stand-in for the image-classification algorithm's training container.

It reads the same channels (`.lst` + images, from S3), honours the same hyperparameters with
the algorithm's semantics, logs the objective per epoch the way the algorithm does
("Epoch[k] Validation-accuracy=..."), and writes `model.tar.gz` where SageMaker would.
The network is a small residual CNN rather than ResNet-<num_layers>: it trains in seconds on
a CPU while responding to the hyperparameters the same way.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pipeline.dataset.lst import parse_lst


class AlgorithmError(RuntimeError):
    """The algorithm refuses its input; becomes the training job's FailureReason."""


class Stopped(RuntimeError):
    """The training job was asked to stop."""


@dataclass(frozen=True)
class Hyperparameters:
    optimizer: str
    learning_rate: float
    mini_batch_size: int
    momentum: float
    weight_decay: float
    beta_1: float
    beta_2: float
    eps: float
    gamma: float
    epochs: int
    num_classes: int
    num_training_samples: int
    image_shape: tuple[int, int, int]
    resize: int | None

    @classmethod
    def parse(cls, hp: dict[str, str]) -> Hyperparameters:
        """Defaults as documented on the "Image classification hyperparameters" page."""

        def num(name: str, default: str) -> float:
            try:
                return float(hp.get(name, default))
            except ValueError:
                raise AlgorithmError(f"hyperparameter {name}={hp.get(name)!r} is not a number") from None

        for required in ("num_classes", "num_training_samples"):
            if required not in hp:
                raise AlgorithmError(f"Missing required hyperparameter: {required}")
        shape = tuple(int(v) for v in hp.get("image_shape", "3,224,224").split(","))
        if len(shape) != 3:
            raise AlgorithmError(f"image_shape {hp['image_shape']!r} must be channels,height,width")
        optimizer = hp.get("optimizer", "sgd")
        if optimizer not in ("sgd", "adam", "rmsprop", "nag"):
            raise AlgorithmError(f"optimizer {optimizer!r} is not one of sgd, adam, rmsprop, nag")
        return cls(
            optimizer=optimizer,
            learning_rate=num("learning_rate", "0.1"),
            mini_batch_size=int(num("mini_batch_size", "32")),
            momentum=num("momentum", "0.9"),
            weight_decay=num("weight_decay", "0.0001"),
            beta_1=num("beta_1", "0.9"),
            beta_2=num("beta_2", "0.999"),
            eps=num("eps", "1e-8"),
            gamma=num("gamma", "0.9"),
            epochs=int(num("epochs", "30")),
            num_classes=int(num("num_classes", "0")),
            num_training_samples=int(num("num_training_samples", "0")),
            image_shape=(shape[0], shape[1], shape[2]),
            resize=int(num("resize", "0")) or None,
        )


def make_optimizer(params: Any, hp: Hyperparameters) -> torch.optim.Optimizer:
    """Each optimizer reads only its own hyperparameters, as the algorithm documents."""
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.learning_rate, momentum=hp.momentum, weight_decay=hp.weight_decay)
    if hp.optimizer == "nag":
        return torch.optim.SGD(
            params,
            lr=hp.learning_rate,
            momentum=hp.momentum,
            weight_decay=hp.weight_decay,
            nesterov=hp.momentum > 0,
        )
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.learning_rate, betas=(hp.beta_1, hp.beta_2), eps=hp.eps)
    return torch.optim.RMSprop(params, lr=hp.learning_rate, alpha=hp.gamma, eps=hp.eps)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def small_resnet(channels: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        _Block(16, 16, 1),
        _Block(16, 32, 2),
        _Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def decode_image(body: bytes, image_shape: tuple[int, int, int], resize: int | None) -> np.ndarray:
    """One image as the algorithm prepares it: resize the shorter side, centre-crop, scale to [0, 1]."""
    channels, height, width = image_shape
    image: Image.Image = Image.open(io.BytesIO(body))
    image = image.convert("RGB" if channels == 3 else "L")
    if resize:
        scale = resize / min(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    left, top = max(0, (image.width - width) // 2), max(0, (image.height - height) // 2)
    image = image.crop((left, top, left + width, top + height))
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return array.transpose(2, 0, 1)


def decode_images(
    read: Callable[[str], bytes], items: list[tuple[str, int]], hp: Hyperparameters
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode (image URI, label) items for training."""
    images = [decode_image(read(uri), hp.image_shape, hp.resize) for uri, _ in items]
    return torch.tensor(np.stack(images)), torch.tensor([label for _, label in items], dtype=torch.long)


def lst_items(lst_text: str, lst_uri: str, channel_uri: str) -> list[tuple[str, int]]:
    """The images a `.lst` lists, as (S3 URI, label)."""
    return [(channel_uri + entry.path, entry.label) for entry in parse_lst(lst_text, lst_uri)]


def manifest_items(text: str, manifest_uri: str, attribute_names: list[str]) -> list[tuple[str, int]]:
    """The records of an augmented manifest, as (S3 URI, label): AttributeNames name the image
    attribute first and the label second, as the algorithm reads them."""
    if len(attribute_names) != 2:
        raise AlgorithmError(f"AttributeNames must name the image and the label, got {attribute_names}")
    image, label = attribute_names
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            items.append((str(record[image]), int(record[label])))
        except (ValueError, KeyError, TypeError) as exc:
            raise AlgorithmError(f"{manifest_uri}, line {number}: cannot read {image!r} and {label!r}: {exc}") from None
    return items


_GLOBAL_RNG = threading.Lock()


def train(
    hp: Hyperparameters,
    train_data: tuple[torch.Tensor, torch.Tensor],
    validation_data: tuple[torch.Tensor, torch.Tensor],
    *,
    seed: int,
    on_epoch: Callable[[int, float], bool],
    stop: threading.Event,
    log: Callable[[str], None],
) -> tuple[nn.Module, list[float]]:
    """Train; `on_epoch(epoch, accuracy)` returns False to stop early (early stopping)."""
    x_train, y_train = train_data
    if len(x_train) < hp.mini_batch_size:
        raise AlgorithmError(
            f"The number of input images must be bigger or equal to the mini_batch_size "
            f"({len(x_train)} < {hp.mini_batch_size})"
        )
    if y_train.max().item() >= hp.num_classes:
        raise AlgorithmError(f"label {y_train.max().item()} out of range for num_classes={hp.num_classes}")
    generator = torch.Generator().manual_seed(seed)
    # The initial weights come from torch's global generator, shared by the jobs training side by
    # side in threads: seed and draw under one lock, or a job's weights depend on the other's timing.
    with _GLOBAL_RNG:
        torch.manual_seed(seed)
        model = small_resnet(hp.image_shape[0], hp.num_classes)
    optimizer = make_optimizer(model.parameters(), hp)
    loss_fn = nn.CrossEntropyLoss()
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    history: list[float] = []
    for epoch in range(hp.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        # The algorithm drops the last incomplete batch.
        for start in range(0, len(order) - hp.mini_batch_size + 1, hp.mini_batch_size):
            if stop.is_set():
                raise Stopped()
            batch = order[start : start + hp.mini_batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch] - mean), y_train[batch])
            if not math.isfinite(loss.item()):
                continue  # diverged: the job runs on and reports chance-level accuracy
            loss.backward()
            optimizer.step()
        accuracy = evaluate(model, validation_data, mean)
        history.append(accuracy)
        log(f"Epoch[{epoch}] Validation-accuracy={accuracy:.6f}")
        if not on_epoch(epoch, accuracy):
            break
    return model, history


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], mean: torch.Tensor) -> float:
    model.eval()
    x, y = data
    correct = 0
    for start in range(0, len(x), 256):
        logits = model(x[start : start + 256] - mean)
        if not torch.isfinite(logits).all():
            logits = torch.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=0.0)
        correct += int((logits.argmax(dim=1) == y[start : start + 256]).sum())
    return correct / len(x)


def model_archive(
    model: nn.Module, hp: Hyperparameters, accuracy_history: list[float], mean: torch.Tensor | None = None
) -> bytes:
    """`model.tar.gz`: the weights and what inference needs to rebuild the network and its input."""
    buffer = io.BytesIO()
    shapes = {
        "image_shape": list(hp.image_shape),
        "num_classes": hp.num_classes,
        "resize": hp.resize,
        "mean": [] if mean is None else [float(v) for v in mean.flatten()],
        "validation_accuracy": accuracy_history[-1] if accuracy_history else None,
    }
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in (
            ("model.pt", _torch_bytes(model.state_dict())),
            ("model-shapes.json", json.dumps(shapes).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def predictor(archive: bytes) -> Callable[[bytes], list[float]]:
    """The algorithm's inference for one model: an image in, its class probabilities out."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        shapes = json.loads(tar.extractfile("model-shapes.json").read())  # type: ignore[union-attr]
        state = torch.load(io.BytesIO(tar.extractfile("model.pt").read()), weights_only=True)  # type: ignore[union-attr]
    shape = tuple(shapes["image_shape"])
    model = small_resnet(shape[0], shapes["num_classes"])
    model.load_state_dict(state)
    model.eval()
    mean = torch.tensor(shapes["mean"] or [0.0] * shape[0]).reshape(1, -1, 1, 1)

    @torch.no_grad()
    def predict(body: bytes) -> list[float]:
        x = torch.tensor(decode_image(body, shape, shapes.get("resize")))[None]  # type: ignore[arg-type]
        return [float(p) for p in torch.softmax(model(x - mean), dim=1)[0]]

    return predict


def _torch_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
