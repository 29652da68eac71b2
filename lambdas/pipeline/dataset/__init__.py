"""The uploaded dataset: its layout and manifest, the listing, the `.lst` and augmented-manifest
readers (RecordIO `.rec` files are listed and counted, not read), leakage between splits, version
pinning, and validation, which reads them all. Imports only the layers below it in
`pipeline.LAYERS` (tests/test_layers.py).
"""
