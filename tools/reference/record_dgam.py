"""How tests/methods/fixtures/dgam_official_{thumos,anet}.json were recorded (not run in CI).

1. Fetch github:bfshi/DGAM-Weakly-Supervised-Action-Localization @ 752bd45 and extract it
   to /tmp/dgam-ref.
2. Make it run on the CPU with today's numpy (nothing else changed):
   - lib/core/config.py: `config.DATASET_NAME = os.environ.get('DGAM_DATASET', 'THUMOS14')`
     (the file hard-codes THUMOS14; ActivityNet12 is the other value it knows);
   - every `.cuda()` dropped (loss.py, function.py), `device='cuda'` -> `'cpu'` (model.py);
   - `np.int` -> `int`, `np.float` -> `np.float64` (removed from numpy);
     utils.py's unused `from torch._six import ...` line dropped;
   - a stub `matplotlib.pyplot` in /tmp/dgam-ref/stubs (only bar_figure, for TensorBoard).
3. A venv with scipy, easydict, torch and torchvision (torchvision.ops.nms, the official
   NMS): recorded with torch 2.14.1 / torchvision 0.29.1 on the CPU.
4. `DGAM_DATASET=THUMOS14 python tools/reference/record_dgam.py`, then with
   `DGAM_DATASET=ActivityNet12`: it builds the seeded case of
   tests/methods/reference_cases.py (dgam_case), writes it in the official dataset layout
   (test_data/{rgb,flow}_features/N.npy, test_labels.npy, the video list), runs the
   official test_final (its detections JSON), the official attention and class
   probabilities of every test video, one official train() epoch of each stream on a
   one-batch loader (its logged loss terms and each model's and VAE's parameter
   changes) and the official initial weights of two seeds.
"""

# the recorder; the reference's modules are imported once its folders are on the path
# ruff: noqa: E402
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [
    "/tmp/dgam-ref/stubs",
    "/tmp/dgam-ref/lib",
    "/tmp/dgam-ref",
    str(REPO / "tests/methods"),
]
import numpy as np
import torch
from core import function as ref_function
from core.config import config
from dataset import dataset as ref_dataset
from models import model as ref_model
from reference_cases import dgam_case
from utils.utils import create_optimizer

DATASET = config.DATASET_NAME
ANET = DATASET == "ActivityNet12"
CLASSES = 100 if ANET else 20
WORK = Path(f"/tmp/dgam-work/{DATASET}")
EPOCH = 150  # the ramp min(epoch, 300) / 300 at 0.5


def tensors(d):
    return {k: torch.from_numpy(np.array(v)) for k, v in d.items()}


def models(case):
    out = {}
    for s in ("rgb", "flow"):
        model, cvae = ref_model.create_model(), ref_model.create_cvae()
        model.load_state_dict(tensors(case["streams"][s]["model"]))
        cvae.load_state_dict(tensors(case["streams"][s]["cvae"]))
        out[s] = (model, cvae)
    return out


def write_dataset(case):
    names = [f"video_test_{i:07d}" for i in range(len(case["videos"]))]
    for s, part in (("rgb", slice(0, 1024)), ("flow", slice(1024, 2048))):
        folder = WORK / "test_data" / f"{s}_features"
        folder.mkdir(parents=True, exist_ok=True)
        for i, video in enumerate(case["videos"]):
            np.save(folder / f"{i + 1}.npy", video[:, part])
    labels = np.zeros((len(names), CLASSES))
    for i, lab in enumerate(case["video_labels"]):
        labels[i, lab] = 1
    np.save(WORK / "test_data" / "test_labels.npy", labels)
    (WORK / "test_data" / config.DATASET.TEST_VID_LIST).write_text("\n".join(names) + "\n")
    config.DATASET.DATAROOT = str(WORK)
    config.DATASET.VIDEONUM_TEST = len(names)
    config.OUTPUT_DIR = str(WORK)
    return names


