"""Speed of ``hamnet analyze`` against DETAD's own code at ActivityNet-1.2 validation scale.

The data are bench_eval.py's (2383 videos, 100 classes, 100 detections per video, tIoU
0.50:0.05:0.95, from ``--seed``), written once as one ground-truth file and one detections
file that both tools read: the ground truth carries DETAD's per-instance fields
(``length``, ``coverage``, ``num-instances``, derived from the segments as hamnet derives
them) and the detections DETAD's required ``external_data`` key; hamnet ignores both.

Like for like, two modes, each a whole process (interpreter start to files written):

* ``figures``: what each tool does when run as documented: ``hamnet analyze`` (the three
  analyses, ``diagnosis.json``, three charts as PNG and SVG) against DETAD's three scripts
  (``false_positive_analysis.py``, ``false_negative_analysis.py``,
  ``sensitivity_analysis.py``: three PDFs) run one after another in one process (one
  interpreter start, import and process-pool start-up instead of three: in DETAD's favour);
* ``analyses``: no figures on either side: hamnet's ``analyze`` without the charts (a
  driver process calling ``hamnet.diagnose.command.analyze(..., charts=False)``) against
  the same DETAD process with its plotting functions replaced by the analysis calls they
  make (``split_predictions_by_score_ranges``, ``fn_distribution_by_characteristic``,
  ``compute_average_mAP_N_for_characteristic``), matplotlib still imported as DETAD's
  modules do.

``hamnet analyze`` computes more than DETAD: the counts and the mAP_N per threshold, the
misses per threshold, the sensitivity summary; it reads no T-CAS (only ``hamnet report``
does). DETAD matches the detections three times (one evaluation per script), hamnet once.

DETAD (github:HumamAlwassel/DETAD, ``--detad DIR`` a checkout or an extracted tree with
``src/``) runs from a temporary copy patched for current numpy and no LaTeX:
``astype(np.float)`` / ``astype(np.int)`` -> float64 / int64, ``np.infty`` -> ``np.inf``,
``text.usetex`` off. ``--detad-python`` needs pandas, matplotlib and joblib. DETAD's
process pools (one worker per class for the matching, 100 here, one per threshold for the
error types) are capped at ``--detad-jobs`` (default: the machine's cores; 0 keeps DETAD's
sizes): fewer worker start-ups on a small machine, so faster for DETAD, and 100 processes
on 2 shared cores would slow everyone else.

Printed: wall and CPU times (user + sys of the process and its reaped children), the
load average before and after, the ratios, and the largest difference between the
numbers both compute (error-type shares and counts per threshold and averaged, shares per
rank slice, mAP_N gains, top-10G mAP_N, misses per bin and threshold, sensitivity per bin,
overall mAP_N per threshold).

    python benchmarks/bench_analyze.py [--videos 2383] [--seed 0] [--repeats 3]
        [--mode figures|analyses|both] [--detad DETAD_DIR --detad-python PYTHON]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import synthetic_detections, synthetic_ground_truth  # noqa: E402

from hamnet.data.annotations import save_gt_json  # noqa: E402
from hamnet.localize.detections import save_detections  # noqa: E402

ERROR_NAMES = {
    "True Positive": "true_positive",
    "Double Detection Err": "double_detection",
    "Wrong Label Err": "wrong_label",
    "Localization Err": "localization",
    "Confusion Err": "confusion",
    "Background Err": "background",
}
CHARACTERISTICS = {"length": "length", "coverage": "coverage", "num-instances": "num_instances"}

HAMNET_NO_CHARTS = """
import sys
from pathlib import Path
from hamnet.diagnose.command import AnalysisRequest, analyze
gt, pred, out = map(Path, sys.argv[1:4])
analyze(AnalysisRequest(out=out, gt=gt, pred=pred, subset="validation", bins="activitynet",
                        charts=False))
