"""Dataset CLI: a folder of images (one sub-folder per class) -> the pipeline's layout -> S3.

    python -m tools.dataset prepare IMAGES OUT     # stratified split, .lst files, manifest
    python -m tools.dataset upload OUT --bucket B --name N   # to the deployed bucket

Uploading writes the manifest last: creating the manifest is what starts a run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from pipeline.aws.s3_layout import MANIFEST_NAME, dataset_prefix
from pipeline.dataset.augmented import DEFAULT_LABEL_ATTRIBUTE, SOURCE_REF

FORMATS_WRITTEN = ("image", "augmented_manifest")  # RecordIO is written by im2rec, not here

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
UPLOAD_WORKERS = 16


class DatasetInputError(ValueError):
    """The image folder cannot become a dataset; the message says which file and what to do."""


@dataclass(frozen=True)
class Prepared:
    root: Path
    classes: list[str]
    train: int
    validation: int
    test: int = 0


def _scan(images: Path) -> dict[str, list[Path]]:
    if not images.is_dir():
        raise DatasetInputError(f"{images}: not a folder. Give a folder with one sub-folder per class.")
    classes = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(images.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    classes = {name: files for name, files in classes.items() if files}
    if not classes:
        raise DatasetInputError(
            f"{images}: no class folders with images (.png, .jpg). Put each class's images in a sub-folder named after it."
        )
    if len(classes) == 1:
        (only,) = classes
        raise DatasetInputError(f"{images}: only one class ({only}). Classification needs at least two class folders.")
    return classes


def _check_images(classes: dict[str, list[Path]], progress: bool) -> tuple[int, int]:
    sizes: dict[tuple[int, int], Path] = {}
    files = [p for ps in classes.values() for p in ps]
    for path in tqdm(files, desc="checking images", unit="img", disable=not progress):
        try:
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                size = image.size
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetInputError(f"{path}: not a readable image ({exc}). Remove or replace the file.") from None
        sizes.setdefault(size, path)
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise DatasetInputError(
                f"{pb}: {b[0]}x{b[1]} pixels, but {pa} is {a[0]}x{a[1]}. All images must have one size; "
                "resize them first (e.g. to the image_shape you will train with)."
            )
    (size,) = sizes
    return size


def prepare(
    images: Path,
    out: Path,
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = True,
    tuning: dict[str, Any] | None = None,
    format: str = "image",
    test_fraction: float = 0.0,
) -> Prepared:
    """Stratified split into train/, validation/ and (with `test_fraction`) a held-out test/ split,
    the index files of `format`, and the manifest.

    `image`: train_lst/train.lst and validation_lst/validation.lst. `augmented_manifest`:
    train.manifest and validation.manifest, JSON Lines with `source-ref` and `class`; their
    source-refs are relative here and become s3:// URIs of the dataset when uploaded."""
    if format not in FORMATS_WRITTEN:
        raise DatasetInputError(f"format must be one of {', '.join(FORMATS_WRITTEN)}, got {format!r}")
    if not 0 < validation_fraction < 1 or not 0 <= test_fraction < 1 or validation_fraction + test_fraction >= 1:
        raise DatasetInputError(
            f"the validation fraction ({validation_fraction}) must be in (0, 1), the test fraction "
            f"({test_fraction}) in [0, 1), and together below 1"
        )
    classes = _scan(images)
    _check_images(classes, progress)
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    lines: dict[str, list[str]] = {"train": [], "validation": [], **({"test": []} if test_fraction else {})}
    for label, (name, files) in enumerate(classes.items()):
        shuffled = files[:]
        rng.shuffle(shuffled)
        n_test = max(1, round(len(shuffled) * test_fraction)) if test_fraction else 0
        n_val = max(1, round(len(shuffled) * validation_fraction))
        if len(shuffled) - n_val - n_test < 1:
            raise DatasetInputError(
                f"{images / name}: {len(files)} image(s); each class needs at least {len(lines)} (one per split)."
            )
        chunks = (
            ("test", shuffled[:n_test]),
            ("validation", shuffled[n_test : n_test + n_val]),
            ("train", shuffled[n_test + n_val :]),
        )
        for split, chunk in chunks if test_fraction else chunks[1:]:
            for path in chunk:
                relative = f"{name}/{path.name}"
                target = out / split / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                lines[split].append(f"{label}\t{relative}")
    for split, entries in lines.items():
        if format == "augmented_manifest":
            (out / f"{split}.manifest").write_text("".join(_record(split, entry) for entry in entries))
            continue
        lst = out / f"{split}_lst" / f"{split}.lst"
        lst.parent.mkdir(parents=True, exist_ok=True)
        lst.write_text("".join(f"{i}\t{entry}\n" for i, entry in enumerate(entries)))
    manifest: dict[str, Any] = {"format": format, "description": f"prepared from {images.name}"}
    if tuning:
        manifest["tuning"] = tuning
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Prepared(
        root=out,
        classes=list(classes),
        train=len(lines["train"]),
        validation=len(lines["validation"]),
        test=len(lines.get("test", [])),
    )


