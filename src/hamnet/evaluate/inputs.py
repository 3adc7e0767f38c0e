"""What every protocol evaluates: ground truth and detections laid out as index arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EvalInput:
    """Ground truth and detections as index arrays (file order kept).

    ``*_video`` index ``videos`` (detections outside them: -1); ``*_class`` index
    ``classes``, the evaluated classes (detections of other classes: -1).
    ``ambiguous``: per video index, spans [A, 2] in seconds.
    """

    videos: list[str]
    classes: list[str]
    gt_video: np.ndarray
    gt_class: np.ndarray
    gt_segment: np.ndarray
    det_video: np.ndarray
    det_class: np.ndarray
    det_segment: np.ndarray
    det_score: np.ndarray
    ambiguous: dict[int, np.ndarray]
