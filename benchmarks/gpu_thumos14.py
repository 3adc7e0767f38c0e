"""The THUMOS14 preset on one GPU, whole ``hamnet train`` processes timed start to results:
synthetic D = 2048 features laid on the real THUMOS14 annotations (all 412 videos), 100
epochs + the test split in fp32 (TF32 convolutions) and in bf16, then
``hamnet ablate --preset thumos14 --seeds 0,1,2``. Targets (issue 12, one H200): 30 s,
20 s, 5 min; checkpoint writing under 5 % of the wall time.

    python benchmarks/gpu_thumos14.py --annotations ../shared/data --out "$OUT"
    python benchmarks/gpu_thumos14.py --annotations ../shared/data --out /tmp/b --tiny

See ``gpu_runs.py`` for what is reported (``<out>/gpu_runs.json``).
"""

from __future__ import annotations

from gpu_runs import main

if __name__ == "__main__":
    main(
        default_steps=(
            "synth-thumos14",
            "thumos14-fp32",
            "thumos14-bf16",
            "torchrun-nccl",
            "ablate-thumos14",
        )
    )
