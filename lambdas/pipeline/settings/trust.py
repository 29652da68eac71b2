"""Who may change what: the people who upload datasets are not the people who deploy the stack.

A manifest may set what is the dataset's business and may only tighten what the deployment
owns; `TuningSettings.from_manifest` applies this table.
"""

from __future__ import annotations

from typing import Any, Protocol


class Deployment(Protocol):
    """What `loosens` reads of the deployment's settings (a TuningSettings) beyond the key itself."""

    @property
    def max_runtime_seconds(self) -> int: ...


# Who may change what. DATASET: a manifest may set it. TIGHTEN: the deployment's value is a
# limit; a manifest may only lower it (or, for use_spot, turn it on; for warm_start, narrow it
# from auto to previous to off). ALLOW_LIST: a manifest
# may pick one of the deployment's allowed values. DEPLOYMENT: cdk.json only.
DATASET, TIGHTEN, ALLOW_LIST, DEPLOYMENT = "dataset", "tighten", "allow-list", "deployment"
OWNERSHIP: dict[str, str] = {
    "strategy": DATASET,
    "early_stopping": DATASET,
    "epochs": DATASET,
    "num_layers": DATASET,
    "image_shape": DATASET,
    "use_pretrained_model": DATASET,
    "precision_dtype": DATASET,
    "layout": DATASET,
    "optimizers": DATASET,
    "preset": DATASET,
    "ranges": DATASET,
    "optimizer_ranges": DATASET,
    "completion": DATASET,
    "max_training_jobs": TIGHTEN,
    "max_parallel_jobs": TIGHTEN,
    "max_runtime_seconds": TIGHTEN,
    "max_wait_seconds": TIGHTEN,
    "volume_size_gb": TIGHTEN,
    "use_spot": TIGHTEN,
    "max_cost_usd": TIGHTEN,
    # Where a run may learn from: other teams' datasets ("auto") is the deployment's call.
    "warm_start": TIGHTEN,
    "instance_type": ALLOW_LIST,
    "allowed_instance_types": DEPLOYMENT,
    "price_per_hour_usd": DEPLOYMENT,
    "approval": DEPLOYMENT,
    "poll_seconds": DEPLOYMENT,
    "evaluation_instance_type": DEPLOYMENT,
    "evaluation_max_seconds": DEPLOYMENT,
    "copies_across_splits": DEPLOYMENT,
}


def loosens(key: str, value: Any, deployment: Deployment) -> str | None:
    """Why a manifest's value for a deployment-owned limit loosens it, or None when it does not."""
    owned = OWNERSHIP.get(key)
    if owned == ALLOW_LIST:
        return None  # checked against the allow-list by check()
    if owned != TIGHTEN:
        return None
    limit = getattr(deployment, key)
    if key == "use_spot":
        return "turns managed spot training off" if limit and not value else None
    if key == "warm_start":  # narrowest last: off, previous (this dataset's runs), auto (similar datasets' too)
        order = ("off", "previous", "auto")
        return (
            f"({value!r}) is wider than the deployment's {limit!r}" if order.index(value) > order.index(limit) else None
        )
    if key == "max_wait_seconds":
        value, limit = (v if v is not None else 2 * deployment.max_runtime_seconds for v in (value, limit))
    if limit is None:
        return None  # no limit deployed: any value tightens
    if value is None:
        return f"removes the deployment's limit of {limit}"
    return f"({value}) is above the deployment's {limit}" if value > limit else None
