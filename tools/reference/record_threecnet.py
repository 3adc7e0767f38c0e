"""How tests/methods/fixtures/threecnet_official_*.json were recorded (not run in CI).

1. Fetch github:naraysa/3c-net @ 8b1d4a9 and extract it to /tmp/ref3c.
2. Make it run on the CPU with today's torch (nothing else changed):
   - drop the `torch.set_default_tensor_type('torch.cuda.FloatTensor')` lines of model.py
     and train.py;
   - center_loss.py:34 `distmat.addmm_(1, -2, feature, self.centers.t())` ->
     `distmat.addmm_(feature, self.centers.t(), beta=1, alpha=-2)` (the removed
     positional signature; same operation);
   - a stub `tensorboard_logger` module (log_value, Logger) in /tmp/ref3c/stubs.
3. Run this file with hamnet's venv: it builds the seeded case of
   tests/methods/reference_cases.py (threecnet_case), runs the official Model forward,
   test.py's classification score, detectionMAP.getLocMAP (its proposals captured by a
   stand-in for its `np`), train.py's three losses and one train() iteration (CenterLoss
   with use_gpu=False), and the seed-1 initial weights.
"""

# the recorder
import json
import sys
import types
from pathlib import Path

sys.path[:0] = ["/tmp/ref3c/stubs", "/tmp/ref3c", "/work/main/tests/methods"]
import center_loss as ref_center
import detectionMAP as ref_dmap
import model as ref_model
import numpy as np
import torch
import train as ref_train
from reference_cases import threecnet_case


def load(net, centers, case):
    state = {k: torch.from_numpy(v) for k, v in case["weights"].items()}
    net.load_state_dict(state)
    cf, cr = centers
    cf.centers.data = torch.from_numpy(case["centers"]["f"]).clone()
    cr.centers.data = torch.from_numpy(case["centers"]["r"]).clone()


def build(case):
    classes = len(case["classes"])
    net = ref_model.Model(2048, classes, None)
    centers = [ref_center.CenterLoss(classes, 1024, use_gpu=False) for _ in range(2)]
    load(net, centers, case)
    return net, centers


class Recorder:
    """Stands in for numpy inside detectionMAP: records each class's proposal array."""

    def __init__(self):
        self.rows = []

    def __getattr__(self, name):
        return getattr(np, name)

    def load(self, *a, **k):  # the files this script wrote (numpy < 1.16.3 default)
        return np.load(*a, allow_pickle=True, **k)

    def array(self, value, *a, **k):
        if isinstance(value, list) and (
            not value or (isinstance(value[0], list) and len(value[0]) == 4)
        ):
            self.rows.append([list(map(float, r)) for r in value])
            if not value:  # keep getLocMAP going past a class without proposals
                return np.array([[-1, 0, 0, -1e9]])
        return np.array(value, *a, **k)


def annotations(case, folder, activity_net):
    import os

    os.makedirs(folder, exist_ok=True)
    names = [f"video_test_{i:07d}" for i in range(len(case["videos"]))]
    rng = np.random.RandomState(3)
    segments, labels = [], []
    for i, feat in enumerate(case["videos"]):
        seg, lab = [], []
        for _ in range(1 + i % 3):
            start = float(rng.uniform(0, len(feat) * 0.64 * 0.7))
            seg.append([start, start + float(rng.uniform(2, 10))])
            lab.append(case["classes"][rng.randint(len(case["classes"]))])
        segments.append(seg)
        labels.append(lab)

    def obj(v):  # a ragged object array, as the released files hold
        return np.array(v + [None], dtype=object)[:-1]

    np.save(f"{folder}/segments.npy", obj(segments), allow_pickle=True)
    np.save(f"{folder}/labels.npy", obj(labels), allow_pickle=True)
    np.save(f"{folder}/videoname.npy", np.array([n.encode() for n in names]))
    np.save(
        f"{folder}/subset.npy", np.array([b"validation" if activity_net else b"test"] * len(names))
    )
    np.save(f"{folder}/classlist.npy", np.array([c.encode() for c in case["classes"]]))
    open(f"{folder}/Ambiguous_test.txt", "w").close()
    return names, segments, labels


