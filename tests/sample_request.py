"""The dataset and destinations the request-level tests build tuning requests for."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipeline.contract import Data
from pipeline.tuning.request import Destinations


def facts(
    format: str, num_classes: int, num_training_samples: int, channels: dict[str, str], content_type: str
) -> Data:
    """What validation learned about a dataset of files under S3 prefixes (image files or RecordIO),
    in the run's wire form's words."""
    return Data.from_dict(
        {
            "format": format,
            "num_classes": num_classes,
            "num_training_samples": num_training_samples,
            "channels": [
                {"name": name, "uri": uri, "form": {"content_type": content_type, "s3_data_type": "S3Prefix"}}
                for name, uri in channels.items()
            ],
        }
    )


DATA = facts(
    format="image",
    num_classes=10,
    num_training_samples=1437,
    channels={c: f"s3://ds/datasets/digits/{c}/" for c in ("train", "validation", "train_lst", "validation_lst")},
    content_type="application/x-image",
)
DEST = Destinations(
    role_arn="arn:aws:iam::123456789012:role/sm",
    image_uri="811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
    output_uri="s3://art/tuning/digits/r/",
    checkpoint_uri="s3://art/checkpoints/digits/r/",
)


def client_error(code: str, status: int = 400) -> ClientError:
    """A ClientError as botocore raises it for `code` with HTTP `status`."""
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")
