"""``hamnet analyze``: inputs resolved, the diagnosis computed, JSON and charts written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hamnet.diagnose.analysis import Diagnosis, diagnose
from hamnet.diagnose.characteristics import default_bin_set
from hamnet.diagnose.sources import ensure_test_outputs, guess_subset, load_inputs
from hamnet.errors import ConfigError
from hamnet.io import atomic_write_json, input_files, refuse_overwriting_inputs

# DETAD's thresholds: 0.5 on THUMOS14, 0.5:0.95:0.05 on ActivityNet
DEFAULT_TIOU = {
    "thumos14": [0.5],
    "activitynet": [round(0.5 + 0.05 * i, 2) for i in range(10)],
}


@dataclass
class AnalysisRequest:
    out: Path
    run_dir: Path | None = None
    data: Path | None = None
    gt: Path | None = None
    pred: Path | None = None
    subset: str | None = None
    tiou: list[float] | None = None
    bins: str | None = None
    device: str = "auto"
    charts: bool = True  # False: diagnosis.json only (no matplotlib)


def analyze(request: AnalysisRequest) -> tuple[Diagnosis, list[Path]]:
    """Run the diagnosis; write ``diagnosis.json`` and the charts (PNG + SVG) to ``out``."""
    gt, pred, subset, hint = _resolve(request)
    written = [request.out / "diagnosis.json", *input_files(request.out, depth=1)]
    refuse_overwriting_inputs(written, [gt, pred, *input_files(request.run_dir, depth=1)])
    annotations, detections = load_inputs(gt, pred)
    if subset is None:
        subset = guess_subset(annotations, detections)
    # a run folder: the run's own tIoU thresholds, and bins that fit them
    run_tiou = hint.get("tiou")
    bins = request.bins or default_bin_set(hint.get("protocol"), hint.get("preset"), run_tiou)
    tiou = request.tiou or run_tiou or DEFAULT_TIOU[bins]
    result = diagnose(annotations, detections, tiou=tiou, bin_set=bins, subset=subset)
    payload = {"ground_truth_file": str(gt), "detections_file": str(pred), "subset": subset}
    payload.update(result.to_dict())
    request.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(request.out / "diagnosis.json", payload, indent=1)
    if not request.charts:
        return result, [request.out / "diagnosis.json"]
    from hamnet.viz.diagnosis import plot_diagnosis

    charts = plot_diagnosis(payload, request.out)
    return result, [request.out / "diagnosis.json", *charts]


def _resolve(request: AnalysisRequest) -> tuple[Path, Path, str | None, dict]:
    """(ground truth, detections, subset, hints for the bins) from the options given."""
    if request.run_dir is not None:
        outputs = ensure_test_outputs(request.run_dir, request.data, device=request.device)
        info = dict(outputs.read_info())
        info["tiou"] = _result_tiou(outputs.result)
        return (
            request.gt or outputs.ground_truth,
            request.pred or outputs.detections,
            request.subset or info.get("subset"),
            info,
        )
    if request.pred is None:
        raise ConfigError("give a run folder, or --pred DETECTIONS with --gt or --data")
    gt = request.gt or _gt_from_data(request.data, request.out)
    return gt, request.pred, request.subset, {}


def _result_tiou(path: Path) -> list[float] | None:
    """The tIoU thresholds the run was evaluated at (its result.json), if readable."""
    from hamnet.io import read_json

    values = read_json(path, ConfigError).get("tiou") if path.is_file() else None
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(t, (int, float)) and 0 < t <= 1 for t in values):
        return None
    return [float(t) for t in values]


def _gt_from_data(data: Path | None, out: Path) -> Path:
    """A dataset root's annotations written as a ground-truth JSON beside the outputs."""
    if data is None:
        raise ConfigError("--pred needs the ground truth: --gt GT.json or --data DATASET_ROOT")
    from hamnet.data.annotations import save_gt_json
    from hamnet.data.layout import open_dataset

    annotations, _, _ = open_dataset(data)
    path = out / "ground_truth.json"
    save_gt_json(annotations, path)
    return path
