"""Old path of :func:`hamnet.infer.predict.predict` (documented in the README)."""

from hamnet.infer.predict import predict, write_detections

__all__ = ["predict", "write_detections"]
