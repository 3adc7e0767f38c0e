"""Ground-truth instance characteristics and DETAD's bins for them.

Bins are right-closed intervals (a, b] with the first one closed on the left too (as
``pandas.cut(..., include_lowest=True)``, which DETAD uses); a value outside every bin
is left unbinned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hamnet.evaluate.protocols import REGISTRY

INF = math.inf


@dataclass(frozen=True)
class Bins:
    """Edges [n+1] and the n bin names of one characteristic."""

    edges: tuple[float, ...]
    names: tuple[str, ...]

    def ranges(self) -> list[list[float | None]]:
        """[low, high] per bin; ``None`` for an infinite edge (JSON has no infinity)."""
        finite = [None if math.isinf(e) else e for e in self.edges]
        return [[finite[i], finite[i + 1]] for i in range(len(self.names))]


SIZES5 = ("XS", "S", "M", "L", "XL")
SIZES4 = ("XS", "S", "M", "L")
# DETAD's bins: THUMOS14 (false_*_analysis.py, is_thumos14) and ActivityNet validation
BIN_SETS: dict[str, dict[str, Bins]] = {
    "thumos14": {
        "length": Bins((0, 3, 6, 12, 18, INF), SIZES5),
        "coverage": Bins((0, 0.02, 0.04, 0.06, 0.08, 1.0), SIZES5),
        "num_instances": Bins((-1, 1, 40, 80, INF), SIZES4),
    },
    "activitynet": {
        "length": Bins((0, 30, 60, 120, 180, INF), SIZES5),
        "coverage": Bins((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), SIZES5),
        "num_instances": Bins((-1, 1, 4, 8, INF), SIZES4),
    },
}
CHARACTERISTICS = ("length", "coverage", "num_instances")
UNITS = {"length": "s", "coverage": "fraction of the video", "num_instances": "in the video"}


def bin_index(values: np.ndarray, bins: Bins) -> np.ndarray:
    """Bin of each value (-1 when outside every bin)."""
    edges = np.asarray(bins.edges, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(edges, values, side="left") - 1
    index = np.where(values == edges[0], 0, index)
    inside = (values >= edges[0]) & (values <= edges[-1]) & (index >= 0)
    return np.where(inside & (index < len(bins.names)), index, -1)


def default_bin_set(protocol: str | None, preset: str | None = None) -> str:
    """THUMOS14 bins for the thumos14 preset or protocols, ActivityNet's otherwise."""
    if preset in ("thumos14", "activitynet12"):
        return "thumos14" if preset == "thumos14" else "activitynet"
    return REGISTRY[protocol].bins if protocol in REGISTRY else "activitynet"
