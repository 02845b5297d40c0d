"""Where a 1-node Docker / Podman job's time goes, next to a plain ``docker run`` / ``podman run`` of the same
image and the same ``torchrun train.py``.

Marks, in seconds after ``train()`` was called (wall clock; the containers share the host's clock):

- client side, from the engine calls ``train()`` makes (each call timed): the SDK's plan and render, the checks
  before anything is created (ping, name taken?, image present, running jobs for admission), volume and network
  creation, container creation, the copy of the job's files into the volume, the start call, ``train()``
  returning;
- in the container: the engine's ``StartedAt``; the start of the container's first process (the step watcher's
  ``sh`` then ``python3``), of torchrun's agent and of the worker (from ``/proc``: process age against
  ``/proc/uptime``, 10 ms resolution); the function's first line; its ``import torch`` (timed inside); the
  engine's ``FinishedAt``;
- the client seeing Complete (``get_job`` every 50 ms).

The floor runs ``<engine> run -d`` of the same image with ``torchrun ... train.py`` (the same script) on the
default network, then ``<engine> wait``; its marks come from the same in-container probes.

    python benchmarks/container_start.py [--engines docker podman] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from typing import Any

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer.shipping import build_script

IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = os.environ.get("KFT_PODMAN_HOST", "unix:///run/podman/podman.sock")
CLI = {"docker": ["docker"], "podman": ["podman", "--remote", "--url", PODMAN_URL]}
CHECKS = ("ping", "image_exists", "list_containers", "list_networks", "list_volumes", "list_container_summaries")


def timeline() -> None:
    import json
    import os
    import time

    first = time.time()
    print("FIRST-LINE", repr(first), flush=True)

    def started(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))

    import sys

    marks = {"init": started(1), "agent": started(os.getppid()), "worker": started(os.getpid()), "first": first}
    marks["torch_was_imported"] = float("torch" in sys.modules)
    t0 = time.time()
    import torch

    marks["import_torch"] = time.time() - t0
    print("TIMELINE", json.dumps(marks, separators=(",", ":")), float(torch.ones(2).sum()), flush=True)


def parse_timeline(lines: list[str]) -> dict[str, float]:
    for line in lines:
        if line.startswith("TIMELINE "):
            return dict(json.loads(line.split(" ", 2)[1]))
    raise SystemExit(f"no TIMELINE line in the job's log: {lines[-5:]}")


def config(engine: str) -> Any:
    if engine == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return DockerBackendConfig(image=IMAGE, pull_policy="Never", stop_timeout=2)
    from kubeflow_trainer_podman import PodmanBackendConfig

    return PodmanBackendConfig(image=IMAGE, pull_policy="Never", host=PODMAN_URL, stop_timeout=2)


class Recorder:
    """Times every engine call and the backend's render."""

    def __init__(self, client: TrainerClient) -> None:
        self.calls: list[tuple[str, float, float]] = []
        backend = client.backend
        for name in ("render",):
            self._wrap(backend, name)
        engine = backend.engine
        for name in (
            *CHECKS,
            "create_volume",
            "create_network",
            "create_container",
            "put_files",
            "start_container",
        ):
            self._wrap(engine, name)

    def _wrap(self, obj: Any, name: str) -> None:
        real = getattr(obj, name)

        @functools.wraps(real)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return real(*args, **kwargs)
            finally:
                self.calls.append((name, start, time.time()))

        setattr(obj, name, timed)

    def last_end(self, names: tuple[str, ...], t0: float) -> float:
        ends = [e for n, _, e in self.calls if n in names]
        return max(ends) - t0 if ends else float("nan")

    def total(self, names: tuple[str, ...]) -> float:
        return sum(e - s for n, s, e in self.calls if n in names)

    def count(self, names: tuple[str, ...]) -> int:
        return sum(1 for n, _, _ in self.calls if n in names)


def sdk_run(engine: str) -> dict[str, Any]:
    client = TrainerClient(config(engine))
    recorder = Recorder(client)
    t0 = time.time()
    name = client.train(trainer=CustomTrainer(func=timeline))
    returned = time.time() - t0
    in_train = list(recorder.calls)
    while (status := client.get_job(name).status) not in ("Complete", "Failed"):
        time.sleep(0.05)
    seen = time.time() - t0
    try:
        if status != "Complete":
            raise SystemExit(f"{engine} job {name} {status}: {list(client.get_job_logs(name))[-10:]}")
        (info,) = [c for c in client.backend.engine.list_containers({client.backend._label("trainjob-name"): name})]
        marks = parse_timeline(list(client.get_job_logs(name)))
    finally:
        client.delete_job(name)
        client.close()
    recorder.calls = in_train
    calls = in_train
    render_end = next(e for n, _, e in calls if n == "render") - t0
    out = {
        "plan + render": render_end,
        "checks (ping, name, image, running jobs)": recorder.last_end(CHECKS, t0),
        "volumes + network created": recorder.last_end(("create_volume", "create_network"), t0),
        "container created": recorder.last_end(("create_container",), t0),
        "files copied into the volume": recorder.last_end(("put_files",), t0),
        "start call returned": recorder.last_end(("start_container",), t0),
        "train() returned": returned,
    }
    out.update(in_container(info.started_at.timestamp() if info.started_at else float("nan"), marks, t0))
    out["container exited (FinishedAt)"] = (info.finished_at.timestamp() if info.finished_at else float("nan")) - t0
    out["client saw Complete"] = seen
    out["_calls"] = float(len(calls) - 1)  # render is not an engine call
    out["_kinds"] = " ".join(
        f"{k} {sum(1 for n, _, _ in calls if n == k)}" for k in dict.fromkeys(n for n, _, _ in calls)
    )
    out["_checks_s"] = recorder.total(CHECKS)
    out["_checks_n"] = float(recorder.count(CHECKS))
    return out


