"""Gather a run's numbers into one compact JSON and inline it, with the page's script.

The page needs nothing from the network: the data, the script, the style and the
diagnosis charts (as data URIs) are all inside the one file. Per-video signals are
quantized to bytes (0..255) and base64-encoded, and only the selected video is drawn,
so a page with thousands of videos stays small and quick.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np

from hamnet.data.annotations import AnnotationSet, load_gt_json
from hamnet.diagnose.detection_matching import GroundTruthTable, class_rankings, match_by_class
from hamnet.diagnose.sources import TestOutputs, ensure_test_outputs, guess_subset
from hamnet.errors import DataError
from hamnet.evaluate.protocols import protocol_title
from hamnet.io import (
    atomic_write_text,
    input_files,
    parse_json,
    read_json,
    refuse_overwriting_inputs,
)
from hamnet.localize.detections import load_detections
from hamnet.report.run_record import page_title, run_summary
from hamnet.viz.colours import class_colour_list

log = logging.getLogger(__name__)
MAX_DRAWN_DETECTIONS = 30  # per video, best first; the table counts all of them
MAX_CAS_CLASSES = 3


def build_report(
    run_dir: Path, out: Path | None = None, *, data: Path | None = None, device: str = "auto"
) -> Path:
    """Write the report of ``run_dir`` (default ``RUN_DIR/report.html``); return its path."""
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: run folder not found")
    out = out or run_dir / "report.html"
    inputs = input_files(run_dir, data)
    refuse_overwriting_inputs([out], [p for p in inputs if Path(p) != run_dir / "report.html"])
    outputs = ensure_test_outputs(run_dir, data, device=device)
    payload = collect(run_dir, outputs, device=device)
    atomic_write_text(out, render(payload))
    return out


def collect(run_dir: Path, outputs: TestOutputs, *, device: str = "auto") -> dict:
    info = outputs.read_info()
    annotations = load_gt_json(outputs.ground_truth)
    detections = load_detections(outputs.detections, classes=annotations.classes)
    result = read_json(outputs.result, DataError)
    subset = info.get("subset") or guess_subset(annotations, detections)
    tiou = [float(t) for t in result["tiou"]]
    return {
        "run": run_dir.name,
        "run_path": str(run_dir),
        "info": info,
        "protocol": result.get("protocol"),
        "protocol_title": protocol_title(result.get("protocol")),
        "result": {k: result.get(k) for k in ("tiou", "mAP", "average_mAP", "per_class")}
        | {"classification_mAP": result.get("classification_mAP")},
        "classes": list(annotations.classes),
        "colours": class_colour_list(len(annotations.classes)),
        "metrics": _metrics(run_dir / "metrics.jsonl"),
        "diagnosis": _diagnosis(run_dir, device),
        "videos": _videos(annotations, detections, subset, tiou, outputs.cas_dir),
        "tiou": tiou,
        "run_summary": run_summary(run_dir, result),
    }


def _metrics(path: Path) -> list[dict]:
    """Training records (numbers only), one per epoch."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (corrupt)") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = parse_json(line, f"{path}: line {number}", DataError)
        if not isinstance(record, dict) or not _finite_number(record.get("epoch")):
            raise DataError(f"{path}: line {number} is not a metrics row (no epoch number)")
        rows.append({k: v for k, v in record.items() if _finite_number(v)})
    return rows


def _finite_number(value) -> bool:
    """A number the page can plot: not a bool, not inf/NaN (json reads 1e400 as inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < 1e300


def _diagnosis(run_dir: Path, device: str) -> dict | None:
    """The run's diagnosis (made once in RUN_DIR/diagnosis), charts as data URIs."""
    from hamnet.diagnose.command import AnalysisRequest, analyze
    from hamnet.viz.diagnosis import DIAGNOSIS_CHARTS

    folder = run_dir / "diagnosis"
    if not (folder / "diagnosis.json").is_file():
        analyze(AnalysisRequest(out=folder, run_dir=run_dir, device=device))
    summary = read_json(folder / "diagnosis.json", DataError)
    charts = {}
    for stem in DIAGNOSIS_CHARTS:
        svg = folder / f"{stem}.svg"
        if svg.is_file():
            encoded = base64.b64encode(svg.read_bytes()).decode("ascii")
            charts[stem] = f"data:image/svg+xml;base64,{encoded}"
    return {"summary": summary, "charts": charts}


def _videos(
    annotations: AnnotationSet, detections, subset, tiou: list[float], cas_dir: Path
) -> list[dict]:
    table = GroundTruthTable.build(annotations, detections, subset, drop_like_detad=False)
    thresholds = np.asarray(tiou, dtype=np.float64)
    matched = match_by_class(table, thresholds)
    contribution = _ap_contributions(table, matched)
    class_index = {name: i for i, name in enumerate(annotations.classes)}
    by_video: dict[int, list[int]] = {}
    for i, v in enumerate(table.det_video.tolist()):
        by_video.setdefault(v, []).append(i)
    found = np.zeros((table.gt_class.size, thresholds.size), dtype=bool)
    for t in range(thresholds.size):
        found[matched[:, t][matched[:, t] >= 0], t] = True
    rows = []
    for v, name in enumerate(table.videos):
        video = annotations.video(name)
        members = np.array(by_video.get(v, []), dtype=np.int64)
        gt_rows = table.gt_of_video(v)
        members = members[np.argsort(-table.det_score[members], kind="stable")]
        mask = (matched[members] >= 0) @ (1 << np.arange(thresholds.size))
        row = {
            "n": name,
            "d": round(video.duration, 2),
            "g": [
                [round(s.start, 2), round(s.end, 2), class_index[s.label]] for s in video.segments
            ],
            "p": _drawn(table, class_index, members, mask),
            "nd": int(members.size),
            "tp": (matched[members] >= 0).sum(axis=0).tolist(),
            "miss": (~found[gt_rows]).sum(axis=0).tolist(),
            "ap": [round(float(x), 6) for x in contribution[v]],
        }
        row.update(_signals(cas_dir / f"{name}.npz", video, class_index))
        rows.append(row)
    return rows


