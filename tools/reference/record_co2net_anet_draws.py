"""How tests/methods/fixtures/co2net_official_anet_draws.json was recorded (not run in CI).

The official ActivityNet training sampler of CO2-Net (github:harlanhong/MM2021-CO2-Net
@ e879687) and DELU (github:MengyuanChen21/ECCV2022-DELU @ a60e46d), unchanged:
``AntSampleDataset`` (wsad_dataset.py:212-350; DELU :217-357) built from the arguments of
the official ActivityNet scripts (run.sh:10; scripts/train_activitynet.sh) by its own
``options.parser``, as main.py:42 does, then ``load_data(n_similar=args.num_similar)`` as
train.py:16 does, batch after batch. The data: ``reference_cases.anet_draws_case`` in the
released layout (``write_anet_draws_root``): 260 training videos, 88 of them of at most
10 snippets, which the official ``filter`` removes from ``trainidx`` after
``classwise_feature_mapping`` built the per-class lists.

The official code draws from numpy's global stream (``setup_seed`` seeds it with
``np.random.seed(seed)``); hamnet draws an epoch's batches from a ``RandomState`` keyed
by (seed, epoch) (``hamnet.data.class_pairs.class_paired_epoch``). The global stream is
seeded here with hamnet's key of (seed 0, epoch 0), so both draw from one stream. With
``sampling='uniform'`` (an official mode, no random draws for the rows) the stream holds
the batch draws only: hamnet must draw the same videos in the same order, batch after
batch. With the training default ``sampling='random'`` each batch's ``random_perturb``
draws its rows from the same stream after that batch's videos: the first batch is the
same, later ones differ (hamnet draws the rows from per-video generators, so that resume
and DataLoader workers repeat them); both are recorded.

1. Fetch both repositories and export them to /tmp/anetdrop-ref/co2 and
   /tmp/anetdrop-ref/delu (``git --git-dir=... archive HEAD | tar -x -C ...``).
2. ``PYTHONPATH=src:tests/methods python tools/reference/record_co2net_anet_draws.py``
   (hamnet's venv: numpy; utils/wsad_utils.py's unused matplotlib and scipy imports are
   stubbed here, nothing of the official files is changed).
"""

import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
from reference_cases import anet_draws_case, write_anet_draws_root

CHECKOUTS = {"co2net": "/tmp/anetdrop-ref/co2", "delu": "/tmp/anetdrop-ref/delu"}
COMMITS = {"co2net": "harlanhong/MM2021-CO2-Net@e879687", "delu": "ECCV2022-DELU@a60e46d"}
OUT = Path("tests/methods/fixtures/co2net_official_anet_draws.json")
SEED, EPOCH, BATCHES = 0, 0, 8


def script_argv(code: str, root: str) -> list[str]:
    """The official ActivityNet training arguments (run.sh:10; train_activitynet.sh)."""
    if code == "co2net":
        return [
            *("--k", "5", "--dataset-name", "ActivityNet1.2", "--path-dataset", root),
            *("--num-class", "100", "--use-model", "ANT_CO2", "--dataset", "AntSampleDataset"),
            *("--lr", "3e-5", "--max-seqlen", "60", "--model-name", "ANT_CO2_3552"),
            *("--seed", "3552", "--max-iter", "22000"),
        ]
    return [
        *("--model_name", "DELU_ACT", "--seed", "0", "--alpha_edl", "1.2"),
        *("--alpha_uct_guide", "0.2", "--amplitude", "0.2", "--alpha2", "0.8"),
        *("--rat_atn", "5", "--k", "5", "--interval", "20", "--dataset_name"),
        *("ActivityNet1.2", "--path_dataset", root, "--num_class", "100"),
        *("--use_model", "DELU_ACT", "--dataset", "AntSampleDataset", "--lr", "3e-5"),
        *("--max_seqlen", "60", "--max_iter", "22000"),
    ]


def stub_plotting_imports() -> None:
    """utils/wsad_utils.py imports matplotlib.pyplot and scipy's interp1d at the top;
    the sampler uses neither."""
    for name in ("matplotlib", "matplotlib.pyplot", "scipy", "scipy.interpolate"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["scipy.interpolate"].interp1d = None


def official_modules(code: str):
    """The checkout's options and wsad_dataset modules (a fresh import per code)."""
    for name in ("options", "wsad_dataset", "utils", "utils.wsad_utils"):
        sys.modules.pop(name, None)
    sys.path.insert(0, CHECKOUTS[code])
    try:
        import options
        import wsad_dataset
    finally:
        sys.path.pop(0)
    return options, wsad_dataset


def official_draws(code: str, root: str, sampling: str) -> dict:
    options, wsad_dataset = official_modules(code)
    args = options.parser.parse_args(script_argv(code, root))
    dataset = getattr(wsad_dataset, args.dataset)(args, sampling=sampling)
    names = [n.decode() for n in dataset.videonames]
    np.random.seed(np.random.SeedSequence([SEED, EPOCH, 7]).generate_state(1))
    batches = []
    for _ in range(BATCHES):
        features, _, _ = dataset.load_data(n_similar=args.num_similar)
        # column 0 of every row holds the video's file position (anet_draws_case)
        batches.append([names[int(i)] for i in features[:, 0, 0]])
    in_lists = sorted({names[i] for videos in dataset.classwiseidx for i in videos})
    return {
        "batches": batches,
        "trainidx": [names[i] for i in dataset.trainidx],
        "classwise": in_lists,
    }


def main() -> None:
    stub_plotting_imports()
    case = anet_draws_case()
    result = {
        "source": COMMITS,
        "seed": SEED,
        "epoch": EPOCH,
        "numpy_seed": np.random.SeedSequence([SEED, EPOCH, 7]).generate_state(1).tolist(),
    }
    with tempfile.TemporaryDirectory() as root:
        write_anet_draws_root(case, root)
        for code in CHECKOUTS:
            result[code] = {s: official_draws(code, root, s) for s in ("uniform", "random")}
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
