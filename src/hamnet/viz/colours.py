"""Stable class colours: a class keeps its colour in every figure and in the HTML report.

The colour follows the class's index in the dataset's class list, never the order in
which a figure happens to meet the classes.
"""

from __future__ import annotations

import matplotlib
from matplotlib.colors import to_hex


def class_colour(index: int) -> str:
    palette = matplotlib.colormaps["tab20"]
    # even slots first (the strong colours), then the light ones
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return to_hex(palette(order[index % 20]))


def class_colour_list(count: int) -> list[str]:
    return [class_colour(i) for i in range(count)]
