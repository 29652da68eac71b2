"""Governance across runs: instance slots and the FIFO queue, admission against the account's
quotas, and the month's ledger. Imports only the layers below it in `pipeline.LAYERS`
(tests/test_layers.py).
"""
