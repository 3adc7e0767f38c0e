"""One HAM-Net training step at the THUMOS14 preset on this machine's CPU.

Forward + all six losses + backward + Adam step (D = 2048, hidden 2048, attention 512,
batch 20 x 500 snippets, C = 20). Prints the best-of-rounds step time, the step's conv FLOPs
(counted analytically), the achieved FLOP/s against this machine's fp32 matmul FLOP/s
measured in the same run, the bf16-autocast speedup (against bf16 matmul too) and the
peak RSS.

    python benchmarks/bench_train_step.py [--rounds 3] [--batch 20] [--segments 500] [--masked]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from hamnet.methods.hamnet.losses import LOSS_TERMS, hamnet_losses
from hamnet.methods.hamnet.network import HamNet

THUMOS = dict(
    lm_1=1.0, lm_2=1.0, alpha=0.8, beta=0.8, drop_thres=0.2, drop_prob=0.2, topk_ratio_inv=10
)


def step_flops(model: HamNet, batch: int, segments: int) -> tuple[float, float]:
    """Conv matmul FLOPs of one step: forward 2*B*T*Cin*Cout*k per conv; backward the
    weight gradient (same) plus the input gradient, except for the first conv of each
    branch, whose input (the features) needs no gradient."""
    forward = backward = 0.0
    for branch in (model.classifier, model.attention):
        convs = [layer for layer in branch if isinstance(layer, nn.Conv1d)]
        for index, conv in enumerate(convs):
            out_ch, in_ch, k = conv.weight.shape
            flops = 2.0 * batch * segments * in_ch * out_ch * k
            forward += flops
            backward += flops * (2 if index > 0 else 1)
    return forward, backward


def matmul_seconds(dtype: torch.dtype) -> Callable[[], float]:
    """A timer of one [10000, 6144] x [6144, 2048] matmul, the shape of the big convs."""
    a = torch.randn(10000, 6144).to(dtype)
    b = torch.randn(6144, 2048).to(dtype)
    torch.mm(a, b)
    return lambda: _seconds(lambda: torch.mm(a, b))


def train_step(
    batch: int, segments: int, bf16: bool, masked: bool, fused: bool
) -> Callable[[], float]:
    """A timer of one training step (the first, warm-up step is run here)."""
    torch.manual_seed(0)
    model = HamNet(2048, 20, attention_dim=512).train()
    adam = {"fused": True} if fused else {}  # the CPU default is the per-tensor loop
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=1e-3, **adam)
    x = torch.randn(batch, segments, 2048)
    labels = (torch.rand(batch, 20) > 0.9).float()
    mask = torch.ones(batch, segments, dtype=torch.bool) if masked else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            cas, attention = model(x, mask)
            losses = hamnet_losses(cas, attention, labels, mask, losses=LOSS_TERMS, **THUMOS)
        losses["total"].backward()
        optimizer.step()

    step()
    return lambda: _seconds(step)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best reported)")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--segments", type=int, default=500)
    parser.add_argument("--masked", action="store_true", help="pass an all-true mask")
    parser.add_argument("--plain-adam", action="store_true", help="Adam without fused=True")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    forward, backward = step_flops(HamNet(2048, 20), args.batch, args.segments)
    total, mm_flops = forward + backward, 2.0 * 10000 * 6144 * 2048
    print(f"Adam: {'default (for-loop)' if args.plain_adam else 'fused=True'}")
    print(f"step conv FLOPs: forward {forward / 1e9:.1f} G + backward {backward / 1e9:.1f} G")

    # Interleaved rounds: matmul and step timed back to back, so that other load on a
    # shared machine hits both sides of each ratio alike.
    timers = {
        "mm32": matmul_seconds(torch.float32),
        "mm16": matmul_seconds(torch.bfloat16),
        "fp32": train_step(args.batch, args.segments, False, args.masked, not args.plain_adam),
        "bf16": train_step(args.batch, args.segments, True, args.masked, not args.plain_adam),
    }
    rounds = [{name: timer() for name, timer in timers.items()} for _ in range(args.rounds)]
    # Best of the rounds is the primary figure (other jobs only ever add time); the
    # median of the per-round ratios is printed beside it.
    best = {name: min(r[name] for r in rounds) for name in timers}

    def ratios(fn: Callable[[dict[str, float]], float]) -> str:
        return f"{fn(best):.2f} (median of rounds {statistics.median(map(fn, rounds)):.2f})"

    print(f"fp32 matmul [10000,6144]x[6144,2048]: {mm_flops / best['mm32'] / 1e9:.1f} GFLOP/s")
    print(
        f"bf16 matmul: {mm_flops / best['mm16'] / 1e9:.1f} GFLOP/s, "
        f"x{ratios(lambda r: r['mm32'] / r['mm16'])} fp32"
    )
    print(
        f"fp32 step: {best['fp32']:.2f} s (best of {args.rounds}), "
        f"{total / best['fp32'] / 1e9:.1f} GFLOP/s"
    )
    print(
        "  fraction of the fp32 matmul rate (target >= 0.85): "
        + ratios(lambda r: r["mm32"] / mm_flops * total / r["fp32"])
    )
    print(f"bf16-autocast step: {best['bf16']:.2f} s, {total / best['bf16'] / 1e9:.1f} GFLOP/s")
    print(
        "  fraction of the bf16 matmul rate: "
        + ratios(lambda r: r["mm16"] / mm_flops * total / r["bf16"])
    )
    print(
        "  speedup over the fp32 step (target >= 1.8): " + ratios(lambda r: r["fp32"] / r["bf16"])
    )
    print(f"peak RSS (both models and optimizers alive): {peak_rss_mib():.0f} MiB")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
