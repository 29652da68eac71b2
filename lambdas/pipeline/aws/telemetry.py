"""Names shared by the handlers' logs and metrics and by the dashboard that reads them.

The Powertools objects themselves live in `pipeline.aws.observe`, created when a handler is first
imported (the stacks import only these names)."""

SERVICE = "image-classification-tuning"
METRICS_NAMESPACE = "ImageClassificationTuning"
