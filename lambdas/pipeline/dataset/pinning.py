"""Train and evaluate on what was validated: the versions validation read, and the copies the jobs read.

Every training job reads its channels when it starts, minutes or hours after validation, and the
people who upload datasets may replace an index or a manifest meanwhile. So validation reads each
object at one version (the datasets bucket is versioned) and records it in `Data.pinned`;
StartTuning copies exactly those versions to inputs/<dataset>/<run>/<digest>/ in the artifacts bucket,
which uploaders cannot write, and the index channels read the copies; the evaluation reads the
test index at its recorded version.

What is not pinned: the images and RecordIO files, which the channels read by prefix, where they
are (SageMaker channels take no version). Replacing one after validation is not detected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import s3_layout
from pipeline.aws.errors import DatasetError, error_code
from pipeline.contract import Data, DatasetRef


class VersionPinning:
    """An S3 client whose get_object reads each object at the version it first read, and keeps
    the versions it read (URI -> version id, "" for an unversioned bucket)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.versions: dict[str, str] = {}

    def get_object(self, **kwargs: Any) -> Any:
        uri = f"s3://{kwargs['Bucket']}/{kwargs['Key']}"
        if self.versions.get(uri) and "VersionId" not in kwargs:
            kwargs["VersionId"] = self.versions[uri]
        response = self._s3.get_object(**kwargs)
        self.versions.setdefault(uri, response.get("VersionId") or "")
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) == "404":  # HeadObject has no body: the status is the code
            return False
        raise
    return True


def pinned_channels(data: Data, ref: DatasetRef, run_id: str, s3: Any, bucket: str) -> Data:
    """Copy each pinned object a channel reads (its .lst, or the channel's manifest) at its
    validated version into the artifacts bucket, and point the channel at the copy."""
    # Under a digest of the versions: another delivery of the same upload, validated later against
    # newer versions, copies beside these and never over them.
    digest = hashlib.sha256(json.dumps(sorted(data.pinned.items())).encode()).hexdigest()[:12]
    inputs = f"s3://{bucket}/{s3_layout.inputs_prefix(ref.name, run_id)}{digest}/"
    channels = []
    for channel in data.channels:
        prefix = channel.uri.endswith("/")  # a .lst channel's prefix, or a manifest file
        read = {
            uri: v for uri, v in data.pinned.items() if uri == channel.uri or prefix and uri.startswith(channel.uri)
        }
        for uri, version in read.items():
            source_bucket, source_key = _split(uri)
            source = {"Bucket": source_bucket, "Key": source_key, **({"VersionId": version} if version else {})}
            _, key = _split(inputs + uri.removeprefix(ref.uri))
            if _exists(s3, bucket, key):  # a retry of this step: copied already, maybe deleted at the source since
                continue
            try:
                s3.copy_object(Bucket=bucket, Key=key, CopySource=source)
            except ClientError as exc:
                if error_code(exc) not in ("NoSuchKey", "NoSuchVersion", "404"):
                    raise
                raise DatasetError(
                    f"{uri}: the version validated ({version or 'unversioned'}) was deleted before the tuning "
                    "started. Upload the dataset again, manifest last."
                ) from None
        channels.append(
            dataclasses.replace(channel, uri=inputs + channel.uri.removeprefix(ref.uri)) if read else channel
        )
    return dataclasses.replace(data, channels=tuple(channels))


def version_of(data: Data, uri: str) -> dict[str, str]:
    """The VersionId argument that reads `uri` as validated ({} when it was not versioned)."""
    version = data.pinned.get(uri, "")
    return {"VersionId": version} if version else {}
