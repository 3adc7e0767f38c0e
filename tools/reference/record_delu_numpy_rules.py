"""How tests/methods/fixtures/delu_official_numpy_rules.npz was recorded (not run in CI).

The official DELU test rule (github:MengyuanChen21/ECCV2022-DELU @ a60e46d,
proposal_methods.py ``multiple_threshold_hamnet`` and test.py's ``t-end - t-start > 1``),
unchanged, on one video's outputs, in the interpreter's numpy. Its requirements.txt pins
numpy 1.21.6; under numpy >= 2 (NEP 50) the same lines compare the float32 attention
with the float64 thresholds in float64 and sum the OIC score in float32, so a snippet
whose attention equals a threshold's float32 rounding falls on the other side of it.

The outputs: ``video_test_0000405`` of ``hamnet test --save-cas`` on the CO2-Net seed-1
checkpoint of the seed-paper table (demo preset, synthetic THUMOS14-shaped features): of
1,392 videos probed, the one whose official detections differ between numpy 1.26.4 and
2.4.6 (snippet 150's attention is float32(linspace(0.1, 0.9, 20)[10]) = 0.52105266).

1. Export the official checkout to /tmp/deluspread-ref (its Ambiguous_test.txt is read
   from the working directory, as in the official test).
2. Run once in a venv with numpy 1.26 and once with numpy 2 (torch, pandas, scipy too):
   ``python tools/reference/record_delu_numpy_rules.py OUTPUTS.npz /tmp/deluspread-ref``
   Each run adds ``numpy<major>`` detections [class, score, start, end] to the fixture.
"""

import os
import sys
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "tests/methods/fixtures"
FIXTURE = FIXTURES / "delu_official_numpy_rules.npz"


def official_detections(cas: np.ndarray, attention: np.ndarray, name: str, checkout: str):
    sys.argv = ["record"]  # options.py parses the command line at import
    sys.path.insert(0, checkout)
    os.chdir(checkout)
    import proposal_methods

    attention = torch.from_numpy(attention)[None, :, None]
    outputs = {"cas": torch.from_numpy(cas)[None], "attn": attention}
    found = proposal_methods.multiple_threshold_hamnet(name.encode(), outputs)
    found = found[found["t-end"] - found["t-start"] > 1]
    return np.array(
        [[r["label"], r["score"], r["t-start"], r["t-end"]] for _, r in found.iterrows()],
        dtype=np.float64,
    )


def main(outputs_npz: str, checkout: str) -> None:
    with np.load(outputs_npz) as saved:
        cas, attention = saved["cas"].astype(np.float32), saved["attention"].astype(np.float32)
    name = Path(outputs_npz).stem
    rows = official_detections(cas, attention, name, checkout)
    fixture = dict(np.load(FIXTURE)) if FIXTURE.is_file() else {}
    fixture.update(cas=cas, attention=attention, name=np.array(name))
    key = f"numpy{np.__version__.split('.')[0]}"
    fixture[key], fixture[f"{key}_version"] = rows, np.array(np.__version__)
    np.savez_compressed(FIXTURE, **fixture)
    print(f"{FIXTURE}: {len(rows)} official detections under numpy {np.__version__}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
