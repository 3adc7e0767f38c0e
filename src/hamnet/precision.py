"""The compute precisions of training, inference and feature extraction (one list).

``fp32``: everything in float32; ``bf16``: autocast to bfloat16 (losses, pooling and
evaluation stay in float32).
"""

PRECISIONS = ("fp32", "bf16")
