"""The platform: AWS clients, the error types the workflow's Retry/Catch and the notices know and
their retry classification, the S3 layout, tags, the channels' input forms, the algorithm's image
URIs, and logging, metrics and tracing. The bottom layer: imports nothing else of the pipeline.
"""
