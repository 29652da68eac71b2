"""Names shared by the handlers' logs and metrics and by the dashboard that reads them."""

SERVICE = "image-classification-tuning"
METRICS_NAMESPACE = "ImageClassificationTuning"
