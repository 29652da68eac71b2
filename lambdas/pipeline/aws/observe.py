"""The handlers' Logger, Metrics and Tracer (Powertools for AWS Lambda), one of each.

Every handler uses these three. The Tracer patches boto3, so every SageMaker and S3 call a
handler makes is an X-Ray subsegment of the function's trace (tracing is ACTIVE on the
functions and the state machine); outside Lambda, Powertools turns tracing off by itself.
The Logger writes to the stdout of the moment this module is first imported: the handlers'
import, inside the function (and inside local mode's log capture).
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

from pipeline.aws.telemetry import METRICS_NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
