"""Where a warm local job's time goes: the pieces measured one by one, then a job's own timeline from its events.

Pieces (medians of ``--runs`` fresh processes, the job environment's interpreter unless said):

- interpreter start-up (``python -c pass``), ``import torch``;
- ``torchrun`` running a script that imports nothing (its agent: interpreter, ``import torch``, static
  rendezvous store, one worker interpreter), and a script that imports torch (plus the worker's import);
- the SDK side: the supervisor process's start-up (``python -m kubeflow_trainer_local.supervisor``'s imports, in
  the SDK's interpreter), the environment check of a cached environment (``EnvironmentCache.ensure``), and
  ``train()`` in the client (render, write the job directory, start the supervisor);
- a job's timeline from its events (``train()`` called -> Created -> EnvironmentReused -> Started -> Exited),
  once with torchrun (``hot_starts=False``) and once with a hot start, and its first log line.

    python benchmarks/local_breakdown.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer_local import LocalProcessBackendConfig


def trivial() -> None:
    import time

    import torch

    print(f"HELLO {time.time():.6f}", flush=True)
    print(float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()), flush=True)


def timed(argv: list[str], runs: int, **kwargs: object) -> float:
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
        values.append(time.perf_counter() - t0)
    return statistics.median(values)


def timeline(config: LocalProcessBackendConfig, runs: int) -> dict[str, float]:
    """Median seconds from ``train()`` being called to each event of a trivial job (and its first line)."""
    marks: dict[str, list[float]] = {}
    client = TrainerClient(config)
    for _ in range(runs):
        t0 = time.time()
        name = client.train(trainer=CustomTrainer(func=trivial))
        marks.setdefault("train() returned", []).append(time.time() - t0)
        while client.get_job(name).status not in ("Complete", "Failed"):
            time.sleep(0.02)
        marks.setdefault("client saw Complete (50 ms... 20 ms polls)", []).append(time.time() - t0)
        for event in client.get_job_events(name):
            key = f"event {event.reason}"
            if key not in marks or len(marks[key]) < len(marks["train() returned"]):
                marks.setdefault(key, []).append(event.event_time.timestamp() - t0)
        hello = [float(x.split()[1]) for x in client.get_job_logs(name) if x.startswith("HELLO")]
        marks.setdefault("job printed its first line", []).append(hello[0] - t0)
        client.delete_job(name)
    return {k: statistics.median(v) for k, v in marks.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    state = tempfile.mkdtemp(prefix="kft-breakdown-")
    torchrun_cfg = LocalProcessBackendConfig(state_dir=state, hot_starts=False)
    hot_cfg = LocalProcessBackendConfig(state_dir=state)
    timeline(torchrun_cfg, 1)  # the environment is cached
    timeline(hot_cfg, 1)  # and its zygote runs, and the SDK's (it forks the supervisors)
    time.sleep(5)
    timeline(hot_cfg, 1)
    env = [e for e in TrainerClient(torchrun_cfg).backend.list_environments() if e.ready]  # type: ignore[attr-defined]
    venv = os.path.join(env[0].path, "venv")
    python, torchrun = os.path.join(venv, "bin", "python"), os.path.join(venv, "bin", "torchrun")
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        empty, with_torch = os.path.join(tmp, "empty.py"), os.path.join(tmp, "torch.py")
        with open(empty, "w") as fh:
            fh.write("pass\n")
        with open(with_torch, "w") as fh:
            fh.write("import torch\n")
        flags = ["--nnodes=1", "--nproc-per-node=1", "--rdzv-backend=static", "--master-addr=127.0.0.1"]
        rows += [
            ("job env: interpreter start-up (python -c pass)", timed([python, "-c", "pass"], args.runs)),
            ("job env: import torch", timed([python, "-c", "import torch"], args.runs)),
            ("torchrun, worker imports nothing", timed([torchrun, *flags, "--master-port=29731", empty], args.runs)),
            ("torchrun, worker imports torch", timed([torchrun, *flags, "--master-port=29732", with_torch], args.runs)),
        ]
    rows.append(("SDK: interpreter start-up", timed([sys.executable, "-c", "pass"], args.runs)))
    rows.append(
        (
            "SDK: supervisor start-up (its imports)",
            timed([sys.executable, "-c", "import kubeflow_trainer_local.supervisor"], args.runs),
        )
    )
    from kubeflow_trainer_local.envcache import EnvironmentCache

    cache = EnvironmentCache(hot_cfg.cache_dir)
    key = env[0].key
    values = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        with open(os.devnull, "wb") as log:
            cache.ensure(None, log, key)  # type: ignore[arg-type]  # ready: the spec is not read
        values.append(time.perf_counter() - t0)
    rows.append(("SDK: check of a cached environment (ensure)", statistics.median(values)))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; medians of {args.runs}\n")
    for label, value in rows:
        print(f"{label:58s} {value:7.3f} s")
    for label, config in (("torchrun (hot_starts=False)", torchrun_cfg), ("hot start", hot_cfg)):
        print(f"\njob timeline, {label}: seconds after train() was called")
        for mark, value in sorted(timeline(config, args.runs).items(), key=lambda kv: kv[1]):
            print(f"  {mark:56s} {value:7.3f}")
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
