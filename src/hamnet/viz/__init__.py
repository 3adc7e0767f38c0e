"""Figures: qualitative per-video timelines and mAP-vs-tIoU curves (no torch)."""

from hamnet.viz.outputs import SavedVideoOutputs, load_cas_npz, load_result_json
from hamnet.viz.plots import plot_map_vs_tiou, plot_video, select_classes

__all__ = [
    "SavedVideoOutputs",
    "load_cas_npz",
    "load_result_json",
    "plot_map_vs_tiou",
    "plot_video",
    "select_classes",
]