def outputs_and_detections(case):
    names = write_dataset(case)
    nets = models(case)
    data = {s: ref_dataset.get_dataset(mode="test", modality=s) for s in ("rgb", "flow")}
    videos = []
    with torch.no_grad():
        for i, name in enumerate(names):
            row = {"name": name}
            for s in ("rgb", "flow"):  # test_final's lines 220-227, per stream
                x = torch.Tensor(data[s].__getitem__(i, sampling_method="uniform")[0])
                model = nets[s][0]
                att = model.att_head(x)
                fg = (x * att).sum(dim=0, keepdim=True) / att.sum(dim=0, keepdim=True)
                prob = torch.softmax(model.clf_head(fg), dim=1)[:, :CLASSES]
                row[f"attention_{s}"] = att[:, 0].tolist()
                row[f"probabilities_{s}"] = prob[0].tolist()
            videos.append(row)
        path = ref_function.test_final(data["rgb"], nets["rgb"][0], data["flow"], nets["flow"][0])
    results = json.loads(Path(path).read_text())["results"]
    detections = [
        [name, config.DATASET.CLASS.index(d["label"]), float(d["score"]), *map(float, d["segment"])]
        for name, rows in results.items()
        for d in rows
    ]
    return videos, detections


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.values = []

    def emit(self, record):
        if isinstance(record.msg, torch.Tensor):
            self.values.append(float(record.msg))


def one_epoch(case, stream):
    """train() with epoch_num 1 on a one-batch 'loader': one VAE step, one model step."""
    model, cvae = models(case)[stream]
    model, cvae = torch.nn.DataParallel(model), torch.nn.DataParallel(cvae)
    part = slice(0, 1024) if stream == "rgb" else slice(1024, 2048)
    x = torch.from_numpy(case["batch"][:, :, part].copy())
    label = torch.from_numpy(np.concatenate([case["labels"], np.zeros((3, 1))], axis=1))
    before = {
        **{f"model.{k}": v.clone() for k, v in model.module.state_dict().items()},
        **{f"cvae.{k}": v.clone() for k, v in cvae.module.state_dict().items()},
    }
    optimizer, optimizer_cvae = create_optimizer(config, model), create_optimizer(config, cvae)
    capture = Capture()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(capture)
    torch.manual_seed(7)
    ref_function.train([(x, label)], model, cvae, optimizer, optimizer_cvae, EPOCH, 1, stream)
    root.removeHandler(capture)
    after = {
        **{f"model.{k}": v for k, v in model.module.state_dict().items()},
        **{f"cvae.{k}": v for k, v in cvae.module.state_dict().items()},
    }
    step = {}
    for k, v in after.items():
        delta = (v - before[k]).double()
        step[k] = {"abs": delta.abs().sum().item(), "sum": delta.sum().item()}
    mse, kld, fg, bg, guide, recon = capture.values
    return {
        "mse": mse,
        "kld": kld,
        "fg": fg,
        "bg": bg,
        "guide": guide,
        "recon": recon,
        "step": step,
    }


def initial(seed):
    """train_all.py:43, 67-88: the seed, then two models and two VAEs in that order."""
    torch.manual_seed(seed)
    made = [
        ref_model.create_model(),
        ref_model.create_model(),
        ref_model.create_cvae(),
        ref_model.create_cvae(),
    ]
    out = {}
    for prefix, module in zip(("rgb", "flow", "cvae_rgb", "cvae_flow"), made, strict=True):
        for k, v in module.state_dict().items():
            flat = v.double().flatten()
            out[f"{prefix}.{k}"] = {
                "sum": flat.sum().item(),
                "first": flat[0].item(),
                "last": flat[-1].item(),
            }
    return out


def saved_layout(case):
    """train_all.py:173-177: the saved file is best_model.state_dict() after
    my_load_state_dict of the DataParallel model's."""
    model = torch.nn.DataParallel(models(case)["rgb"][0])
    best = ref_model.create_model()
    best.my_load_state_dict(model.state_dict(), strict=True)
    return {k: list(v.shape) for k, v in best.state_dict().items()}


if __name__ == "__main__":
    case = dgam_case(classes=CLASSES)
    videos, detections = outputs_and_detections(case)
    record = {
        "code": "github:bfshi/DGAM-Weakly-Supervised-Action-Localization@752bd45",
        "dataset": DATASET,
        "torch": torch.__version__,
        "epoch": EPOCH,
        "videos": videos,
        "detections": detections,
        "train": {s: one_epoch(case, s) for s in ("rgb", "flow")},
        "initial": {str(s): initial(s) for s in (0, 4995387260619361098)} if not ANET else {},
        "saved_keys": saved_layout(case),
    }
    kind = "anet" if ANET else "thumos"
    out = REPO / f"tests/methods/fixtures/dgam_official_{kind}.json"
    out.write_text(json.dumps(record, separators=(",", ":")))
    print(out, len(detections), "detections")
