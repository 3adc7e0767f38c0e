"""How tests/localize/fixtures/fustal_pseudo_official.json was recorded (not run in CI).

FuSTAL's detection-level pseudo-label rules, run as the official code has them, on
seeded synthetic detections:

- ``nms``: CoLA's NMS (CrossVideo-Generator/core/utils.py:167-190), called per class in
  the order the classes first appear, as train_generator.py:162 calls it on its proposal
  dictionary;
- ``select``: THUMOS14Dataset.get_data (Student-Training/libs/datasets/thumos14.py:213-279)
  in training mode on a stand-in dataset object whose proposals are the case's rows (fps 1,
  16 frames replaced by 0, stride 1: its feature grid is then seconds; no crop);
- ``merge``: merge_box (Student-Training/libs/utils/train_utils.py:829-850), whose IoU bar
  0.1 is written into it.

1. Fetch github:fqhank/FuSTAL @ 3037b4e and extract CrossVideo-Generator/ and
   Student-Training/ to /tmp/fustal-pseudo-ref (the repository's ckpt/pseudo_proposals.json
   blob is not needed).
2. Nothing of it is edited: the modules are loaded as they are, with stand-ins for what
   they import but these functions do not use (scipy, terminaltables, the compiled NMS,
   CoLA's config and evaluators) and ``Tensor.cuda`` as the identity (the official code
   moves its IoU matrices to the GPU; the numbers are the CPU's).
3. Run with hamnet's venv: ``python tools/reference/record_fustal_pseudo.py``.
"""

import json
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = Path("/tmp/fustal-pseudo-ref")
OUT = ROOT / "tests" / "localize" / "fixtures" / "fustal_pseudo_official.json"
sys.path[:0] = [str(REF / "Student-Training")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from module_stubs import stub  # noqa: E402  (tools/reference, the script's folder)

THUMOS_CLASSES = ["BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk"]


def load_reference():
    """CoLA's utils, the student's train_utils and its THUMOS14 dataset module."""
    import importlib.util

    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    stub("scipy")
    stub("scipy.interpolate", interp1d=None)
    stub("terminaltables", AsciiTable=None)
    libs = stub("libs")
    libs.__path__ = [str(REF / "Student-Training" / "libs")]
    utils = stub("libs.utils", batched_nms=None, ANETdetection=None)
    utils.__path__ = [str(REF / "Student-Training" / "libs" / "utils")]
    stub("libs.utils.postprocessing", postprocess_results=None)
    stub("libs.utils.cola_config", cfg=None)
    stub("libs.utils.eval_detection", ANETdetection_cola=None)
    from libs.utils import train_utils

    utils.calculate_iou_matrix = train_utils.calculate_iou_matrix
    datasets = stub("libs.datasets")
    datasets.__path__ = [str(REF / "Student-Training" / "libs" / "datasets")]
    from libs.datasets import thumos14

    path = REF / "CrossVideo-Generator" / "core" / "utils.py"
    spec = importlib.util.spec_from_file_location("cola_utils", path)
    cola = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cola)
    return cola, train_utils, thumos14


def clustered_rows(rng, count, classes, duration=120.0, short=False):
    """Detections around a few action centres (a weak teacher's dense firing) plus
    scattered ones: [class, score, start, end] rows with distinct scores."""
    centres = rng.uniform(5, duration - 5, size=4)
    rows = []
    for _ in range(count):
        if rng.random() < 0.8:
            centre = rng.choice(centres) + rng.normal(0, 1.5)
            length = rng.uniform(0.3, 2.0) if short else rng.uniform(1.0, 12.0)
        else:
            centre, length = rng.uniform(0, duration), rng.uniform(0.5, 8.0)
        start = max(0.0, centre - length / 2)
        rows.append([int(rng.integers(classes)), 0.0, start, start + length])
    scores = rng.permutation(np.linspace(-0.3, 1.2, count)) + rng.uniform(0, 1e-3, count)
    for row, score in zip(rows, scores, strict=True):
        row[1] = float(score)
    return rows