def _drawn(table: GroundTruthTable, class_index, members: np.ndarray, mask: np.ndarray):
    """The best detections of a video, compact: [start, end, class, score, TP bits]
    (times to 0.1 s, scores to 3 significant digits; bit t: true positive at tIoU t)."""
    rows = []
    for i, bits in zip(members[:MAX_DRAWN_DETECTIONS], mask[:MAX_DRAWN_DETECTIONS], strict=True):
        start, end = np.round(table.det_segment[i], 1).tolist()
        score = float(f"{table.det_score[i]:.3g}")
        rows.append([start, end, table_class(table, class_index, i), score, int(bits)])
    return rows


def table_class(table: GroundTruthTable, class_index: dict[str, int], i: int) -> int:
    """A detection's index in the full class list (the table indexes evaluated classes)."""
    return class_index[table.classes[int(table.det_class[i])]]


def _ap_contributions(table: GroundTruthTable, matched: np.ndarray) -> np.ndarray:
    """Each video's share of the mAP [V, T]; the shares of all videos sum to the mAP.

    Interpolated AP is a sum over a class's true positives of (precision envelope at
    its rank) / (instances of the class), so every true positive, and thus every
    video, owns an exact part of it.
    """
    shares = np.zeros((len(table.videos), matched.shape[1]))
    npos = table.positives()
    for c, ranked in enumerate(class_rankings(table)):
        if ranked.size == 0 or npos[c] == 0:
            continue
        hits = matched[ranked] >= 0
        tp = np.cumsum(hits, axis=0)
        precision = tp / np.arange(1, ranked.size + 1)[:, None]
        envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
        videos = table.det_video[ranked]
        for t in range(matched.shape[1]):
            rows = hits[:, t] & (videos >= 0)
            np.add.at(shares[:, t], videos[rows], envelope[rows, t] / npos[c])
    return shares / len(table.classes)


def _signals(path: Path, video, class_index: dict[str, int]) -> dict:
    """Attention and the T-CAS of a few classes, as bytes (value * 255) in base64."""
    if not path.is_file():
        return {}
    from hamnet.viz.outputs import load_cas_npz
    from hamnet.viz.plots import select_classes

    outputs = load_cas_npz(path)
    shown = select_classes(outputs, video.segments, max_classes=MAX_CAS_CLASSES)
    probabilities = outputs.class_probabilities()
    cas = []
    for name in shown:
        column = probabilities[:, outputs.classes.index(name)]
        cas.append([class_index[name], _bytes(column)])
    return {"s": outputs.snippet_seconds, "a": _bytes(outputs.attention), "c": cas}


def _bytes(values: np.ndarray) -> str:
    quantized = np.clip(np.round(np.asarray(values, dtype=np.float64) * 255), 0, 255)
    return base64.b64encode(quantized.astype(np.uint8).tobytes()).decode("ascii")


def render(payload: dict) -> str:
    """The page: template + style + script + the data, filled in one pass.

    Each placeholder is replaced once and the inserted text is never searched again,
    so a name holding a placeholder stays a name. The data is JSON with ``<``, ``>``,
    ``&`` and U+2028/9 escaped (it cannot close its script tag), the title is escaped
    as HTML text, and a Content-Security-Policy lets only the page's own script run.
    """
    title = page_title(payload)
    payload = {**payload, "title": title}
    folder = resources.files("hamnet.report")
    template = folder.joinpath("template.html").read_text(encoding="utf-8")
    script = folder.joinpath("report.js").read_text(encoding="utf-8")
    style = folder.joinpath("report.css").read_text(encoding="utf-8")
    parts = {
        "CSP": html.escape(content_security_policy(script, style), quote=True),
        "TITLE": html.escape(title, quote=False),
        "STYLE": style,
        "SCRIPT": script,
        "DATA": script_json(payload),
    }
    for name in ("STYLE", "SCRIPT"):  # our own files: a stray closing tag is a bug
        if f"</{name.lower()}" in parts[name].lower():
            raise AssertionError(f"report.{name.lower()} holds a closing </{name.lower()}> tag")
    return PLACEHOLDER.sub(lambda match: parts[match.group(1)], template)


PLACEHOLDER = re.compile(r"\{\{(CSP|TITLE|STYLE|SCRIPT|DATA)\}\}")
_SCRIPT_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(payload: dict) -> str:
    """JSON safe inside ``<script>``: no character can end the element or the string."""
    text = json.dumps(payload, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda match: _SCRIPT_UNSAFE[match.group(0)], text)


def content_security_policy(script: str, style: str) -> str:
    """Nothing from outside; only the page's own script and style (by hash) run."""
    return (
        f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")
