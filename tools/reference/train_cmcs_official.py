"""The official CMCS training on a hamnet dataset, for a training comparison (not run in CI;
not yet used for one: about 4 s per update on this 2-core machine).

Setup as tools/reference/record_cmcs.py, plus /tmp/cmcs-ref/train_cpu.py: train.py with
`torch.device('cuda')` -> 'cpu' and `reduction='elementwise_mean'` -> 'mean' (the removed
spelling), and a `logger` stub with `Logger(log_dir).scalar_summary`. Usage:
`PYTHONPATH=/tmp/cmcs-pylib python tools/reference/train_cmcs_official.py STEPS SEED`.
It runs train_cpu.py as __main__ with utils.get_dataset giving the labelled videos of
/tmp/cmcs-e2e/wide3 (one feature sequence each: no oversampled crops, no temporal
offsets, no static masks) and the Matlab classification mAP stubbed;
configs/thumos-I3D.json with max_step_num STEPS + 5, check point STEPS, one run. The
three saved models import with `hamnet import-checkpoint --method cmcs`.
"""

import json
import os
import random
import runpy
import sys
from pathlib import Path

sys.path[:0] = ["/tmp/cmcs-ref/stubs", "/tmp/cmcs-ref", str(Path(__file__).parents[2] / "src")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hamnet.data.layout import open_dataset  # noqa: E402

DATA = Path("/tmp/cmcs-e2e/wide3")
SUBSETS = {"val": "validation", "test": "test"}
ANN, STORE, _ = open_dataset(DATA)


def video_entry(video) -> dict:
    """One video as utils.py's dataset dicts hold it (features [1, T, 1024] per stream)."""
    x = np.asarray(STORE.read(video.name), dtype=np.float32)
    labels, annotations = [], {}
    for segment in video.segments:
        c = ANN.classes.index(segment.label)
        if c not in labels:
            labels.append(c)
            annotations[c] = []
        annotations[c].append([segment.start, segment.end])
    return {
        "duration": video.duration,
        "frame_rate": 25,
        "labels": labels,
        "annotations": annotations,
        "frame_cnt": 16 * len(x) + 8,
        "rgb_feature": x[None, :, :1024],
        "flow_feature": x[None, :, 1024:],
    }


def get_dataset(dataset_name, subset, *args, **kwargs) -> dict:
    return {v.name: video_entry(v) for v in ANN.subset(SUBSETS[subset]) if v.labels}


def main() -> None:
    steps, seed = int(sys.argv[1]), int(sys.argv[2])
    os.chdir("/tmp/cmcs-ref")
    import utils

    utils.get_dataset = get_dataset
    utils.eval_thumos_recog = lambda *a: (None, 0.0)
    config = json.loads(Path("configs/thumos-I3D.json").read_text())
    config.update(
        max_step_num=steps + 5,
        check_points=[steps],
        log_freq=10**9,
        train_run_num=1,
        experiment_naming=f"synth-s{seed}",
    )
    Path("/tmp/cmcs-cmp/synth.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    sys.argv = ["train.py", "--config-file", "/tmp/cmcs-cmp/synth.json"]
    sys.argv += ["--train-subset-name", "val", "--test-subset-name", "test", "--no-test-log"]
    runpy.run_path("/tmp/cmcs-ref/train_cpu.py", run_name="__main__")


if __name__ == "__main__":
    main()
