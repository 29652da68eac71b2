"""After the tuning: choosing the best job, the test split's batch transform and its scoring,
registration and approval. Imports `dataset`, `tuning`, the contract, `settings` and `aws`.
"""
