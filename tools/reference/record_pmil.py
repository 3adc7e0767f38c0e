"""How tests/methods/fixtures/pmil_official.json was recorded (not run in CI).

1. Fetch github:RenHuan1999/CVPR2023_P-MIL @ 855e683; extract model.py and utils.py to
   /tmp/refpmil and drop model.py's `torch.set_default_tensor_type('torch.cuda.FloatTensor')`.
2. A venv with torchvision (roi_align) and pandas (utils.get_prediction):
   `pip install torch==2.14.1 torchvision==0.29.1 pandas` (CPU runs of the CUDA build).
3. Run this file there: the official P_MIL on the seeded case of
   tests/methods/reference_cases.py (pmil_case), eval-mode outputs and get_prediction's
   detections of 5 test videos, criterion() at epoch 3 of a training batch of 4, and the
   parameter changes of one Adam step (lr 5e-5, weight decay 1e-3).
"""

import json
import sys
import types
from pathlib import Path

sys.path[:0] = ["/tmp/refpmil", "/work/main/tests/methods"]
import model as ref_model
import numpy as np
import torch
import utils as ref_utils
from reference_cases import pmil_case

case = pmil_case()
args = types.SimpleNamespace(
    num_class=len(case["classes"]),
    dropout_ratio=0.5,
    feature_size=64,
    max_proposal=1000,
    roi_size=12,
    k=8.0,
    gamma=0.8,
    weight_loss_prop_mil_orig=2,
    weight_loss_prop_mil_supp=1,
    weight_loss_prop_irc=2,
    weight_loss_prop_comp=20,
    rampup_length=30,
    threshold_cls=0.2,
    gamma_vid=0.2,
)


def build():
    net = ref_model.P_MIL(args)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in case["weights"].items()})
    return net


out = {"test": []}
net = build().eval()
names = [f"video_test_{i:07d}".encode() for i in range(len(case["test_features"]))]
dataset = types.SimpleNamespace(
    videonames=names, proposals=[p.astype(np.float64) for p in case["test_proposals"]], ambilist=[]
)
with torch.no_grad():
    for i, (feat, prop) in enumerate(
        zip(case["test_features"], case["test_proposals"], strict=True)
    ):
        outputs = net([torch.from_numpy(feat)], [torch.from_numpy(prop)], is_training=False)
        prediction, pred, video_score = ref_utils.get_prediction(names[i], outputs, dataset, args)
        out["test"].append(
            {
                "outputs": {k: v[0].numpy().tolist() for k, v in outputs.items()},
                "video_score": video_score.tolist(),
                "detections": [
                    [float(r["t-start"]), float(r["t-end"]), int(r["label"]), float(r["score"])]
                    for _, r in prediction.iterrows()
                ],
            }
        )

feats = [torch.from_numpy(f) for f in case["train_features"]]
props = [torch.from_numpy(p) for p in case["train_proposals"]]
labels = torch.from_numpy(case["labels"])
net = build().train()
torch.manual_seed(5)
outputs = net(feats, props)
losses = net.criterion(outputs, labels, props, epoch=3, args=args)
out["losses_epoch3"] = {k: float(v) for k, v in losses.items()}
net = build().train()
before = {k: v.detach().clone() for k, v in net.state_dict().items()}
optimizer = torch.optim.Adam(net.parameters(), lr=5e-5, weight_decay=1e-3)
torch.manual_seed(5)
outputs = net(feats, props)
loss = net.criterion(outputs, labels, props, epoch=3, args=args)["loss_total"]
optimizer.zero_grad()
loss.backward()
optimizer.step()
out["step"] = {
    k: {
        "sum": float((v - before[k]).double().sum()),
        "abs": float((v - before[k]).double().abs().sum()),
    }
    for k, v in net.state_dict().items()
}
Path("/tmp/refpmil/pmil_official.json").write_text(json.dumps(out))
print(out["losses_epoch3"], sum(len(t["detections"]) for t in out["test"]))