def record(classes, activity_net, path):
    case = threecnet_case(classes=classes)
    net, centers = build(case)
    net.eval()
    tcams, out = [], {"videos": []}
    for feat in case["videos"]:
        x = torch.from_numpy(feat)[None]
        seq_len = torch.from_numpy(np.sum(np.max(np.abs(feat[None]), axis=2) > 0, axis=1))
        with torch.no_grad():
            _, lf, _, lr, tcam, _ = net(x, "cpu", is_training=False, seq_len=seq_len)
        topk = int(np.ceil(len(feat) / 8))
        score = sum(
            torch.softmax(torch.topk(v[0], k=topk, dim=0)[0].mean(0), 0).numpy()
            for v in (lf, lr, tcam)
        )
        tcams.append(tcam[0].numpy())
        out["videos"].append({"tcam": tcam[0].numpy().tolist(), "classification": score.tolist()})
    folder = f"/tmp/ref3c/ann{classes}"
    names, segments, labels = annotations(case, folder, activity_net)
    recorder = Recorder()
    ref_dmap.np = recorder
    ref_dmap.getLocMAP(tcams, 0.5, folder, activity_net, list(range(len(names))))
    ref_dmap.np = np
    out["ground_truth"] = {"segments": segments, "labels": labels}
    order = [case["classes"].index(t) for t in sorted({l for lab in labels for l in lab})]
    if classes == 20:
        order = list(range(20))
    out["proposals"] = [
        [order[k], *r] for k, rows in enumerate(recorder.rows) for r in rows
    ]  # [class, video, start, end, score]
    if activity_net:  # 100 classes: a checksum of the T-CAS, not the T-CAS itself
        for video in out["videos"]:
            tcam = np.array(video.pop("tcam"), dtype=np.float64)
            video["tcam_sum"], video["tcam_max"] = float(tcam.sum()), float(tcam.max())
    out["losses"], out["step"] = losses_and_step(case, activity_net)
    Path(path).write_text(json.dumps(out))
    print(path, len(out["proposals"]), out["losses"])


def forward_train(net, case, seed):
    batch = torch.from_numpy(case["batch"])
    seq_len = np.sum(np.max(np.abs(case["batch"]), axis=2) > 0, axis=1)
    torch.manual_seed(seed)
    return net(batch, "cpu", seq_len=torch.from_numpy(seq_len)), seq_len


def losses_and_step(case, activity_net, itr=2, seed=7):
    net, centers = build(case)
    net.train()
    (x_f, lf, x_r, lr, tcam, count_feat), seq_len = forward_train(net, case, seed)
    labels, counts = torch.from_numpy(case["labels"]), torch.from_numpy(case["counts"])
    B = labels.shape[0]
    cls = [ref_train.CLSLOSS(v, seq_len, B, labels, "cpu").item() for v in (lf, lr, tcam)]
    cen = [
        float(ref_train.CENTERLOSS(f, l, labels, seq_len, c, itr, "cpu"))
        for f, l, c in ((x_f, lf, centers[0]), (x_r, lr, centers[1]))
    ]
    cnt = ref_train.COUNTINGLOSS(count_feat, counts, seq_len, "cpu").item()
    losses = {"cls": cls, "center": cen, "count": cnt}
    # one official iteration on the same batch, from the same weights and dropout seed
    net, centers = build(case)
    net.train()
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    before.update(
        {
            "centers_f": centers[0].centers.detach().clone(),
            "centers_r": centers[1].centers.detach().clone(),
        }
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=0.0005)
    sgd = [torch.optim.SGD(c.parameters(), lr=0.1) for c in centers]
    fake = types.SimpleNamespace(load_data=lambda: (case["batch"], case["labels"], case["counts"]))
    args = types.SimpleNamespace(activity_net=activity_net, batch_size=B)
    torch.manual_seed(seed)
    ref_train.train(
        itr,
        fake,
        args,
        net,
        optimizer,
        centers,
        sgd,
        types.SimpleNamespace(log_value=lambda *a: None),
        "cpu",
    )
    after = {k: v.detach() for k, v in net.state_dict().items()}
    after.update(
        {"centers_f": centers[0].centers.detach(), "centers_r": centers[1].centers.detach()}
    )
    step = {
        k: {
            "sum": float((after[k] - before[k]).double().sum()),
            "abs": float((after[k] - before[k]).double().abs().sum()),
        }
        for k in after
    }
    return losses, step


record(6, False, "/tmp/ref3c/threecnet_official_thumos.json")
record(100, True, "/tmp/ref3c/threecnet_official_anet.json")


def initial(classes):
    torch.manual_seed(1)
    net = ref_model.Model(2048, classes, None)
    centers = [ref_center.CenterLoss(classes, 1024, use_gpu=False) for _ in range(2)]
    state = {k: v.detach().double() for k, v in net.state_dict().items()}
    state["centers_f"], state["centers_r"] = (c.centers.detach().double() for c in centers)
    return {
        k: {"sum": float(v.sum()), "first": float(v.flatten()[0]), "last": float(v.flatten()[-1])}
        for k, v in state.items()
    }


for kind, classes in (("thumos", 6), ("anet", 100)):
    path = f"/tmp/ref3c/threecnet_official_{kind}.json"
    out = json.loads(Path(path).read_text())
    out["initial_seed1"] = initial(classes)
    Path(path).write_text(json.dumps(out))
    print("init", kind, len(out["initial_seed1"]))
