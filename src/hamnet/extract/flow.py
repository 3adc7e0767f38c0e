"""Optical flow between consecutive grayscale frames, scaled for the I3D flow stream.

TV-L1 (OpenCV contrib's Dual TV-L1, default parameters) is the standard of the released
features. DIS (OpenCV main build, "medium" preset) is a labelled faster alternative: about
70-150x faster on a CPU, but features from it are not interchangeable with TV-L1 ones.
"""

from __future__ import annotations

import numpy as np

from hamnet.errors import ConfigError, MissingDependencyError
from hamnet.extract.video import INSTALL_HINT, import_cv2

FLOW_METHODS = ("tvl1", "dis")
FLOW_BOUND = 20.0  # pixels per frame; larger displacements are clipped


class FlowEstimator:
    """Dense flow ``(prev, next) -> [H, W, 2]`` float32, channel 0 = dx, channel 1 = dy.

    Positive dx means content moves right from ``prev`` to ``next``; positive dy, down.
    One estimator is reused across frame pairs (the OpenCV objects keep their buffers).
    """

    def __init__(self, method: str = "tvl1"):
        if method not in FLOW_METHODS:
            raise ConfigError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")
        cv2 = import_cv2()
        self.method = method
        self._cv2 = cv2
        if method == "tvl1":
            if not hasattr(cv2, "optflow"):
                raise MissingDependencyError(
                    "TV-L1 flow needs OpenCV's contrib modules (cv2.optflow): "
                    f"{INSTALL_HINT} installs opencv-contrib-python-headless; "
                    "or choose --flow dis"
                )
            self._impl = cv2.optflow.DualTVL1OpticalFlow_create()
        else:
            self._impl = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def gray(self, rgb: np.ndarray) -> np.ndarray:
        """[H, W, 3] uint8 RGB -> [H, W] uint8 luminance."""
        return self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY)

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        """Flow from ``prev_gray`` to ``next_gray`` (both [H, W] uint8): [H, W, 2] float32."""
        return self._impl.calc(prev_gray, next_gray, None)


def scale_flow(flow: np.ndarray) -> np.ndarray:
    """Clip each component to [-20, 20] pixels and divide by 20: values in [-1, 1]."""
    return np.clip(flow.astype(np.float32, copy=False), -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND
