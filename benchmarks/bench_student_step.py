"""Seconds per training step of the FuSTAL student at the demo sizes (issue 23).

A step as StudentMethod.train_step takes it (forward with padding and noise, label
assignment, focal + DIoU losses, backward, clipping, AdamW, the EMA update) on a
synthetic batch of 4 x 128 x 256 with 20 classes, in one thread and in torch's default
count, side by side in one run: ``python benchmarks/bench_student_step.py STEPS`` prints
each median and their ratio. (The step is written out here, as train_step takes it, so
that it runs without a dataset; tests/methods/test_student.py holds the method's own.)
"""

from __future__ import annotations

import sys
import time

import torch

from hamnet.methods.student import losses as L
from hamnet.methods.student.method import StudentOptions, param_groups, shape_of
from hamnet.methods.student.network import StudentNetwork

DEMO = StudentOptions(max_seq_len=128, embd_dim=32, sgp_mlp_dim=48, head_dim=32)


def one_step(net, optimizer, features, mask, segments, labels) -> None:
    out = net(features, mask)
    points = torch.cat(out["points"])
    targets = [L.assign_targets(points, s, c, 20, DEMO.center_sample_radius)
               for s, c in zip(segments, labels, strict=True)]  # fmt: skip
    terms, _ = L.detection_losses(
        out, [t[0] for t in targets], [t[1] for t in targets], float(net.loss_norm),
        DEMO.num_bins, DEMO.iou_weight_power,
    )  # fmt: skip
    optimizer.zero_grad(set_to_none=True)
    (terms["cls_loss"] + terms["reg_loss"]).backward()
    torch.nn.utils.clip_grad_norm_(net.student.parameters(), DEMO.clip_grad_l2norm)
    optimizer.step()
    net.update_ema(DEMO.ema_decay)


def median_step(threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = StudentNetwork(shape_of(DEMO, 256, 20), DEMO.init_loss_norm).train()
    optimizer = torch.optim.AdamW(param_groups(net.student, 0.05), lr=1e-3)
    features = torch.randn(4, 128, 256)
    mask = torch.ones(4, 128, dtype=torch.bool)
    segments = [torch.tensor([[10.0, 30.0], [50.0, 90.0]])] * 4
    labels = [torch.tensor([1, 3])] * 4
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        one_step(net, optimizer, features, mask, segments, labels)
        seconds.append(time.perf_counter() - start)
    median = sorted(seconds)[len(seconds) // 2]
    print(f"threads={threads} steps={steps} median={median:.3f} s first={seconds[0]:.3f} s")
    return median


def main(steps: int) -> None:
    default = torch.get_num_threads()
    one = median_step(1, steps)
    many = median_step(default, steps)
    print(f"{default} threads / 1 thread: {many / one:.2f}x the time a step")


if __name__ == "__main__":
    main(int(sys.argv[1]))
