"""Deterministic, valid SageMaker names for a run.

EventBridge delivers at least once: the same upload (same manifest object version) must map to
the same tuning job names, so a second delivery hits `ResourceInUse` instead of a second bill.
A new object version is a new run.
"""

from __future__ import annotations

import hashlib
import re

from pipeline.settings.search_space import OPTIMIZER_CODES

# HyperParameterTuningJobName in the SageMaker API model.
TUNING_JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
TUNING_JOB_NAME_MAX = 32
DIGEST_CHARS = 10
# Room for "-" + the longest optimizer code.
SUFFIX_ROOM = 1 + max(len(c) for c in OPTIMIZER_CODES.values())


def run_id(bucket: str, dataset: str, version_id: str) -> str:
    """`<slug>-<digest>`, at most 32 - SUFFIX_ROOM characters, the same for the same upload.

    The digest covers bucket, dataset and version, so two datasets whose names share a long
    prefix never collide after truncation.
    """
    digest = hashlib.sha256(f"{bucket}/{dataset}@{version_id}".encode()).hexdigest()[:DIGEST_CHARS]
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", dataset).strip("-").lower() or "ds"
    room = TUNING_JOB_NAME_MAX - SUFFIX_ROOM - 1 - DIGEST_CHARS
    slug = slug[:room].rstrip("-")
    return f"{slug}-{digest}"


def tuning_job_name(run: str, optimizer: str | None = None) -> str:
    name = run if optimizer is None else f"{run}-{OPTIMIZER_CODES[optimizer]}"
    if not TUNING_JOB_NAME_PATTERN.match(name):
        raise ValueError(f"internal error: {name!r} is not a valid tuning job name")
    return name
