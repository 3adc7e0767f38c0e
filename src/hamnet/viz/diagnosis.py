"""Charts of a diagnosis (``hamnet analyze``): false positives, false negatives, sensitivity.

Each chart reads only the dictionary :meth:`hamnet.diagnose.Diagnosis.to_dict` returns,
so it can be redrawn from ``diagnosis.json`` alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from hamnet.viz.plots import _RC, _output_paths, _save

ERROR_LABELS = {
    "true_positive": "true positive",
    "double_detection": "double detection",
    "wrong_label": "wrong label",
    "localization": "localization",
    "confusion": "confusion",
    "background": "background",
}
# one fixed colour per error type, the same in every chart and in the HTML report
ERROR_COLOURS = {
    "true_positive": "#2ca02c",
    "double_detection": "#9467bd",
    "wrong_label": "#d62728",
    "localization": "#ff7f0e",
    "confusion": "#8c564b",
    "background": "#7f7f7f",
}
CHARACTERISTIC_TITLES = {
    "length": "length (s)",
    "coverage": "coverage of the video",
    "num_instances": "instances per video",
}


def _bin_tick(row: dict) -> str:
    """Bin name, its upper edge (the lower one is the previous bin's) and its size:
    ``S / <=6 / n=12``, the last bin ``XL / >18``; short enough never to collide."""
    low, high = row["range"]
    edge = f">{low:g}" if high is None else f"<={high:g}"
    return f"{row['bin']}\n{edge}\nn={row['instances']}"


def plot_false_positives(diagnosis: dict, out) -> list[Path]:
    """Left: error-type shares per rank slice kG; right: average-mAP_N gain per type."""
    paths = _output_paths(out)
    fp = diagnosis["false_positive"]
    slices = [s for s in fp["by_rank"] if s["detections"]]
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(9.0, 3.6), layout="constrained")
        left, right = figure.subplots(1, 2, width_ratios=[2.2, 1.0])
        bottom = np.zeros(len(slices))
        for name, label in ERROR_LABELS.items():
            values = np.array([100 * s["fractions"][name] for s in slices])
            left.bar(
                [s["slice"] for s in slices],
                values,
                bottom=bottom,
                color=ERROR_COLOURS[name],
                label=label,
                width=0.8,
            )
            bottom += values
        left.set_ylim(0, 100)
        left.set_ylabel("share of detections (%)")
        left.set_xlabel("rank slice [(k-1)G, kG) per class (G = instances of the class)")
        left.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        gains = fp["average_mAP_N_gain"]
        names = [n for n in ERROR_LABELS if n in gains]
        values = [100 * gains[n] for n in names]
        right.barh(range(len(names)), values, color=[ERROR_COLOURS[n] for n in names])
        right.set_yticks(range(len(names)), [ERROR_LABELS[n] for n in names])
        right.invert_yaxis()
        for row, value in enumerate(values):
            right.text(value, row, f" {value:.1f}", va="center", ha="left")
        right.set_xlim(0, max([*values, 1.0]) * 1.3)
        right.set_xlabel("average-mAP_N gain (points)")
        tious = ", ".join(f"{t:g}" for t in diagnosis["tiou"])
        figure.suptitle(
            f"False positives (top {fp['limit_factor']}G per class; tIoU {tious}; "
            f"average-mAP_N {100 * fp['average_mAP_N']:.1f})"
        )
        return _save(figure, paths)


def plot_false_negatives(diagnosis: dict, out) -> list[Path]:
    """Missed fraction of ground-truth instances per characteristic bin."""
    paths = _output_paths(out)
    fn = diagnosis["false_negative"]
    return _per_characteristic(
        paths,
        fn,
        "missed_fraction",
        ylabel="missed instances (%)",
        title=f"False negatives (overall {100 * fn['missed_fraction']:.1f}% missed, "
        f"bins: {diagnosis['bins']})",
        baseline=None,
    )


def plot_sensitivity(diagnosis: dict, out) -> list[Path]:
    """Average-mAP_N per characteristic bin, the overall value as a dashed line."""
    paths = _output_paths(out)
    sens = diagnosis["sensitivity"]
    return _per_characteristic(
        paths,
        sens,
        "average_mAP_N",
        ylabel="average-mAP_N (%)",
        title=f"Sensitivity (overall average-mAP_N {100 * sens['average_mAP_N']:.1f}, "
        f"bins: {diagnosis['bins']})",
        baseline=sens["average_mAP_N"],
    )


def _per_characteristic(paths, section, key, *, ylabel, title, baseline) -> list[Path]:
    names = list(CHARACTERISTIC_TITLES)
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(9.0, 3.4), layout="constrained")
        axes = figure.subplots(1, len(names), sharey=True)
        for ax, name in zip(axes, names, strict=True):
            rows = section[name]
            values = [np.nan if r[key] is None else 100 * r[key] for r in rows]
            ax.bar(range(len(rows)), np.nan_to_num(values), color="#4c72b0", width=0.7)
            for i, value in enumerate(values):
                text = "n/a" if np.isnan(value) else f"{value:.0f}"
                ax.text(i, np.nan_to_num(value), text, ha="center", va="bottom")
            if baseline is not None:
                ax.axhline(100 * baseline, color="black", linestyle="--", linewidth=1)
            ax.set_xticks(range(len(rows)), [_bin_tick(r) for r in rows])
            ax.set_title(CHARACTERISTIC_TITLES[name])
            ax.set_ylim(0, 110)
        axes[0].set_ylabel(ylabel)
        figure.suptitle(title)
        return _save(figure, paths)


# the one list of diagnosis charts: file stem -> how it is drawn (the HTML report reads it)
DIAGNOSIS_CHARTS = {
    "false_positives": plot_false_positives,
    "false_negatives": plot_false_negatives,
    "sensitivity": plot_sensitivity,
}


def plot_diagnosis(diagnosis: dict, out_dir: Path) -> list[Path]:
    """Every chart of :data:`DIAGNOSIS_CHARTS`, each as PNG and SVG, under ``out_dir``."""
    written = []
    for stem, draw in DIAGNOSIS_CHARTS.items():
        written += draw(diagnosis, [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"])
    return written
