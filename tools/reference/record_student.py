"""How tests/methods/fixtures/student_official.npz / .json were recorded (not run in CI).

1. Extract Student-Training/ of github:fqhank/FuSTAL @ 3037b4e to /tmp/student-net-ref
   (`git archive HEAD Student-Training | tar -x -C /tmp/student-net-ref`).
2. Nothing of it is edited: this script loads libs/modeling and libs/utils/train_utils.py
   and lr_schedulers.py as they are, with stand-ins for the modules they import but the
   student's training does not use (the compiled NMS, CoLA's config and evaluators,
   scipy). The official code calls `.cuda()` only in test / pseudo-label helpers not run
   here, so it runs on the CPU unchanged.
3. Run with hamnet's venv, one thread as the test runs:
   `OMP_NUM_THREADS=1 python tools/reference/record_student.py`. On the seeded case
   of tests/methods/student_case.py it records: the initial weights from
   torch.manual_seed(init_rand_seed) (per key: sum, sum of squares), the network outputs
   (every level: cls / start / end logits, offsets) in eval mode per video and in
   training mode on the batch (seeded noise and drop path), the label-assignment
   targets, every loss term of one batch, and three AdamW + clip 1.0 + scheduler + EMA
   steps (warm-up of 4 steps): the parameter and EMA changes, the learning rates and
   the loss normaliser. Outputs are stored as values at seeded positions plus sums.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = Path("/tmp/student-net-ref/Student-Training")
sys.path[:0] = [str(REF), str(ROOT / "tests" / "methods")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from module_stubs import stub  # noqa: E402  (tools/reference, the script's folder)


def load_reference():
    """libs.modeling and the pieces of libs.utils the training uses."""
    stub("scipy")
    stub("scipy.interpolate", interp1d=None)
    libs = stub("libs")
    libs.__path__ = [str(REF / "libs")]
    utils = stub("libs.utils", batched_nms=None)
    utils.__path__ = [str(REF / "libs" / "utils")]
    stub("libs.utils.postprocessing", postprocess_results=None)
    stub("libs.utils.cola_config", cfg=None)
    stub("libs.utils.eval_detection", ANETdetection_cola=None)
    utils.ANETdetection = None
    import libs.modeling as modeling
    from libs.core.config import DEFAULTS, _update_config
    from libs.utils import train_utils

    return modeling, train_utils, DEFAULTS, _update_config


def config(defaults, update):
    import copy

    from student_case import SHAPE

    cfg = copy.deepcopy(defaults)
    d, m, t = cfg["dataset"], cfg["model"], cfg["train_cfg"]
    d.update(input_dim=SHAPE["input_dim"], num_classes=SHAPE["num_classes"])
    d.update(max_seq_len=SHAPE["max_seq_len"])
    m.update(fpn_type="identity", max_buffer_len_factor=6.0, backbone_arch=(2, 2, 5))
    m.update(n_sgp_win_size=SHAPE["sgp_win_size"], num_bins=SHAPE["num_bins"], k=SHAPE["k"])
    m.update(iou_weight_power=0.2, use_trident_head=True, sgp_mlp_dim=SHAPE["sgp_mlp_dim"])
    m.update(input_noise=SHAPE["input_noise"], embd_dim=SHAPE["embd_dim"])
    m.update(fpn_dim=SHAPE["embd_dim"], head_dim=SHAPE["head_dim"])
    t.update(init_loss_norm=100, clip_grad_l2norm=1.0, droppath=SHAPE["droppath"])
    cfg = update(cfg)
    cfg["model"]["train_cfg"]["head_empty_cls"] = []
    return cfg


def sampled(tensor, out, key):
    from student_case import sample_positions

    flat = tensor.detach().double().reshape(-1).numpy()
    out[key + "/values"] = flat[sample_positions(flat.size)]
    out[key + "/sum"] = np.array([flat.sum(), (flat**2).sum()])


def record_outputs(net, video_list, out, prefix, labels=None):
    """Run TriDet's forward up to the heads (its own code path), capture each level."""
    captured = {}

    def hook(name):
        def save(_module, _inputs, result):
            captured[name] = result

        return save

    handles = [
        getattr(net, n).register_forward_hook(hook(n))
        for n in ("cls_head", "start_head", "end_head", "reg_head")
    ]
    result = net(video_list, labels) if labels is not None else None
    if labels is None:
        inputs, masks = net.preprocessing(video_list)
        feats, fmasks = net.backbone(inputs, masks)
        fpn, fmasks = net.neck(feats, fmasks)
        for n in ("cls_head", "start_head", "end_head", "reg_head"):
            getattr(net, n)(fpn, fmasks)
    for h in handles:
        h.remove()
    for name, levels in captured.items():
        for level, value in enumerate(levels):
            sampled(value, out, f"{prefix}/{name}/{level}")
    return result


