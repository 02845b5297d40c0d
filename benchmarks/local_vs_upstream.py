"""LocalProcess backend vs upstream ``kubeflow==0.5.0``'s LocalProcessBackend, same job, same machine, same run.

The job prints a line (with a timestamp) and multiplies two small tensors. Measured per run, from
``train()`` to the job being Complete (jobs polled every 50 ms, so neither side pays its default 2 s poll):

- **this SDK, warm, hot start** (the default): the job environment is cached and its zygote is running, so
  the nodes are forked from a process that has imported torch (1 and 2 nodes); the time to the job's first
  log line is printed too;
- **this SDK, warm, torchrun** (``hot_starts=False``, today's path before hot starts): every node is a
  ``torchrun`` that imports torch in its agent and in its worker;
- **this SDK, cold**: a new package set (an empty environment cache; torch comes from uv's wheel cache,
  as upstream's pip takes it from pip's cache);
- **floor**: ``torchrun`` of the same script run directly with the prepared environment's interpreter;
- **upstream**: ``LocalProcessBackend`` with ``packages_to_install=["torch"]`` (without it, upstream does
  not install torch and the job fails), in its own venv.

Also: ``import torch`` in the job environment with ``PYTHONDONTWRITEBYTECODE=1`` and without it (equal when
the environment was compiled at install, as the backend does), next to the cost with no bytecode at all (what
an environment installed without compiling costs every job), and whether the environment has bytecode. The
benchmark runs with the caller's environment as it is: nothing here sets or clears PYTHONDONTWRITEBYTECODE for
the SDK's jobs.

Also: time from the job printing its line to ``get_job_logs(follow=True)`` yielding it, and memory on the
SDK side (the client process, and the per-job supervisor process this SDK adds).

    python benchmarks/local_vs_upstream.py --upstream-python .bench/upstream/bin/python [--runs 3]

Make the upstream venv with: ``uv venv .bench/upstream && uv pip install --python .bench/upstream/bin/python
kubeflow==0.5.0``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import psutil

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer_local import LocalProcessBackendConfig


def trivial(tag: str) -> None:
    import time

    import torch

    print(f"HELLO {tag} {time.time():.6f}", flush=True)
    print(float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()), flush=True)


UPSTREAM = textwrap.dedent(
    """
    import json, sys, time
    from kubeflow.trainer import CustomTrainer, LocalProcessBackendConfig, TrainerClient

    def trivial():
        import time
        import torch
        print(f"HELLO upstream {time.time():.6f}", flush=True)
        print(float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()), flush=True)

    client = TrainerClient(backend_config=LocalProcessBackendConfig())
    runtime = client.get_runtime("torch-distributed")
    t0 = time.perf_counter()
    name = client.train(runtime=runtime, trainer=CustomTrainer(func=trivial, packages_to_install=["torch"]))
    while True:
        status = client.get_job(name).status
        if status in ("Complete", "Failed"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    logs = "\\n".join(client.get_job_logs(name))
    print(json.dumps({"seconds": elapsed, "status": status, "hello": "HELLO upstream" in logs}))
    """
)


def sample_rss(pids_fn, stop: threading.Event, peaks: dict[str, int]) -> None:
    while not stop.is_set():
        for label, pid in pids_fn():
            try:
                peaks[label] = max(peaks.get(label, 0), psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(0.05)


def run_ours(config: LocalProcessBackendConfig, tag: str, follow: bool = False, nodes: int = 1) -> dict[str, float]:
    client = TrainerClient(config)
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def pids():
        out = [("client", os.getpid())]
        for child in psutil.Process().children():
            out.append(("supervisor", child.pid))
        return out

    sampler = threading.Thread(target=sample_rss, args=(pids, stop, peaks), daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    name = client.train(trainer=CustomTrainer(func=trivial, func_args={"tag": tag}, num_nodes=nodes))
    latency = float("nan")
    if follow:
        for line in client.get_job_logs(name, follow=True):
            if line.startswith("HELLO"):
                latency = time.time() - float(line.split()[2])
    while client.get_job(name).status not in ("Complete", "Failed"):
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    status = client.get_job(name).status
    hellos = [float(x.split()[2]) for x in client.get_job_logs(name) if x.startswith("HELLO")]
    hot = any(e.reason == "HotStarted" for e in client.get_job_events(name))
    wall0 = time.time() - (time.perf_counter() - t0)
    stop.set()
    sampler.join()
    client.delete_job(name)
    if status != "Complete":
        raise SystemExit(f"job {name} ended {status}")
    if hot != config.hot_starts:
        raise SystemExit(f"job {name}: hot start {'expected' if config.hot_starts else 'not expected'}")
    return {
        "seconds": elapsed,
        "first_line": min(hellos) - wall0 if hellos else float("nan"),
        "latency": latency,
        "client_rss": peaks.get("client", 0),
        "supervisor_rss": peaks.get("supervisor", 0),
    }


def floor(venv_python: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "train.py")
        from kubeflow_trainer.shipping import build_script

        with open(script, "w") as fh:
            fh.write(build_script(trivial, {"tag": "floor"}))
        torchrun = os.path.join(os.path.dirname(venv_python), "torchrun")
        t0 = time.perf_counter()
        subprocess.run([torchrun, "--nproc-per-node=1", script], check=True, capture_output=True, cwd=tmp)
        return time.perf_counter() - t0


def import_torch(venv_python: str, dont_write: bool | None, no_bytecode: bool = False) -> float:
    """Seconds for ``python -c 'import torch'`` in the job environment (a fresh interpreter each time).

    ``no_bytecode``: point Python's bytecode cache at an empty directory and write nothing, which is what an
    environment installed without compiling costs when PYTHONDONTWRITEBYTECODE is set."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if dont_write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory() as empty:
        argv = [venv_python, *(["-B", "-X", f"pycache_prefix={empty}"] if no_bytecode else []), "-c", "import torch"]
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=env, capture_output=True)
        return time.perf_counter() - t0


