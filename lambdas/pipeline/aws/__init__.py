"""The platform: AWS clients, error types and their retry classification, the S3 layout, names and
tags, the algorithm's image URIs, logging, metrics and tracing. Imports nothing else of the pipeline.
"""
