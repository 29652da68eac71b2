"""The tuning settings: the documented search space and presets, every limit with its source,
each key's parser and schema, the rules across keys, and who owns each key (the trust boundary).
Imports only the layers below it in `pipeline.LAYERS` (tests/test_layers.py).
"""