def bytecode_share(venv_python: str) -> tuple[int, int]:
    """(compiled, total) .py files of the environment's torch package."""
    out = subprocess.run(
        [
            venv_python,
            "-c",
            "import importlib.util as u, pathlib as p; r = p.Path(u.find_spec('torch').origin).parent; "
            "f = list(r.rglob('*.py')); "
            "print(sum(p.Path(u.cache_from_source(str(x))).exists() for x in f), len(f))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    done, total = out.stdout.split()
    return int(done), int(total)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--upstream-python", default=None)
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--no-cold", action="store_true", help="leave out the cold rows (a torch install each)")
    args = parser.parse_args()
    state = args.state_dir or tempfile.mkdtemp(prefix="kft-bench-")
    hot_cfg = LocalProcessBackendConfig(state_dir=os.path.join(state, "jobs"))
    warm_cfg = LocalProcessBackendConfig(state_dir=os.path.join(state, "jobs"), hot_starts=False)
    run_ours(warm_cfg, "prime")  # make sure the environment is cached: the warm runs measure reuse
    run_ours(hot_cfg, "prime-hot")  # and that its zygote runs, and the SDK's (it forks the supervisors)
    time.sleep(5)
    run_ours(hot_cfg, "prime-hot-2")
    hot1, hot2, warm, warm2 = [], [], [], []
    for i in range(args.runs):  # interleaved, so that a change of load hits every row alike
        hot1.append(run_ours(hot_cfg, f"hot{i}"))
        hot2.append(run_ours(hot_cfg, f"hot2n{i}", nodes=2))
        warm.append(run_ours(warm_cfg, f"warm{i}"))
        warm2.append(run_ours(warm_cfg, f"warm2n{i}", nodes=2))
    follow = [run_ours(hot_cfg, f"follow{i}", follow=True)["latency"] for i in range(args.runs)]
    cold = []
    for i in range(0 if args.no_cold else args.runs):
        cold_cfg = LocalProcessBackendConfig(
            state_dir=os.path.join(state, "jobs"), cache_dir=os.path.join(state, f"cold-cache-{i}"), hot_starts=False
        )
        cold.append(run_ours(cold_cfg, f"cold{i}"))
    env = [e for e in TrainerClient(warm_cfg).backend.list_environments() if e.ready]  # type: ignore[attr-defined]
    venv_python = os.path.join(env[0].path, "venv", "bin", "python")
    floors = [floor(venv_python) for _ in range(args.runs)]
    imports = {
        "as is": [import_torch(venv_python, bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))) for _ in range(args.runs)],
        "dont_write": [import_torch(venv_python, True) for _ in range(args.runs)],
        "write": [import_torch(venv_python, False) for _ in range(args.runs)],
        "none": [import_torch(venv_python, True, no_bytecode=True) for _ in range(args.runs)],
    }
    compiled, total = bytecode_share(venv_python)
    for i in range(args.runs):
        shutil.rmtree(os.path.join(state, f"cold-cache-{i}"), ignore_errors=True)
    upstream: list[float] = []
    if args.upstream_python:
        upstream_dir = tempfile.mkdtemp(prefix="kft-up-")
        upstream_script = os.path.join(upstream_dir, "upstream_job.py")  # upstream needs the function's source
        with open(upstream_script, "w") as fh:
            fh.write(UPSTREAM)
        for _ in range(args.runs):
            out = subprocess.run(
                [os.path.abspath(args.upstream_python), upstream_script],
                capture_output=True,
                text=True,
                cwd=upstream_dir,
                check=False,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
            if not result or result["status"] != "Complete":
                print("upstream run failed:", out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
                continue
            upstream.append(result["seconds"])

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    w, c, f, u = med([r["seconds"] for r in warm]), med([r["seconds"] for r in cold]), med(floors), med(upstream)
    print(f"runs per row: {args.runs}; job: print a line, multiply two 3x3 tensors; medians in seconds\n")
    print(f"machine load average (1, 5, 15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'measure':62s} {'median s':>9s}  runs")

    def col(results: list[dict[str, float]], key: str = "seconds") -> list[float]:
        return [r[key] for r in results]

    rows = [
        ("this SDK, warm, hot start, 1 node (target <= 1.0)", med(col(hot1)), col(hot1)),
        ("  first log line, hot start, 1 node (target <= 0.5)", med(col(hot1, "first_line")), col(hot1, "first_line")),
        ("this SDK, warm, hot start, 2 nodes (target <= 1.5)", med(col(hot2)), col(hot2)),
        ("this SDK, warm, torchrun (hot_starts=False), 1 node", w, [r["seconds"] for r in warm]),
        ("  first log line, torchrun, 1 node", med(col(warm, "first_line")), col(warm, "first_line")),
        ("this SDK, warm, torchrun (hot_starts=False), 2 nodes", med(col(warm2)), col(warm2)),
        ("this SDK, cold (new package set)", c, [r["seconds"] for r in cold]),
        ("floor: torchrun directly in the prepared venv", f, floors),
        ("upstream kubeflow 0.5.0 LocalProcessBackend", u, upstream),
    ]
    for label, value, values in rows:
        print(f"{label:62s} {value:9.2f}  {' '.join(f'{v:.2f}' for v in values)}")
    dont_write_now = os.environ.get("PYTHONDONTWRITEBYTECODE") or "unset"
    for label, key in (
        (f"import torch in the job env, as is (PYTHONDONTWRITEBYTECODE={dont_write_now})", "as is"),
        ("import torch, PYTHONDONTWRITEBYTECODE=1", "dont_write"),
        ("import torch, PYTHONDONTWRITEBYTECODE unset", "write"),
        ("import torch with no bytecode (an uncompiled env)", "none"),
    ):
        print(f"{label:62s} {med(imports[key]):9.2f}  {' '.join(f'{v:.2f}' for v in imports[key])}")
    print()
    print(f"job environment bytecode: {compiled} of {total} torch modules compiled")
    print(f"warm hot start vs torchrun: {med(col(hot1)) / w:.2f}x the time; vs floor {med(col(hot1)) / f:.2f}x")
    print(f"warm vs upstream: {u / w:.1f}x faster (target >= 10x)")
    print(f"warm vs floor: {w / f:.2f}x (target <= 1.5x)")
    print(f"cold vs upstream: {c / u:.2f}x of upstream's time (target <= 1.0)")
    print(
        f"print -> follow yield: median {med(follow) * 1000:.1f} ms, max {max(follow) * 1000:.1f} ms (target < 100 ms)"
    )
    print(
        f"SDK memory: client process peak RSS {max(r['client_rss'] for r in warm) / 2**20:.0f} MiB; "
        f"per-job supervisor process peak RSS {med([r['supervisor_rss'] for r in warm]) / 2**20:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
