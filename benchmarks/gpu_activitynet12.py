"""The ActivityNet-1.2 preset on one GPU, the whole ``hamnet train`` process timed: synthetic
D = 2048 features laid on all 7202 real videos (about 10.6 GB), 20 epochs + the
validation split. Target (issue 12, one H200): 90 s.

    python benchmarks/gpu_activitynet12.py --annotations ../shared/data --out "$OUT"

See ``gpu_runs.py`` for what is reported (``<out>/gpu_runs.json``).
"""

from __future__ import annotations

from gpu_runs import main

if __name__ == "__main__":
    main(default_steps=("synth-activitynet12", "activitynet12"))
