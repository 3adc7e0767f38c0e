"""Every command end to end on tiny synthetic data, and wrong usage as one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from hamnet.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_root, tiny_overrides):
    """One tiny trained run, shared by the commands that need a checkpoint."""
    from hamnet.config import make_config
    from hamnet.train.trainer import train

    run = tmp_path_factory.mktemp("run")
    train(make_config("demo", "all", tiny_overrides), tiny_root, run, progress=False)
    return run / "last.pt"


def set_args(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for item in overrides for arg in ("--set", item)]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command():
    done = subprocess.run(
        [sys.executable, "-m", "hamnet.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for command in (
        "demo",
        "synth",
        "convert",
        "train",
        "test",
        "eval",
        "predict",
        "plot",
        "ablate",
        "import-checkpoint",
        "extract",
        "config",
    ):
        assert command in done.stdout


def test_every_preset_and_variant_resolves(capsys):
    from hamnet.config import PRESETS
    from hamnet.methods.hamnet.method import VARIANTS

    for preset in PRESETS:
        for variant in VARIANTS:
            code, out, _ = run_cli(capsys, "config", "--preset", preset, "--variant", variant)
            assert code == 0 and f"preset: {preset}" in out


def test_train_test_eval_round_trip(capsys, tiny_root, tiny_overrides, tmp_path):
    sets = set_args(tiny_overrides)
    code, out, _ = run_cli(
        capsys,
        "train",
        "--preset",
        "demo",
        "--data",
        tiny_root,
        "--run-dir",
        tmp_path / "run",
        *sets,
    )
    assert code == 0 and "protocol `anet`" in out
    assert (tmp_path / "run/results.md").is_file()
    code, out, _ = run_cli(
        capsys,
        "test",
        "--checkpoint",
        tmp_path / "run/last.pt",
        "--data",
        tiny_root,
        "--out",
        tmp_path / "det.json",
        "--json",
        tmp_path / "res.json",
        "--save-cas",
        tmp_path / "cas",
    )
    assert code == 0 and "anet" in out
    result = json.loads((tmp_path / "res.json").read_text())
    assert result["protocol"] == "anet" and len(result["mAP"]) == 7
    assert result["average_mAP"] == pytest.approx(np.mean(result["mAP"]))
    npz = sorted((tmp_path / "cas").glob("*.npz"))
    assert npz and set(np.load(npz[0]).files) >= {"cas", "attention", "video_scores"}
    gt = next(tiny_root.glob("*-gt.json"))
    code, out, _ = run_cli(
        capsys,
        "eval",
        "--gt",
        gt,
        "--pred",
        tmp_path / "det.json",
        "--subset",
        "test",
        "--json",
        tmp_path / "eval.json",
    )
    assert code == 0
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["mAP"] == pytest.approx(result["mAP"], abs=1e-12)


def test_predict_json_and_csv(capsys, trained, tiny_root, tmp_path):
    store = next(tiny_root.glob("*-packed"))
    code, _, _ = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        trained,
        "--features",
        store,
        "--out",
        tmp_path / "p.json",
        "--top-k",
        "3",
    )
    assert code == 0
    results = json.loads((tmp_path / "p.json").read_text())["results"]
    assert results and all(len(dets) <= 3 for dets in results.values())
    code, _, _ = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        trained,
        "--features",
        store,
        "--format",
        "csv",
        "--out",
        tmp_path / "p.csv",
        "--min-score",
        "0.1",
    )
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert code == 0 and rows[0].keys() == {"video", "label", "start", "end", "score"}
    assert all(float(r["score"]) >= 0.1 and float(r["end"]) > float(r["start"]) for r in rows)


def test_predict_on_single_npy_files(capsys, trained, tmp_path):
    path = tmp_path / "my_video.npy"
    np.save(path, np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32))
    code, out, _ = run_cli(
        capsys, "predict", "--checkpoint", trained, "--features", path, "--format", "csv"
    )
    assert code == 0 and out.splitlines()[0] == "video,label,start,end,score"


def test_plot_commands_write_valid_figures(capsys, trained, tiny_root, tmp_path):
    code, _, _ = run_cli(
        capsys,
        "test",
        "--checkpoint",
        trained,
        "--data",
        tiny_root,
        "--out",
        tmp_path / "det.json",
        "--save-cas",
        tmp_path / "cas",
        "--json",
        tmp_path / "res.json",
    )
    npz = sorted((tmp_path / "cas").glob("*.npz"))[0]
    gt = next(tiny_root.glob("*-gt.json"))
    code, _, _ = run_cli(
        capsys,
        "plot",
        "video",
        "--npz",
        npz,
        "--gt",
        gt,
        "--pred",
        tmp_path / "det.json",
        "--out",
        tmp_path / "v.png",
        tmp_path / "v.svg",
    )
    assert code == 0
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "v.png").stat().st_size > 5000
    assert b"<svg" in (tmp_path / "v.svg").read_bytes()[:2000]
    code, _, _ = run_cli(capsys, "plot", "map", tmp_path / "res.json", "--out", tmp_path / "m.png")
    assert code == 0 and (tmp_path / "m.png").stat().st_size > 5000
    code, out, _ = run_cli(
        capsys, "table", tmp_path / "res.json", "--labels", "HAM-Net", "--out", tmp_path / "main"
    )
    result = json.loads((tmp_path / "res.json").read_text())
    assert code == 0 and "protocol `anet`" in out
    row = next(line for line in out.splitlines() if line.startswith("| HAM-Net"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:] == [f"{100 * v:.1f}" for v in result["mAP"]] + [
        f"{100 * result['average_mAP']:.1f}"
    ]
    assert (tmp_path / "main.csv").read_text().startswith("method,protocol,mAP@0.1")


def test_ablate_writes_table_with_seeds(capsys, tiny_root, tiny_overrides, tmp_path):
    sets = set_args([*tiny_overrides, "train.epochs=1"])
    code, out, _ = run_cli(
        capsys,
        "ablate",
        "--preset",
        "demo",
        "--data",
        tiny_root,
        "--out",
        tmp_path / "abl",
        "--variants",
        "bcl,all",
        "--seeds",
        "0,1",
        *sets,
    )
    assert code == 0
    table = (tmp_path / "abl/ablation.md").read_text()
    assert "protocol `anet`" in table and "±" in table
    rows = list(csv.DictReader((tmp_path / "abl/ablation.csv").open()))
    assert [r["method"] for r in rows] == ["bcl", "all"]
    assert all(r["seeds"] == "0 1" for r in rows)
    assert (tmp_path / "abl/all/seed1/last.pt").is_file()


def test_train_with_seeds_reports_mean_and_spread(capsys, tiny_root, tiny_overrides, tmp_path):
    sets = set_args([*tiny_overrides, "train.epochs=1"])
    code, out, _ = run_cli(
        capsys,
        "train",
        "--preset",
        "demo",
        "--data",
        tiny_root,
        "--run-dir",
        tmp_path / "run",
        "--seeds",
        "0,1",
        *sets,
    )
    assert code == 0 and "±" in out and "seeds: 0, 1" in out
    assert (tmp_path / "run/seed0/last.pt").is_file() and (tmp_path / "run/seed1/last.pt").is_file()
    row = next(csv.DictReader((tmp_path / "run/results.csv").read_text().splitlines()))
    finals = [
        json.loads((tmp_path / f"run/seed{s}/metrics.jsonl").read_text().splitlines()[-1])
        for s in (0, 1)
    ]
    mean = np.mean([f["average_mAP"] for f in finals])
    assert float(row["average_mAP"]) == pytest.approx(mean, abs=1e-6)
    assert row["selected_on"] == "none"


def test_convert_a_feature_folder_to_a_packed_store(capsys, tmp_path):
    folder = tmp_path / "npy"
    folder.mkdir()
    arrays = {
        f"v{i}": np.random.default_rng(i).normal(size=(5 + i, 8)).astype(np.float32)
        for i in range(3)
    }
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    code, out, _ = run_cli(
        capsys, "convert", "--features", folder, "--out", tmp_path / "store", "--verify"
    )
    assert code == 0 and "identical" in out
    from hamnet.data.features import PackedFeatureStore

    store = PackedFeatureStore(tmp_path / "store")
    assert sorted(store.names) == sorted(arrays)
    assert all(np.array_equal(store.read(n), a) for n, a in arrays.items())


def test_synth_and_convert_commands(capsys, tmp_path):
    code, _, _ = run_cli(
        capsys,
        "synth",
        "--out",
        tmp_path / "s",
        "--classes",
        "3",
        "--videos",
        "8",
        "--dim",
        "8",
        "--min-duration",
        "10",
        "--max-duration",
        "20",
    )
    assert code == 0
    code, _, _ = run_cli(
        capsys,
        "convert",
        "--data",
        tmp_path / "s",
        "--out",
        tmp_path / "c",
        "--allow-pickle",
        "--verify",
    )
    assert code == 0
    assert list((tmp_path / "c").glob("*-packed")) and list((tmp_path / "c").glob("*-gt.json"))


def test_demo_quick_and_its_rerun(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "demo", "--quick", "--out", tmp_path / "demo")
    assert code == 0
    assert "HAM-Net" in out and "BCL only" in out
    folder = tmp_path / "demo" / "quick"
    for name in ("video.png", "video.svg", "map_vs_tiou.png", "results.md", "detections.json"):
        assert (folder / name).is_file(), name
    table = (folder / "results.md").read_text()
    code, again, _ = run_cli(capsys, "demo", "--quick", "--out", tmp_path / "demo")
    assert code == 0 and (folder / "results.md").read_text() == table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "--preset", "nope"], "unknown preset 'nope'"),
        (["config", "--set", "train.nope=1"], "unknown config key 'train.nope'"),
        (["config", "--set", "train.epochs=many"], "train.epochs"),
        (
            ["test", "--checkpoint", "/no/such.pt", "--data", "/x", "--out", "/tmp/o.json"],
            "/no/such.pt: checkpoint not found",
        ),
    ],
)
def test_wrong_usage_is_one_line(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_predict_with_wrong_feature_width_is_one_line(capsys, trained, tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, np.zeros((10, 32), dtype=np.float32))
    code, _, err = run_cli(capsys, "predict", "--checkpoint", trained, "--features", path)
    assert code == 2 and "width 32" in err and "width 16" in err
    assert len(err.strip().splitlines()) == 1


def test_import_checkpoint_from_authors_layout(capsys, tmp_path):
    import torch

    from hamnet.weights.trained import load_trained

    torch.manual_seed(0)
    shapes = {
        "net.classifier.0": (32, 32, 3),
        "net.classifier.2": (32, 32, 3),
        "net.classifier.5": (21, 32, 1),
        "net.attention.0": (8, 32, 3),
        "net.attention.2": (8, 8, 3),
        "net.attention.4": (1, 8, 1),
    }
    state = {}
    for prefix, shape in shapes.items():
        state[f"{prefix}.weight"] = torch.randn(shape)
        state[f"{prefix}.bias"] = torch.randn(shape[0])
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "authors.ckpt")
    code, _, err = run_cli(
        capsys, "import-checkpoint", tmp_path / "authors.ckpt", tmp_path / "ours.pt"
    )
    assert code == 0, err
    trained = load_trained(tmp_path / "ours.pt")
    assert len(trained.classes) == 20 and trained.classes[0] == "BaseballPitch"
    assert torch.equal(trained.model.classifier[5].weight, state["net.classifier.5.weight"])
    x = torch.randn(1, 12, 32)
    cas, attention = trained.model(x)
    assert cas.shape == (1, 12, 21) and attention.shape == (1, 12)


def test_predict_on_the_released_multi_video_file_points_to_convert(capsys, trained, tmp_path):
    path = tmp_path / "Thumos14reduced-I3D-JOINTFeatures.npy"
    released = np.empty(2, dtype=object)
    released[0], released[1] = np.zeros((4, 16), np.float32), np.zeros((5, 16), np.float32)
    np.save(path, released, allow_pickle=True)
    code, _, err = run_cli(capsys, "predict", "--checkpoint", trained, "--features", path)
    assert code == 2 and "hamnet convert" in err and len(err.strip().splitlines()) == 1
