"""The dataset's layout: which keys are manifests, which names are datasets."""

from __future__ import annotations

import pytest

from pipeline.aws.errors import DatasetError
from pipeline.dataset.manifest import dataset_ref_from_key


@pytest.mark.parametrize(
    "key",
    ["datasets/x/other.json", "other/x/manifest.json", "datasets/manifest.json", "datasets/x/y/manifest.json"],
)
def test_only_a_manifest_directly_under_a_dataset_is_a_dataset(key: str) -> None:
    with pytest.raises(DatasetError) as raised:
        dataset_ref_from_key("b", key, "v1")
    assert str(raised.value) == (
        f"s3://b/{key}: not a dataset manifest. The pipeline starts only for "
        "'datasets/<name>/manifest.json'; upload the manifest there, last."
    )


def test_a_bad_dataset_name_is_named_with_the_rule() -> None:
    with pytest.raises(DatasetError) as raised:
        dataset_ref_from_key("b", "datasets/-x/manifest.json", "v1")
    assert str(raised.value) == (
        "s3://b/datasets/-x/manifest.json: dataset name '-x' must be 1-64 letters, digits, '-' or '_', "
        "starting with a letter or digit. Rename the prefix."
    )


def test_every_input_format_has_a_reader_and_its_documented_content_type() -> None:
    # A format added to INPUT_FORMATS without a reader would pass the manifest's parser and then
    # fail validation with a KeyError; the content types are the algorithm page's.
    from pipeline.aws.input_forms import INPUT_FORMATS
    from pipeline.dataset.validation import READERS
    from tests.oracles import IMAGE_CONTENT_TYPE, RECORDIO_CONTENT_TYPE

    assert set(READERS) == set(INPUT_FORMATS)
    assert {f: facts.form.content_type for f, facts in INPUT_FORMATS.items()} == {
        "image": IMAGE_CONTENT_TYPE,
        "recordio": RECORDIO_CONTENT_TYPE,
        "augmented_manifest": RECORDIO_CONTENT_TYPE,  # records wrapped in RecordIO, streamed
    }
