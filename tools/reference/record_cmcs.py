"""How tests/methods/fixtures/cmcs_official.{json,npz} were recorded (not run in CI).

1. Extract github:Finspire13/CMCS-Temporal-Action-Localization @ d03f480 to
   /tmp/cmcs-ref (`git show HEAD:<file>` per file: a few large label and model files of
   the mirror are absent, none of them used here).
2. Make it importable on the CPU with today's packages, nothing else changed:
   - stub modules in /tmp/cmcs-ref/stubs: `matlab` (`engine.start_matlab`, `double`),
     `matplotlib` (`pyplot`, `gridspec`), `pandas`, `torchvision.models`, `logger`;
   - utils.py:148-167 `np.load('misc/...npy')` -> `np.load(..., allow_pickle=True)`
     (numpy >= 1.16.3 refuses the repo's own pickled class-name dicts otherwise);
   - scipy and scikit-image in /tmp/cmcs-pylib (`pip install --target`, numpy removed
     so hamnet's venv numpy is used).
3. Run `PYTHONPATH=/tmp/cmcs-pylib /work/venv/bin/python tools/reference/record_cmcs.py`.
   It loads the seeded case of tests/methods/reference_cases.py (cmcs_case) into three
   official BackboneNets (configs/thumos-I3D.json's model_params, 21 outputs), runs
   test.py's get_features (its source, taken out of the `__main__` block by `ast`) for
   the four modalities, detect.py's detect (likewise; detect_params of the config,
   proc_value converted as utils.load_config_file does) on the saved CAS files,
   train.py's losses on the training items (eval mode: no dropout) and one Adam update
   per stream (train.py:203-205, 268, 319), and BackboneNet's default initial weights
   after torch.manual_seed(0); then the rgb modality's detections again with the
   released THUMOS14 RGB model (tests/methods/fixtures/cmcs_released) in place of the
   seeded rgb weights.
"""

import ast
import json
import os
import sys
import tempfile
from pathlib import Path

REF = Path("/tmp/cmcs-ref")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REF / "stubs"), str(REF), str(ROOT / "tests" / "methods")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

os.chdir(REF)  # utils.py reads misc/*.npy relative to the working directory
import model as ref_model  # noqa: E402
import train as ref_train  # noqa: E402
import utils as ref_utils  # noqa: E402
from reference_cases import cmcs_case  # noqa: E402

ref_train.device = torch.device("cpu")  # train.py:19 (.to(device) in the diversity loss)
CONFIG = json.loads((REF / "configs" / "thumos-I3D.json").read_text())
FPS, STRIDE = 25.0, 16


def build(in_width: int, state: dict | None) -> torch.nn.Module:
    params = dict(CONFIG["model_params"], class_num=21)
    net = ref_model.BackboneNet(in_features=in_width, **params)
    if state is not None:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return net


def main_function(path: Path, name: str, namespace: dict):
    """The nested function ``name`` of a script's __main__ block, compiled as written."""
    tree = ast.parse(path.read_text())
    found = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    code = compile(ast.Module(body=[found], type_ignores=[]), str(path), "exec")
    exec(code, namespace)
    return namespace[name]


def record_outputs(case, nets, folder: Path) -> dict:
    """test.py get_features for every modality: CAS files per video."""
    get_features = main_function(
        REF / "test.py",
        "get_features",
        {
            "torch": torch,
            "np": np,
            "os": os,
            "device": torch.device("cpu"),
            "model_params": CONFIG["model_params"],
        },
    )
    loader = []
    for i, x in enumerate(case["videos"]):
        t = torch.from_numpy(x)
        loader.append(
            {
                "video_name": [f"video_{i}"],
                "rgb": t[None, None, :, :1024],
                "flow": t[None, None, :, 1024:],
            }
        )
    dirs = {}
    for modality in ("both", "rgb", "flow", "late-fusion"):
        dirs[modality] = folder / modality
        get_features(loader, nets["rgb"], nets["flow"], nets["both"], modality, str(dirs[modality]))
    return dirs


