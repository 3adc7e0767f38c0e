"""How tests/methods/fixtures/student_post_official.npz was recorded (not run in CI).

1. Fetch github:fqhank/FuSTAL @ 3037b4e; extract Student-Training/ to
   /tmp/student-post-ref/Student-Training.
2. Build the official NMS extension there with hamnet's venv:
   `cd Student-Training/libs/utils && /work/venv/bin/python setup.py build_ext --inplace`
   (g++; torch.utils.cpp_extension; gives nms_1d_cpu*.so beside nms.py).
3. Reduce libs/utils/__init__.py to `from .nms import batched_nms` (the rest imports a
   cola_config module the repository lacks, and nothing here needs it).
4. Run this file with hamnet's venv. For each case of tests/methods/student_post_cases.py
   it calls the official TriDet.inference_single_video and TriDet.postprocessing on a
   stand-in object holding the test_* attributes (the thumos_i3d test_cfg with the case's
   overrides), and stores the detections in seconds (segments, scores, labels) in the
   official output order, plus the number of candidates before NMS.
"""

# the recorder
import sys
import types
from pathlib import Path

REF = "/tmp/student-post-ref/Student-Training"
TESTS = Path(__file__).resolve().parents[2] / "tests" / "methods"
sys.path[:0] = [REF, REF + "/libs/utils", str(TESTS)]

import numpy as np  # noqa: E402
from libs.modeling.meta_archs import TriDet  # noqa: E402
from student_post_cases import CASES, META, NUM_BINS, NUM_CLASSES, head_outputs  # noqa: E402

THUMOS_TEST_CFG = {
    "pre_nms_thresh": 0.001,
    "pre_nms_topk": 2000,
    "iou_threshold": 0.1,
    "min_score": 0.001,
    "max_seg_num": 2000,
    "nms_method": "soft",
    "nms_sigma": 0.5,
    "duration_thresh": 0.05,
    "multiclass_nms": True,
    "voting_thresh": 0.7,
}


def official_model(overrides):
    cfg = {**THUMOS_TEST_CFG, **overrides}
    stub = types.SimpleNamespace(
        num_classes=NUM_CLASSES, num_bins=NUM_BINS, use_trident_head=True, training=False
    )
    for key, value in cfg.items():
        setattr(stub, "test_" + key, value)
    stub.decode_offset = lambda *args: TriDet.decode_offset(stub, *args)
    return stub


def run_case(seed, overrides):
    model = official_model(overrides)
    head = head_outputs(seed)
    found = TriDet.inference_single_video(
        model,
        head["points"],
        head["masks"],
        head["cls"],
        head["offsets"],
        head["start"],
        head["end"],
    )
    candidates = int(found["scores"].shape[0])
    found.update(video_id="v", **META)
    out = TriDet.postprocessing(model, [found])[0]
    return candidates, out


def main(path=TESTS / "fixtures" / "student_post_official.npz"):
    arrays = {}
    for name, (seed, overrides) in CASES.items():
        candidates, out = run_case(seed, overrides)
        arrays[name + "/segments"] = out["segments"].numpy().astype(np.float32)
        arrays[name + "/scores"] = out["scores"].numpy().astype(np.float32)
        arrays[name + "/labels"] = out["labels"].numpy().astype(np.int16)
        arrays[name + "/candidates"] = np.array(candidates)
        print(name, "candidates", candidates, "detections", len(out["scores"]))
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    main()
