"""Every method through the same engine: config, network, losses, checkpoints, resume,
test, predict, figures; old HAM-Net checkpoints load as HAM-Net."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hamnet.cli import main
from hamnet.config import config_from_dict, make_config
from hamnet.errors import ConfigError
from hamnet.methods import METHODS, canonical_method, make_method, method_class
from hamnet.methods.hamnet.network import HamNet
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint, save_checkpoint
from hamnet.weights.trained import load_trained

BASELINES = ["stpn", "w-talc", "basnet", "co2net", "delu"]


def _config(method, tiny_overrides, *extra):
    return make_config("demo", "all", [*tiny_overrides, *extra], method=method)


def test_method_key_flag_and_set_give_the_same_config(tiny_overrides):
    by_argument = make_config("thumos14", method="basnet")
    by_set = make_config("thumos14", overrides=["method=basnet"])
    assert by_argument.to_dict() == by_set.to_dict()
    assert by_set.method == "basnet" and by_set.loss.losses == ["base", "supp", "norm"]
    assert by_set.data.num_segments == 750 and by_set.localize.nms == "hard"
    assert make_config("thumos14", method="wtalc").method == "w-talc"  # alias
    assert make_config("thumos14").method == "hamnet"
    assert make_config("activitynet12", method="stpn").eval.tiou[0] == 0.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=ssd"], "unknown method 'ssd'"),
        (["method=stpn", "loss.losses=[bcl]"], "not losses of method 'stpn'"),
        (["method=basnet", "method_options.margin=0.5"], "unknown config key 'method_options.m"),
        (["loss.losses=[sal]"], "must include bcl"),
    ],
)
def test_config_errors_name_the_method(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("demo", "all", overrides)


def test_a_config_file_with_another_methods_option_is_refused():
    tree = make_config("demo", method="basnet").to_dict()
    tree["method_options"]["margin"] = 0.5
    with pytest.raises(ConfigError, match="'margin' is not an option of method 'basnet'"):
        config_from_dict(tree)


def test_ham_net_ablation_rows_are_not_other_methods_variants():
    with pytest.raises(ConfigError, match="HAM-Net ablation row"):
        make_config("demo", "bcl", ["method=stpn"])


# a second stage's network reads its proposals too: tests/methods/test_pmil.py
SNIPPET_METHODS = [m for m in METHODS if method_class(m).stage_input is None]


@pytest.mark.parametrize("method", SNIPPET_METHODS)
def test_padded_batch_equals_videos_alone_and_losses_are_named(method, tiny_overrides):
    config = _config(method, tiny_overrides)
    algorithm = make_method(config)
    torch.manual_seed(0)
    network = algorithm.build_network(3).eval()
    lengths = [7, 4]
    x = torch.randn(2, 7, 16)
    mask = torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]
    batched = algorithm.forward(network, x, mask)
    for i, n in enumerate(lengths):
        alone = algorithm.forward(network, x[i : i + 1, :n], None)
        for key, value in alone.items():
            assert torch.allclose(batched[key][i, :n], value[0], atol=1e-5), (method, key)
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    network.train()
    terms = algorithm.losses(algorithm.forward(network, x, mask), labels, mask)
    assert set(terms) == {*config.loss.losses, "total"}
    terms["total"].backward()
    # parameters trained outside the losses (3C-Net's centers, by their own SGD) aside
    trained = getattr(network, "model_parameters", network.parameters)()
    grads = [p.grad for p in trained]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("method", BASELINES)
def test_baseline_resume_equals_straight_run(method, tiny_root, tiny_overrides, tmp_path):
    # DELU's curve depends on the run's length, which this test changes: flatten it
    flat = ["method_options.amplitude=0"] if method == "delu" else []
    straight = _config(method, [*tiny_overrides, *flat], "train.epochs=3")
    train(straight, tiny_root, tmp_path / "straight", progress=False)
    train(
        _config(method, [*tiny_overrides, *flat], "train.epochs=2"),
        tiny_root,
        tmp_path / "split",
        progress=False,
    )
    train(straight, tiny_root, tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "straight/last.pt")["model"]
    b = load_checkpoint(tmp_path / "split/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    trained = load_trained(tmp_path / "split/last.pt")
    assert trained.config.method == method
    assert type(trained.model) is type(make_method(trained.config).build_network(4))


def test_checkpoint_without_method_key_is_ham_net(tiny_root, tiny_overrides, tmp_path, capsys):
    train(
        _config("hamnet", tiny_overrides, "train.epochs=1"),
        tiny_root,
        tmp_path / "r",
        progress=False,
    )
    record = load_checkpoint(tmp_path / "r/last.pt")
    for key in ("method", "method_options"):
        del record["config"][key]
    del record["config"]["data"]["snippet_seconds"]
    record = {k: v for k, v in record.items() if k not in ("format", "hamnet_version")}
    save_checkpoint(tmp_path / "old.pt", record)
    trained = load_trained(tmp_path / "old.pt")
    assert trained.config.method == "hamnet" and isinstance(trained.model, HamNet)
    out = tmp_path / "det.json"
    argv = ["test", "--checkpoint", tmp_path / "old.pt", "--data", tiny_root, "--out", out]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("method", BASELINES)
def test_baseline_train_test_predict_and_plot_through_the_cli(
    method, tiny_root, tiny_overrides, tmp_path, capsys
):
    sets = [a for item in tiny_overrides for a in ("--set", item)]
    run = tmp_path / "run"
    argv = ["train", "--preset", "demo", "--method", method, "--data", tiny_root, "--run-dir", run]
    assert main([str(a) for a in argv + sets]) == 0
    assert "\n| " in capsys.readouterr().out
    result, cas = tmp_path / "result.json", tmp_path / "cas"
    argv = [
        "test",
        "--checkpoint",
        run / "last.pt",
        "--data",
        tiny_root,
        "--out",
        tmp_path / "d.json",
    ]
    argv += ["--json", result, "--save-cas", cas, "--set", "localize.class_thresh=0.0"]
    assert main([str(a) for a in argv]) == 0
    record = json.loads(result.read_text())
    assert record["method"] == method and len(record["mAP"]) == 7
    assert record["rules"] == "reference" and "rules=reference" in capsys.readouterr().out
    npz = sorted(cas.glob("*.npz"))[0]
    assert main(["plot", "video", "--npz", str(npz), "--out", str(tmp_path / "v.png")]) == 0
    capsys.readouterr()
    features = tiny_root / "Synthetic-packed"
    argv = ["predict", "--checkpoint", run / "last.pt", "--features", features, "--format", "csv"]
    # the shared localization's class threshold (the reference rules have their own)
    argv += ["--set", "localize.class_thresh=0.0", "--set", "localize.rules=shared"]
    argv += ["--top-k", "2"]
    assert main([str(a) for a in argv]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "video,label,start,end,score" and len(rows) > 1


def test_test_set_refuses_training_settings(tiny_root, tiny_overrides, tmp_path, capsys):
    train(
        _config("stpn", tiny_overrides, "train.epochs=1"), tiny_root, tmp_path / "r", progress=False
    )
    argv = ["test", "--checkpoint", tmp_path / "r/last.pt", "--data", tiny_root]
    argv += ["--out", tmp_path / "d.json", "--set", "model.dropout=0.1"]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only localization and evaluation settings" in err[0]


@pytest.mark.parametrize("rules", ["reference", "shared"])
def test_ablate_across_methods_gives_one_table(rules, tiny_root, tiny_overrides, tmp_path, capsys):
    sets = [a for item in [*tiny_overrides, "train.epochs=1"] for a in ("--set", item)]
    argv = ["ablate", "--preset", "demo", "--methods", "hamnet,stpn,wtalc,basnet,co2net,delu"]
    argv += ["--data", tiny_root, "--out", tmp_path / "abl", "--set", f"localize.rules={rules}"]
    assert main([str(a) for a in argv + sets]) == 0
    table = (tmp_path / "abl/ablation.md").read_text()
    assert f"rules={rules}" in table.splitlines()[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows == ["method", "HAM-Net", "STPN", "W-TALC", "BaS-Net", "CO2-Net", "DELU"]
    made = {p.name for p in (tmp_path / "abl").iterdir()}
    assert made >= {"hamnet", "stpn", "w-talc", "basnet", "co2net", "delu"}
    capsys.readouterr()


def test_canonical_names():
    assert canonical_method("W-TALC") == "w-talc" and canonical_method("bas-net") == "basnet"
    assert np.all([canonical_method(name) == name for name in METHODS])