def record_detections(case, dirs) -> dict:
    dataset = {}
    for i, x in enumerate(case["videos"]):
        frames = STRIDE * len(x) + 8
        dataset[f"video_{i}"] = {"duration": frames / FPS, "frame_rate": FPS, "frame_cnt": frames}
    captured = []
    namespace = {
        "np": np,
        "os": os,
        "softmax": __import__("detect").softmax,
        "dataset_dicts": {"test": dataset},
        "action_class_num": 20,
        "feature_type": "i3d",
        "sample_rate": STRIDE,
        "base_snippet_size": 16,
        "dataset_name": "thumos14",
        "interpolate": ref_utils.interpolate,
        "normalize": ref_utils.normalize,
        "detect_with_thresholding": ref_utils.detect_with_thresholding,
        "mask_to_detections": ref_utils.mask_to_detections,
        "output_detections_thumos14": lambda out, name: captured.append(out),
    }
    detect = main_function(REF / "detect.py", "detect", namespace)
    params = dict(CONFIG["detect_params"])
    params["proc_value"] = int(params["proc_value"] * STRIDE)  # utils.py:82-83
    found = {}
    for modality, folder in dirs.items():
        rows = detect(str(folder), "test", "unused", **params)
        found[modality] = [[r[0], float(r[1]), float(r[2]), int(r[3]), float(r[4])] for r in rows]
    return found


def record_losses(case, nets) -> tuple[dict, dict]:
    """train.py:236-268 on each item (eval mode), then one Adam step per stream."""
    criterion = torch.nn.CrossEntropyLoss()
    weight_div = CONFIG["diversity_weight"]
    terms, deltas = {}, {}
    for stream, net in nets.items():
        net.eval()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        optimizer = torch.optim.Adam(
            net.parameters(), lr=CONFIG["learning_rate"], weight_decay=CONFIG["weight_decay"]
        )
        optimizer.zero_grad()
        sums = {"cls": 0.0, "div": 0.0, "norm": 0.0}
        for video, tag in case["items"]:
            x = torch.from_numpy(case["train"][video])
            if tag == 20:
                x = x[torch.from_numpy(case["static_rows"][case["static_rows"] < len(x)])]
                weight = 1.0
            else:
                weight = 1.0 / case["labels"][video].sum()
            x = {"rgb": x[:, :1024], "flow": x[:, 1024:], "both": x}[stream]
            _, _, out, scores, _ = net(x[None].transpose(2, 1))
            label = torch.tensor([tag])
            w = torch.tensor([weight], dtype=torch.float32)
            loss_cls = criterion(out, label) * w
            loss_div = ref_train.get_diversity_loss(scores) * w * weight_div
            loss_norm = ref_train.get_norm_regularization(scores) * w * weight_div
            (loss_cls + loss_div + loss_norm).backward()
            sums["cls"] += loss_cls.item()
            sums["div"] += loss_div.item()
            sums["norm"] += loss_norm.item()
        optimizer.step()
        terms[stream] = sums
        deltas[stream] = {
            k: {
                "l1": float((v - before[k]).abs().sum()),
                "head": (v - before[k]).flatten()[:6].tolist(),
            }
            for k, v in net.state_dict().items()
        }
    return terms, deltas


def record_init() -> dict:
    torch.manual_seed(0)
    net = build(1024, None)
    return {
        k: {"sum": float(v.sum()), "head": v.flatten()[:5].tolist()}
        for k, v in net.state_dict().items()
    }


def main() -> None:
    case = cmcs_case()
    nets = {
        s: build(2048 if s == "both" else 1024, case["weights"][s]) for s in ("rgb", "flow", "both")
    }
    with tempfile.TemporaryDirectory() as scratch:
        dirs = record_outputs(case, nets, Path(scratch))
        arrays = {}
        for modality, folder in dirs.items():
            for i in range(len(case["videos"])):
                saved = np.load(folder / f"video_{i}.npz")
                for key in ("avg_score", "weight", "global_score"):
                    arrays[f"{modality}/{i}/{key}"] = np.asarray(saved[key], dtype=np.float32)
        detections = record_detections(case, dirs)
    released = torch.load(
        ROOT / "tests/methods/fixtures/cmcs_released/model-rgb-15000", weights_only=True
    )
    nets["rgb"] = build(1024, {k: v.numpy() for k, v in released.items()})
    with tempfile.TemporaryDirectory() as scratch:
        dirs = record_outputs(case, nets, Path(scratch))
        released_rgb = record_detections(case, {"rgb": dirs["rgb"]})["rgb"]
    nets["rgb"] = build(1024, case["weights"]["rgb"])
    terms, deltas = record_losses(case, nets)
    fixtures = ROOT / "tests" / "methods" / "fixtures"
    np.savez_compressed(fixtures / "cmcs_official.npz", **arrays)
    content = {
        "detections": detections,
        "released_rgb_detections": released_rgb,
        "losses": terms,
        "step": deltas,
        "init": record_init(),
    }
    (fixtures / "cmcs_official.json").write_text(json.dumps(content, indent=0))
    print({m: len(d) for m, d in detections.items()}, len(released_rgb), terms)


if __name__ == "__main__":
    main()
