"""After the tuning: choosing the best job, the test split's batch transform and its scoring,
registration and approval. Imports only the layers below it in `pipeline.LAYERS`
(tests/test_layers.py).
"""
