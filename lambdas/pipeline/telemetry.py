"""Logs, metrics and traces: the names the handlers and the dashboard share, and the objects.

Every handler uses these three. The Tracer patches boto3, so every SageMaker and S3 call a
handler makes is an X-Ray subsegment of the function's trace (tracing is ACTIVE on the
functions and the state machine). Outside Lambda, Powertools turns tracing off by itself.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "image-classification-tuning"
METRICS_NAMESPACE = "ImageClassificationTuning"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
