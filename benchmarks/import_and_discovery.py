"""Import time of `kubeflow_trainer` and backend discovery time, medians over fresh interpreters.

Targets (issue: trainer-core): import under 150 ms median; discovery of all installed backends under 100 ms.
With `--upstream-python PATH` (a venv's python that has `kubeflow==0.5.0`), upstream's
`import kubeflow.trainer` is measured the same way and printed side by side.

    python benchmarks/import_and_discovery.py [--runs 15] [--upstream-python .bench/upstream/bin/python]
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys

IMPORT = "import time; t=time.perf_counter(); import {mod}; print(time.perf_counter()-t)"
DISCOVER = (
    "import time, kubeflow_trainer; t=time.perf_counter(); n=kubeflow_trainer.available_backends(); "
    "print(time.perf_counter()-t, ','.join(n))"
)


def measure(python: str, code: str, runs: int) -> tuple[float, str]:
    times, extra = [], ""
    for _ in range(runs):
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]) * 1000)
        extra = out[1] if len(out) > 1 else ""
    return statistics.median(times), extra


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--upstream-python", default=None)
    args = parser.parse_args()
    ours, _ = measure(sys.executable, IMPORT.format(mod="kubeflow_trainer"), args.runs)
    disc, names = measure(sys.executable, DISCOVER, args.runs)
    rows = [("import kubeflow_trainer (this SDK)", ours, 150.0), (f"discover backends [{names}]", disc, 100.0)]
    if args.upstream_python:
        up, _ = measure(args.upstream_python, IMPORT.format(mod="kubeflow.trainer"), args.runs)
        rows.append(("import kubeflow.trainer (upstream 0.5.0)", up, float("nan")))
    print(f"{'measure':55s} {'median ms':>10s} {'target ms':>10s}")
    failed = False
    for label, value, target in rows:
        ok = "" if math.isnan(target) else ("ok" if value < target else "OVER")
        failed |= ok == "OVER"
        print(f"{label:55s} {value:10.1f} {target:10.0f} {ok}")
    if failed:
        print("some figures are over their targets (printed, not enforced: timings vary with machine load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