"""

DETAD_DRIVER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import false_positive_analysis as fpa
import false_negative_analysis as fna
import sensitivity_analysis as sa

gt, pred, out, figures = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "figures"
seen = {"fn": {}, "sens": {}}
split, fn_by, sens_by = (fpa.split_predictions_by_score_ranges,
                         fna.fn_distribution_by_characteristic,
                         sa.compute_average_mAP_N_for_characteristic)

def kept_split(analysis, groups):
    seen["slices"] = split(analysis, groups)
    return seen["slices"]

def kept_fn(analysis, name):
    seen["fn"][name] = fn_by(analysis, name)
    return seen["fn"][name]

def kept_sens(analysis, name):
    seen["sens"][name] = sens_by(analysis, name)
    return seen["sens"][name]

fpa.split_predictions_by_score_ranges = kept_split
fna.fn_distribution_by_characteristic = kept_fn
sa.compute_average_mAP_N_for_characteristic = kept_sens
draw_fp, draw_fn = fpa.plot_fp_analysis, fna.plot_fn_analysis
draw_sens = sa.plot_sensitivity_analysis

def fp_plot(fp_error_analysis, save_filename, **kw):
    seen["fp"] = fp_error_analysis
    if figures:
        return draw_fp(fp_error_analysis, save_filename, **kw)
    kept_split(fp_error_analysis, fp_error_analysis.limit_factor)

def fn_plot(fn_error_analysis, save_filename, **kw):
    if figures:
        return draw_fn(fn_error_analysis, save_filename, **kw)
    for name in kw["characteristic_names"]:
        kept_fn(fn_error_analysis, name)

def sens_plot(sensitivity_analysis, save_filename, **kw):
    seen["sa"] = sensitivity_analysis
    if figures:
        return draw_sens(sensitivity_analysis, save_filename, **kw)
    for name in kw["characteristic_names"]:
        kept_sens(sensitivity_analysis, name)

fpa.plot_fp_analysis, fna.plot_fn_analysis = fp_plot, fn_plot
sa.plot_sensitivity_analysis = sens_plot
seconds = {}
for key, module in (("false_positive", fpa), ("false_negative", fna), ("sensitivity", sa)):
    start = time.perf_counter()
    module.main(gt, "validation", pred, out, False)
    seconds[key] = time.perf_counter() - start
    with open(out + "/progress.json", "w") as handle:  # to follow a long run
        json.dump(seconds, handle)

def number(x):
    x = float(x)
    return None if x != x else x

fp = seen["fp"]
per_t = lambda frame: [{k: number(frame[t][k]) for k in frame.index} for t in fp.tiou_thresholds]
_, _, shares = seen["slices"]
numbers = {
    "seconds": seconds,
    "fp_fractions": per_t(fp.fp_error_types_precentage_df),
    "fp_fractions_avg": {k: number(v) for k, v in fp.fp_error_types_precentage_df["avg"].items()},
    "fp_counts": per_t(fp.fp_error_types_count_df),
    "fp_detections": len(fp.prediction),
    "fp_average_mAP_N": float(fp.average_mAP),
    "fp_mAP_N": [float(v) for v in fp.mAP],
    "fp_gain": {k: float(v) for k, v in fp.average_mAP_gain.items()},
    "fp_slices": [{k: number(v) for k, v in shares[g]["avg"].items()} for g in sorted(shares)],
    "fn": {
        name: {
            "avg": {b: number(v) for b, v in frames["avg"]["unmatched"].items()},
            "per_tiou": [{b: number(v) for b, v in frames[t]["unmatched"].items()}
                         for t in list(frames)[:-1]],
        }
        for name, frames in seen["fn"].items()
    },
    "sens": {name: {b: number(v) for b, v in values.items()}
             for name, values in seen["sens"].items()},
    "sens_average_mAP_N": float(seen["sa"].average_mAP),
    "sens_mAP_N": [float(v) for v in seen["sa"].mAP],
}
with open(out + "/detad_numbers.json", "w") as handle:
    json.dump(numbers, handle)
"""


