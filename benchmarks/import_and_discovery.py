"""Import time of `kubeflow_trainer`, backend discovery time and `kubeflow-trainer --help`, medians over fresh
interpreters.

Targets (issue: trainer-core): import under 150 ms median; discovery of all installed backends under 100 ms;
(issue 15) the whole `kubeflow-trainer --help` process, start to exit, under 300 ms.
With `--upstream-python PATH` (a venv's python that has `kubeflow==0.5.0`), upstream's
`import kubeflow.trainer` is measured the same way and printed side by side.

    python benchmarks/import_and_discovery.py [--runs 15] [--upstream-python .bench/upstream/bin/python]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

IMPORT = "import time; t=time.perf_counter(); import {mod}; print(time.perf_counter()-t)"
USE = "import time; t=time.perf_counter(); from {mod} import TrainerClient, CustomTrainer; print(time.perf_counter()-t)"
"""What a training script imports: the client and the public types (pydantic) load here, not at ``import``."""
DISCOVER = (
    "import time; from kubeflow_trainer import available_backends as a; t=time.perf_counter(); n=a(); "
    "print(time.perf_counter()-t, ','.join(n))"
)


def measure(python: str, code: str, runs: int) -> tuple[float, str]:
    times, extra = [], ""
    for _ in range(runs):
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]) * 1000)
        extra = out[1] if len(out) > 1 else ""
    return statistics.median(times), extra


def measure_process(argv: list[str], runs: int) -> float:
    """Median wall time of a whole process (interpreter start, imports, output, exit), in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--upstream-python", default=None)
    args = parser.parse_args()
    ours, _ = measure(sys.executable, IMPORT.format(mod="kubeflow_trainer"), args.runs)
    disc, names = measure(sys.executable, DISCOVER, args.runs)
    used, _ = measure(sys.executable, USE.format(mod="kubeflow_trainer"), args.runs)
    pydantic, _ = measure(sys.executable, IMPORT.format(mod="pydantic") + "; from pydantic import BaseModel", args.runs)
    rows = [
        ("import kubeflow_trainer (this SDK; names load on first use)", ours, 150.0),
        ("from kubeflow_trainer import TrainerClient, CustomTrainer", used, float("nan")),
        ("  of which pydantic's own import (BaseModel)", pydantic, float("nan")),
        (f"discover backends [{names}]", disc, 100.0),
    ]
    script = shutil.which("kubeflow-trainer", path=os.path.dirname(sys.executable))
    if script:
        rows.append(("kubeflow-trainer --help (whole process)", measure_process([script, "--help"], args.runs), 300.0))
        rows.append(
            (
                "python -c pass (interpreter start, for scale)",
                measure_process([sys.executable, "-c", "pass"], args.runs),
                float("nan"),
            )
        )
    if args.upstream_python:
        up, _ = measure(args.upstream_python, IMPORT.format(mod="kubeflow.trainer"), args.runs)
        rows.append(("import kubeflow.trainer (upstream 0.5.0)", up, float("nan")))
        up_used, _ = measure(args.upstream_python, USE.format(mod="kubeflow.trainer"), args.runs)
        rows.append(("from kubeflow.trainer import TrainerClient, CustomTrainer (upstream)", up_used, float("nan")))
    print(f"{'measure':66s} {'median ms':>10s} {'target ms':>10s}")
    failed = False
    for label, value, target in rows:
        ok = "" if math.isnan(target) else ("ok" if value < target else "OVER")
        failed |= ok == "OVER"
        print(f"{label:66s} {value:10.1f} {target:10.0f} {ok}")
    if failed:
        print("some figures are over their targets (printed, not enforced: timings vary with machine load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