def in_container(started: float, marks: dict[str, float], t0: float) -> dict[str, float]:
    return {
        "container running (StartedAt)": started - t0,
        "container's first process (runc init; SDK: the watcher)": marks["init"] - t0,
        "torchrun agent process": marks["agent"] - t0,
        "worker process (agent: import torch, rendezvous)": marks["worker"] - t0,
        "function's first line": marks["first"] - t0,
        "import torch in the worker (duration)": marks["import_torch"],
    }


def floor_run(engine: str, script_dir: str) -> dict[str, float]:
    cli = CLI[engine]
    name = f"kft-start-floor-{uuid.uuid4().hex[:8]}"
    t0 = time.time()
    subprocess.run(
        [
            *cli,
            "run",
            "-d",
            "--name",
            name,
            "-v",
            f"{script_dir}:/work:ro",
            "-w",
            "/work",
            IMAGE,
            "torchrun",
            "--nnodes=1",
            "--nproc-per-node=1",
            "--node-rank=0",
            "--master-addr=localhost",
            "--master-port=29500",
            "train.py",
        ],
        check=True,
        capture_output=True,
    )
    returned = time.time() - t0
    try:
        code = subprocess.run([*cli, "wait", name], check=True, capture_output=True, text=True).stdout.strip()
        seen = time.time() - t0
        if code != "0":
            raise SystemExit(f"floor {engine} exited {code}")
        logs = subprocess.run([*cli, "logs", name], check=True, capture_output=True, text=True)
        state = json.loads(
            subprocess.run(
                [*cli, "inspect", "--format", "{{json .State}}", name], check=True, capture_output=True
            ).stdout
        )
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, check=False)
    from kubeflow_trainer_containers.engine import engine_time

    started, finished = engine_time(state.get("StartedAt")), engine_time(state.get("FinishedAt"))
    out = {f"`{engine} run -d` returned": returned}
    out.update(
        in_container(started.timestamp() if started else float("nan"), parse_timeline(logs.stdout.splitlines()), t0)
    )
    out["container exited (FinishedAt)"] = (finished.timestamp() if finished else float("nan")) - t0
    out[f"`{engine} wait` returned"] = seen
    return out


def cell(value: float | None) -> str:
    return f"{value:9.3f}" if value is not None else f"{'':>9}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", default=["docker", "podman"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    script_dir = tempfile.mkdtemp(prefix="kft-start-")
    with open(os.path.join(script_dir, "train.py"), "w") as fh:
        fh.write(build_script(timeline, None))
    os.chmod(script_dir, 0o755)
    print(f"image {IMAGE}; medians of {args.runs} runs; load average {os.getloadavg()}")
    for engine in args.engines:
        sdk_run(engine)  # warm: the client's imports, the engine's image and volume caches
        sdk: list[dict[str, Any]] = []
        floor: list[dict[str, float]] = []
        for _ in range(args.runs):  # interleaved, so load hits both alike
            sdk.append(sdk_run(engine))
            floor.append(floor_run(engine, script_dir))
        print(f"\n## {engine} (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        print(f"{'mark (s after train() / run)':52} {'this SDK':>9} {'floor':>9}")
        keys = [k for k in sdk[0] if not k.startswith("_")]
        for k in [*keys, *[k for k in floor[0] if k not in keys]]:
            ours = statistics.median(r[k] for r in sdk) if k in sdk[0] else None
            base = statistics.median(r[k] for r in floor) if k in floor[0] else None
            print(f"{k:52} {cell(ours)} {cell(base)}")
        print(f"calls in train(): {sdk[-1]['_kinds']}")
        print(
            f"engine calls in train(): {statistics.median(r['_calls'] for r in sdk):.0f}; the checks: "
            f"{statistics.median(r['_checks_n'] for r in sdk):.0f} calls, "
            f"{statistics.median(r['_checks_s'] for r in sdk):.3f} s"
        )


if __name__ == "__main__":
    main()