def write_inputs(folder: Path, seed: int, videos: int, classes: int, per_video: int):
    """One ground-truth file and one detections file that both tools read."""
    rng = np.random.default_rng(seed)
    annotations = synthetic_ground_truth(rng, videos, classes)
    detections = synthetic_detections(rng, annotations, per_video)
    gt_path, pred_path = folder / "gt.json", folder / "pred.json"
    save_gt_json(annotations, gt_path)
    tree = json.loads(gt_path.read_text())
    for entry in tree["database"].values():
        for note in entry["annotations"]:
            start, end = note["segment"]
            note["length"] = end - start
            note["coverage"] = (end - start) / entry["duration"]
            note["num-instances"] = len(entry["annotations"])
    gt_path.write_text(json.dumps(tree))
    save_detections(pred_path, detections)
    tree = json.loads(pred_path.read_text())
    tree.setdefault("external_data", {})
    pred_path.write_text(json.dumps(tree))
    return gt_path, pred_path, len(detections)


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU time (user + sys of the process and its reaped children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{Path(command[0]).name} failed:\n{done.stderr[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stdout


def time_hamnet(gt: Path, pred: Path, out: Path, mode: str, repeats: int):
    """Best wall and best CPU time of ``repeats`` whole processes; the diagnosis written."""
    if mode == "figures":
        command = [sys.executable, "-m", "hamnet.cli", "analyze", "--gt", str(gt)]
        command += ["--pred", str(pred), "--out", str(out), "--subset", "validation"]
        command += ["--bins", "activitynet"]
    else:
        command = [sys.executable, "-c", HAMNET_NO_CHARTS, str(gt), str(pred), str(out)]
    runs = [timed(command)[:2] for _ in range(repeats)]
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    return min(w for w, _ in runs), min(c for _, c in runs), diagnosis


def patched_detad(source: Path, folder: Path, jobs: int | None) -> Path:
    """DETAD's src/ copied and patched for numpy >= 1.24 and no LaTeX (see the docstring)."""
    code = folder / "detad"
    code.mkdir()
    for path in (source / "src").glob("*.py"):
        text = path.read_text()
        text = text.replace(".astype(np.float)", ".astype(np.float64)")
        text = text.replace(".astype(np.int)", ".astype(np.int64)")
        text = text.replace("np.infty", "np.inf").replace(
            "'text.usetex': True", "'text.usetex': False"
        )
        if jobs:
            for size in ("len(self.activity_index)", "len(self.tiou_thresholds)"):
                text = text.replace(f"n_jobs={size}", f"n_jobs=min({jobs}, {size})")
        (code / path.name).write_text(text)
    return code


def time_detad(code: Path, gt: Path, pred: Path, out: Path, mode: str, python: str):
    out.mkdir(parents=True, exist_ok=True)
    command = [python, "-c", DETAD_DRIVER, str(code), str(gt), str(pred), str(out), mode]
    wall, cpu, _ = timed(command)
    return wall, cpu, json.loads((out / "detad_numbers.json").read_text())


def compared(detad: dict, ours: dict) -> list[tuple[str, float | None, float | None]]:
    """(what, DETAD's value, hamnet's value) for every number both compute."""
    keys = [f"{t:g}" for t in ours["tiou"]]
    fp, fn, sens = ours["false_positive"], ours["false_negative"], ours["sensitivity"]
    pairs = [("fp detections", detad["fp_detections"], fp["detections"])]
    for theirs, name in ERROR_NAMES.items():
        pairs.append(
            (
                f"fp share avg {name}",
                detad["fp_fractions_avg"][theirs],
                fp["fractions"]["avg"][name],
            )
        )
        for t, key in enumerate(keys):
            pairs.append(
                (
                    f"fp share {name} @{key}",
                    detad["fp_fractions"][t][theirs],
                    fp["fractions"][key][name],
                )
            )
            pairs.append(
                (f"fp count {name} @{key}", detad["fp_counts"][t][theirs], fp["counts"][key][name])
            )
        for k, row in enumerate(fp["by_rank"]):
            mine = row["fractions"][name] if row["fractions"] else None
            pairs.append((f"fp slice {row['slice']} {name}", detad["fp_slices"][k][theirs], mine))
        if name != "true_positive":
            pairs.append(
                (f"fp gain {name}", detad["fp_gain"][theirs], fp["average_mAP_N_gain"][name])
            )
    pairs.append(("fp average mAP_N", detad["fp_average_mAP_N"], fp["average_mAP_N"]))
    pairs.append(("sensitivity average mAP_N", detad["sens_average_mAP_N"], sens["average_mAP_N"]))
    for t, key in enumerate(keys):
        pairs.append((f"fp mAP_N @{key}", detad["fp_mAP_N"][t], fp["mAP_N"][key]))
        pairs.append((f"sensitivity mAP_N @{key}", detad["sens_mAP_N"][t], sens["mAP_N"][key]))
    for theirs, name in CHARACTERISTICS.items():
        for row in fn[name]:
            per_tiou = row["missed_fraction_per_tiou"] or {}
            pairs.append(
                (
                    f"fn {name} {row['bin']}",
                    detad["fn"][theirs]["avg"].get(row["bin"]),
                    row["missed_fraction"],
                )
            )
            for t, key in enumerate(keys):
                value = detad["fn"][theirs]["per_tiou"][t].get(row["bin"])
                pairs.append((f"fn {name} {row['bin']} @{key}", value, per_tiou.get(key)))
        for row in sens[name]:
            pairs.append(
                (
                    f"sensitivity {name} {row['bin']}",
                    detad["sens"][theirs].get(row["bin"]),
                    row["average_mAP_N"],
                )
            )
    return pairs


def agreement(pairs) -> tuple[float, str, int]:
    """Largest |difference| over the pairs both define, the worst one, and how many
    pairs disagree on being defined at all (inf when any does)."""
    worst, where, undefined = 0.0, "-", 0
    for what, theirs, mine in pairs:
        if theirs is None or mine is None:
            undefined += (theirs is None) != (mine is None)
            continue
        gap = abs(float(theirs) - float(mine))
        if gap > worst or math.isnan(gap):
            worst, where = gap, what
    return (math.inf if undefined else worst), where, undefined


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2383)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--per-video", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=["figures", "analyses", "both"], default="both")
    parser.add_argument("--detad", type=Path, help="DETAD's tree (holding src/)")
    parser.add_argument("--detad-python", default=sys.executable)
    parser.add_argument(
        "--detad-jobs",
        type=int,
        default=os.cpu_count(),
        help="cap DETAD's process pools (0: DETAD's own sizes)",
    )
    parser.add_argument("--detad-mode", choices=["figures", "analyses", "both"])
    args = parser.parse_args()
    modes = ["figures", "analyses"] if args.mode == "both" else [args.mode]
    detad_modes = args.detad_mode or args.mode
    detad_modes = ["figures", "analyses"] if detad_modes == "both" else [detad_modes]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        gt, pred, count = write_inputs(folder, args.seed, args.videos, args.classes, args.per_video)
        print(f"{args.videos} videos, {args.classes} classes, {count} detections, 10 thresholds")
        print(f"load average (1/5/15 min) at the start: {load()}")
        ours = {}
        for mode in modes:
            wall, cpu, diagnosis = time_hamnet(
                gt, pred, folder / f"hamnet-{mode}", mode, args.repeats
            )
            ours[mode] = (wall, cpu, diagnosis)
            print(
                f"hamnet analyze ({mode}), whole process: {wall:.2f} s wall, {cpu:.2f} s CPU "
                f"(best of {args.repeats}; load {load()})"
            )
        if args.detad is None:
            return
        code = patched_detad(args.detad, folder, args.detad_jobs)
        for mode in detad_modes:
            wall, cpu, numbers = time_detad(
                code, gt, pred, folder / f"detad-{mode}", mode, args.detad_python
            )
            parts = ", ".join(f"{k} {v:.0f} s" for k, v in numbers["seconds"].items())
            print(
                f"DETAD ({mode}), whole process: {wall:.1f} s wall, {cpu:.1f} s CPU ({parts}; "
                f"load {load()})"
            )
            for ours_mode, (our_wall, our_cpu, _) in ours.items():
                kind = (
                    "like for like"
                    if ours_mode == mode
                    else (
                        "hamnet draws, DETAD does not: a lower bound"
                        if mode == "analyses"
                        else "DETAD draws, hamnet does not"
                    )
                )
                print(
                    f"  hamnet ({ours_mode}) is {wall / our_wall:.0f}x faster by wall time, "
                    f"{cpu / our_cpu:.0f}x by CPU time ({kind})"
                )
            diagnosis = (ours.get(mode) or next(iter(ours.values())))[2]
            pairs = compared(numbers, diagnosis)
            worst, where, undefined = agreement(pairs)
            print(
                f"  numbers: {len(pairs)} compared, largest |difference| {worst:.1e} ({where}); "
                f"defined on one side only: {undefined}; equal to 1e-12: {worst <= 1e-12}"
            )
        print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