def record_nms(cola):
    cases = []
    for seed, iou, short in [(0, 0.5, False), (1, 0.5, True), (2, 0.3, False), (3, 0.7, True)]:
        rows = clustered_rows(np.random.default_rng(seed), 40, 3, short=short)
        by_class = {}
        for row in rows:
            by_class.setdefault(row[0], []).append(row)
        kept = [r for v in by_class.values() for r in cola.nms(v, iou)]
        cases.append({"seed": seed, "iou": iou, "rows": rows, "kept": kept})
    return cases


def record_select(thumos14):
    cases = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in (10, 11, 12):
            rng = np.random.default_rng(seed)
            rows = clustered_rows(rng, 30, len(THUMOS_CLASSES))
            for row in rows:
                row[1] = float(np.clip(row[1], 0, 1))  # a teacher's scores in [0, 1]
            name = f"video_{seed}"
            np.save(Path(folder) / f"{name}.npy", np.zeros((8, 2), dtype=np.float32))
            found = thumos14.THUMOS14Dataset.get_data(select_stand_in(folder, name, rows), name)
            kept = {
                "segments": found["segments"].double().tolist(),
                "labels": [THUMOS_CLASSES[i] for i in found["labels"].tolist()],
            }
            cases.append({"seed": seed, "rows": named(rows), "kept": kept})
    return cases


def named(rows):
    return [[THUMOS_CLASSES[c], score, start, end] for c, score, start, end in rows]


def select_stand_in(folder, name, rows):
    """The attributes get_data reads: the training split with the case's proposals."""
    proposals = {name: [{"label": c, "score": s, "segment": [a, b]} for c, s, a, b in named(rows)]}
    item = {"id": name, "fps": 1, "duration": 200.0, "segments": None, "labels": None}
    return types.SimpleNamespace(
        id_list=[name],
        data_list=(item,),
        feat_folder=folder,
        file_prefix="",
        file_ext=".npy",
        downsample_rate=1,
        feat_stride=1,
        num_frames=0,
        is_training=True,
        proposals=proposals,
        max_seq_len=2304,
        trunc_thresh=0.5,
        crop_ratio=None,
    )


def record_merge(train_utils):
    cases = []
    cases_spec = [(20, 1, False), (21, 1, True), (22, 3, False), (23, 4, True)]
    for seed, classes, zero_length in cases_spec:
        rng = np.random.default_rng(seed)
        rows = clustered_rows(rng, 30, classes)
        if zero_length:
            for row in rows[3:6]:
                row[3] = row[2]
        segs = torch.tensor([[r[2], r[3]] for r in rows], dtype=torch.float32)
        scores = torch.tensor([r[1] for r in rows], dtype=torch.float32)
        labels = torch.tensor([r[0] for r in rows])
        out_segs, out_scores, out_labels = train_utils.merge_box(segs, scores, labels)
        cases.append(
            {
                "seed": seed,
                "rows": rows,
                "segments": out_segs.double().tolist(),
                "scores": out_scores.double().tolist(),
                "labels": out_labels.tolist(),
                # merge_box indexes its labels before dropping zero-length rows and never
                # drops the merged ones: its labels are the intended ones only for one class
                "labels_comparable": classes == 1,
            }
        )
    return cases


def main():
    cola, train_utils, thumos14 = load_reference()
    record = {
        "source": "github:fqhank/FuSTAL @ 3037b4e (tools/reference/record_fustal_pseudo.py)",
        "nms": record_nms(cola),
        "select": record_select(thumos14),
        "merge": record_merge(train_utils),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    kept = [len(c["kept"]) for c in record["nms"]]
    kept += [len(c["kept"]["labels"]) for c in record["select"]]
    print(OUT, "kept:", kept, "merged:", [len(c["scores"]) for c in record["merge"]])


if __name__ == "__main__":
    main()