def _record(split: str, entry: str) -> str:
    label, relative = entry.split("\t")
    return json.dumps({SOURCE_REF: f"{split}/{relative}", DEFAULT_LABEL_ATTRIBUTE: int(label)}) + "\n"


def with_dataset_uris(body: bytes, dataset_uri: str) -> bytes:
    """An augmented manifest whose relative source-refs (as `prepare` writes them) point into the
    dataset at `dataset_uri`; absolute ones (as Ground Truth writes them) are kept as they are."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body  # validation names the byte and the fix
    lines = []
    for line in text.split("\n"):
        try:
            item = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            item = None  # left as it is: validation names the line and the fix
        if isinstance(item, dict) and isinstance(item.get(SOURCE_REF), str) and "://" not in item[SOURCE_REF]:
            line = json.dumps({**item, SOURCE_REF: dataset_uri + item[SOURCE_REF]})
        lines.append(line)
    return "\n".join(lines).encode()


def upload(
    root: Path,
    s3: Any,
    bucket: str,
    name: str,
    *,
    progress: bool = True,
    before_manifest: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Upload a prepared dataset to s3://bucket/datasets/<name>/, the manifest last.

    Returns the manifest's PutObject response (its VersionId identifies the run)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    prefix = dataset_prefix(name)

    def put(path: Path) -> None:
        body = path.read_bytes()
        if path.suffix == ".manifest" and path.parent == root:
            body = with_dataset_uris(body, f"s3://{bucket}/{prefix}")
        s3.put_object(Bucket=bucket, Key=prefix + path.relative_to(root).as_posix(), Body=body)

    # UPLOAD_WORKERS files side by side (boto3 clients are thread-safe); any failure stops the
    # upload before the manifest, so no run starts on a partial dataset.
    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        bar = tqdm(total=len(files), desc=f"uploading to s3://{bucket}/{prefix}", unit="file", disable=not progress)
        for _ in pool.map(put, files):
            bar.update()
        bar.close()
    if before_manifest:
        before_manifest()
    return s3.put_object(
        Bucket=bucket,
        Key=prefix + MANIFEST_NAME,
        Body=(root / MANIFEST_NAME).read_bytes(),
        ContentType="application/json",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.dataset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="class folders -> pipeline layout")
    p.add_argument("images", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--validation-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=0.0, help="a held-out test split (default: none)")
    p.add_argument(
        "--format", choices=FORMATS_WRITTEN, default="image", help="index files: .lst or augmented manifests"
    )
    u = sub.add_parser("upload", help="upload a prepared dataset to the deployed bucket (manifest last)")
    u.add_argument("root", type=Path)
    u.add_argument("--bucket", required=True)
    u.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            result = prepare(
                args.images,
                args.out,
                validation_fraction=args.validation_fraction,
                seed=args.seed,
                format=args.format,
                test_fraction=args.test_fraction,
            )
            sys.stdout.write(
                f"{result.root}: {len(result.classes)} classes, {result.train} train, {result.validation} validation\n"
            )
        else:
            import boto3

            response = upload(args.root, boto3.client("s3"), args.bucket, args.name)
            sys.stdout.write(f"manifest version {response.get('VersionId')}: the run starts now\n")
    except DatasetInputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
