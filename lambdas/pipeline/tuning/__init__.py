"""The tuning request: names, the CreateHyperParameterTuningJob requests, warm start and the
worst-case cost. Imports only the layers below it in `pipeline.LAYERS` (tests/test_layers.py).
"""
