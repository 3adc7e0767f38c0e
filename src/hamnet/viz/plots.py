"""Figures: the qualitative timeline of one video and mAP against tIoU.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (never ``pyplot``), so no
display and no global figure registry are involved, and each file is written atomically.
Raw per-video network outputs come from the ``.npz`` files ``hamnet test --save-cas``
writes; this module reads them with ``allow_pickle=False`` and imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hamnet import argcheck
from hamnet.data.annotations import Segment
from hamnet.errors import ConfigError, DataError
from hamnet.io import atomic_path
from hamnet.viz.colours import class_colour
from hamnet.viz.outputs import SavedVideoOutputs

FORMATS = ("png", "svg", "pdf")
# Text stays text in SVG (searchable, editable); a fixed salt makes SVG ids reproducible.
_RC = {"svg.fonttype": "none", "svg.hashsalt": "hamnet", "font.size": 8}
_LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0), "frameon": False}
_METADATA = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


@dataclass(frozen=True)
class _Bar:
    label: str
    score: float
    start: float
    end: float
    hit: bool | None = None  # true positive at the figure's tIoU (None: no ground truth)


def _as_bar(index: int, detection: Any) -> _Bar:
    """A detection record (attributes label/score/start/end) or dict (label/score/segment)."""
    try:
        if isinstance(detection, Mapping):
            if "segment" in detection:
                start, end = detection["segment"]
            else:
                start, end = detection["start"], detection["end"]
            label, score = detection["label"], detection["score"]
        else:
            label, score = detection.label, detection.score
            start, end = detection.start, detection.end
        return _Bar(str(label), float(score), float(start), float(end))
    except (KeyError, AttributeError, TypeError, ValueError) as error:
        raise DataError(f"detection #{index}: malformed record ({error!r})") from None


def select_classes(
    outputs: SavedVideoOutputs,
    ground_truth: Sequence[Segment] = (),
    classes_to_show: Sequence[str] | None = None,
    max_classes: int = 3,
) -> list[str]:
    """Classes whose T-CAS is drawn: ``classes_to_show`` if given, else every
    ground-truth class (first-appearance order) topped up with the highest video scores
    until ``max_classes`` (ground-truth classes are kept even beyond it)."""
    known = set(outputs.classes)
    if classes_to_show is not None:
        chosen = list(dict.fromkeys(classes_to_show))
        wanted = "class to show"
    else:
        chosen = list(dict.fromkeys(seg.label for seg in ground_truth))
        wanted = "ground-truth label"
    for name in chosen:
        if name not in known:
            raise DataError(
                f"{outputs.origin}: {wanted} {name!r} is not among its {len(known)} classes"
            )
    if classes_to_show is not None:
        return chosen
    for index in np.argsort(-outputs.video_scores, kind="stable"):
        if len(chosen) >= max_classes:
            break
        if outputs.classes[index] not in chosen:
            chosen.append(outputs.classes[index])
    return chosen


def plot_video(
    outputs: SavedVideoOutputs,
    out: str | Path | Sequence[str | Path],
    *,
    title: str,
    ground_truth: Sequence[Segment] = (),
    detections: Sequence = (),
    classes_to_show: Sequence[str] | None = None,
    max_classes: int = 3,
    min_score: float = 0.0,
    max_detections: int = 10,
    tiou: float = 0.5,
    thresholds: Sequence[float] = (),
) -> list[Path]:
    """Qualitative timeline of one video, saved to every path of ``out``.

    Rows on one time axis (seconds): ground-truth segments, attention (and actionness
    when it differs) with the localization ``thresholds`` as dotted lines, softmax T-CAS
    probability of the selected classes (:func:`select_classes`), and the
    ``max_detections`` best detections scoring at least ``min_score``, their score as a
    colour bar (opacity) and, with ground truth, marked true or false positive at
    ``tiou`` (ActivityNet matching, on all of the video's detections). A class keeps its
    colour (its index in the class list) with or without ground truth. Returns the
    written paths; the format follows each suffix.
    """
    _check_plot_arguments(tiou, min_score, max_detections, max_classes, thresholds)
    paths = _output_paths(out)
    shown = select_classes(outputs, ground_truth, classes_to_show, max_classes)
    bars = [_as_bar(i, det) for i, det in enumerate(detections)]
    if ground_truth:
        bars = _mark_hits(bars, list(ground_truth), tiou)
    bars = sorted((b for b in bars if b.score >= min_score), key=lambda b: -b.score)
    bars = bars[:max_detections]
    labels = [*shown, *(seg.label for seg in ground_truth), *(bar.label for bar in bars)]
    colours = _class_colours(outputs.classes, labels)
    with matplotlib.rc_context(_RC):
        figure = _timeline_figure(
            outputs, title, list(ground_truth), bars, shown, colours, (tiou, thresholds)
        )
        return _save(figure, paths)


def _class_colours(classes: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Colour by index in the video's class list (stable across figures and the report)."""
    index = {name: i for i, name in enumerate(classes)}
    extra = [name for name in dict.fromkeys(labels) if name not in index]
    for name in extra:  # a label outside the class list still gets its own colour
        index[name] = len(index)
    return {name: class_colour(index[name]) for name in dict.fromkeys(labels)}


def _check_plot_arguments(tiou, min_score, max_detections, max_classes, thresholds) -> None:
    argcheck.check_tiou(tiou)
    argcheck.check_number(min_score, "min_score", finite=False)
    if min_score != min_score:
        raise ConfigError("min_score must be a number, got nan")
    argcheck.check_int(max_detections, "max_detections", minimum=0)
    argcheck.check_int(max_classes, "max_classes", minimum=0)
    argcheck.check_numbers(list(thresholds), "thresholds")


def _mark_hits(bars: list[_Bar], ground_truth: list[Segment], tiou: float) -> list[_Bar]:
    """Each detection flagged true positive or not, as the ActivityNet evaluator would:
    per class, best score first, each takes the free instance of highest tIoU >= ``tiou``."""
    taken: set[int] = set()
    flags: dict[int, bool] = {}
    for i in sorted(range(len(bars)), key=lambda k: -bars[k].score):
        bar, best, best_iou = bars[i], None, tiou
        for j, seg in enumerate(ground_truth):
            if seg.label != bar.label or j in taken:
                continue
            inter = max(0.0, min(bar.end, seg.end) - max(bar.start, seg.start))
            union = (seg.end - seg.start) + (bar.end - bar.start) - inter
            overlap = inter / union if union > 0 else 0.0
            if overlap >= best_iou and (best is None or overlap > best_iou):
                best, best_iou = j, overlap
        if best is not None:
            taken.add(best)
        flags[i] = best is not None
    return [replace(bar, hit=flags[i]) for i, bar in enumerate(bars)]


def _timeline_figure(
    outputs: SavedVideoOutputs,
    title: str,
    ground_truth: list[Segment],
    bars: list[_Bar],
    shown: list[str],
    colours: dict[str, Any],
    lines: tuple[float, Sequence[float]],
) -> Figure:
    bar_rows = _pack_rows(bars)
    panels = [("gt", 0.5)] if ground_truth else []
    panels += [("attention", 1.0), ("cas", 1.6)]
    panels += [("detections", 0.3 + 0.22 * len(bar_rows))] if bars else []
    heights = [height for _, height in panels]
    figure = Figure(figsize=(10, 1.2 + 1.4 * sum(heights)), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, height_ratios=heights, squeeze=False)
    axes_by_name = {name: ax for (name, _), ax in zip(panels, axes[:, 0], strict=True)}
    times = (np.arange(outputs.num_snippets) + 0.5) * outputs.snippet_seconds
    if ground_truth:
        _draw_ground_truth(axes_by_name["gt"], ground_truth, colours)
    tiou, thresholds = lines
    ends = [outputs.duration, *(s.end for s in ground_truth), *(b.end for b in bars)]
    _draw_attention(axes_by_name["attention"], outputs, times, thresholds)
    _draw_cas(axes_by_name["cas"], outputs, times, shown, colours)
    if bars:
        _draw_detections(axes_by_name["detections"], bars, bar_rows, colours, tiou, max(ends))
        _score_colour_bar(figure, axes_by_name["detections"], bars, colours)
    bottom = axes[-1, 0]
    bottom.set_xlim(0.0, max(ends))
    bottom.set_xlabel("time (s)")
    figure.suptitle(title)
    return figure


def _draw_ground_truth(ax: Any, ground_truth: list[Segment], colours: dict[str, Any]) -> None:
    for label in dict.fromkeys(seg.label for seg in ground_truth):
        spans = [(s.start, s.end - s.start) for s in ground_truth if s.label == label]
        ax.broken_barh(spans, (0.1, 0.8), facecolors=colours[label], label=label)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("ground\ntruth", rotation=0, ha="right", va="center")
    ax.legend(**_LEGEND)


def _draw_attention(
    ax: Any, outputs: SavedVideoOutputs, times: np.ndarray, thresholds: Sequence[float]
) -> None:
    ax.plot(times, outputs.attention, color="black", linewidth=1.0, label="attention")
    if not np.allclose(outputs.actionness, outputs.attention, atol=1e-6):
        label = f"actionness ({outputs.source})"
        ax.plot(times, outputs.actionness, color="tab:gray", linestyle="--", label=label)
    for k, level in enumerate(thresholds):
        label = f"localization thresholds ({len(thresholds)})" if k == 0 else None
        ax.axhline(level, color="tab:blue", linestyle=":", linewidth=0.6, alpha=0.7, label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("attention")
    ax.legend(**_LEGEND)


def _draw_cas(
    ax: Any,
    outputs: SavedVideoOutputs,
    times: np.ndarray,
    shown: list[str],
    colours: dict[str, Any],
) -> None:
    probabilities = outputs.class_probabilities()
    for name in shown:
        index = outputs.classes.index(name)
        label = f"{name} (video score {outputs.video_scores[index]:.2f})"
        ax.plot(times, probabilities[:, index], color=colours[name], label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("T-CAS\nsoftmax probability")
    if shown:
        ax.legend(**_LEGEND)


def _pack_rows(bars: list[_Bar]) -> list[tuple[str, list[_Bar]]]:
    """Rows of the detection panel: the classes in order of their best bar; inside a
    class, bars that overlap go to separate rows (best first), so none hides another."""
    rows: list[tuple[str, list[_Bar]]] = []
    for label in dict.fromkeys(bar.label for bar in bars):
        lanes: list[list[_Bar]] = []
        for bar in (b for b in bars if b.label == label):
            free = (m for m in lanes if all(bar.end <= o.start or bar.start >= o.end for o in m))
            lane = next(free, None)
            if lane is None:
                lanes.append(lane := [])
            lane.append(bar)
        rows += [(label, lane) for lane in lanes]
    return rows


def row_labels(labels: list[str]) -> list[str]:
    """One name per row: a class's second and later rows say which row they are."""
    seen: dict[str, int] = {}
    named = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        named.append(label if seen[label] == 1 else f"{label} (row {seen[label]})")
    return named


def _score_norm(bars: list[_Bar]) -> tuple[float, float]:
    low, high = min(bar.score for bar in bars), max(bar.score for bar in bars)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _draw_detections(
    ax: Any,
    bars: list[_Bar],
    rows: list[tuple[str, list[_Bar]]],
    colours: dict,
    tiou: float,
    extent: float,
) -> None:
    low, high = _score_norm(bars)
    for row, (_, members) in enumerate(rows):
        for bar in members:
            # opacity encodes the score (colour bar beside the panel; scores may be negative)
            alpha = 0.2 + 0.8 * (bar.score - low) / (high - low)
            width, colour = bar.end - bar.start, colours[bar.label]
            edge = {None: "none", True: "tab:green", False: "tab:red"}[bar.hit]
            style = "--" if bar.hit is False else "-"
            ax.barh(row, width, left=bar.start, height=0.7, color=colour, alpha=alpha)
            ax.barh(
                row,
                width,
                left=bar.start,
                height=0.7,
                fill=False,
                edgecolor=edge,
                linewidth=1.4,
                linestyle=style,
            )
            if width >= 0.07 * extent:  # a label only where it fits inside its bar
                ax.text(bar.start, row, f" {bar.score:.2f}", ha="left", va="center")
    ax.set_yticks(range(len(rows)), row_labels([label for label, _ in rows]))
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_ylabel("detections")
    handles = [Patch(facecolor="white", edgecolor="black", label=f"top {len(bars)} by score")]
    if any(bar.hit is not None for bar in bars):
        handles += [
            Patch(facecolor="white", edgecolor="tab:green", label=f"true positive (tIoU {tiou:g})"),
            Patch(facecolor="white", edgecolor="tab:red", linestyle="--", label="false positive"),
        ]
    ax.legend(handles=handles, **_LEGEND)


def _score_colour_bar(figure: Figure, ax: Any, bars: list[_Bar], colours: dict) -> Any:
    """The opacity scale of the detection bars, labelled in scores: in the bars' own
    colour when they are of one class, else in black with the rule said."""
    low, high = _score_norm(bars)
    classes = list(dict.fromkeys(bar.label for bar in bars))
    red, green, blue = to_rgb(colours[classes[0]]) if len(classes) == 1 else (0, 0, 0)
    ramp = ListedColormap([(red, green, blue, 0.2 + 0.8 * k / 255) for k in range(256)])
    mappable = ScalarMappable(norm=Normalize(low, high), cmap=ramp)
    bar = figure.colorbar(mappable, ax=ax, location="bottom", shrink=0.35, aspect=30, pad=0.02)
    how = "bar opacity" if len(classes) == 1 else "opacity of each class's colour"
    bar.set_label(f"detection score ({how})")
    return bar


def _output_paths(out: str | Path | Sequence[str | Path]) -> list[Path]:
    """The requested files; every suffix must name a format before anything is drawn."""
    paths = [Path(out)] if isinstance(out, str | Path) else [Path(p) for p in out]
    if not paths:
        raise ConfigError("no output path given for the figure")
    for path in paths:
        if path.suffix.lower().lstrip(".") not in FORMATS:
            raise ConfigError(
                f"{path}: unsupported figure format {path.suffix!r} (use one of {FORMATS})"
            )
    return paths


def _save(figure: Figure, paths: list[Path]) -> list[Path]:
    for path in paths:
        fmt = path.suffix.lower().lstrip(".")
        # The temporary file ends in .tmp, so the format is named explicitly.
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=120, metadata=_METADATA[fmt])
    return paths


def plot_map_vs_tiou(
    runs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    out: str | Path | Sequence[str | Path],
    *,
    protocol: str,
    title: str | None = None,
    values_in_percent: bool = False,
) -> list[Path]:
    """mAP (%) against tIoU, one line per run (legend = run label).

    ``runs`` maps a label to (tIoU thresholds, mAP values); mAP values are fractions in
    [0, 1] (as the evaluator reports them) unless ``values_in_percent``.
    """
    paths = _output_paths(out)
    if not runs:
        raise DataError("no run to plot")
    scale = 1.0 if values_in_percent else 100.0
    curves = {label: _checked_curve(label, *run, scale) for label, run in runs.items()}
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(5.5, 4.0), layout="constrained")
        ax = figure.subplots()
        for label, (tious, maps) in curves.items():
            ax.plot(tious, maps, marker="o", markersize=3, label=label)
        ax.set_xlabel("tIoU threshold")
        ax.set_ylabel(f"mAP (%), {protocol} protocol")
        ax.set_ylim(bottom=0.0)
        ax.grid(alpha=0.3)
        ax.legend()
        figure.suptitle(title or f"mAP vs tIoU ({protocol} protocol)")
        return _save(figure, paths)


def _checked_curve(
    label: str, tious: Sequence[float], maps: Sequence[float], scale: float
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(tious, dtype=np.float64)
    y = np.asarray(maps, dtype=np.float64) * scale
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise DataError(f"run {label!r}: tIoU and mAP need the same non-zero length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError(f"run {label!r}: tIoU or mAP holds NaN or infinite values")
    if np.any(y < 0) or np.any(y > 100.0 + 1e-9):
        unit = "percent" if scale == 1.0 else "fractions in [0, 1]"
        raise DataError(f"run {label!r}: mAP values {list(np.asarray(maps))} are not {unit}")
    return x, y