def record_crops():
    """data_utils.truncate_feats with its random draws replaced by given values: the
    window it takes and the targets it returns."""
    import importlib.util

    from student_case import CROPS

    spec = importlib.util.spec_from_file_location("data_utils", REF / "libs/datasets/data_utils.py")
    data_utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data_utils)
    out = []
    for length, max_len, crop, draws, segments in CROPS:
        queue = list(draws)
        data_utils.random.randint = lambda a, b, q=queue: q.pop(0)
        item = {
            "feats": torch.arange(length, dtype=torch.float32)[None].repeat(2, 1),
            "segments": torch.tensor(segments, dtype=torch.float32),
            "labels": torch.arange(len(segments)),
        }
        got = data_utils.truncate_feats(item, max_len, 0.5, crop)
        rows = got["feats"][0]
        out.append({
            "window": [int(rows[0]), int(rows[-1]) + 1],
            "segments": got["segments"].tolist(),
            "labels": got["labels"].tolist(),
        })  # fmt: skip
    return out


def main():
    from student_case import LR, SEED, STEPS, WARMUP_STEPS, WEIGHT_DECAY, case, perturbation

    modeling, train_utils, defaults, update = load_reference()
    cfg = config(defaults, update)
    data = case()
    out, meta = {}, {}
    torch.manual_seed(SEED)
    net = modeling.make_meta_arch("TriDet", **cfg["model"])
    state = net.state_dict()
    meta["keys"] = list(state)
    for key, value in state.items():
        v = value.double()
        out[f"init/{key}"] = np.array([v.sum().item(), (v**2).sum().item()])
    with torch.no_grad():
        for i, value in enumerate(state.values()):
            value.add_(torch.from_numpy(perturbation(i, tuple(value.shape))))

    def video_list():
        return [
            {
                "feats": torch.from_numpy(v["feats"].T.copy()),
                "segments": torch.from_numpy(v["segments"]),
                "labels": torch.from_numpy(v["labels"]),
                "video_id": f"v{i}",
                "fps": 25.0,
                "duration": 100.0,
                "feat_stride": 4,
                "feat_num_frames": 16,
            }  # fmt: skip
            for i, v in enumerate(data["videos"])
        ]

    labels = torch.from_numpy(np.stack([v["video"] for v in data["videos"]]))
    net.eval()
    with torch.no_grad():
        for i, item in enumerate(video_list()):
            record_outputs(net, [item], out, f"eval/{i}")
    net.train()
    # label assignment on the training-mode points
    points = net.point_generator([torch.zeros(1, 1, 320 // 2**i) for i in range(6)])
    segs = [torch.from_numpy(v["segments"]) for v in data["videos"]]
    labs = [torch.from_numpy(v["labels"]) for v in data["videos"]]
    gt_cls, gt_off = net.label_points(points, segs, labs)
    for b in range(2):
        pos = torch.nonzero(gt_cls[b]).numpy()
        out[f"targets/{b}/positives"] = pos
        out[f"targets/{b}/offsets"] = gt_off[b][gt_cls[b].sum(-1) > 0].double().numpy()
    # one batch: outputs and losses in training mode
    torch.manual_seed(5)
    losses = record_outputs(net, video_list(), out, "train", labels)
    meta["losses"] = {k: float(v) for k, v in losses.items()}
    meta["loss_normalizer"] = float(net.loss_normalizer)
    # three optimisation steps from the perturbed weights
    net.loss_normalizer = cfg["train_cfg"]["init_loss_norm"]
    opt_cfg = dict(cfg["opt"], learning_rate=LR, weight_decay=WEIGHT_DECAY, warmup_epochs=1)
    opt_cfg["epochs"] = 999999999999999999999999999999999999999
    optimizer = train_utils.make_optimizer(net, opt_cfg)
    scheduler = train_utils.make_scheduler(optimizer, opt_cfg, WARMUP_STEPS)
    ema = train_utils.ModelEMA(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    meta["lrs"], meta["step_losses"], meta["normalizers"] = [], [], []
    for step in range(STEPS):
        torch.manual_seed(100 + step)
        meta["lrs"].append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad(set_to_none=True)
        losses = net(video_list(), labels)
        losses["final_loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        ema.update(net)
        meta["step_losses"].append({k: float(v) for k, v in losses.items()})
        meta["normalizers"].append(float(net.loss_normalizer))
    after, ema_after = net.state_dict(), ema.module.state_dict()
    for key in before:
        sampled(after[key] - before[key], out, f"step/{key}")
        sampled(ema_after[key] - before[key], out, f"ema/{key}")
    meta["crops"] = record_crops()
    fixtures = ROOT / "tests" / "methods" / "fixtures"
    index, offset = {}, 0
    for key, value in out.items():  # one flat array (an npz entry per key costs ~300 B)
        index[key] = [offset, list(np.shape(value))]
        offset += int(np.size(value))
    meta["index"] = index
    blob = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in out.values()])
    np.savez_compressed(fixtures / "student_official.npz", values=blob)
    (fixtures / "student_official.json").write_text(json.dumps(meta, separators=(",", ":")) + "\n")
    print({k: meta[k] for k in ("losses", "loss_normalizer", "lrs")})


if __name__ == "__main__":
    main()
