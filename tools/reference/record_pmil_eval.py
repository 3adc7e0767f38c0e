"""How the official P-MIL numbers in docs/benchmarks.md and tests/evaluate/test_convert.py
were recorded (not run in CI).

1. Fetch github:RenHuan1999/CVPR2023_P-MIL @ 855e683 and extract it to /tmp/pmil.
2. A venv with numpy, pandas and joblib (P-MIL's evaluator needs no torch: ``utils`` is
   imported with a stand-in ``torch`` module, as only ``filter_segments`` is used).
3. ``python record_pmil_eval.py ANNOTATIONS DETECTIONS.json`` with ANNOTATIONS a folder in
   P-MIL's layout (``../shared/data/thumos14`` as it is; for the test excerpt, its videos
   written with ``save_released_annotations(..., duration_2d=True)`` and ``labels.npy``
   saved again with ``str`` labels, as in the released file).

What it runs is P-MIL's test path (main.py ``test`` -> utils.get_prediction ->
eval_detection.ANETdetection) minus the model: each detection in snippet units as
dataset.py reads proposals (``round(s * 25/16, 2)``), its label index in classlist.npy,
``utils.filter_segments`` against Ambiguous_test.txt, then ANETdetection(tIoU 0.1..0.7,
subset "test"), whose ground truth is ``round(s * 25/16)``. The AP of each class is the
official ``compute_average_precision_detection``; the mean is over the classes with ground
truth (all 20 on the full test subset, where this equals ``ANETdetection.evaluate``; the
official loop raises KeyError for a class without ground truth, as in the excerpt).
joblib runs one job instead of 20 (same results).
"""

import json
import sys
import types

import joblib
import numpy as np
import pandas as pd

sys.path.insert(0, "/tmp/pmil")
stand_in = types.ModuleType("torch")
stand_in.no_grad = lambda: lambda f: f
stand_in.nn = types.ModuleType("torch.nn")
stand_in.nn.functional = types.ModuleType("torch.nn.functional")
sys.modules.update(
    {"torch": stand_in, "torch.nn": stand_in.nn, "torch.nn.functional": stand_in.nn.functional}
)
import eval_detection  # noqa: E402
import utils  # noqa: E402

eval_detection.Parallel = lambda n_jobs: joblib.Parallel(n_jobs=1)
FACTOR = 25.0 / 16.0


def predictions(results, classlist, ambilist, filter_ambiguous=True):
    frames = []
    for video, entries in results.items():
        rows = [
            [
                round(e["segment"][0] * FACTOR, 2),
                round(e["segment"][1] * FACTOR, 2),
                classlist.index(e["label"]),
                e["score"],
            ]
            for e in entries
        ]
        rows = np.array(rows, dtype=float).reshape(-1, 4)
        if filter_ambiguous and len(rows):
            rows = utils.filter_segments(rows, video, ambilist).reshape(-1, 4)
        frames.append(
            pd.DataFrame(
                {
                    "video-id": [video] * len(rows),
                    "t-start": rows[:, 0],
                    "t-end": rows[:, 1],
                    "label": rows[:, 2].astype(int),
                    "score": rows[:, 3],
                }
            )
        )
    return pd.concat(frames).reset_index(drop=True)


def class_aps(detector, prediction):
    truth, by_label = detector.ground_truth.groupby("label"), prediction.groupby("label")
    present = set(detector.ground_truth["label"])
    return {
        name: eval_detection.compute_average_precision_detection(
            truth.get_group(index).reset_index(drop=True),
            detector._get_predictions_with_label(by_label, name, index),
            detector.tiou_thresholds,
        ).tolist()
        for name, index in detector.activity_index.items()
        if index in present
    }


def main(annotations, detections):
    classlist = [c.decode() for c in np.load(annotations + "/classlist.npy", allow_pickle=True)]
    with open(annotations + "/Ambiguous_test.txt") as lines:
        ambilist = [a.strip("\n").split(" ") for a in lines]
    with open(detections) as handle:
        results = json.load(handle)["results"]
    detector = eval_detection.ANETdetection(
        annotations, tiou_thresholds=np.linspace(0.1, 0.7, 7), subset="test"
    )
    for filtered in (True, False):
        prediction = predictions(results, classlist, ambilist, filtered)
        aps = class_aps(detector, prediction)
        mean = np.mean(list(aps.values()), axis=0)
        print(
            json.dumps(
                {
                    "filter_segments": filtered,
                    "detections": len(prediction),
                    "mAP": mean.tolist(),
                    "average_mAP": float(mean.mean()),
                    "per_class": {str(k): v for k, v in aps.items()},
                }
            )
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
