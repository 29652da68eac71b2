"""The uploaded dataset: its layout and manifest, the listing, the `.lst`, RecordIO and
augmented-manifest readers, leakage between splits, version pinning, and validation, which
reads them all. Imports `tuning`, the contract, `settings` and `aws`.
"""
